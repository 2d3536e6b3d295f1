//! The web console of `spate run`, served at `/ui`: sign-in with local
//! users, search (time range, service and severity filters, free text or
//! SQL, a histogram stacked by severity above the rows), alerts (firing
//! and resolved, the window counts behind each, the rules in force), alert
//! subscriptions (webhooks, see [`subscriptions`]), and, for admins, the
//! audit trail and the users. Server-rendered HTML with
//! the stylesheet and a few lines of script embedded in the binary.
//!
//! Users live in `<data-dir>/console.db` (added with `spate user add`),
//! passwords hashed with Argon2id ([`auth`]). Signing in opens a server-side
//! session ([`session`]) named by a random 256-bit cookie (`HttpOnly`,
//! `SameSite=Strict`, `Path=/`); every state-changing request carries the
//! session's CSRF token. Everything a person does is audited ([`audit`]).
//!
//! Once a user exists, the read APIs (`POST /v1/query`, `GET /v1/tap`)
//! want the bearer token or a session (see `crate::run::http`).

pub mod audit;
pub mod auth;
pub mod config;
pub mod oidc;
mod pages;
pub mod retention;
pub mod session;
pub mod sns_subscriptions;
pub mod store;
pub mod subscriptions;
pub mod throttle;
pub mod user_cli;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use spate_operators::alerts::rules::Rule;
use spate_operators::event::wall_clock_ms;

use self::audit::AuditRecord;
pub use self::pages::router;
use self::session::{Session, SessionTable};
use self::store::ConsoleStore;
use crate::query::executor::{QueryConfig, QueryExecutor};
use crate::query::{QueryContext, QueryError, QueryOutput, QueryRequest};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "spate_session";
/// Name of the CSRF header API clients signed in with a session send.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the console pages share.
pub struct Console {
    store: Arc<ConsoleStore>,
    sessions: SessionTable,
    throttle: throttle::SignInThrottle,
    query: Arc<QueryContext>,
    executor: QueryExecutor,
    query_config: QueryConfig,
    /// The embedded hot store (recent errors on the landing page); `None`
    /// with `[hot_dynamodb]`.
    hot_path: Option<PathBuf>,
    rules: Vec<Rule>,
    /// Sign-in through an OIDC issuer, if configured.
    oidc: Option<Arc<oidc::Verifier>>,
    /// Email and SMS subscriptions on the alert topic, with `[alerts.sns]`.
    sns: Option<Arc<sns_subscriptions::SnsSubscriber>>,
}

impl Console {
    /// The console over `store`, running its queries on `executor` within
    /// the limits of `query_config`.
    pub fn new(
        store: Arc<ConsoleStore>,
        query: Arc<QueryContext>,
        executor: QueryExecutor,
        query_config: &QueryConfig,
        hot_path: Option<PathBuf>,
        rules: Vec<Rule>,
    ) -> Self {
        Console {
            store,
            sessions: SessionTable::default(),
            throttle: throttle::SignInThrottle::default(),
            query,
            executor,
            query_config: query_config.clone(),
            hot_path,
            rules,
            oidc: None,
            sns: None,
        }
    }

    /// The console with email and SMS subscriptions through `subscriber`.
    pub fn with_sns(mut self, subscriber: sns_subscriptions::SnsSubscriber) -> Self {
        self.sns = Some(Arc::new(subscriber));
        self
    }

    /// The SNS subscriber, with `[alerts.sns]`.
    pub fn sns(&self) -> Option<Arc<sns_subscriptions::SnsSubscriber>> {
        self.sns.clone()
    }

    /// The console with sign-in through `verifier`'s issuer too.
    pub fn with_oidc(mut self, verifier: oidc::Verifier) -> Self {
        self.oidc = Some(Arc::new(verifier));
        self
    }

    /// The OIDC verifier, if sign-in through an issuer is configured.
    pub fn oidc(&self) -> Option<&oidc::Verifier> {
        self.oidc.as_deref()
    }

    /// A console over `store` with an empty lake and no history, its
    /// queries on the current runtime (tests of what uses a console).
    #[cfg(test)]
    pub fn for_tests(store: Arc<ConsoleStore>, lake_dir: &std::path::Path) -> Self {
        let config = QueryConfig::default();
        let query = QueryContext::new(
            crate::query::lake::LakeLocation::local(lake_dir),
            Arc::new(crate::query::history::NoHistory),
            &config,
        )
        .expect("query context");
        let executor = QueryExecutor::on_handle(tokio::runtime::Handle::current(), &config);
        Console::new(store, Arc::new(query), executor, &config, None, Vec::new())
    }

    /// Opens a session for `user` (see [`SessionTable::create`]).
    pub fn open_session(
        &self,
        user: &str,
        role: users::Role,
        previous: Option<&str>,
    ) -> Result<Session, auth::PasswordError> {
        self.sessions.create(user, role, previous, wall_clock_ms())
    }

    /// Whether the read APIs want a token or a session: OIDC sign-in is
    /// configured, or some user exists (or the store cannot tell, which
    /// fails closed).
    pub fn sign_in_required(&self) -> bool {
        self.oidc.is_some()
            || self.store.has_users().unwrap_or_else(|e| {
                tracing::warn!("console: {e}");
                true
            })
    }

