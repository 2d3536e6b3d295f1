//! The workload generators, one module per workload, and the buffered counting output they
//! share.

use std::io::{self, BufWriter, Write};

use crate::{GenerateStats, Severity, Workload};

mod format;
pub(crate) mod marks;
#[cfg(test)]
mod reference_classifier;
pub(crate) mod stream;
mod w1_app_json;
mod w2_access;
mod w3_cloudwatch;

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
    fn new(writer: W) -> Self {
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
    fn finish(mut self, stats: &mut GenerateStats) -> io::Result<()> {
        self.inner.flush()?;
        stats.bytes = self.bytes;
        stats.records = self.records;
        Ok(())
    }
}

pub(crate) fn run<W: Write>(
    workload: Workload,
    events: u64,
    seed: u64,
    writer: W,
) -> io::Result<GenerateStats> {
    let mut out = Output::new(writer);
    let mut stats = GenerateStats::default();
    match workload {
        Workload::AppJson => w1_app_json::write(events, seed, &mut out, &mut stats)?,
        Workload::Access => w2_access::write(events, seed, &mut out, &mut stats)?,
        Workload::CloudWatch => w3_cloudwatch::write(events, seed, &mut out, &mut stats)?,
    }
    out.finish(&mut stats)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_is_deterministic_and_seed_sensitive() {
        for workload in Workload::ALL {
            let run = |seed| {
                let mut buf = Vec::new();
                let stats = crate::generate(workload, 2_000, seed, &mut buf).unwrap();
                (buf, stats)
            };
            let (a, stats_a) = run(11);
            let (b, stats_b) = run(11);
            let (c, _) = run(12);
            assert_eq!(a, b, "{workload}: same seed must give the same bytes");
            assert_eq!(stats_a, stats_b);
            assert_ne!(a, c, "{workload}: another seed must give other bytes");
            assert_eq!(stats_a.events, 2_000);
            assert_eq!(stats_a.bytes, a.len() as u64);
            assert_eq!(
                stats_a.records,
                a.iter().filter(|&&b| b == b'\n').count() as u64
            );
            assert_eq!(stats_a.expected_severity.iter().sum::<u64>(), 2_000);
        }
    }

    #[test]
    fn zero_events_write_nothing() {
        for workload in Workload::ALL {
            let mut buf = Vec::new();
            let stats = crate::generate(workload, 0, 1, &mut buf).unwrap();
            assert!(buf.is_empty(), "{workload}");
            assert_eq!(stats, GenerateStats::default());
        }
    }

    #[test]
    fn workload_names_parse() {
        for workload in Workload::ALL {
            assert_eq!(workload.short_name().parse::<Workload>(), Ok(workload));
            assert_eq!(
                workload.long_name().to_uppercase().parse::<Workload>(),
                Ok(workload)
            );
        }
        let err = "w9".parse::<Workload>().unwrap_err();
        assert!(err.starts_with("unknown workload"), "{err}");
    }
}
