//! The convenience flags of `spate query` (`--since`, `--until`, `--service`,
//! `--severity`, `--grep`) as DataFusion filter expressions over the `logs`
//! table.
//!
//! Time bounds become two kinds of filter: a row filter on `ts`, and filters
//! on the `dt`/`hour` partition columns so that DataFusion skips whole
//! partition directories instead of opening every file and discarding rows.
//! Values are passed as literals, never spliced into SQL text, so a service
//! name or a search string cannot change the query.

use std::time::Duration;

use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use datafusion::functions::expr_fn::{contains, lower};
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::scalar::ScalarValue;
use spate_operators::event::Severity;
use spate_operators::sinks::lake::partition::PartitionKey;
use spate_operators::sinks::lake::schema::UTC;

/// A point in time given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    /// That long before now (`15m`, `1h`, `2d`, `1h30m`).
    Ago(Duration),
    /// An absolute instant, UTC milliseconds (from RFC 3339 text).
    At(i64),
}

impl TimeBound {
    /// Parses a duration ago (`90s`, `15m`, `1h`, `2d`, `1w`, or sums such as
    /// `1h30m`) or an RFC 3339 timestamp (`2026-11-23T10:00:00Z`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(duration) = parse_duration(text) {
            return Ok(TimeBound::Ago(duration));
        }
        string_to_timestamp_nanos(text)
            .map(|nanos| TimeBound::At(nanos.div_euclid(1_000_000)))
            .map_err(|_| {
                format!(
                    "`{text}` is neither a duration (15m, 1h, 2d, 1h30m) nor an RFC 3339 time \
                     (2026-11-23T10:00:00Z)"
                )
            })
    }

    /// The instant in UTC milliseconds, given the current time.
    pub fn resolve(self, now_ms: i64) -> i64 {
        match self {
            TimeBound::Ago(d) => now_ms.saturating_sub(d.as_millis().min(i64::MAX as u128) as i64),
            TimeBound::At(ms) => ms,
        }
    }
}

/// Parses `90s`, `15m`, `1h`, `2d`, `1w` and sums like `1h30m`; `None` if the
/// text is not such a duration.
fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() {
        return None; // a number without a unit
    }
    Some(Duration::from_secs(total))
}

/// Parses a severity name (any case; `WARN`, `ERR`, `CRIT`, `FATAL` too).
pub fn parse_severity(text: &str) -> Result<Severity, String> {
    match text.trim().to_ascii_uppercase().as_str() {
        "INFO" | "DEBUG" | "TRACE" => Ok(Severity::Info),
        "WARNING" | "WARN" => Ok(Severity::Warning),
        "ERROR" | "ERR" => Ok(Severity::Error),
        "CRITICAL" | "CRIT" | "FATAL" => Ok(Severity::Critical),
        _ => Err(format!(
            "unknown severity `{text}` (INFO, WARNING, ERROR or CRITICAL)"
        )),
    }
}

/// The convenience filters, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// Rows at or after this time.
    pub since: Option<TimeBound>,
    /// Rows before this time.
    pub until: Option<TimeBound>,
    /// Rows of this service only.
    pub service: Option<String>,
    /// Rows at or above this severity.
    pub severity: Option<Severity>,
    /// Rows whose message contains this text, ignoring case.
    pub grep: Option<String>,
}

