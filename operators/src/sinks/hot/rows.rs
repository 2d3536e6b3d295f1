//! Picking the hot rows out of a [`LogBatch`](crate::log_batch::LogBatch) part,
//! and reading them column by column without copying.
//!
//! Rows stay in the lake's Arrow record batches
//! ([`logs_file_schema`](crate::sinks::lake::schema::logs_file_schema)) from
//! the decoder to the insert: selection gathers the hot rows of a batch's
//! parts into one batch (or shares a part whole when every row is hot), and
//! the insert binds the Arrow strings directly.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType};
use arrow_array::{
    Array, Int32Array, ListArray, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_select::interleave::interleave_record_batch;

use super::HotError;
use crate::event::Severity;
use crate::log_batch::{LakePart, LogBatch};

/// Hot rows of one service, in the lake's file schema.
#[derive(Debug, Clone)]
pub struct HotRows {
    /// The service of every row (a partition column, so not in `records`).
    pub service: Arc<str>,
    /// The rows.
    pub records: RecordBatch,
}

impl HotRows {
    /// The hot rows of every part of `batch` (parts with none are left out),
    /// in part order.
    ///
    /// The hot rows of all parts are gathered into one record batch (one
    /// copy of each column, however many partitions the batch has) and each
    /// part's rows are a slice of it; a part whose rows are all hot is
    /// shared as it is.
    pub fn select_all(batch: &LogBatch, min: Severity) -> Result<Vec<HotRows>, HotError> {
        // Each part with hot rows: whole, or the number of its rows in
        // `picks` (every hot row of such parts as (part, row)).
        if min == Severity::Info {
            return Ok(batch
                .parts
                .iter()
                .filter(|part| part.records.num_rows() > 0)
                .map(HotRows::whole)
                .collect());
        }
        let mut hot: Vec<(usize, Option<usize>)> = Vec::new();
        let mut picks: Vec<(usize, usize)> = Vec::new();
        for (p, part) in batch.parts.iter().enumerate() {
            let before = picks.len();
            push_hot_rows(part, p, min, &mut picks)?;
            let n = picks.len() - before;
            if n == part.records.num_rows() && n > 0 {
                picks.truncate(before);
                hot.push((p, None));
            } else if n > 0 {
                hot.push((p, Some(n)));
            }
        }
        let gathered = if picks.is_empty() {
            None
        } else {
            let sources: Vec<&RecordBatch> = batch.parts.iter().map(|p| &p.records).collect();
            Some(
                interleave_record_batch(&sources, &picks)
                    .map_err(|e| HotError::Data(format!("gather hot rows: {e}")))?,
            )
        };
        let mut offset = 0;
        Ok(hot
            .into_iter()
            // A part counted in `picks` has its rows in `gathered`, which
            // exists whenever `picks` is not empty.
            .map(|(p, n)| match n.zip(gathered.as_ref()) {
                Some((n, gathered)) => {
                    let records = gathered.slice(offset, n);
                    offset += n;
                    HotRows {
                        service: batch.parts[p].key.service.clone(),
                        records,
                    }
                }
                None => HotRows::whole(&batch.parts[p]),
            })
            .collect())
    }

    /// All the rows of `part`.
    fn whole(part: &LakePart) -> HotRows {
        HotRows {
            service: part.key.service.clone(),
            records: part.records.clone(),
        }
    }

    /// The rows of `part` at or above `min`; `None` when there are none.
    pub fn select(part: &LakePart, min: Severity) -> Result<Option<HotRows>, HotError> {
        if min == Severity::Info {
            return Ok((part.records.num_rows() > 0).then(|| HotRows::whole(part)));
        }
        let mut picks = Vec::new();
        push_hot_rows(part, 0, min, &mut picks)?;
        if picks.is_empty() {
            return Ok(None);
        }
        if picks.len() == part.records.num_rows() {
            return Ok(Some(HotRows::whole(part)));
        }
        let records = interleave_record_batch(&[&part.records], &picks)
            .map_err(|e| HotError::Data(format!("gather hot rows: {e}")))?;
        Ok(Some(HotRows {
            service: part.key.service.clone(),
            records,
        }))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.records.num_rows()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Pushes `(p, row)` for every row of `part` (the `p`th part) at or above
/// `min` (above `INFO`: at `INFO` every row is hot, and the callers share
/// the part whole without reading its severities).
fn push_hot_rows(
    part: &LakePart,
    p: usize,
    min: Severity,
    picks: &mut Vec<(usize, usize)>,
) -> Result<(), HotError> {
    let rows = part.records.num_rows();
    if rows == 0 {
        return Ok(());
    }
    let severity = string_column(&part.records, "severity")?;
    for i in 0..rows {
        if parse_severity(severity.value(i))? >= min {
            picks.push((p, i));
        }
    }
    Ok(())
}

/// The columns of a lake record batch, typed, for reading row by row.
pub(crate) struct EventColumns<'a> {
    pub event_id: &'a StringArray,
    pub ts: &'a TimestampMillisecondArray,
    pub ingest_ts: &'a TimestampMillisecondArray,
    pub host: &'a StringArray,
    pub source: &'a StringArray,
    pub log_group: &'a StringArray,
    pub log_stream: &'a StringArray,
    pub severity: &'a StringArray,
    tags: &'a ListArray,
    tag_values: &'a StringArray,
    pub status: &'a Int32Array,
    pub client_ip: &'a StringArray,
    pub message: &'a StringArray,
    pub attrs: &'a StringArray,
}

impl<'a> EventColumns<'a> {
    /// Finds and type-checks every column.
    pub fn of(records: &'a RecordBatch) -> Result<Self, HotError> {
        let tags = records
            .column_by_name("tags")
            .and_then(|c| c.as_list_opt::<i32>())
            .ok_or_else(|| missing("tags"))?;
        let tag_values = tags
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| missing("tags.item"))?;
        Ok(EventColumns {
            event_id: string_column(records, "event_id")?,
            ts: records
                .column_by_name("ts")
                .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
                .ok_or_else(|| missing("ts"))?,
            ingest_ts: records
                .column_by_name("ingest_ts")
                .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
                .ok_or_else(|| missing("ingest_ts"))?,
            host: string_column(records, "host")?,
            source: string_column(records, "source")?,
            log_group: string_column(records, "log_group")?,
            log_stream: string_column(records, "log_stream")?,
            severity: string_column(records, "severity")?,
            tags,
            tag_values,
            status: records
                .column_by_name("status")
                .and_then(|c| c.as_primitive_opt::<Int32Type>())
                .ok_or_else(|| missing("status"))?,
            client_ip: string_column(records, "client_ip")?,
            message: string_column(records, "message")?,
            attrs: string_column(records, "attrs")?,
        })
    }

    /// Row `i`'s tags, borrowed.
    pub fn tags(&self, i: usize) -> Vec<&'a str> {
        if !self.tags.is_valid(i) {
            return Vec::new();
        }
        let offsets = self.tags.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        let values: &'a StringArray = self.tag_values;
        (start..end).map(|j| values.value(j)).collect()
    }
}

