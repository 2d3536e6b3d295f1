//! The pages of the console and the routes that serve them.

mod admin;
mod alerts;
mod guard;
mod histogram;
mod home;
mod layout;
mod oidc;
mod search;
mod search_stream;
mod signin;
mod sns_subscriptions;
mod subscriptions;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::Console;

/// The `/ui` routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/ui", get(home::page))
        .route("/ui/", get(home::page))
        .route("/ui/signin", get(signin::form).post(signin::submit))
        .route("/ui/signout", post(signin::sign_out))
        .route("/ui/oidc/start", get(oidc::start))
        .route("/ui/oidc/callback", get(oidc::callback))
        .route("/ui/search", get(search::page))
        .route("/ui/alerts", get(alerts::page))
        .route("/ui/audit", get(admin::audit_page))
        .route(
            "/ui/subscriptions",
            get(subscriptions::page).post(subscriptions::subscribe),
        )
        .route("/ui/subscriptions/remove", post(subscriptions::remove))
        .route("/ui/subscriptions/sns", post(sns_subscriptions::subscribe))
        .route(
            "/ui/subscriptions/sns/remove",
            post(sns_subscriptions::remove),
        )
        .route("/ui/static/style.css", get(style))
        .route("/ui/static/console.js", get(script))
        .route("/ui/static/search-stream.js", get(stream_script))
        .with_state(console)
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

async fn stream_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../assets/search-stream.js"),
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
