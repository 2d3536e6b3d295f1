//! `[sources.tail]` (formerly `[tail]`): which files to follow and how, and
//! the tail source kind.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::discover::FileMatcher;

/// Where to start in a file that has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// From its first byte: nothing already in the file is missed.
    Beginning,
    /// After its last complete line: only what is written from now on.
    End,
}

/// `[sources.tail]`: follow application log files, with rotation and
/// checkpoints (`[tail]` is read too).
///
/// ```
/// use spate_operators::sources::tail::{ReadFrom, TailConfig};
///
/// let config: TailConfig = serde_json::from_str(r#"{"paths": ["/var/log/app/*.log"]}"#).unwrap();
/// assert!(config.enabled());
/// assert_eq!(config.read_from, ReadFrom::Beginning);
/// assert_eq!(config.poll_interval_ms, 250);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TailConfig {
    /// Glob patterns of the files to follow (`*`, `?`, `[..]`, `{a,b}`, and `**`
    /// for any number of directories), e.g. `/var/log/app/*.log`. A `*` does not
    /// cross a `/`. Empty (the default) turns tailing off.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Glob patterns of paths to leave alone, matched against the whole path
    /// (e.g. `**/*.gz`). Copies made by `copytruncate` rotation should be
    /// excluded here, or they are read again as new files.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file that has no checkpoint and is there when Spate
    /// starts: `beginning` (the default: nothing is missed) or `end`. Files that
    /// appear later are always read from the beginning.
    #[serde(default = "default_read_from")]
    pub read_from: ReadFrom,
    /// How often to look for new data and for new, rotated or deleted files
    /// (milliseconds).
    #[serde(
        rename = "poll_interval",
        alias = "poll_interval_ms",
        with = "crate::component::units::with::millis",
        default = "default_poll_interval_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub poll_interval_ms: u64,
    /// Bytes read per chunk (one batch through the pipeline), in KiB.
    #[serde(
        rename = "chunk_size",
        alias = "chunk_kib",
        with = "crate::component::units::with::kib",
        default = "default_chunk_kib"
    )]
    #[schemars(with = "crate::component::units::KiB")]
    pub chunk_kib: usize,
    /// How often committed offsets are written to `<checkpoint dir>/tail.json`
    /// when they changed (milliseconds).
    #[serde(
        rename = "checkpoint_interval",
        alias = "checkpoint_interval_ms",
        with = "crate::component::units::with::millis",
        default = "default_checkpoint_interval_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub checkpoint_interval_ms: u64,
    /// How long a file that was renamed away or deleted is still read after it
    /// stopped growing (seconds); then its last partial line is sent as is and
    /// the file is closed.
    #[serde(
        rename = "rotated_idle",
        alias = "rotated_idle_secs",
        with = "crate::component::units::with::secs",
        default = "default_rotated_idle_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub rotated_idle_secs: u64,
    /// Bytes at the start of a file that identify it besides device and inode
    /// (to notice an inode reused by a new file, or a file rewritten in place).
    #[serde(
        rename = "fingerprint_size",
        alias = "fingerprint_bytes",
        with = "crate::component::units::with::bytes",
        default = "default_fingerprint_bytes"
    )]
    #[schemars(with = "crate::component::units::Bytes")]
    pub fingerprint_bytes: usize,
    /// Longest line sent whole, in KiB. A longer line is split into pieces of
    /// this size, each its own event (counted in
    /// `spate_tail_long_lines_split_total`). Keep it at or below the decoder's
    /// `max_line`, or the pieces are dead-lettered there.
    #[serde(
        rename = "max_line",
        alias = "max_line_kib",
        with = "crate::component::units::with::kib",
        default = "default_max_line_kib"
    )]
    #[schemars(with = "crate::component::units::KiB")]
    pub max_line_kib: usize,
    /// Forget the checkpoint of a file not seen for this long (seconds).
    #[serde(
        rename = "forget_after",
        alias = "forget_after_secs",
        with = "crate::component::units::with::secs",
        default = "default_forget_after_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub forget_after_secs: u64,
}

fn default_read_from() -> ReadFrom {
    ReadFrom::Beginning
}

fn default_poll_interval_ms() -> u64 {
    250
}

fn default_chunk_kib() -> usize {
    1024
}

fn default_checkpoint_interval_ms() -> u64 {
    1000
}

fn default_rotated_idle_secs() -> u64 {
    5
}

fn default_fingerprint_bytes() -> usize {
    256
}

fn default_max_line_kib() -> usize {
    1024
}

fn default_forget_after_secs() -> u64 {
    7 * 24 * 3600
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            paths: Vec::new(),
            exclude: Vec::new(),
            read_from: default_read_from(),
            poll_interval_ms: default_poll_interval_ms(),
            chunk_kib: default_chunk_kib(),
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
            rotated_idle_secs: default_rotated_idle_secs(),
            fingerprint_bytes: default_fingerprint_bytes(),
            max_line_kib: default_max_line_kib(),
            forget_after_secs: default_forget_after_secs(),
        }
    }
}

impl TailConfig {
    /// True when there is something to tail.
    pub fn enabled(&self) -> bool {
        !self.paths.is_empty()
    }

    pub(super) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }

    pub(super) fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms.max(1))
    }

    pub(super) fn rotated_idle(&self) -> Duration {
        Duration::from_secs(self.rotated_idle_secs)
    }

    pub(super) fn forget_after(&self) -> Duration {
        Duration::from_secs(self.forget_after_secs)
    }

    pub(super) fn chunk_bytes(&self) -> u64 {
        (self.chunk_kib.max(1) * 1024) as u64
    }

    pub(super) fn max_line_bytes(&self) -> u64 {
        (self.max_line_kib.max(1) * 1024) as u64
    }
}

/// Tail settings that passed validation: the globs compiled.
#[derive(Debug, Clone)]
pub struct ValidTail {
    pub(super) config: TailConfig,
    pub(super) matcher: FileMatcher,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_defaults_equal_default() {
        let parsed: TailConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, TailConfig::default());
        assert!(!parsed.enabled());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<TailConfig>(r#"{"pathz": []}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn read_from_is_snake_case() {
        let c: TailConfig = serde_json::from_str(r#"{"read_from": "end"}"#).unwrap();
        assert_eq!(c.read_from, ReadFrom::End);
    }
}
