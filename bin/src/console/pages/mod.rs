//! The pages of the console and the routes that serve them.

mod admin;
mod alerts;
mod histogram;
mod home;
mod layout;
mod search;
mod signin;
mod subscriptions;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::session::Session;
use super::users::Role;
use super::{Console, to_sign_in};

/// The `/ui` routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/ui", get(home::page))
        .route("/ui/", get(home::page))
        .route("/ui/signin", get(signin::form).post(signin::submit))
        .route("/ui/signout", post(signin::sign_out))
        .route("/ui/search", get(search::page))
        .route("/ui/alerts", get(alerts::page))
        .route("/ui/audit", get(admin::audit_page))
        .route(
            "/ui/subscriptions",
            get(subscriptions::page).post(subscriptions::subscribe),
        )
        .route("/ui/subscriptions/remove", post(subscriptions::remove))
        .route("/ui/static/style.css", get(style))
        .route("/ui/static/console.js", get(script))
        .with_state(console)
}

/// The session of a page request, or the answer sending the browser to
/// the sign-in form.
fn signed_in(console: &Console, parts: &Parts) -> Result<Session, Box<Response>> {
    console
        .session(&parts.headers)
        .ok_or_else(|| Box::new(to_sign_in()))
}

/// The session of an admin page request; a viewer gets 403 (and the
/// refusal is audited by the caller).
fn admin_only(console: &Console, parts: &Parts) -> Result<Session, Box<Response>> {
    let session = signed_in(console, parts)?;
    if session.role != Role::Admin {
        let body = layout::page_body(
            "Forbidden",
            Some(&session),
            "<h1>Forbidden</h1><p>This page is for admins.</p>",
        );
        return Err(Box::new(layout::html(StatusCode::FORBIDDEN, body)));
    }
    Ok(session)
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../assets/style.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../assets/console.js"),
    )
        .into_response()
}
