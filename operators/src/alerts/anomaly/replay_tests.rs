//! An anomaly rule through the router's decision path ([`PendingWindows`]),
//! under tokio's paused clock: a week of synthetic error counts with a daily
//! shape teaches the baseline, which is saved in the hot store (SQLite) and
//! resumed after a restart.

use std::sync::Arc;

use crate::alerts::anomaly::store::{BaselineStore, MemoryBaselineStore};
use crate::alerts::pending::PendingWindows;
use crate::alerts::record::{AlertRecord, AlertState, WindowRecord};
use crate::alerts::rules::{AlertRuleConfig, RuleKind, compile_rules};
use crate::alerts::window_store::MemoryWindowStore;
use crate::sinks::hot::HotStore;
use crate::windows::{WindowConfig, WindowOutput};

const W: i64 = 300_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Monday 2026-11-23T00:00Z: the week of training starts here.
const T0: i64 = 1_795_392_000_000;

/// A deterministic noise sample in [-1, 1).
fn jitter(i: i64) -> f64 {
    let x = (i as u64)
        .wrapping_mul(2_862_933_555_777_941_757)
        .wrapping_add(3_037_000_493);
    ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

/// ERRORs per 5-minute window of `payments` at `t`: about 200 at 03:00
/// UTC, 2 000 at 15:00, noise of about √mean.
fn errors(t: i64) -> u64 {
    let hours = t.rem_euclid(DAY) as f64 / HOUR as f64;
    let mean = 1100.0 - 900.0 * ((hours - 3.0) / 24.0 * std::f64::consts::TAU).cos();
    (mean + mean.sqrt() * 1.7 * jitter(t / W)).round().max(0.0) as u64
}

fn window(start: i64, errors: u64) -> WindowRecord {
    WindowRecord {
        window_start_ms: start,
        window_end_ms: start + W,
        service: "payments".into(),
        events: errors + 50,
        severity: [50, 0, errors, 0],
        tags: Default::default(),
    }
}

/// The rules: an anomaly on errors, and a fixed threshold set where it would
/// not fire on the normal daily peak.
fn decisions(baselines: Arc<dyn BaselineStore>) -> PendingWindows {
    let mut fixed = AlertRuleConfig::new("error_burst", RuleKind::ErrorCount);
    fixed.threshold = Some(2_500.0);
    let anomaly = AlertRuleConfig::new("errors_anomaly", RuleKind::Anomaly);
    let rules = compile_rules(&[fixed, anomaly]).unwrap();
    PendingWindows::new(
        Arc::new(MemoryWindowStore::default()),
        &WindowConfig::default(),
        rules,
        900_000,
    )
    .with_baselines(baselines)
}

/// Decides one step closing the windows `[from, until)` with `counts`
/// (`None`: the service logged nothing).
async fn step(
    pending: &mut PendingWindows,
    from: i64,
    until: i64,
    counts: impl Fn(i64) -> Option<u64>,
) -> Vec<AlertRecord> {
    let windows = (from..until)
        .step_by(W as usize)
        .filter_map(|t| counts(t).map(|n| window(t, n)))
        .collect();
    pending
        .add(&WindowOutput {
            windows,
            closed_until_ms: Some(until),
        })
        .await;
    pending.decide_due(false).await.notices
}

fn summary(notices: &[AlertRecord]) -> Vec<(&str, &str, i64)> {
    notices
        .iter()
        .map(|n| (n.rule.as_str(), n.state.as_str(), n.window_start_ms))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_learnt_baseline_flags_a_night_spike_and_a_drop_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let store = HotStore::open(&path).unwrap();
    let mut pending = decisions(Arc::new(store.clone()));
    // A week, one decision step per hour: nothing fires, not even at the
    // daily peaks.
    for hour in 0..7 * 24 {
        let from = T0 + hour * HOUR;
        let sent = step(&mut pending, from, from + HOUR, |t| Some(errors(t))).await;
        assert!(sent.is_empty(), "hour {hour}: {sent:#?}");
    }
    let learnt = pending
        .evaluator()
        .baseline("errors_anomaly", "payments")
        .unwrap()
        .clone();
    assert_eq!(learnt.updates, 7 * 288);
    drop(pending);
    drop(store);

    // Restart: a new router over the same hot store file.
    let store = HotStore::open(&path).unwrap();
    let mut pending = decisions(Arc::new(store.clone()));
    let day8 = T0 + 7 * DAY;
    // 00:00–03:00 normal; then at 03:00 five times the night's errors, still
    // far below the daily peak (and the fixed threshold).
    let sent = step(&mut pending, day8, day8 + 3 * HOUR, |t| Some(errors(t))).await;
    assert!(sent.is_empty(), "{sent:#?}");
    let resumed = pending
        .evaluator()
        .baseline("errors_anomaly", "payments")
        .unwrap();
    assert_eq!(
        resumed.updates,
        learnt.updates + 36,
        "resumed, not restarted"
    );
    let night = day8 + 3 * HOUR;
    let spike = errors(night) * 5;
    assert!(spike < 2_500 && spike < errors(day8 + 15 * HOUR));
    let sent = step(&mut pending, night, night + W, |_| Some(spike)).await;
    assert_eq!(summary(&sent), [("errors_anomaly", "firing", night)]);
    assert_eq!(sent[0].value, spike as f64);
    assert!(sent[0].threshold < spike as f64, "{:?}", sent[0]);
    assert!(
        sent[0].message.contains("above normal"),
        "{}",
        sent[0].message
    );
    // Back to normal: resolved.
    let sent = step(&mut pending, night + W, night + 2 * W, |t| Some(errors(t))).await;
    assert_eq!(summary(&sent), [("errors_anomaly", "resolved", night + W)]);
    // The normal afternoon peak (15:00) fires nothing.
    let sent = step(&mut pending, night + 2 * W, day8 + 16 * HOUR, |t| {
        Some(errors(t))
    })
    .await;
    assert!(sent.is_empty(), "{sent:#?}");
    // At 16:00 the service stops logging: a drop to zero.
    let quiet = day8 + 16 * HOUR;
    let sent = step(&mut pending, quiet, quiet + W, |_| None).await;
    assert_eq!(summary(&sent), [("errors_anomaly", "firing", quiet)]);
    assert!(
        sent[0].message.contains("below normal"),
        "{}",
        sent[0].message
    );
    assert_eq!(sent[0].state, AlertState::Firing);

    // Without the stored baseline (a fresh store), the same spike is not
    // judged at all: nothing learnt yet.
    let mut fresh = decisions(Arc::new(MemoryBaselineStore::default()));
    let sent = step(&mut fresh, night, night + W, |_| Some(spike)).await;
    assert!(sent.is_empty(), "{sent:#?}");
}
