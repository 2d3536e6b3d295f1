//! Who may see a page: a signed-in session, or an admin's.

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use super::layout;
use crate::console::session::Session;
use crate::console::users::Role;
use crate::console::{Console, to_sign_in};

/// The session of a page request, or the answer sending the browser to
/// the sign-in form.
pub(super) fn signed_in(console: &Console, parts: &Parts) -> Result<Session, Box<Response>> {
    console
        .session(&parts.headers)
        .ok_or_else(|| Box::new(to_sign_in()))
}

/// The session of an admin page request; a viewer gets 403 (and the
/// refusal is audited by the caller).
pub(super) fn admin_only(console: &Console, parts: &Parts) -> Result<Session, Box<Response>> {
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
