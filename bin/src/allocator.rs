//! The process's memory allocator: mimalloc, told to give freed memory back to
//! the operating system sooner than its default.
//!
//! mimalloc keeps pages it has freed for `purge_delay` before returning them
//! (1 s by default in mimalloc 3, 10× that for whole arenas). Under a spike,
//! seals, request bodies and Arrow batches free tens of MiB many times a
//! second, so resident memory sat on a second's worth of garbage: 268–285 MiB
//! peak in the W4 spike run against 236–245 MiB at 100 ms, and 149–175 MiB
//! against 164–205 MiB for `spate ingest` of 1 M W1 events, at the same CPU
//! (figures in `docs/BENCHMARKS.md`).
//!
//! `MIMALLOC_PURGE_DELAY` in the environment still wins (mimalloc reads it
//! itself), for anyone trading memory for CPU the other way.

/// Every allocation of the binary goes through mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the Rust bindings
/// name no constant for it; a test below checks the index against the
/// option's documented default).
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;

/// How long freed pages stay with the process before they are returned.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Applies Spate's allocator settings; call once, first thing in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` only stores the value in mimalloc's option
        // table; any thread may call it at any time.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS) };
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
    fn the_option_index_is_the_purge_delay_and_configure_shortens_it() {
        // Only this test touches the option. mimalloc 3 documents 1000 ms as
        // the purge delay's default: a different default means the index
        // names another option (or mimalloc changed), and this must be
        // looked at again.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        assert_eq!(purge_delay(), 1000);
        configure();
        assert_eq!(purge_delay(), PURGE_DELAY_MS);
    }
}
