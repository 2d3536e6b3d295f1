//! The event model shared by every operator: a columnar batch of log events.
//!
//! Decoders append rows to an [`EventBatch`]; the classifier sets `severity` and
//! `tags`; the lake writer turns the columns into Arrow arrays without copying the
//! string bytes (each [`StrColumn`] is laid out exactly like an Arrow `Utf8` array:
//! one contiguous byte buffer plus `i32` offsets).
//!
//! Columns follow the lake schema in DESIGN.md: `event_id`, `ts`, `ingest_ts`,
//! `service`, `host`, `source`, `log_group`, `log_stream`, `severity`, `tags`,
//! `status`, `client_ip`, `message`, `attrs`.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Severity ladder, weakest first so that `max` picks the strongest.
///
/// DEBUG, TRACE and NOTICE count as [`Severity::Info`].
///
/// ```
/// use spate_operators::event::Severity;
/// assert!(Severity::Critical > Severity::Error);
/// assert_eq!(Severity::Info.max(Severity::Warning), Severity::Warning);
/// assert_eq!(Severity::Error.as_str(), "ERROR");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Severity {
    /// Routine events, and DEBUG/TRACE/NOTICE.
    #[default]
    Info = 0,
    /// WARNING, WARN, deprecated, HTTP 4xx.
    Warning = 1,
    /// ERROR, exceptions, failures, HTTP 5xx.
    Error = 2,
    /// CRITICAL, FATAL, PANIC, EMERGENCY.
    Critical = 3,
}

impl Severity {
    /// All severities, weakest first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The canonical upper-case name stored in the lake.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Index into [`Severity::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `INFO`, `WARNING`, `ERROR`, `CRITICAL`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}; expected INFO, WARNING, ERROR or CRITICAL")]
pub struct UnknownSeverity(pub String);

/// Serialized as its canonical name (`WARNING`); parsed case-insensitively
/// with the same spellings as [`FromStr`].
impl schemars::JsonSchema for Severity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Severity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": ["INFO", "WARNING", "ERROR", "CRITICAL"],
        })
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Parses a canonical name, case-insensitively (for configuration and
    /// queries; log level spellings are `classify::parse_level`'s job).
    ///
    /// ```
    /// use spate_operators::event::Severity;
    /// assert_eq!("warning".parse::<Severity>(), Ok(Severity::Warning));
    /// assert!("warn".parse::<Severity>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSeverity(s.to_string()))
    }
}

/// A column of optional UTF-8 strings in Arrow `Utf8` layout.
///
/// `offsets` always holds `len + 1` entries; a null row has an empty slice and a
/// `false` validity bit.
///
/// ```
/// use spate_operators::event::StrColumn;
/// let mut c = StrColumn::default();
/// c.push("a");
/// c.push_null();
/// c.push("bc");
/// assert_eq!(c.len(), 3);
/// assert_eq!(c.get(2), Some("bc"));
/// assert_eq!(c.get(1), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StrColumn {
    /// Concatenated UTF-8 bytes of every row.
    pub data: Vec<u8>,
    /// Start offset of each row, plus the end of the last one.
    pub offsets: Vec<i32>,
    /// Validity per row; `None` means no row is null.
    pub validity: Option<Vec<bool>>,
}

impl Default for StrColumn {
    fn default() -> Self {
        StrColumn {
            data: Vec::new(),
            offsets: vec![0],
            validity: None,
        }
    }
}

impl StrColumn {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a non-null value.
    #[inline]
    pub fn push(&mut self, value: &str) {
        self.data.extend_from_slice(value.as_bytes());
        self.offsets.push(self.data.len() as i32);
        if let Some(v) = self.validity.as_mut() {
            v.push(true);
        }
    }

    /// Appends a value given as bytes the caller has already checked to be UTF-8.
    ///
    /// Callers must only pass valid UTF-8; the lake writer relies on it.
    #[inline]
    pub fn push_utf8_bytes(&mut self, value: &[u8]) {
        debug_assert!(std::str::from_utf8(value).is_ok());
        self.data.extend_from_slice(value);
        self.offsets.push(self.data.len() as i32);
        if let Some(v) = self.validity.as_mut() {
            v.push(true);
        }
    }

