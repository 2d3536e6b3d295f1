//! What Spate's tests share, as one crate used only as a dev-dependency:
//!
//! - [`emulator`]: the local AWS emulator (moto) the AWS tests run against,
//!   clients of it and boto3 snippets;
//! - [`unique`]: names no other test uses;
//! - [`wait`]: waiting for observable state with a deadline (never a sleep
//!   that "proves" nothing happened);
//! - [`lake`]: DuckDB (through `SPATE_TEST_PYTHON`) as an independent reader
//!   of the lake, and the workload's expected counts;
//! - [`oracle`]: the workload generator (`spate-loadgen`) as the oracle, and
//!   the `loadgen` binary;
//! - [`promtool`]: the Prometheus project's checker of exposition text;
//! - [`service`]: a `spate run` process (the binary's path comes from the
//!   test file, which has `CARGO_BIN_EXE_spate`);
//! - [`decode`]: a source → decode → capture pipeline and its columns;
//! - [`acks`]: the acknowledgement compliance check every source runs;
//! - [`console`]: the console's users, its JSON API and a browser as far as
//!   the HTTP forms go.

pub mod acks;
pub mod console;
pub mod decode;
pub mod emulator;
pub mod lake;
pub mod oracle;
pub mod promtool;
pub mod service;
pub mod wait;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The repository's root: the workspace directory, where `README.md`,
/// `docs/` and `deploy/` are.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support/ has a parent")
        .to_path_buf()
}

/// A name no other test (or earlier run against the same emulator) uses;
/// lowercase, so it is a valid bucket name.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
