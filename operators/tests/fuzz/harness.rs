//! What every fuzz target shares: the seed corpora, their mutations as
//! proptest strategies, the run lengths, and a per-thread allocation meter.
//!
//! Included by `operators/tests/fuzz.rs` and `bin/tests/fuzz_body.rs`.

#![allow(dead_code)] // each target uses a part

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases per target in the normal test run (a few seconds in all).
pub const SHORT_CASES: u32 = 256;

/// Cases per target in the long run (`cargo test -- --ignored fuzz`), unless
/// `SPATE_FUZZ_CASES` says otherwise.
pub const LONG_CASES: u32 = 50_000;

/// The proptest config of a short run.
pub fn short() -> Config {
    Config {
        cases: SHORT_CASES,
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

/// The proptest config of a long run.
pub fn long() -> Config {
    let cases = std::env::var("SPATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LONG_CASES);
    Config {
        cases,
        max_shrink_iters: 8192,
        ..Config::default()
    }
}

/// `operators/tests/fuzz_corpus/<target>`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("operators/tests/fuzz_corpus")
        .join(target)
}

/// The seeds of `target`, in file name order.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Byte sequences that mean something to one of the decoders.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\n",
    b"\r\n",
    b"\0",
    b":",
    b",",
    b"\"level\":\"error\"",
    b"\"message\":",
    b"\\u0000",
    b"\\ud800",
    b"H4sI",
    b"\xef\xbb\xbf",
    b"\x1f\x8b",
    b"1e999",
    b"-9223372036854775809",
    b"99999999999999999999999",
    b"\"logEvents\":[",
    b"\"messageType\":\"DATA_MESSAGE\"",
    b"\"messageType\":\"CONTROL_MESSAGE\"",
    b"\"requestId\":\"r\",\"records\":[{\"data\":\"",
    b"[23/Nov/2026:10:00:00 +0000]",
    b"\" 500 ",
    b"<13>",
    b"\xff",
    b"\xc3",
    b"\xf7JR1",
    b"\xf3\x89\x9a\xc2",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
];

/// One change to an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit.
    FlipBit { at: usize, bit: u8 },
    /// Overwrite one byte.
    SetByte { at: usize, value: u8 },
    /// Overwrite a run of bytes with one value (a zeroed page).
    Fill { at: usize, len: usize, value: u8 },
    /// Insert bytes.
    Insert { at: usize, bytes: Vec<u8> },
    /// Insert a meaningful token.
    Token { at: usize, token: usize },
    /// Remove a run of bytes.
    Delete { at: usize, len: usize },
    /// Repeat a run of bytes.
    Duplicate { at: usize, len: usize, times: u8 },
    /// Cut the input.
    Truncate { at: usize },
    /// Insert a run of another seed.
    Splice {
        seed: usize,
        from: usize,
        len: usize,
        at: usize,
    },
}

/// Whether a mutation keeps every byte at its offset (disk damage does).
pub fn in_place(m: &Mutation) -> bool {
    matches!(
        m,
        Mutation::FlipBit { .. }
            | Mutation::SetByte { .. }
            | Mutation::Fill { .. }
            | Mutation::Truncate { .. }
    )
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        4 => (at, 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        3 => (at, any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        1 => (at, 1usize..4200, prop_oneof![Just(0u8), Just(0xff), any::<u8>()])
            .prop_map(|(at, len, value)| Mutation::Fill { at, len, value }),
        2 => (at, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        3 => (at, 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Token { at, token }),
        2 => (at, 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (at, 1usize..64, 1u8..8)
            .prop_map(|(at, len, times)| Mutation::Duplicate { at, len, times }),
        1 => at.prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), at, 1usize..256, at)
            .prop_map(|(seed, from, len, at)| Mutation::Splice { seed, from, len, at }),
    ]
}

/// Applies `mutations` to a copy of `seed`.
pub fn apply(seed: &[u8], mutations: &[Mutation], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for m in mutations {
        let n = out.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % n };
        match m {
            Mutation::FlipBit { at, bit } if n > 0 => out[pos(*at)] ^= 1 << bit,
            Mutation::SetByte { at, value } if n > 0 => out[pos(*at)] = *value,
            Mutation::Fill { at, len, value } if n > 0 => {
                let start = pos(*at);
                let end = (start + len).min(n);
                out[start..end].fill(*value);
            }
            Mutation::Insert { at, bytes } => {
                let at = at % (n + 1);
                out.splice(at..at, bytes.iter().copied());
            }
            Mutation::Token { at, token } => {
                let at = at % (n + 1);
                out.splice(at..at, TOKENS[*token].iter().copied());
            }
            Mutation::Delete { at, len } if n > 0 => {
                let start = pos(*at);
                out.drain(start..(start + len).min(n));
            }
            Mutation::Duplicate { at, len, times } if n > 0 => {
                let start = pos(*at);
                let run = out[start..(start + len).min(n)].to_vec();
                for _ in 0..*times {
                    out.splice(start..start, run.iter().copied());
                }
            }
            Mutation::Truncate { at } => out.truncate(at % (n + 1)),
            Mutation::Splice {
                seed,
                from,
                len,
                at,
            } => {
                let other = seeds.get(seed % seeds.len().max(1)).map_or(&[][..], |s| s);
                if !other.is_empty() {
                    let from = from % other.len();
                    let run = &other[from..(from + len).min(other.len())];
                    let at = at % (n + 1);
                    out.splice(at..at, run.iter().copied());
                }
            }
            _ => {}
        }
    }
    out
}

/// Damage as a disk does it: bits flipped, bytes overwritten, runs zeroed
/// (a lost page), the tail cut — every other byte stays at its offset.
pub fn disk_damage() -> impl Strategy<Value = Vec<Mutation>> {
    let at = any::<usize>();
    prop::collection::vec(
        prop_oneof![
            4 => (at, 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
            3 => (at, any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
            2 => (at, 1usize..4200, prop_oneof![Just(0u8), Just(0xff), any::<u8>()])
                .prop_map(|(at, len, value)| Mutation::Fill { at, len, value }),
            1 => at.prop_map(|at| Mutation::Truncate { at }),
        ],
        1..4,
    )
}

/// A seed index and the mutations applied to it.
pub fn mutations() -> impl Strategy<Value = (usize, Vec<Mutation>)> {
    (any::<usize>(), prop::collection::vec(mutation(), 0..8))
}

/// Mutated seeds of a corpus, and now and then arbitrary bytes.
pub fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        9 => mutations().prop_map(move |(i, ms)| apply(&seeds[i % seeds.len()], &ms, &seeds)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Counts the bytes each thread has allocated and not freed, and the peak.
pub struct Meter;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(n: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + n;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(n)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// meter only updates thread-local counters, which never allocate.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promised for `layout`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promised for `layout`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// Runs `f` and returns its result with the most bytes it held allocated at
/// once on this thread (beyond what was allocated before).
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, peak.saturating_sub(base))
}
