//! `GET /ui/signin` (the form), `POST /ui/signin` (name and password, then a
//! new session), `POST /ui/signout`.
//!
//! The sign-in form is protected against cross-site posts by a double
//! submit: the form's hidden token must equal the `spate_signin` cookie set
//! with it. A failed sign-in says only "wrong name or password", and takes
//! as long for an unknown name as for a wrong password; too many failures
//! for a name from one address are refused for a while (see
//! [`throttle`]).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use spate_operators::event::wall_clock_ms;

use super::guard::{CsrfForm, csrf_post};
use super::layout::{esc, html, page_body};
use crate::console::auth::{
    PasswordError, constant_time_eq, decoy_hash, random_token, verify_password,
};
use crate::console::throttle;
use crate::console::users::Role;
use crate::console::{Console, SESSION_COOKIE, client_of, cookie, expired_cookie, session_cookie};

/// Cookie holding the sign-in form's token.
const SIGNIN_COOKIE: &str = "spate_signin";

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    signin_token: String,
}

/// The sign-out form's fields.
#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: Option<String>,
}

impl CsrfForm for SignOutForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The form, with a fresh token in a cookie and a hidden field.
fn form_page(console: &Console, status: StatusCode, error: Option<&str>, name: &str) -> Response {
    let token = match random_token() {
        Ok(t) => t,
        Err(e) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                page_body("Sign in", None, &format!("<p>{}</p>", esc(&e.to_string()))),
            );
        }
    };
    let error = error.map_or(String::new(), |e| {
        format!(
            r#"<p class="error" role="alert" id="signin-error">{}</p>"#,
            esc(e)
        )
    });
    let main = format!(
        r#"<section class="signin">
<h1>Sign in</h1>
{error}
<form method="post" action="/ui/signin">
<input type="hidden" name="signin_token" value="{token}">
<label for="name">Name</label>
<input id="name" name="name" autocomplete="username" required value="{name}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="signin">Sign in</button>
</form>
{issuer}
</section>"#,
        name = esc(name),
        issuer = console
            .oidc()
            .filter(|v| v.config().code_flow())
            .map_or(String::new(), |v| format!(
                r#"<p><a class="button" id="signin-oidc" href="/ui/oidc/start">Sign in with {}</a></p>"#,
                esc(&v.config().display_name)
            )),
    );
    let mut response = html(status, page_body("Sign in", None, &main));
    let cookie = format!(
        "{SIGNIN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/ui/signin; Max-Age=1800"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /ui/signin`.
pub async fn form(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    if console.session(&parts.headers).is_some() {
        return Redirect::to("/ui").into_response();
    }
    form_page(&console, StatusCode::OK, None, "")
}

/// `POST /ui/signin`.
pub async fn submit(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let client = client_of(&parts);
    let Ok(Form(form)) = form else {
        return form_page(
            &console,
            StatusCode::BAD_REQUEST,
            Some("the form could not be read"),
            "",
        );
    };
    let expected = cookie(&parts.headers, SIGNIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !constant_time_eq(form.signin_token.as_bytes(), expected.as_bytes()) {
        return refuse(
            &console,
            &client,
            "denied",
            &format!("user {:?}: sign-in form token missing or wrong", form.name),
            form_page(
                &console,
                StatusCode::FORBIDDEN,
                Some("the sign-in form expired; please try again"),
                &form.name,
            ),
        )
        .await;
    }
    let name = form.name.trim().to_string();
    let address = throttle::address(&client);
    if console.throttle.blocked(&address, &name, wall_clock_ms()) {
        return refuse(
            &console,
            &client,
            "denied",
            &format!("user {name:?}: too many failed sign-ins"),
            form_page(
                &console,
                StatusCode::TOO_MANY_REQUESTS,
                Some("too many failed sign-ins; try again in 15 minutes"),
                &name,
            ),
        )
        .await;
    }
    let password = form.password;
    let lookup = name.clone();
    let checked = console
        .with_store(move |store| {
            let user = store.user(&lookup).map_err(|e| e.to_string())?;
            let hash = user
                .as_ref()
                .map_or_else(|| decoy_hash().to_string(), |u| u.password_hash.clone());
            let matches = verify_password(&password, &hash).map_err(|e| e.to_string())?;
            Ok::<Option<Role>, String>(user.filter(|_| matches).map(|u| u.role))
        })
        .await
        .and_then(|r| r);
    let role = match checked {
        Ok(Some(role)) => role,
        Ok(None) => {
            console.throttle.fail(&address, &name, wall_clock_ms());
            return refuse(
                &console,
                &client,
                "denied",
                &format!("user {name:?}: wrong name or password"),
                form_page(
                    &console,
                    StatusCode::UNAUTHORIZED,
                    Some("wrong name or password"),
                    &name,
                ),
            )
            .await;
        }
        Err(e) => {
            tracing::error!("console sign-in: {e}");
            return refuse(
                &console,
                &client,
                "error",
                &format!("user {name:?}: {e}"),
                form_page(
                    &console,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("sign-in is unavailable; see the service log"),
                    &name,
                ),
            )
            .await;
        }
    };
    let detail = format!("role {}", role.as_str());
    let response = Redirect::to("/ui").into_response();
    let mut response =
        match start_session(&console, &parts, &client, &name, role, &detail, response).await {
            Ok(r) => r,
            Err(e) => {
                return form_page(
                    &console,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(&e.to_string()),
                    &name,
                );
            }
        };
    console.throttle.clear(&address, &name);
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SIGNIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui/signin; Max-Age=0"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Starts `user`'s server-side session after a sign-in (in place of the
/// one the request's cookie names, if any): counted, audited with
/// `detail`, and its cookie set on `response`, the answer that moves the
/// browser on to the console; or the error when none could be opened.
pub(super) async fn start_session(
    console: &Console,
    parts: &Parts,
    client: &str,
    user: &str,
    role: Role,
    detail: &str,
    mut response: Response,
) -> Result<Response, PasswordError> {
    let previous = cookie(&parts.headers, SESSION_COOKIE);
    let session = console.open_session(user, role, previous)?;
    count("ok");
    console.audit(user, client, "signin", "ok", detail).await;
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(&session.id));
    Ok(response)
}

/// Counts a sign-in by outcome (`spate_console_signins_total`).
pub(super) fn count(outcome: &'static str) {
    metrics::counter!("spate_console_signins_total", "outcome" => outcome).increment(1);
}

/// `POST /ui/signout`: ends the session (with its CSRF token only).
pub async fn sign_out(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Response {
    let post = match csrf_post(&console, &parts, form, "signout").await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (session, client) = (post.session, post.client);
    console.sessions.remove(&session.id);
    console
        .audit(&session.user, &client, "signout", "ok", "")
        .await;
    let mut response = Redirect::to("/ui/signin").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, expired_cookie(SESSION_COOKIE));
    response
}

/// A refused sign-in (local or through the issuer): counted, audited
/// with `detail`, and `answer` to the browser.
pub(super) async fn refuse(
    console: &Console,
    client: &str,
    outcome: &'static str,
    detail: &str,
    answer: Response,
) -> Response {
    count(outcome);
    console.audit("-", client, "signin", outcome, detail).await;
    answer
}