/// Value of a nullable string column at `i`.
pub(crate) fn opt_str(column: &StringArray, i: usize) -> Option<&str> {
    column.is_valid(i).then(|| column.value(i))
}

fn string_column<'a>(records: &'a RecordBatch, name: &str) -> Result<&'a StringArray, HotError> {
    records
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| missing(name))
}

fn missing(name: &str) -> HotError {
    HotError::Data(format!(
        "rows lack the lake column {name} (or it has another type)"
    ))
}

fn parse_severity(name: &str) -> Result<Severity, HotError> {
    name.parse()
        .map_err(|e| HotError::Data(format!("severity column: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::DecodeStats;
    use crate::event::EventBatch;
    use crate::log_batch::LogBatch;

    /// One event to put in a test batch.
    #[derive(Debug, Clone)]
    pub struct TestEvent {
        pub id: String,
        pub ts: i64,
        pub service: &'static str,
        pub severity: Severity,
        pub tags: &'static [&'static str],
        pub message: String,
        /// When it arrived; its event time + 1 ms unless set.
        pub ingest_ts: Option<i64>,
    }

    /// An event with the given id, time, service and severity.
    pub fn event(id: &str, ts: i64, service: &'static str, severity: Severity) -> TestEvent {
        TestEvent {
            id: id.to_string(),
            ts,
            service,
            severity,
            tags: &[],
            message: format!("{} from {service}", severity.as_str()),
            ingest_ts: None,
        }
    }

    /// The decoded batch of `events`.
    pub fn event_batch(events: &[TestEvent]) -> EventBatch {
        let mut b = EventBatch::default();
        for e in events {
            b.event_id.push(&e.id);
            b.ts.push(e.ts);
            b.ingest_ts.push(e.ingest_ts.unwrap_or(e.ts + 1));
            b.service.push(e.service);
            b.host.push("10.0.0.1");
            b.source.push("test");
            b.log_group.push_null();
            b.log_stream.push_null();
            b.severity.push(e.severity);
            let mut bits = 0u64;
            for t in e.tags {
                bits |= 1 << b.tag_index(t).unwrap();
            }
            b.tags.push(bits);
            b.status.push(if e.severity >= Severity::Error {
                503
            } else {
                0
            });
            b.client_ip.push_null();
            b.message.push(&e.message);
            b.attrs
                .push_opt((e.severity == Severity::Critical).then_some(r#"{"k":1}"#));
        }
        b
    }

    /// The log batch of `events`, as the decoder sends it.
    pub fn log_batch(events: &[TestEvent]) -> LogBatch {
        LogBatch::from_events(event_batch(events), Vec::new(), &DecodeStats::default()).unwrap()
    }

    #[test]
    fn selects_rows_at_or_above_min() {
        let batch = log_batch(&[
            event("a", 1_000, "api", Severity::Info),
            event("b", 1_001, "api", Severity::Warning),
            event("c", 1_002, "api", Severity::Critical),
            event("d", 1_003, "web", Severity::Info),
        ]);
        let mut picked = Vec::new();
        for part in &batch.parts {
            if let Some(rows) = HotRows::select(part, Severity::Warning).unwrap() {
                let cols = EventColumns::of(&rows.records).unwrap();
                for i in 0..rows.len() {
                    picked.push((rows.service.to_string(), cols.event_id.value(i).to_string()));
                }
            }
        }
        picked.sort();
        assert_eq!(
            picked,
            [
                ("api".to_string(), "b".to_string()),
                ("api".into(), "c".into())
            ]
        );
        let all: usize = batch
            .parts
            .iter()
            .map(|p| {
                HotRows::select(p, Severity::Info)
                    .unwrap()
                    .map_or(0, |r| r.len())
            })
            .sum();
        assert_eq!(all, 4);
    }

    #[test]
    fn hot_rows_of_all_parts_are_gathered_once_and_sliced_per_part() {
        let mut e = event("a3", 1_003, "api", Severity::Error);
        e.tags = &["http_5xx"];
        let batch = log_batch(&[
            event("a1", 1_000, "api", Severity::Info),
            event("w1", 1_001, "web", Severity::Warning),
            event("a2", 1_002, "api", Severity::Critical),
            event("d1", 1_002, "db", Severity::Info),
            e,
            event("w2", 1_004, "web", Severity::Error),
            event("a4", 1_005, "api", Severity::Info),
        ]);
        assert_eq!(batch.parts.len(), 3);
        let hot = HotRows::select_all(&batch, Severity::Warning).unwrap();
        let picked: Vec<(String, Vec<String>)> = hot
            .iter()
            .map(|rows| {
                let cols = EventColumns::of(&rows.records).unwrap();
                let ids = (0..rows.len())
                    .map(|i| cols.event_id.value(i).to_string())
                    .collect();
                (rows.service.to_string(), ids)
            })
            .collect();
        // In part order, each part's hot rows in their order, db left out.
        let order: Vec<&str> = batch
            .parts
            .iter()
            .map(|p| &*p.key.service)
            .filter(|s| *s != "db")
            .collect();
        let services: Vec<&str> = picked.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(services, order);
        for (service, ids) in &picked {
            let want: &[&str] = if service == "api" {
                &["a2", "a3"]
            } else {
                &["w1", "w2"]
            };
            assert_eq!(ids, want, "{service}");
        }
        // Columns other than the id come along: the tags of a3.
        let api = hot.iter().find(|r| &*r.service == "api").unwrap();
        assert_eq!(
            EventColumns::of(&api.records).unwrap().tags(1),
            ["http_5xx"]
        );
        // web is hot whole: shared, not copied.
        let web = hot.iter().find(|r| &*r.service == "web").unwrap();
        let part = batch
            .parts
            .iter()
            .find(|p| &*p.key.service == "web")
            .unwrap();
        assert_eq!(web.records, part.records);
        assert_eq!(
            web.records.column(0).to_data().buffers()[0].as_ptr(),
            part.records.column(0).to_data().buffers()[0].as_ptr()
        );
        // Everything at INFO: every part whole.
        let all = HotRows::select_all(&batch, Severity::Info).unwrap();
        assert_eq!(all.iter().map(HotRows::len).sum::<usize>(), 7);
        assert!(HotRows::select_all(&batch, Severity::Critical).unwrap()[0].len() == 1);
    }

    #[test]
    fn tags_are_read_per_row() {
        let mut e = event("a", 1_000, "api", Severity::Error);
        e.tags = &["http_5xx", "quote\"d"];
        let batch = log_batch(&[e, event("b", 1_001, "api", Severity::Error)]);
        let rows = HotRows::select(&batch.parts[0], Severity::Warning)
            .unwrap()
            .unwrap();
        let cols = EventColumns::of(&rows.records).unwrap();
        assert_eq!(cols.tags(0), ["http_5xx", "quote\"d"]);
        assert!(cols.tags(1).is_empty());
    }

    #[test]
    fn foreign_columns_are_a_data_error() {
        let batch = RecordBatch::new_empty(Arc::new(arrow_schema::Schema::empty()));
        let err = EventColumns::of(&batch).err().unwrap();
        assert!(matches!(err, HotError::Data(_)), "{err}");
    }
}
