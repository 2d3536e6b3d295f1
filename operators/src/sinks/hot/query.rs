//! The questions the hot store answers: recent events, alerts, window counts.
//!
//! Every answer is newest first and bounded by a limit. Time ranges include
//! their start and exclude their end.

use std::collections::BTreeMap;

use rusqlite::params;

use super::HotError;
use super::blocks::unpack_body_where;
use super::event::HotEvent;
pub use super::event::rfc3339_ms;
use super::newest::NewestEvents;
use super::store::HotStore;
use crate::alerts::record::{AlertRecord, AlertState, WindowRecord};
use crate::event::Severity;
use crate::sinks::dynamo_hot::block::BLOCK_SPAN_MS;

/// Limit of a [`RecentQuery`] built with [`RecentQuery::since`].
pub const DEFAULT_LIMIT: usize = 100;

/// "Recent events of service X (at or above severity S) between T1 and T2."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentQuery {
    /// Only this service; `None` for every service.
    pub service: Option<String>,
    /// Only events at or above this severity; `None` for every stored event.
    pub min_severity: Option<Severity>,
    /// Events at or after this time, UTC milliseconds.
    pub since_ms: i64,
    /// Events before this time, UTC milliseconds; `None` for no upper bound.
    pub until_ms: Option<i64>,
    /// At most this many events.
    pub limit: usize,
}

impl RecentQuery {
    /// Every event since `since_ms`, up to [`DEFAULT_LIMIT`].
    pub fn since(since_ms: i64) -> Self {
        RecentQuery {
            service: None,
            min_severity: None,
            since_ms,
            until_ms: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn data_error(what: &str) -> impl FnOnce(serde_json::Error) -> HotError + '_ {
    move |e| HotError::Data(format!("stored {what} is not valid JSON: {e}"))
}

impl HotStore {
    /// Recent events matching `q`, newest first (time, then id, both
    /// descending).
    ///
    /// Reads the blocks that can hold an event of the range (of the service,
    /// or of every service; with a severity, only blocks that hold one that
    /// severe) in the order of their newest event, newest first, until
    /// `limit` events are found and the next block's newest event is older
    /// than all of them: usually one or two blocks. Of each block only the
    /// events that can be in the answer are built ([`NewestEvents`]).
    pub fn recent(&self, q: &RecentQuery) -> Result<Vec<HotEvent>, HotError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let until = q.until_ms.unwrap_or(i64::MAX);
        let min = q.min_severity.filter(|&s| s > Severity::Info);
        // The events of a block lie within one span: a block whose newest
        // event is a span or more past `until` holds none before it.
        let sql = if q.service.is_some() {
            "SELECT service, last_ms, body FROM event_blocks \
             WHERE service = ?5 AND last_ms >= ?1 AND last_ms < ?2 \
             AND first_ms < ?3 AND top >= ?4 ORDER BY last_ms DESC"
        } else {
            "SELECT service, last_ms, body FROM event_blocks \
             WHERE last_ms >= ?1 AND last_ms < ?2 \
             AND first_ms < ?3 AND top >= ?4 ORDER BY last_ms DESC"
        };
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(HotError::sqlite("prepare recent"))?;
        let last_before = until.saturating_add(BLOCK_SPAN_MS);
        let min_rank = min.map_or(0, |m| m.index() as i64);
        let mut rows = match &q.service {
            Some(service) => stmt.query(params![q.since_ms, last_before, until, min_rank, service]),
            None => stmt.query(params![q.since_ms, last_before, until, min_rank]),
        }
        .map_err(HotError::sqlite("query recent"))?;
        let mut newest = NewestEvents::new(q.since_ms, until, min, q.limit);
        while let Some(row) = rows.next().map_err(HotError::sqlite("read block"))? {
            let last_ms: i64 = row.get(1).map_err(HotError::sqlite("read block"))?;
            // This block and every one after it hold only events older than
            // the `limit` found: done.
            if !newest.wants(last_ms) {
                break;
            }
            let service = row
                .get_ref(0)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(HotError::sqlite("read block"))?;
            let body = row
                .get_ref(2)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(HotError::sqlite("read block"))?;
            let events =
                unpack_body_where(body, |times, severities| newest.select(times, severities))?;
            newest.add(service, events);
        }
        Ok(newest.finish())
    }

    /// Alert notices raised in `[since_ms, until_ms)`, newest first.
    pub fn alerts(
        &self,
        since_ms: i64,
        until_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, HotError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, rule, service, state, severity, window_start_ms, window_end_ms, \
                 raised_at_ms, value, threshold, message FROM alerts \
                 WHERE raised_at_ms >= ?1 AND raised_at_ms < ?2 \
                 ORDER BY raised_at_ms DESC, id DESC LIMIT ?3",
            )
            .map_err(HotError::sqlite("prepare alerts"))?;
        let rows = stmt
            .query_map(
                params![since_ms, until_ms.unwrap_or(i64::MAX), self::limit(limit)],
                |r| {
                    Ok((
                        r.get::<_, String>(3)?,
                        AlertRecord {
                            id: r.get(0)?,
                            rule: r.get(1)?,
                            service: r.get(2)?,
                            state: AlertState::Firing,
                            severity: r.get(4)?,
                            window_start_ms: r.get(5)?,
                            window_end_ms: r.get(6)?,
                            raised_at_ms: r.get(7)?,
                            value: r.get(8)?,
                            threshold: r.get(9)?,
                            message: r.get(10)?,
                        },
                    ))
                },
            )
            .map_err(HotError::sqlite("query alerts"))?;
        let mut out = Vec::new();
        for row in rows {
            let (state, mut alert) = row.map_err(HotError::sqlite("read alert"))?;
            alert.state = match state.as_str() {
                "firing" => AlertState::Firing,
                "resolved" => AlertState::Resolved,
                other => {
                    return Err(HotError::Data(format!(
                        "alert {} has unknown state {other:?}",
                        alert.id
                    )));
                }
            };
            out.push(alert);
        }
        Ok(out)
    }