    /// Appends `Some(value)` or a null.
    #[inline]
    pub fn push_opt(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.push(v),
            None => self.push_null(),
        }
    }

    /// Appends a null row.
    #[inline]
    pub fn push_null(&mut self) {
        let len = self.len();
        let validity = self.validity.get_or_insert_with(|| vec![true; len]);
        validity.push(false);
        self.offsets.push(self.data.len() as i32);
    }

    /// The value of row `i`, `None` when null or out of range.
    pub fn get(&self, i: usize) -> Option<&str> {
        // Only valid UTF-8 is ever pushed.
        std::str::from_utf8(self.get_bytes(i)?).ok()
    }

    /// The bytes of row `i`, `None` when null or out of range (or when the
    /// offsets do not fit the data: never a panic).
    ///
    /// ```
    /// use spate_operators::event::StrColumn;
    /// let mut c = StrColumn::default();
    /// c.push("ab");
    /// c.push_null();
    /// assert_eq!(c.get_bytes(0), Some(&b"ab"[..]));
    /// assert_eq!((c.get_bytes(1), c.get_bytes(2)), (None, None));
    /// ```
    #[inline]
    pub fn get_bytes(&self, i: usize) -> Option<&[u8]> {
        if self
            .validity
            .as_ref()
            .is_some_and(|v| v.get(i) != Some(&true))
        {
            return None;
        }
        let (start, end) = (*self.offsets.get(i)?, *self.offsets.get(i + 1)?);
        self.data.get(start as usize..end as usize)
    }

    /// Removes every row, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.offsets.clear();
        self.offsets.push(0);
        self.validity = None;
    }
}

/// A batch of decoded, classified log events in columnar form.
///
/// Every column has exactly [`EventBatch::len`] rows. `tags` holds, per row, a bit
/// set of indexes into [`EventBatch::tag_names`] (so up to 64 distinct tags per
/// batch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventBatch {
    /// Stable id from the source position (`<source>:<position>` or similar), so a
    /// redelivered event keeps its id.
    pub event_id: StrColumn,
    /// Event time, UTC milliseconds since the epoch.
    pub ts: Vec<i64>,
    /// Time Spate received the event, UTC milliseconds since the epoch.
    pub ingest_ts: Vec<i64>,
    /// Service (application) name; never null (`"unknown"` when absent).
    pub service: StrColumn,
    /// Host name or address, nullable.
    pub host: StrColumn,
    /// Where the event came from (`file:/var/log/x.log`, `http`, `sqs:queue`, ...).
    pub source: StrColumn,
    /// CloudWatch Logs group, nullable.
    pub log_group: StrColumn,
    /// CloudWatch Logs stream, nullable.
    pub log_stream: StrColumn,
    /// Severity per row.
    pub severity: Vec<Severity>,
    /// Tag bit set per row, indexes into `tag_names`.
    pub tags: Vec<u64>,
    /// Names of the tags used by `tags`.
    pub tag_names: Vec<String>,
    /// HTTP status, 0 when absent (stored as null in the lake).
    pub status: Vec<u16>,
    /// Client IP address, nullable.
    pub client_ip: StrColumn,
    /// The log message.
    pub message: StrColumn,
    /// Remaining fields as a JSON object text, nullable.
    pub attrs: StrColumn,
}

impl EventBatch {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Index of tag `name` in `tag_names`, adding it when new; `None` past 64 tags.
    pub fn tag_index(&mut self, name: &str) -> Option<u32> {
        if let Some(i) = self.tag_names.iter().position(|t| t == name) {
            return Some(i as u32);
        }
        if self.tag_names.len() >= 64 {
            return None;
        }
        self.tag_names.push(name.to_string());
        Some((self.tag_names.len() - 1) as u32)
    }

    /// The tag names set on row `i`.
    pub fn row_tags(&self, i: usize) -> impl Iterator<Item = &str> + '_ {
        let bits = self.tags[i];
        self.tag_names
            .iter()
            .enumerate()
            .filter(move |(b, _)| bits & (1u64 << b) != 0)
            .map(|(_, n)| n.as_str())
    }

    /// Every string column, in schema order.
    pub fn str_columns(&self) -> [&StrColumn; 9] {
        [
            &self.event_id,
            &self.service,
            &self.host,
            &self.source,
            &self.log_group,
            &self.log_stream,
            &self.client_ip,
            &self.message,
            &self.attrs,
        ]
    }

    /// Every string column, mutably, in schema order.
    pub fn str_columns_mut(&mut self) -> [&mut StrColumn; 9] {
        [
            &mut self.event_id,
            &mut self.service,
            &mut self.host,
            &mut self.source,
            &mut self.log_group,
            &mut self.log_stream,
            &mut self.client_ip,
            &mut self.message,
            &mut self.attrs,
        ]
    }
}

/// The wall clock in UTC milliseconds: the `ingest_ts` of events read now.
///
/// Timing (rolling, backoff, latency) uses tokio's clock instead; this is only
/// for timestamps that end up in data and file names.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
