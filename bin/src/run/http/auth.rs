//! Who may call the APIs: the bearer token, a console session, or anyone
//! when no authentication is in force (see the module docs of
//! [`super`]).

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use super::{HttpState, header_str, json_error};
use crate::console::CSRF_HEADER;
use crate::console::auth::constant_time_eq;

fn authorized(state: &HttpState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.token else {
        return true;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    constant_time_eq(presented.as_bytes(), expected)
}

/// What a request does, for [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Pushes logs (open without a token).
    Ingest,
    /// Reads data (behind a token or a session once console users exist).
    Read,
}

/// Who made an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Caller {
    /// Nobody in particular: no authentication is in force.
    Anonymous,
    /// The holder of the bearer token.
    Token,
    /// A console user, by their session.
    User {
        /// Their name.
        name: String,
        /// Whether they are an admin.
        admin: bool,
    },
}

impl Caller {
    /// The name the audit trail records.
    pub(super) fn name(&self) -> &str {
        match self {
            Caller::Anonymous => "-",
            Caller::Token => "token",
            Caller::User { name, .. } => name,
        }
    }

    /// Whether the caller may read the `audit` table: the token holder,
    /// admins, and anyone when no authentication is in force.
    pub(super) fn sees_audit(&self) -> bool {
        !matches!(self, Caller::User { admin: false, .. })
    }
}

/// Who may make a request to a data API, or the refusal: the bearer token,
/// else a console session (which needs its CSRF token on anything but a
/// GET), else nobody when no authentication is in force (see the module
/// docs).
pub(super) fn authorize(
    state: &HttpState,
    headers: &HeaderMap,
    method: &Method,
    access: Access,
) -> Result<Caller, Box<Response>> {
    if state.token.is_some() && authorized(state, headers) {
        return Ok(Caller::Token);
    }
    if let Some(console) = &state.console
        && let Some(session) = console.session(headers)
    {
        let csrf = header_str(headers, CSRF_HEADER);
        if *method != Method::GET && !session.csrf_ok(csrf.as_deref()) {
            return Err(Box::new(json_error(
                StatusCode::FORBIDDEN,
                "a request signed in with a console session needs the session's X-CSRF-Token header",
            )));
        }
        return Ok(Caller::User {
            admin: session.role == crate::console::users::Role::Admin,
            name: session.user,
        });
    }
    let required = state.token.is_some()
        || (access == Access::Read && state.console.as_ref().is_some_and(|c| c.sign_in_required()));
    if !required {
        return Ok(Caller::Anonymous);
    }
    let mut r = json_error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (or console session)",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(Box::new(r))
}

/// The 401 (with `WWW-Authenticate: Bearer`) for a request without the
/// token; `None` when it may pass.
pub(super) fn unauthorized(state: &HttpState, headers: &HeaderMap) -> Option<Response> {
    if authorized(state, headers) {
        return None;
    }
    let mut r = json_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(r)
}
