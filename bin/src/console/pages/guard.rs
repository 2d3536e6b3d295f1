//! Who may see a page: a signed-in session, or an admin's.

use axum::extract::Form;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use super::layout;
use crate::console::session::Session;
use crate::console::users::Role;
use crate::console::{Console, client_of, to_sign_in};

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

/// A form that carries the session's CSRF token.
pub(super) trait CsrfForm {
    /// The token the form presented.
    fn csrf(&self) -> Option<&str>;
}

/// A signed-in post whose form carries the session's CSRF token.
pub(super) struct Post<F> {
    pub session: Session,
    /// The client's address, for the audit log.
    pub client: String,
    pub form: F,
}

impl<F> Post<F> {
    /// Audits `action` by this post's user: `outcome` and `detail`.
    pub async fn audit(&self, console: &Console, action: &str, outcome: &str, detail: &str) {
        console
            .audit(&self.session.user, &self.client, action, outcome, detail)
            .await;
    }
}

/// The session, client and form of a post to `action`; or the answer
/// sending the browser to the sign-in form, or (audited) refusing a form
/// that could not be read or lacks the session's CSRF token.
pub(super) async fn csrf_post<F: CsrfForm>(
    console: &Console,
    parts: &Parts,
    form: Result<Form<F>, FormRejection>,
    action: &str,
) -> Result<Post<F>, Box<Response>> {
    let session = signed_in(console, parts)?;
    let client = client_of(parts);
    let form = form.ok().map(|Form(f)| f);
    let Some(form) = form.filter(|f| session.csrf_ok(f.csrf())) else {
        return Err(Box::new(
            csrf_refused(console, &session, &client, action).await,
        ));
    };
    Ok(Post {
        session,
        client,
        form,
    })
}

/// The refusal of a post without the session's CSRF token.
async fn csrf_refused(
    console: &Console,
    session: &Session,
    client: &str,
    action: &str,
) -> Response {
    console
        .audit(
            &session.user,
            client,
            action,
            "denied",
            "missing or wrong CSRF token",
        )
        .await;
    layout::html(
        StatusCode::FORBIDDEN,
        layout::page_body(
            "Forbidden",
            Some(session),
            "<h1>Forbidden</h1><p>The request lacked this session's CSRF token.</p>",
        ),
    )
}
