//! The metric catalog: every metric a crate emits, with its type, labels and
//! help text, in one list per crate.
//!
//! The lists give the `# HELP` lines ([`PrometheusExporter::install_with`]
//! describes every entry), the histogram buckets, the series registered at 0
//! at start-up ([`register_at_zero`]), and the metric table of
//! `docs/operations.md` (checked by a test, so the documentation cannot drift
//! from the code).
//!
//! ```
//! use spate_engine::catalog::{MetricDef, register_at_zero};
//!
//! const MINE: &[MetricDef] = &[
//!     MetricDef::counter("spate_widgets_total", &[], "Widgets made."),
//!     MetricDef::counter("spate_parts_total", &["kind"], "Parts used, by kind.")
//!         .at_start(&[&["bolt"], &["nut"]]),
//! ];
//! let exporter = spate_engine::PrometheusExporter::new_local_with(&[MINE]);
//! metrics::with_local_recorder(exporter.recorder(), || register_at_zero(MINE));
//! let text = exporter.render();
//! assert!(text.contains("# HELP spate_widgets_total Widgets made."));
//! assert!(text.contains("spate_parts_total{kind=\"nut\"} 0"));
//! ```
//!
//! [`PrometheusExporter::install_with`]: crate::PrometheusExporter::install_with

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (resets with the process); named `*_total`.
    Counter,
    /// A current value.
    Gauge,
    /// Observations counted in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// Buckets of latencies from 100 µs to a minute (seconds): handle times,
/// requests, commits, uploads.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Buckets of end-to-end delivery times from 10 ms to 30 min (seconds): a lake
/// file is committed when it rolls, minutes after its first event.
pub const DELIVERY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0,
];

/// One metric: what `/metrics` shows for it and what is registered at start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// The Prometheus name.
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// Its label names.
    pub labels: &'static [&'static str],
    /// The `# HELP` text: one sentence, what it counts and in which unit.
    pub help: &'static str,
    /// Histogram buckets (seconds); [`LATENCY_BUCKETS`] unless set.
    pub buckets: &'static [f64],
    /// Label values of the series registered at 0 at start-up; an unlabelled
    /// metric is registered at 0 whatever this says.
    pub at_start: &'static [&'static [&'static str]],
}

impl MetricDef {
    const fn new(
        name: &'static str,
        kind: MetricKind,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            name,
            kind,
            labels,
            help,
            buckets: LATENCY_BUCKETS,
            at_start: &[],
        }
    }

    /// A counter.
    pub const fn counter(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self::new(name, MetricKind::Counter, labels, help)
    }

    /// A gauge.
    pub const fn gauge(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self::new(name, MetricKind::Gauge, labels, help)
    }

    /// A histogram with [`LATENCY_BUCKETS`].
    pub const fn histogram(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self::new(name, MetricKind::Histogram, labels, help)
    }

    /// Other buckets.
    pub const fn buckets(mut self, buckets: &'static [f64]) -> Self {
        self.buckets = buckets;
        self
    }

    /// Series registered at 0 at start-up, one label-value tuple each (in the
    /// order of `labels`).
    pub const fn at_start(mut self, values: &'static [&'static [&'static str]]) -> Self {
        self.at_start = values;
        self
    }

    /// The `_bucket`/`_sum`/`_count` sample names of a histogram, or the name.
    pub fn sample_names(&self) -> Vec<String> {
        match self.kind {
            MetricKind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .collect(),
            _ => vec![self.name.to_string()],
        }
    }
}

/// Registers at 0, with the current recorder, the series of `defs` whose
/// labels are known now: every unlabelled metric and the `at_start` tuples.
/// Registering an existing series changes nothing.
pub fn register_at_zero(defs: &[MetricDef]) {
    for def in defs {
        let tuples: Vec<&[&str]> = if def.labels.is_empty() {
            vec![&[]]
        } else {
            def.at_start.to_vec()
        };
        for values in tuples {
            let labels: Vec<metrics::Label> = def
                .labels
                .iter()
                .zip(values.iter())
                .map(|(k, v)| metrics::Label::new(*k, *v))
                .collect();
            match def.kind {
                MetricKind::Counter => drop(metrics::counter!(def.name, labels)),
                MetricKind::Gauge => drop(metrics::gauge!(def.name, labels)),
                MetricKind::Histogram => drop(metrics::histogram!(def.name, labels)),
            }
        }
    }
}

