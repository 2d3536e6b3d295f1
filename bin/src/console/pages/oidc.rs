//! The browser sign-in through the OIDC issuer (the Cognito hosted UI):
//! `GET /ui/oidc/start` sends the browser to the issuer with a fresh
//! `state`, `nonce` and PKCE challenge (kept in a short-lived cookie);
//! `GET /ui/oidc/callback` checks `state`, exchanges the code at the token
//! endpoint, verifies the ID token (with the nonce) and opens the same
//! server-side session as a local sign-in.
//!
//! The cookie is `SameSite=Lax`: the issuer's redirect back is a
//! cross-site navigation, on which a `Strict` cookie would not be sent.
//! For the same reason the callback answers with a page that moves on to
//! `/ui` itself (a same-site navigation, which carries the `Strict`
//! session cookie) instead of a redirect.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use spate_operators::event::wall_clock_ms;

use super::layout::{esc, html, page_body};
use super::signin::{count, refuse, start_session};
use crate::console::auth::{constant_time_eq, random_token};
use crate::console::oidc::OidcError;
use crate::console::{Console, client_of, cookie};

/// Cookie holding `state.nonce.verifier` between start and callback.
const FLOW_COOKIE: &str = "spate_oidc";

/// The callback's query.
#[derive(Debug, Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

fn flow_cookie(value: &str, max_age: u32) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/ui/oidc; Max-Age={max_age}"
    ))
    .ok()
}

fn message(status: StatusCode, text: &str) -> Response {
    let main = format!(
        r#"<section class="signin"><h1>Sign in</h1><p class="error" role="alert" id="signin-error">{}</p><p><a href="/ui/signin">Back to sign-in</a></p></section>"#,
        esc(text)
    );
    let mut response = html(status, page_body("Sign in", None, &main));
    if let Some(value) = flow_cookie("", 0) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /ui/oidc/start`.
pub async fn start(State(console): State<Arc<Console>>) -> Response {
    let Some(verifier) = console.oidc() else {
        return message(
            StatusCode::NOT_FOUND,
            "sign-in through an issuer is not configured",
        );
    };
    let tokens = (random_token(), random_token(), random_token());
    let (Ok(state), Ok(nonce), Ok(pkce)) = tokens else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "no randomness from the operating system",
        );
    };
    let Some(url) = verifier.authorize_url(&state, &nonce, &pkce) else {
        return message(
            StatusCode::NOT_FOUND,
            "the browser sign-in through the issuer is not configured",
        );
    };
    let mut response = Redirect::to(&url).into_response();
    if let Some(value) = flow_cookie(&format!("{state}.{nonce}.{pkce}"), 600) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /ui/oidc/callback`.
pub async fn callback(
    State(console): State<Arc<Console>>,
    parts: Parts,
    query: Result<Query<Callback>, QueryRejection>,
) -> Response {
    let client = client_of(&parts);
    let Some(verifier) = console.oidc() else {
        return message(
            StatusCode::NOT_FOUND,
            "sign-in through an issuer is not configured",
        );
    };
    let Ok(Query(query)) = query else {
        return message(
            StatusCode::BAD_REQUEST,
            "the callback's query could not be read",
        );
    };
    if let Some(error) = &query.error {
        let detail = format!(
            "issuer answered {error}: {}",
            query.error_description.as_deref().unwrap_or("")
        );
        console
            .audit("-", &client, "signin", "denied", &format!("oidc: {detail}"))
            .await;
        return message(StatusCode::UNAUTHORIZED, &detail);
    }
    let flow = cookie(&parts.headers, FLOW_COOKIE).unwrap_or("");
    let mut pieces = flow.split('.');
    let (Some(state), Some(nonce), Some(pkce)) = (pieces.next(), pieces.next(), pieces.next())
    else {
        return refuse(
            &console,
            &client,
            "denied",
            "oidc: no sign-in in progress (state cookie missing)",
            message(
                StatusCode::FORBIDDEN,
                "the sign-in expired; please try again",
            ),
        )
        .await;
    };
    let presented = query.state.as_deref().unwrap_or("");
    if state.is_empty() || !constant_time_eq(presented.as_bytes(), state.as_bytes()) {
        return refuse(
            &console,
            &client,
            "denied",
            "oidc: state does not match the sign-in",
            message(
                StatusCode::FORBIDDEN,
                "the sign-in expired; please try again",
            ),
        )
        .await;
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return message(StatusCode::BAD_REQUEST, "the issuer sent no code");
    };
    let verified = match verifier.exchange(code, pkce).await {
        Ok(id_token) => {
            verifier
                .verify(&id_token, wall_clock_ms() / 1000, Some(nonce))
                .await
        }
        Err(e) => Err(e),
    };
    let identity = match verified {
        Ok(identity) => identity,
        Err(e @ OidcError::NoRole { .. }) => {
            let user = match &e {
                OidcError::NoRole { user, .. } => user.clone(),
                _ => "-".into(),
            };
            count("denied");
            console
                .audit(&user, &client, "signin", "denied", &format!("oidc: {e}"))
                .await;
            return message(
                StatusCode::FORBIDDEN,
                "you are signed in with the issuer, but in no group allowed to use this console",
            );
        }
        Err(e @ (OidcError::Jwks(_) | OidcError::Exchange(_))) => {
            tracing::warn!("console oidc sign-in: {e}");
            return refuse(
                &console,
                &client,
                "error",
                &format!("oidc: {e}"),
                message(
                    StatusCode::BAD_GATEWAY,
                    "the issuer could not be reached; see the service log",
                ),
            )
            .await;
        }
        Err(e) => {
            return refuse(
                &console,
                &client,
                "denied",
                &format!("oidc: {e}"),
                message(StatusCode::UNAUTHORIZED, "the issuer's token was refused"),
            )
            .await;
        }
    };
    let main = r#"<section class="signin"><h1>Signed in</h1><p><a href="/ui" id="continue">Continue to the console</a></p></section>"#;
    let mut body = page_body("Signed in", None, main);
    body = body.replacen(
        "<head>",
        r#"<head><meta http-equiv="refresh" content="0;url=/ui">"#,
        1,
    );
    let detail = format!(
        "oidc subject {}, groups {:?}, role {}",
        identity.subject,
        identity.groups,
        identity.role.as_str()
    );
    let response = html(StatusCode::OK, body);
    let started = start_session(
        &console,
        &parts,
        &client,
        &identity.user,
        identity.role,
        &detail,
        response,
    )
    .await;
    let mut response = match started {
        Ok(r) => r,
        Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if let Some(value) = flow_cookie("", 0) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
