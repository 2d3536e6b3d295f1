//! The `audit` table: the web console's audit trail (see
//! `crate::console::audit`), read when a query names it. Only admins and
//! holders of the bearer token see it ([`super::QueryRequest::audit`]).
//!
//! Columns: `ts` (timestamp, ms, UTC), `actor` (the user, `token`, `-`
//! for an unknown caller, `cli:<login>` for `spate user`), `client` (the
//! address), `action` (`signin`, `signout`, `query`, `admin_page`,
//! `user_add`, ...), `outcome` (`ok`, `denied`, `error`) and `detail` (the
//! SQL text, the user name tried, the reason).

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use serde::Serialize;
use spate_operators::sinks::lake::schema::UTC;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When, UTC milliseconds.
    pub ts_ms: i64,
    /// Who: the user name, `token` for the bearer token, `-` when unknown
    /// (a failed sign-in names the name tried in `detail`), `cli:<login>`.
    pub actor: String,
    /// From where: the client address (and `X-Forwarded-For`, if sent).
    pub client: String,
    /// What: `signin`, `signout`, `query`, `admin_page`, `user_add`, ...
    pub action: String,
    /// `ok`, `denied`, or `error`.
    pub outcome: String,
    /// The rest: the SQL text, the user name tried, the reason.
    pub detail: String,
}

/// Where the `audit` table gets its rows; called from a blocking thread,
/// once per query that names the table.
pub trait AuditSource: Send + Sync + 'static {
    /// Every record, any order.
    fn audit_rows(&self) -> Result<Vec<AuditRecord>, String>;
}

/// Schema of the `audit` table.
pub fn audit_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let ts = DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()));
            Arc::new(Schema::new(vec![
                Field::new("ts", ts, false),
                Field::new("actor", DataType::Utf8, false),
                Field::new("client", DataType::Utf8, false),
                Field::new("action", DataType::Utf8, false),
                Field::new("outcome", DataType::Utf8, false),
                Field::new("detail", DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// Records as one batch of [`audit_schema`].
pub fn audit_batch(records: &[AuditRecord]) -> Result<RecordBatch, ArrowError> {
    let strings = |f: fn(&AuditRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(records.iter().map(|r| r.ts_ms))
                .with_timezone(UTC),
        ),
        strings(|r| &r.actor),
        strings(|r| &r.client),
        strings(|r| &r.action),
        strings(|r| &r.outcome),
        strings(|r| &r.detail),
    ];
    RecordBatch::try_new(audit_schema(), columns)
}
