//! The per-actor series (`spate_actor_*`, labelled `actor`) summed over the
//! actors, unless `[metrics.emf] per_actor` asks for one series an actor:
//! every actor is a CloudWatch custom metric of its own, billed a month, and
//! the sums are what the stack's alarm and dashboard read by default.

use std::collections::HashMap;

use super::exposition::{Labels, Sample};

/// Families whose series carry an `actor` label.
pub const PER_ACTOR_PREFIX: &str = "spate_actor_";

/// `samples` with the `actor` label of the [`PER_ACTOR_PREFIX`] families
/// dropped and the samples that then coincide added up (histogram buckets,
/// sums and counts add up as well), in the order they first appear.
pub fn sum_over_actors(samples: Vec<Sample>) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    let mut seen: HashMap<(String, Labels), usize> = HashMap::new();
    for mut sample in samples {
        if !sample.family.starts_with(PER_ACTOR_PREFIX) {
            out.push(sample);
            continue;
        }
        sample.labels.retain(|(k, _)| k != "actor");
        let key = (sample.name.clone(), sample.labels.clone());
        match seen.get(&key) {
            Some(&i) => out[i].value += sample.value,
            None => {
                seen.insert(key, out.len());
                out.push(sample);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::emf::exposition::{Labels, parse};

    #[test]
    fn actors_are_summed_and_other_series_kept() {
        let text = "\
# TYPE spate_actor_restarts_total counter
spate_actor_restarts_total{actor=\"decode\"} 2
spate_actor_restarts_total{actor=\"lake\"} 3
# TYPE spate_actor_errors_total counter
spate_actor_errors_total{actor=\"decode\",class=\"external\"} 1
spate_actor_errors_total{actor=\"lake\",class=\"external\"} 4
spate_actor_errors_total{actor=\"lake\",class=\"internal\"} 5
# TYPE spate_actor_backpressure_seconds histogram
spate_actor_backpressure_seconds_bucket{actor=\"decode\",le=\"1\"} 1
spate_actor_backpressure_seconds_bucket{actor=\"lake\",le=\"1\"} 2
spate_actor_backpressure_seconds_sum{actor=\"decode\"} 0.5
spate_actor_backpressure_seconds_sum{actor=\"lake\"} 0.25
# TYPE spate_events_total counter
spate_events_total{severity=\"INFO\"} 7
spate_events_total{severity=\"ERROR\"} 1
";
        let summed = sum_over_actors(parse(text));
        let rows: Vec<(String, Labels, f64)> = summed
            .into_iter()
            .map(|s| (s.name, s.labels, s.value))
            .collect();
        let l = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            rows,
            [
                ("spate_actor_restarts_total".into(), l(&[]), 5.0),
                (
                    "spate_actor_errors_total".into(),
                    l(&[("class", "external")]),
                    5.0
                ),
                (
                    "spate_actor_errors_total".into(),
                    l(&[("class", "internal")]),
                    5.0
                ),
                (
                    "spate_actor_backpressure_seconds_bucket".into(),
                    l(&[("le", "1")]),
                    3.0
                ),
                ("spate_actor_backpressure_seconds_sum".into(), l(&[]), 0.75),
                ("spate_events_total".into(), l(&[("severity", "INFO")]), 7.0),
                (
                    "spate_events_total".into(),
                    l(&[("severity", "ERROR")]),
                    1.0
                ),
            ]
        );
    }
}
