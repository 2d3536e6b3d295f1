//! The process's memory allocator: mimalloc, and how soon the service gives
//! freed memory back to the operating system.
//!
//! mimalloc keeps pages it has freed for `purge_delay` before returning them
//! (1 s by default in mimalloc 3, 10× that for whole arenas). Under a spike,
//! seals, request bodies and Arrow batches free tens of MiB many times a
//! second, so `spate run` sat on a second's worth of garbage. `spate run`
//! sets 100 ms: in the 30 k → 300 k events/s spike run (same binary, the
//! delay from the environment) it peaked at 236–245 MiB instead of
//! 268–285 MiB, for a few percent more CPU. Batch commands keep mimalloc's
//! default: `spate ingest` of 20 M W1 events peaked at 200–207 MiB with
//! 100 ms against 248–250 MiB without, but spent 5–15 % more CPU (page
//! faults after purges), and a batch job is judged by its speed (figures and
//! commands in `docs/BENCHMARKS.md`).
//!
//! `MIMALLOC_PURGE_DELAY` in the environment wins over both (mimalloc reads
//! it itself), for anyone trading memory for CPU another way.
//!
//! Every command also turns off transparent huge pages for the process
//! (`prctl(PR_SET_THP_DISABLE)`; mimalloc asks for them on its arenas, which
//! it reserves before `main` runs, so its own `allow_thp` option comes too
//! late). With them each first touch of a 2 MiB region zeroes all of it,
//! resident from then on, though a partition's buffers use a fraction: `spate
//! ingest` of 20 M W1 events peaked at 208–214 MiB without them against
//! 235–247 MiB with them, at the same CPU (`docs/BENCHMARKS.md`).
//! `MIMALLOC_ALLOW_THP` in the environment (any value) leaves them as the
//! system has them.

/// Every allocation of the binary goes through mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the Rust bindings
/// name no constant for it; a test below checks the index against the
/// option's documented default).
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;

/// How long freed pages stay with the service before they are returned.
const SERVICE_PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Applies the settings of every command; call first thing in `main`,
/// before the threads that allocate most. Returns whether transparent huge
/// pages are off (false where the kernel refuses, or the environment has
/// `MIMALLOC_ALLOW_THP`).
pub fn configure() -> bool {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return false;
    }
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and sets a
    // flag of the process, checked by the kernel at each page fault.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
}

/// Applies the service's allocator settings; call once, when `spate run`
/// starts.
pub fn configure_for_service() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` only stores the value in mimalloc's option
        // table; any thread may call it at any time.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, SERVICE_PURGE_DELAY_MS) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reads mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY_OPTION) }
    }

    #[test]
    fn the_option_index_is_the_purge_delay_and_the_service_shortens_it() {
        // Only this test touches the option. mimalloc 3 documents 1000 ms as
        // the purge delay's default: a different default means the index
        // names another option (or mimalloc changed), and this must be
        // looked at again.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        assert_eq!(purge_delay(), 1000);
        configure_for_service();
        assert_eq!(purge_delay(), SERVICE_PURGE_DELAY_MS);
    }

    #[test]
    fn every_command_turns_transparent_huge_pages_off() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        assert!(configure());
        // SAFETY: PR_GET_THP_DISABLE takes no pointer.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
            1
        );
    }
}
