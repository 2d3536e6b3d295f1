//! The buffered, counting output every generator writes through, and what
//! each event was meant to be.

use std::io::{self, BufWriter, Write};

use crate::{GenerateStats, Severity};

/// Output buffer size: large writes keep syscalls out of the per-event cost.
const OUT_BUFFER: usize = 1 << 20;

/// What the generator intended for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventMeta {
    pub severity: Severity,
    pub http_5xx: bool,
    pub failed_login: bool,
    /// Event time, Unix milliseconds.
    pub ts_ms: u64,
}

impl GenerateStats {
    /// Counts one generated event.
    pub(crate) fn record(&mut self, meta: EventMeta) {
        self.events += 1;
        self.expected_severity[meta.severity.index()] += 1;
        self.expected_tags.http_5xx += u64::from(meta.http_5xx);
        self.expected_tags.failed_login += u64::from(meta.failed_login);
    }
}

/// A buffered writer that counts the bytes and lines going through it.
pub(crate) struct Output<W: Write> {
    inner: BufWriter<W>,
    bytes: u64,
    records: u64,
}

impl<W: Write> Output<W> {
    pub(super) fn new(writer: W) -> Self {
        Output {
            inner: BufWriter::with_capacity(OUT_BUFFER, writer),
            bytes: 0,
            records: 0,
        }
    }

    /// Writes one output line; `line` must not contain the newline, which is added here.
    pub(crate) fn line(&mut self, line: &[u8]) -> io::Result<()> {
        self.inner.write_all(line)?;
        self.inner.write_all(b"\n")?;
        self.bytes += line.len() as u64 + 1;
        self.records += 1;
        Ok(())
    }

    /// Flushes and moves the byte and record counts into `stats`.
    pub(super) fn finish(mut self, stats: &mut GenerateStats) -> io::Result<()> {
        self.inner.flush()?;
        stats.bytes = self.bytes;
        stats.records = self.records;
        Ok(())
    }
}