impl LogFilter {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        *self == LogFilter::default()
    }

    /// The filter expressions over `logs`, time bounds resolved against
    /// `now_ms`. Their conjunction selects the rows; the `dt`/`hour` ones only
    /// prune partitions (they never exclude a row the `ts` bounds keep).
    pub fn exprs(&self, now_ms: i64) -> Vec<Expr> {
        let mut exprs = Vec::new();
        if let Some(since) = self.since {
            let since_ms = since.resolve(now_ms);
            exprs.push(col("ts").gt_eq(ts_literal(since_ms)));
            let (dt, hour) = partition_of(since_ms);
            exprs.push(col("dt").gt_eq(lit(dt.clone())));
            exprs.push(col("dt").gt(lit(dt)).or(col("hour").gt_eq(lit(hour))));
        }
        if let Some(until) = self.until {
            let until_ms = until.resolve(now_ms);
            exprs.push(col("ts").lt(ts_literal(until_ms)));
            // The last partition that can hold a row before `until_ms`.
            let (dt, hour) = partition_of(until_ms.saturating_sub(1));
            exprs.push(col("dt").lt_eq(lit(dt.clone())));
            exprs.push(col("dt").lt(lit(dt)).or(col("hour").lt_eq(lit(hour))));
        }
        if let Some(service) = &self.service {
            exprs.push(col("service").eq(lit(service.clone())));
        }
        if let Some(severity) = self.severity {
            let names: Vec<Expr> = Severity::ALL
                .iter()
                .filter(|s| **s >= severity)
                .map(|s| lit(s.as_str()))
                .collect();
            exprs.push(col("severity").in_list(names, false));
        }
        if let Some(text) = &self.grep {
            exprs.push(contains(lower(col("message")), lit(text.to_lowercase())));
        }
        exprs
    }
}

/// A `ts` literal: timestamp in milliseconds, UTC, the column's own type.
fn ts_literal(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(
        Some(ms),
        Some(UTC.into()),
    ))
}