/// The engine's metrics: per actor and per source.
pub const ENGINE: &[MetricDef] = &[
    MetricDef::gauge(
        "spate_actor_mailbox_depth",
        &["actor"],
        "Batches queued in the actor's mailbox, sampled as it takes one.",
    ),
    MetricDef::counter(
        "spate_actor_batches_received_total",
        &["actor"],
        "Batches the actor handled.",
    ),
    MetricDef::counter(
        "spate_actor_events_received_total",
        &["actor"],
        "Events in the batches the actor handled.",
    ),
    MetricDef::counter(
        "spate_actor_batches_sent_total",
        &["actor"],
        "Batches the actor sent downstream, each fan-out copy counted.",
    ),
    MetricDef::counter(
        "spate_actor_events_sent_total",
        &["actor"],
        "Events the actor sent downstream, each fan-out copy counted.",
    ),
    MetricDef::counter(
        "spate_actor_errors_total",
        &["actor", "class"],
        "Failures of the actor by class (bad_input, external, internal).",
    ),
    MetricDef::counter(
        "spate_actor_restarts_total",
        &["actor"],
        "Times the supervisor restarted the actor.",
    ),
    MetricDef::histogram(
        "spate_actor_backpressure_seconds",
        &["actor"],
        "Each wait of the actor sending into a full mailbox, in seconds; the sum is the time blocked.",
    ),
    MetricDef::histogram(
        "spate_actor_handle_latency_seconds",
        &["actor"],
        "Time the actor took to handle one batch, backpressure excluded, in seconds.",
    ),
    MetricDef::gauge(
        "spate_source_oldest_unacked_age_seconds",
        &["source"],
        "Age in seconds of the oldest batch the source accepted and not yet delivered to every sink (0 when none).",
    ),
    MetricDef::gauge(
        "spate_source_inflight_events",
        &["source"],
        "Events the source sent into the pipeline and awaiting their verdict.",
    ),
    MetricDef::gauge(
        "spate_source_inflight_bytes",
        &["source"],
        "Input bytes of the events the source has awaiting their verdict.",
    ),
    MetricDef::counter(
        "spate_source_batches_settled_total",
        &["source", "verdict"],
        "Verdicts the source heard for its batches: delivered (every sink durable) or failed.",
    ),
    MetricDef::histogram(
        "spate_source_delivery_seconds",
        &["source"],
        "Time from the source accepting a batch to every sink having committed it, in seconds.",
    )
    .buckets(DELIVERY_BUCKETS),
];

/// The process metrics the exporter adds to every rendering (read from
/// `/proc` at render time; Linux only).
pub const PROCESS: &[MetricDef] = &[
    MetricDef::counter(
        "process_cpu_seconds_total",
        &[],
        "Total user and system CPU time spent in seconds.",
    ),
    MetricDef::gauge(
        "process_resident_memory_bytes",
        &[],
        "Resident memory size in bytes.",
    ),
    MetricDef::gauge(
        "process_virtual_memory_bytes",
        &[],
        "Virtual memory size in bytes.",
    ),
    MetricDef::gauge("process_open_fds", &[], "Number of open file descriptors."),
    MetricDef::gauge(
        "process_max_fds",
        &[],
        "Maximum number of open file descriptors.",
    ),
    MetricDef::gauge(
        "process_start_time_seconds",
        &[],
        "Start time of the process since unix epoch in seconds.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        for def in ENGINE.iter().chain(PROCESS) {
            assert_eq!(
                def.name.ends_with("_total"),
                def.kind == MetricKind::Counter,
                "{}: _total exactly on counters",
                def.name
            );
            assert!(def.help.ends_with('.'), "{}", def.name);
            assert!(def.buckets.windows(2).all(|w| w[0] < w[1]), "{}", def.name);
        }
    }
}