    /// The live session the request's cookie names, if any. A session
    /// whose user was removed (`spate user remove`) or changed (`spate user
    /// add` again: a new role or password) since it opened is ended.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let session = self.sessions.get(id, wall_clock_ms())?;
        if session.user.starts_with(oidc::USER_PREFIX) {
            // Signed in through the issuer: the role came from the token,
            // and the session ends with its usual limits.
            return self.oidc.is_some().then_some(session);
        }
        match self.store.user(&session.user) {
            Ok(Some(user)) if user.updated_ms <= session.created_ms => Some(session),
            Ok(_) => {
                self.sessions.remove(id);
                None
            }
            Err(e) => {
                tracing::warn!("console: {e}");
                None
            }
        }
    }

    /// An audit record of something that may not finish (a query whose
    /// client goes away): written with its outcome by
    /// [`PendingAudit::finish`], or as `cancelled` if dropped before.
    pub fn begin_audit(
        &self,
        actor: &str,
        client: &str,
        action: &str,
        detail: &str,
    ) -> PendingAudit {
        PendingAudit {
            store: self.store.clone(),
            record: Some(AuditRecord {
                ts_ms: wall_clock_ms(),
                actor: actor.to_string(),
                client: client.to_string(),
                action: action.to_string(),
                outcome: String::new(),
                detail: detail.to_string(),
            }),
        }
    }

    /// Appends an audit record (on a blocking thread). A record that cannot
    /// be written is logged and counted (`spate_console_audit_errors_total`).
    pub async fn audit(
        &self,
        actor: &str,
        client: &str,
        action: &str,
        outcome: &str,
        detail: &str,
    ) {
        let record = AuditRecord {
            ts_ms: wall_clock_ms(),
            actor: actor.to_string(),
            client: client.to_string(),
            action: action.to_string(),
            outcome: outcome.to_string(),
            detail: detail.to_string(),
        };
        write_audit(self.store.clone(), record).await;
    }

    /// Runs `request` on the query threads, within `[query]`'s default time
    /// limit, for `session` (an admin's sees the `audit` table).
    pub async fn run_query(
        &self,
        session: &Session,
        mut request: QueryRequest,
    ) -> Result<QueryOutput, QueryError> {
        let timeout = self.query_config.timeout(None);
        request.timeout = timeout;
        request.audit = session.role == users::Role::Admin;
        let ctx = self.query.clone();
        self.executor
            .run(timeout, async move {
                crate::query::execute_request(&ctx, &request).await
            })
            .await
    }

    /// [`Console::run_query`], the rows sent to `sink` as they are read;
    /// the future owns all it needs, and dropping it cancels the query.
    pub fn stream_query(
        &self,
        session: &Session,
        mut request: QueryRequest,
        sink: crate::query::BatchSink,
    ) -> impl Future<Output = Result<crate::query::QueryBatches, QueryError>> + Send + 'static {
        let timeout = self.query_config.timeout(None);
        request.timeout = timeout;
        request.audit = session.role == users::Role::Admin;
        let ctx = self.query.clone();
        let executor = self.executor.clone();
        async move {
            executor
                .run(timeout, async move {
                    crate::query::stream_request(&ctx, &request, &sink).await
                })
                .await
        }
    }

    /// Runs `f` on a blocking thread with the store.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ConsoleStore) -> T + Send + 'static,
    ) -> Result<T, String> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| format!("console store task: {e}"))
    }
}

/// Writes `record` on a blocking thread; a failure is logged and counted.
async fn write_audit(store: Arc<ConsoleStore>, record: AuditRecord) {
    let action = record.action.clone();
    let written = tokio::task::spawn_blocking(move || store.audit(&record)).await;
    let error = match written {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("audit writer: {e}"),
    };
    metrics::counter!("spate_console_audit_errors_total").increment(1);
    tracing::error!(action, "console: cannot write the audit record: {error}");
}

/// An audit record begun before the work it records (see
/// [`Console::begin_audit`]).
pub struct PendingAudit {
    store: Arc<ConsoleStore>,
    record: Option<AuditRecord>,
}

impl PendingAudit {
    /// Writes the record with `outcome`.
    pub async fn finish(mut self, outcome: &str) {
        if let Some(mut record) = self.record.take() {
            record.outcome = outcome.to_string();
            write_audit(self.store.clone(), record).await;
        }
    }
}

impl Drop for PendingAudit {
    /// Not finished: the request was dropped (its client went away, which
    /// cancels the query), so the record says `cancelled`.
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.outcome = "cancelled".into();
            let store = self.store.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(write_audit(store, record));
                }
                Err(_) => {
                    if let Err(e) = store.audit(&record) {
                        metrics::counter!("spate_console_audit_errors_total").increment(1);
                        tracing::error!("console: cannot write the audit record: {e}");
                    }
                }
            }
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Where a request came from: the peer address, and `X-Forwarded-For` when
/// a proxy in front of the service sets it.
pub fn client_of(parts: &Parts) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string());
    match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(forwarded) => format!("{peer} (x-forwarded-for {})", forwarded.trim()),
        None => peer,
    }
}

/// `Set-Cookie` for the session `id`, good for the session's longest life.
fn session_cookie(id: &str) -> HeaderValue {
    let max_age = Duration::from_millis(session::SESSION_MAX_MS as u64).as_secs();
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"
    ))
    .expect("hex id and fixed text are a valid header")
}

/// `Set-Cookie` that deletes cookie `name`.
fn expired_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    ))
    .expect("fixed text is a valid header")
}

/// The answer to a page request without a live session.
fn to_sign_in() -> Response {
    Redirect::to("/ui/signin").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; spate_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "spate"), None);
        let set = session_cookie("ff00");
        let set = set.to_str().unwrap();
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "spate_session=ff00",
        ] {
            assert!(set.contains(attribute), "{set}");
        }
    }
}
