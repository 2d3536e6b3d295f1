//! `GET /ui`: the landing page: recent ERROR and CRITICAL events from the
//! hot store (newest first), and the way to search and to the alerts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;
use spate_operators::event::{Severity, wall_clock_ms};
use spate_operators::sinks::hot::{HotStore, RecentQuery};

use super::guard::signed_in;
use super::layout::{esc, ok, table, time};
use crate::console::Console;

/// Events shown at most.
const RECENT_LIMIT: usize = 50;
/// How far back.
const RECENT_MS: i64 = 24 * 3_600_000;

/// `GET /ui`.
pub async fn page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let session = match signed_in(&console, &parts) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let recent = match console.hot_path.clone() {
        Some(path) => tokio::task::spawn_blocking(move || recent_errors(&path))
            .await
            .unwrap_or_else(|e| Err(format!("hot store reader: {e}"))),
        None => Err("the hot store is in DynamoDB: search with severity ERROR instead".into()),
    };
    let recent = match recent {
        Ok(rows) if rows.is_empty() => {
            r#"<p id="recent-errors-empty">No ERROR or CRITICAL events in the last 24 hours.</p>"#
                .to_string()
        }
        Ok(rows) => table(
            "recent-errors",
            "Newest first, last 24 hours",
            &["time (UTC)", "severity", "service", "host", "message"],
            &rows,
        ),
        Err(e) => format!(r#"<p class="error" role="alert">{}</p>"#, esc(&e)),
    };
    let main = format!(
        r#"<h1>Recent errors</h1>
<p><a href="/ui/search?range=1h&amp;severity=ERROR">Search the last hour's errors</a> · <a href="/ui/alerts">Alerts</a></p>
{recent}"#
    );
    ok("Recent errors", &session, &main)
}

/// ERROR and CRITICAL events of the last day in the hot store at `path`
/// (none when it does not exist yet).
fn recent_errors(path: &std::path::Path) -> Result<Vec<Vec<String>>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let store = HotStore::open_read_only(path).map_err(|e| e.to_string())?;
    let events = store
        .recent(&RecentQuery {
            service: None,
            min_severity: Some(Severity::Error),
            since_ms: wall_clock_ms() - RECENT_MS,
            until_ms: None,
            limit: RECENT_LIMIT,
        })
        .map_err(|e| e.to_string())?;
    Ok(events
        .into_iter()
        .map(|e| {
            vec![
                time(e.event.ts_ms),
                e.event.severity.as_str().to_string(),
                e.service,
                e.event.host.unwrap_or_default(),
                e.event.message,
            ]
        })
        .collect())
}
