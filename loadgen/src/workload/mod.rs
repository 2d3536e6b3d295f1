//! The workload generators, one module per workload, and the buffered counting output they
//! share.

use std::io::{self, Write};

pub(crate) use self::output::{EventMeta, Output};
use crate::{GenerateStats, Workload};

pub(crate) mod expected;
mod format;
pub(crate) mod kind;
pub(crate) mod marks;
mod output;
#[cfg(test)]
mod reference_classifier;
pub(crate) mod stream;
mod w1_app_json;
mod w2_access;
mod w3_cloudwatch;

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
