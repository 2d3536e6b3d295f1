//! `GET /ui/audit` (admins only): the audit trail, newest first, and the
//! users. A viewer gets 403, and the refusal is itself audited.

use std::sync::Arc;

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;

use super::guard::{admin_only, signed_in};
use super::layout::{esc, ok, table, time};
use crate::console::{Console, client_of};

/// Records shown at most.
const AUDIT_LIMIT: usize = 1_000;

/// `GET /ui/audit`.
pub async fn audit_page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let client = client_of(&parts);
    let session = match admin_only(&console, &parts) {
        Ok(s) => s,
        Err(refusal) => {
            if let Ok(viewer) = signed_in(&console, &parts) {
                console
                    .audit(&viewer.user, &client, "admin_page", "denied", "/ui/audit")
                    .await;
            }
            return *refusal;
        }
    };
    let read = console
        .with_store(|store| {
            let records = store.audit_records(None, AUDIT_LIMIT)?;
            let users = store.users()?;
            Ok::<_, crate::console::store::StoreError>((records, users))
        })
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    console
        .audit(&session.user, &client, "admin_page", "ok", "/ui/audit")
        .await;
    let (records, users) = match read {
        Ok(r) => r,
        Err(e) => {
            let main = format!(
                r#"<h1>Audit</h1><p class="error" role="alert">{}</p>"#,
                esc(&e)
            );
            return ok("Audit", &session, &main);
        }
    };
    let rows: Vec<Vec<String>> = records
        .into_iter()
        .map(|r| {
            vec![
                time(r.ts_ms),
                r.actor,
                r.client,
                r.action,
                r.outcome,
                r.detail,
            ]
        })
        .collect();
    let users: Vec<Vec<String>> = users
        .into_iter()
        .map(|(name, role, created)| vec![name, role.as_str().to_string(), time(created)])
        .collect();
    let main = format!(
        "<h1>Audit</h1>{}<h2>Users</h2>{}<p>Add or change a user with <code>spate user add NAME --role viewer|admin</code>.</p>",
        table(
            "audit",
            "Newest first",
            &["time (UTC)", "who", "from", "action", "outcome", "what"],
            &rows
        ),
        table(
            "users",
            "Local users",
            &["name", "role", "added (UTC)"],
            &users
        ),
    );
    ok("Audit", &session, &main)
}
