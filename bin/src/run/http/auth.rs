//! Who may call the APIs: the bearer token, a console session, or anyone
//! when no authentication is in force (see the module docs of
//! [`super`]).

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use super::respond::{header_str, json_error};
use super::state::HttpState;
use crate::console::CSRF_HEADER;
use crate::console::auth::constant_time_eq;

fn authorized(state: &HttpState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.token else {
        return true;
    };
    let presented = bearer(headers).unwrap_or("");
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

/// [`authorize`], and before it an OIDC ID token in `Authorization: Bearer`
/// when the console signs users in through an issuer (and the bearer is
/// not the service's own token): verified, its group mapped to the role.
/// A refused token is answered 401 (403 when no group maps to a role) and
/// audited.
pub(super) async fn authorize_api(
    state: &HttpState,
    headers: &HeaderMap,
    method: &Method,
    access: Access,
    client: &str,
) -> Result<Caller, Box<Response>> {
    if let Some(console) = &state.console
        && let Some(verifier) = console.oidc()
        && let Some(presented) = bearer(headers)
        && crate::console::oidc::looks_like_jwt(presented)
        && !(state.token.is_some() && authorized(state, headers))
    {
        let now_secs = spate_operators::event::wall_clock_ms() / 1000;
        return match verifier.verify(presented, now_secs, None).await {
            Ok(identity) => Ok(Caller::User {
                admin: identity.role == crate::console::users::Role::Admin,
                name: identity.user,
            }),
            Err(e) => {
                let (status, actor) = match &e {
                    crate::console::oidc::OidcError::NoRole { user, .. } => {
                        (StatusCode::FORBIDDEN, user.as_str())
                    }
                    _ => (StatusCode::UNAUTHORIZED, "-"),
                };
                console
                    .audit(actor, client, "api-token", "denied", &format!("oidc: {e}"))
                    .await;
                let mut r = json_error(status, &format!("ID token refused: {e}"));
                if status == StatusCode::UNAUTHORIZED {
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                Err(Box::new(r))
            }
        };
    }
    authorize(state, headers, method, access)
}

/// The bearer of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::console::store::ConsoleStore;
    use crate::console::users::Role;
    use crate::console::{Console, SESSION_COOKIE};
    use crate::run::http::{HttpConfig, HttpState, LogAcceptor, Refusal};

    struct Refuse;
    impl LogAcceptor for Refuse {
        fn accept(
            &self,
            _: Vec<crate::run::body::BodyRecord>,
            _: Option<&str>,
        ) -> futures_util::future::BoxFuture<'static, Result<(), Refusal>> {
            Box::pin(async { Ok(()) })
        }
        fn ready(&self) -> Result<(), String> {
            Ok(())
        }
    }

    fn state(token: Option<&str>, console: Arc<Console>) -> HttpState {
        HttpState::new(
            &HttpConfig::default(),
            1 << 20,
            token.map(str::to_string),
            Arc::new(Refuse),
            Arc::new(String::new),
        )
        .with_console(console)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn the_token_or_a_session_with_its_csrf_token_opens_the_apis() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ConsoleStore::open_in(dir.path()).unwrap());
        let console = Arc::new(Console::for_tests(store.clone(), dir.path()));
        let open = state(None, console.clone());
        let status = |r: Result<Caller, Box<Response>>| match r {
            Ok(caller) => Ok(caller),
            Err(response) => Err(response.status().as_u16()),
        };
        let none = headers(&[]);
        let (get, post) = (Method::GET, Method::POST);

        // No users, no token: open.
        assert_eq!(
            status(authorize(&open, &none, &get, Access::Read)),
            Ok(Caller::Anonymous)
        );

        // A user exists: reads want a session (or the token); ingest stays open.
        store.put_user("ann", Role::Viewer, "hash", 0).unwrap();
        assert_eq!(
            status(authorize(&open, &none, &post, Access::Read)),
            Err(401)
        );
        assert_eq!(
            status(authorize(&open, &none, &post, Access::Ingest)),
            Ok(Caller::Anonymous)
        );
        let session = console.open_session("ann", Role::Viewer, None).unwrap();
        let cookie = format!("{SESSION_COOKIE}={}", session.id);
        let viewer = Caller::User {
            name: "ann".into(),
            admin: false,
        };
        assert_eq!(
            status(authorize(
                &open,
                &headers(&[("cookie", &cookie)]),
                &get,
                Access::Read
            )),
            Ok(viewer.clone())
        );
        assert!(!viewer.sees_audit());
        // A POST with the session needs its CSRF token.
        assert_eq!(
            status(authorize(
                &open,
                &headers(&[("cookie", &cookie)]),
                &post,
                Access::Read
            )),
            Err(403)
        );
        let wrong = [("cookie", cookie.as_str()), ("x-csrf-token", "00")];
        assert_eq!(
            status(authorize(&open, &headers(&wrong), &post, Access::Read)),
            Err(403)
        );
        let right = [
            ("cookie", cookie.as_str()),
            ("x-csrf-token", session.csrf.as_str()),
        ];
        assert_eq!(
            status(authorize(&open, &headers(&right), &post, Access::Read)),
            Ok(viewer)
        );
        // A forged session id is nobody.
        let forged = format!("{SESSION_COOKIE}={}", "ab".repeat(32));
        assert_eq!(
            status(authorize(
                &open,
                &headers(&[("cookie", &forged)]),
                &get,
                Access::Read
            )),
            Err(401)
        );

        // With a token: the token, or a session; ingest needs one of them too.
        let locked = state(Some("s3cret"), console.clone());
        let bearer = [("authorization", "Bearer s3cret")];
        assert_eq!(
            status(authorize(&locked, &headers(&bearer), &post, Access::Ingest)),
            Ok(Caller::Token)
        );
        assert!(Caller::Token.sees_audit());
        assert_eq!(
            status(authorize(&locked, &none, &post, Access::Ingest)),
            Err(401)
        );
        assert!(status(authorize(&locked, &headers(&right), &post, Access::Ingest)).is_ok());

        // A user changed after the session opened is signed out.
        store
            .put_user("ann", Role::Admin, "hash2", i64::MAX / 2)
            .unwrap();
        assert_eq!(
            status(authorize(&open, &headers(&right), &post, Access::Read)),
            Err(401)
        );
    }
}