    /// Closed windows starting at or after `since_ms` (of one service, or all),
    /// newest first.
    pub fn windows(
        &self,
        since_ms: i64,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WindowRecord>, HotError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT window_start_ms, window_end_ms, service, events, info, warning, error, \
                 critical, tags FROM windows \
                 WHERE window_start_ms >= ?1 AND (?2 IS NULL OR service = ?2) \
                 ORDER BY window_start_ms DESC, service LIMIT ?3",
            )
            .map_err(HotError::sqlite("prepare windows"))?;
        let rows = stmt
            .query_map(params![since_ms, service, self::limit(limit)], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok((
                    WindowRecord {
                        window_start_ms: r.get(0)?,
                        window_end_ms: r.get(1)?,
                        service: r.get(2)?,
                        events: n(3)?,
                        severity: [n(4)?, n(5)?, n(6)?, n(7)?],
                        tags: BTreeMap::new(),
                    },
                    r.get::<_, String>(8)?,
                ))
            })
            .map_err(HotError::sqlite("query windows"))?;
        let mut out = Vec::new();
        for row in rows {
            let (mut window, tags) = row.map_err(HotError::sqlite("read window"))?;
            window.tags = serde_json::from_str(&tags).map_err(data_error("window tags"))?;
            out.push(window);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::hot::rows::tests::{event, log_batch};
    use crate::sinks::hot::{Expired, HotRows, Retention};

    const T0: i64 = 1_763_892_000_000;

    fn store_with(
        events: &[crate::sinks::hot::rows::tests::TestEvent],
    ) -> (tempfile::TempDir, HotStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("hot.db")).unwrap();
        insert(&store, events);
        (dir, store)
    }

    /// Inserts `events` in one commit.
    fn insert(store: &HotStore, events: &[crate::sinks::hot::rows::tests::TestEvent]) {
        let batch = log_batch(events);
        let rows: Vec<HotRows> = batch
            .parts
            .iter()
            .filter_map(|p| HotRows::select(p, Severity::Info).unwrap())
            .collect();
        store.insert_events(&rows).unwrap();
    }

    fn ids(events: &[HotEvent]) -> Vec<&str> {
        events.iter().map(|e| e.event.event_id.as_str()).collect()
    }

    #[test]
    fn recent_filters_and_orders_newest_first() {
        let (_dir, store) = store_with(&[
            event("a1", T0, "api", Severity::Warning),
            event("a2", T0 + 10, "api", Severity::Error),
            event("a3", T0 + 20, "api", Severity::Critical),
            event("w1", T0 + 15, "web", Severity::Error),
            event("a4", T0 + 30, "api", Severity::Info),
        ]);
        let all = store.recent(&RecentQuery::since(T0)).unwrap();
        assert_eq!(ids(&all), ["a4", "a3", "w1", "a2", "a1"]);

        let api_errors = RecentQuery {
            service: Some("api".into()),
            min_severity: Some(Severity::Error),
            ..RecentQuery::since(T0)
        };
        assert_eq!(ids(&store.recent(&api_errors).unwrap()), ["a3", "a2"]);

        let range = RecentQuery {
            until_ms: Some(T0 + 20),
            ..RecentQuery::since(T0 + 10)
        };
        assert_eq!(ids(&store.recent(&range).unwrap()), ["w1", "a2"]);

        let limited = RecentQuery {
            limit: 2,
            ..RecentQuery::since(0)
        };
        assert_eq!(ids(&store.recent(&limited).unwrap()), ["a4", "a3"]);

        let other = RecentQuery {
            service: Some("db".into()),
            ..RecentQuery::since(0)
        };
        assert!(store.recent(&other).unwrap().is_empty());
    }

    #[test]
    fn events_come_back_whole() {
        let mut e = event("c1", T0 + 123, "api", Severity::Critical);
        e.tags = &["http_5xx"];
        let (_dir, store) = store_with(&[e]);
        let got = store.recent(&RecentQuery::since(0)).unwrap();
        let got = &got[0];
        assert_eq!(got.time, "2025-11-23T10:00:00.123Z");
        assert_eq!(got.service, "api");
        let e = &got.event;
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(e.tags, ["http_5xx"]);
        assert_eq!(e.status, Some(503));
        assert_eq!(e.log_group, None);
        assert_eq!(e.attrs, Some(serde_json::json!({"k": 1})));
        assert_eq!(e.message, "CRITICAL from api");
        let json = serde_json::to_value(got).unwrap();
        assert_eq!(json["severity"], "CRITICAL");
        assert_eq!(json["ts_ms"], T0 + 123);
        assert_eq!(json["time"], "2025-11-23T10:00:00.123Z");
    }

    fn window(start: i64, service: &str, errors: u64) -> WindowRecord {
        WindowRecord {
            window_start_ms: start,
            window_end_ms: start + 300_000,
            service: service.into(),
            events: 10 + errors,
            severity: [10, 0, errors, 0],
            tags: BTreeMap::from([("http_5xx".to_string(), errors)]),
        }
    }

    fn alert(rule: &str, raised_at_ms: i64, state: AlertState) -> AlertRecord {
        AlertRecord {
            id: format!("{rule}:api:{T0}:{}", state.as_str()),
            rule: rule.into(),
            service: "api".into(),
            state,
            severity: "ERROR".into(),
            window_start_ms: T0,
            window_end_ms: T0 + 300_000,
            raised_at_ms,
            value: 12.0,
            threshold: 10.0,
            message: "12 errors in 5 min".into(),
        }
    }

    #[test]
    fn windows_and_alerts_upsert_and_query() {
        use crate::alerts::record::AlertStore;
        let (_dir, store) = store_with(&[]);
        let firing = alert("error_burst", T0 + 1, AlertState::Firing);
        let resolved = alert("error_burst", T0 + 600_000, AlertState::Resolved);
        store
            .record(
                &[
                    window(T0, "api", 3),
                    window(T0, "web", 1),
                    window(T0 + 300_000, "api", 4),
                ],
                std::slice::from_ref(&firing),
            )
            .unwrap();
        // The same window again (late data) and the same alert again: overwrites.
        store
            .record(&[window(T0, "api", 5)], &[firing.clone(), resolved.clone()])
            .unwrap();

        let all = store.windows(0, None, 10).unwrap();
        let keys: Vec<(i64, &str)> = all
            .iter()
            .map(|w| (w.window_start_ms, w.service.as_str()))
            .collect();
        assert_eq!(keys, [(T0 + 300_000, "api"), (T0, "api"), (T0, "web")]);
        assert_eq!(all[1], window(T0, "api", 5));
        let api = store.windows(T0 + 1, Some("api"), 10).unwrap();
        assert_eq!(api, [window(T0 + 300_000, "api", 4)]);
        assert_eq!(store.windows(0, None, 1).unwrap().len(), 1);

        let alerts = store.alerts(T0, None, 10).unwrap();
        assert_eq!(alerts, [resolved.clone(), firing.clone()]);
        assert_eq!(store.alerts(T0, Some(T0 + 2), 10).unwrap(), [firing]);
        assert_eq!(store.alerts(T0, None, 1).unwrap(), [resolved]);
    }

    #[test]
    fn expire_deletes_only_old_rows() {
        let (_dir, store) = store_with(&[
            event("old", T0, "api", Severity::Error),
            event("new", T0 + 3_600_000, "api", Severity::Error),
        ]);
        let store = store.with_retention(Retention {
            events_ms: 3_600_000,
            alerts_ms: 86_400_000,
            from: crate::sinks::hot::RetentionClock::Event,
        });
        store
            .upsert(
                &[window(T0 - 86_400_001, "api", 1), window(T0, "api", 1)],
                &[
                    alert("old", T0 - 86_400_001, AlertState::Firing),
                    alert("new", T0, AlertState::Firing),
                ],
            )
            .unwrap();
        let stats = store.expire(T0 + 3_600_000 + 1).unwrap();
        assert_eq!((stats.events, stats.windows, stats.alerts), (1, 1, 1));
        assert_eq!(ids(&store.recent(&RecentQuery::since(0)).unwrap()), ["new"]);
        assert_eq!(store.windows(0, None, 10).unwrap().len(), 1);
        assert_eq!(store.alerts(0, None, 10).unwrap()[0].rule, "new");
        assert_eq!(store.expire(T0 + 3_600_000 + 1).unwrap().total(), 0);
    }

    #[test]
    fn retention_counts_from_arrival_by_default_and_tallies_what_it_deleted() {
        let hour = 3_600_000;
        // Two events of the same old time: one arrived 10 hours later (a
        // replay), one at once.
        let mut replayed = event("replayed", T0, "api", Severity::Error);
        replayed.ingest_ts = Some(T0 + 10 * hour);
        // Committed apart: retention deletes whole blocks.
        let (_dir, store) = store_with(&[replayed]);
        insert(&store, &[event("live", T0, "api", Severity::Error)]);
        assert_eq!(store.expired().unwrap(), None);
        let by_arrival = store.with_retention(Retention {
            events_ms: 2 * hour,
            alerts_ms: 86_400_000,
            from: crate::sinks::hot::RetentionClock::default(),
        });
        let stats = by_arrival.expire(T0 + 3 * hour).unwrap();
        assert_eq!(stats.events, 1);
        assert_eq!(
            ids(&by_arrival.recent(&RecentQuery::since(0)).unwrap()),
            ["replayed"]
        );
        assert_eq!(
            by_arrival.expired().unwrap(),
            Some(Expired {
                events: 1,
                last_ms: T0 + 3 * hour
            })
        );
        // Nothing more to delete: the tally stays.
        by_arrival.expire(T0 + 4 * hour).unwrap();
        assert_eq!(by_arrival.expired().unwrap().unwrap().events, 1);
        // By event time the replayed event goes too, and the tally grows.
        let by_event = by_arrival.clone().with_retention(Retention {
            from: crate::sinks::hot::RetentionClock::Event,
            ..by_arrival.retention()
        });
        assert_eq!(by_event.expire(T0 + 5 * hour).unwrap().events, 1);
        assert_eq!(
            by_event.expired().unwrap(),
            Some(Expired {
                events: 2,
                last_ms: T0 + 5 * hour
            })
        );
        // A reader sees the tally.
        let reader = HotStore::open_read_only(by_event.path()).unwrap();
        assert_eq!(reader.expired().unwrap().unwrap().events, 2);
    }
}