/// The `dt` (`YYYY-MM-DD`) and `hour` (`HH`) partition values of an instant,
/// as the lake writes them.
pub fn partition_of(ms: i64) -> (String, String) {
    let key = PartitionKey::of(ms, "");
    let hour = (key.hour_start_ms.rem_euclid(86_400_000)) / 3_600_000;
    (key.date(), format!("{hour:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    /// 2026-11-23T10:00:00Z.
    const T0: i64 = 1_795_428_000_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(
            TimeBound::parse("1h").unwrap(),
            TimeBound::Ago(Duration::from_secs(3_600))
        );
        assert_eq!(
            TimeBound::parse("1h30m").unwrap(),
            TimeBound::Ago(Duration::from_secs(5_400))
        );
        assert_eq!(
            TimeBound::parse("2d").unwrap(),
            TimeBound::Ago(Duration::from_secs(172_800))
        );
        assert_eq!(
            TimeBound::parse("45s").unwrap(),
            TimeBound::Ago(Duration::from_secs(45))
        );
        assert_eq!(
            TimeBound::parse("2026-11-23T10:00:00Z").unwrap(),
            TimeBound::At(T0)
        );
        assert_eq!(
            TimeBound::parse("2026-11-23T11:00:00+01:00").unwrap(),
            TimeBound::At(T0)
        );
        for bad in ["", "1", "h", "1x", "yesterday", "99999999999999999999w"] {
            assert!(TimeBound::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TimeBound::Ago(Duration::from_secs(60)).resolve(T0),
            T0 - 60_000
        );
        assert_eq!(TimeBound::At(5).resolve(T0), 5);
    }

    #[test]
    fn severities_parse_in_any_case() {
        assert_eq!(parse_severity("warn").unwrap(), Severity::Warning);
        assert_eq!(parse_severity("Error").unwrap(), Severity::Error);
        assert_eq!(parse_severity("FATAL").unwrap(), Severity::Critical);
        assert!(parse_severity("loud").unwrap_err().contains("loud"));
    }

    #[test]
    fn partition_values_match_the_lake_layout() {
        assert_eq!(partition_of(T0), ("2026-11-23".into(), "10".into()));
        assert_eq!(
            partition_of(T0 + 14 * HOUR),
            ("2026-11-24".into(), "00".into())
        );
    }

    #[test]
    fn time_bounds_filter_partitions_as_well_as_rows() {
        let filter = LogFilter {
            since: Some(TimeBound::Ago(Duration::from_secs(3_600))),
            until: Some(TimeBound::At(T0 + 3 * HOUR)),
            ..LogFilter::default()
        };
        let text: Vec<String> = filter
            .exprs(T0 + 2 * HOUR)
            .iter()
            .map(|e| e.to_string())
            .collect();
        let joined = text.join(" AND ");
        // since = 11:00 on 2026-11-23, until = 13:00 (last partition hour 12).
        assert!(joined.contains("dt >= Utf8(\"2026-11-23\")"), "{joined}");
        assert!(joined.contains("hour >= Utf8(\"11\")"), "{joined}");
        assert!(joined.contains("dt <= Utf8(\"2026-11-23\")"), "{joined}");
        assert!(joined.contains("hour <= Utf8(\"12\")"), "{joined}");
        assert!(joined.contains("ts >= TimestampMillisecond"), "{joined}");
        assert!(LogFilter::default().exprs(T0).is_empty());
        assert!(LogFilter::default().is_empty() && !filter.is_empty());
    }

    /// Rows of a small logs-like table: (ts, dt, hour, service, severity, message).
    fn sample() -> RecordBatch {
        let rows: [(i64, &str, &str, &str); 5] = [
            (T0 - 30 * 60_000, "api", "INFO", "GET / ok"),
            (T0 + 5 * 60_000, "api", "ERROR", "Upstream TIMEOUT"),
            (T0 + HOUR + 60_000, "web", "WARNING", "slow timeout"),
            (T0 + 2 * HOUR, "api", "CRITICAL", "disk full"),
            (T0 + 23 * HOUR, "web", "INFO", "100% done_"),
        ];
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", ts, false),
            Field::new("dt", DataType::Utf8, false),
            Field::new("hour", DataType::Utf8, false),
            Field::new("service", DataType::Utf8, false),
            Field::new("severity", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
        ]));
        let part: Vec<(String, String)> = rows.iter().map(|r| partition_of(r.0)).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMillisecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                    .with_timezone(UTC),
            ),
            Arc::new(StringArray::from_iter_values(part.iter().map(|p| &p.0))),
            Arc::new(StringArray::from_iter_values(part.iter().map(|p| &p.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    async fn messages(filter: LogFilter, now_ms: i64) -> Vec<String> {
        let ctx = SessionContext::new();
        let mut df = ctx.read_batch(sample()).unwrap();
        for e in filter.exprs(now_ms) {
            df = df.filter(e).unwrap();
        }
        let batches = df
            .select_columns(&["message"])
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut out = Vec::new();
        for b in batches {
            let a = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            out.extend(a.iter().map(|s| s.unwrap().to_string()));
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn filters_select_the_expected_rows() {
        let since = LogFilter {
            since: Some(TimeBound::Ago(Duration::from_secs(3_600))),
            ..LogFilter::default()
        };
        // Now = 11:05: the last hour starts at 10:05 (inclusive), inside
        // partition hour 10; 09:30 is out, later rows are in.
        assert_eq!(
            messages(since, T0 + HOUR + 5 * 60_000).await,
            [
                "100% done_",
                "Upstream TIMEOUT",
                "disk full",
                "slow timeout"
            ]
        );
        let until = LogFilter {
            until: Some(TimeBound::At(T0 + 2 * HOUR)),
            ..LogFilter::default()
        };
        assert_eq!(
            messages(until, T0).await,
            ["GET / ok", "Upstream TIMEOUT", "slow timeout"]
        );
        let service_and_severity = LogFilter {
            service: Some("api".into()),
            severity: Some(Severity::Error),
            ..LogFilter::default()
        };
        assert_eq!(
            messages(service_and_severity, T0).await,
            ["Upstream TIMEOUT", "disk full"]
        );
        let grep = LogFilter {
            grep: Some("TimeOut".into()),
            ..LogFilter::default()
        };
        assert_eq!(
            messages(grep, T0).await,
            ["Upstream TIMEOUT", "slow timeout"]
        );
        // LIKE wildcards in the search text are plain characters.
        let wildcards = LogFilter {
            grep: Some("0% DONE_".into()),
            ..LogFilter::default()
        };
        assert_eq!(messages(wildcards, T0).await, ["100% done_"]);
    }
}
