//! The HTTP API of `spate run`: `POST /v1/logs` (see [`ingest`]),
//! `POST /v1/query` (see [`query`]), `GET /v1/tap` (see [`tap`]),
//! `/healthz`, `/readyz`, `/metrics`,
//! served by [`serve::serve`].
//!
//! A push is answered 200 only once its records are durably accepted (appended
//! to the journal and fsynced; see [`LogAcceptor`]). Other answers:
//!
//! | status | when |
//! |---|---|
//! | 400 | the body cannot be read (reason in the body; see [`super::body`]) |
//! | 401 | a token is configured and the request lacks it or has another (or, on the read APIs, console users exist and the request has neither the token nor a session) |
//! | 403 | a POST signed in with a console session lacks its `X-CSRF-Token` |
//! | 409 + `Retry-After` | a push with the same `Idempotency-Key` is being accepted (see [`idempotency`]) |
//! | 408 | the body arrived too slowly (`body_timeout`, `min_body_rate`); the connection closes |
//! | 413 | the body, its decompressed form, or one payload in it is larger than allowed |
//! | 429 + `Retry-After` | the pipeline is behind (journal backlog full) or the in-flight memory budget is taken |
//! | 503 + `Retry-After` | the journal cannot take data (disk limit, I/O error, shutting down) |
//!
//! The web console (`/ui`, see [`crate::console`]) is served beside them
//! when [`HttpState::with_console`] gave one; its session cookie then stands
//! for the token on `/v1/*` (with the session's CSRF token in
//! `X-CSRF-Token` on a POST), and once a console user exists the read APIs
//! (`/v1/query`, `/v1/tap`) want the token or a session even without a
//! token configured. Ingest without a token stays open.
//!
//! `/readyz` answers 503 whenever a push would be refused that way (see
//! [`LogAcceptor::ready`]). With a token, `/metrics` stays open unless
//! `metrics_auth = true`.
//!
//! # Backpressure
//!
//! Memory is bounded twice: what request bodies hold while they are received,
//! decompressed, parsed and appended shares a budget of `max_inflight_size`
//! (charged as it grows, so a gzip bomb or a JSON array cannot exceed it; a
//! request that does not fit is answered 429 at once), and the journal
//! refuses appends once the pipeline's unread backlog passes its limit.
//! Clients retry after `Retry-After`; nothing refused was accepted, so
//! nothing accepted is lost. Slow clients are cut off (408, or the header
//! timeout), so they hold neither budget nor connections for long.
//!
//! # Shutdown
//!
//! On SIGTERM the listener stops accepting connections and requests in progress
//! get `drain_timeout` to finish (their appends complete and are answered);
//! connections still open then are closed, and the journal closes.

mod auth;
mod budget;
mod config;
mod idempotency;
mod ingest;
mod query;
mod query_service;
mod respond;
mod routes;
pub mod serve;
mod state;
pub mod tap;
mod unread;

pub use self::config::HttpConfig;
pub use self::routes::{bind, router};
pub use self::state::{HttpState, LogAcceptor, Refusal};
