//! `GET /ui/subscriptions`: a user's alert subscriptions (an admin sees
//! everyone's), `POST /ui/subscriptions` to subscribe a webhook to the
//! alerts of chosen services and severities, `POST
//! /ui/subscriptions/remove` to unsubscribe. Both posts need the session's
//! CSRF token and are audited.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use spate_operators::event::wall_clock_ms;

use super::guard::{CsrfForm, Post, csrf_post, signed_in};
use super::layout::{esc, html, page_body, time};
use crate::console::Console;
use crate::console::session::Session;
use crate::console::subscriptions::{SEVERITIES, Subscription, check_url, list, redact};
use crate::console::users::Role;

/// The subscribe form's fields (services and severities comma-separated).
#[derive(Debug, Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    services: String,
    #[serde(default)]
    severities: String,
}

/// The unsubscribe form's fields (of a webhook subscription, or an email
/// or SMS one).
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    pub(super) id: i64,
}

/// Whose subscriptions `session` sees and may remove: its own, or all for
/// an admin.
pub(super) fn owner(session: &Session) -> Option<String> {
    (session.role != Role::Admin).then(|| session.user.clone())
}

/// `GET /ui/subscriptions`.
pub async fn page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    match signed_in(&console, &parts) {
        Ok(session) => render(&console, &session, StatusCode::OK, None).await,
        Err(r) => *r,
    }
}

pub(super) async fn render(
    console: &Console,
    session: &Session,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let owner = owner(session);
    let listed = console
        .with_store(move |store| store.subscriptions(owner.as_deref()))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    let mut main = String::from("<h1>Alert subscriptions</h1>");
    if let Some(e) = error {
        main.push_str(&format!(
            r#"<p class="error" role="alert" id="subscription-error">{}</p>"#,
            esc(e)
        ));
    }
    match listed {
        Ok(subs) if subs.is_empty() => {
            main.push_str(r#"<p id="subscriptions-none">No subscriptions yet.</p>"#)
        }
        Ok(subs) => main.push_str(&table(session, &subs)),
        Err(e) => main.push_str(&format!(r#"<p class="error">{}</p>"#, esc(&e))),
    }
    main.push_str(&format!(
        r#"<h2>Subscribe a webhook</h2>
<p>Alerts raised from now on that match are POSTed to the URL as JSON (the notice and the subscription id). The URL's path is shown as … (it often holds the webhook's secret).</p>
<form method="post" action="/ui/subscriptions" class="search" id="subscribe-form">
<input type="hidden" name="csrf" value="{csrf}">
<label for="url">Webhook URL</label><input id="url" name="url" required placeholder="https://hooks.example.com/spate">
<label for="services">Services</label><input id="services" name="services" placeholder="every service (or a comma-separated list)">
<label for="severities">Severities</label><input id="severities" name="severities" value="CRITICAL,ERROR,WARNING" placeholder="CRITICAL,ERROR,WARNING">
<button type="submit" id="subscribe">Subscribe</button>
</form>"#,
        csrf = esc(&session.csrf),
    ));
    if let Some(sns) = console.sns() {
        main.push_str(&sns_section(console, session, sns.topic_arn()).await);
    }
    html(status, page_body("Subscriptions", Some(session), &main))
}

/// The email and SMS subscriptions (through the SNS alert topic) and the
/// form to add one.
async fn sns_section(console: &Console, session: &Session, topic: &str) -> String {
    let owner = owner(session);
    let listed = console
        .with_store(move |store| store.sns_subscriptions(owner.as_deref()))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    let mut out = String::from("<h2>Email and SMS</h2>");
    match listed {
        Ok(subs) if subs.is_empty() => {
            out.push_str(r#"<p id="sns-subscriptions-none">No email or SMS subscriptions yet.</p>"#)
        }
        Ok(subs) => {
            out.push_str(r#"<div class="scroll"><table id="sns-subscriptions"><caption>Alerts go to these addresses and numbers (through SNS)</caption><thead><tr><th scope="col">id</th><th scope="col">owner</th><th scope="col">delivery</th><th scope="col">to</th><th scope="col">services</th><th scope="col">severities</th><th scope="col">since (UTC)</th><th scope="col"></th></tr></thead><tbody>"#);
            for s in subs {
                out.push_str(&format!(
                    r#"<tr><td>{id}</td><td>{owner}</td><td>{protocol}</td><td>{endpoint}</td><td>{services}</td><td>{severities}</td><td>{since}</td><td><form method="post" action="/ui/subscriptions/sns/remove" class="inline"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}"><button type="submit" class="unsubscribe-sns">Unsubscribe</button></form></td></tr>"#,
                    id = s.id,
                    owner = esc(&s.owner),
                    protocol = esc(&s.protocol),
                    endpoint = esc(&s.endpoint),
                    services = esc(&every(&s.services)),
                    severities = esc(&every(&s.severities)),
                    since = time(s.created_ms),
                    csrf = esc(&session.csrf),
                ));
            }
            out.push_str("</tbody></table></div>");
        }
        Err(e) => out.push_str(&format!(r#"<p class="error">{}</p>"#, esc(&e))),
    }
    out.push_str(&format!(
        r#"<p>Alerts published to <code>{topic}</code> that match reach the address or number directly from SNS (an email address confirms first).</p>
<form method="post" action="/ui/subscriptions/sns" class="search" id="sns-subscribe-form">
<input type="hidden" name="csrf" value="{csrf}">
<label for="protocol">Delivery</label><select id="protocol" name="protocol"><option value="email">email</option><option value="sms">SMS</option></select>
<label for="endpoint">Address or number</label><input id="endpoint" name="endpoint" required placeholder="name@example.com or +14155550123">
<label for="sns-services">Services</label><input id="sns-services" name="services" placeholder="every service (or a comma-separated list)">
<label for="sns-severities">Severities</label><input id="sns-severities" name="severities" value="CRITICAL,ERROR" placeholder="CRITICAL,ERROR,WARNING">
<button type="submit" id="sns-subscribe">Subscribe</button>
</form>"#,
        topic = esc(topic),
        csrf = esc(&session.csrf),
    ));
    out
}

fn every(v: &[String]) -> String {
    if v.is_empty() {
        "every".to_string()
    } else {
        v.join(", ")
    }
}

fn table(session: &Session, subs: &[Subscription]) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table id="subscriptions"><caption>Alerts go to these webhooks</caption><thead><tr><th scope="col">id</th><th scope="col">owner</th><th scope="col">webhook</th><th scope="col">services</th><th scope="col">severities</th><th scope="col">since (UTC)</th><th scope="col">delivered</th><th scope="col"></th></tr></thead><tbody>"#,
    );
    let or_every = |v: &[String]| {
        if v.is_empty() {
            "every".to_string()
        } else {
            v.join(", ")
        }
    };
    for s in subs {
        out.push_str(&format!(
            r#"<tr><td>{id}</td><td>{owner}</td><td>{url}</td><td>{services}</td><td>{severities}</td><td>{since}</td><td>{delivered}</td><td><form method="post" action="/ui/subscriptions/remove" class="inline"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}"><button type="submit" class="unsubscribe">Unsubscribe</button></form></td></tr>"#,
            id = s.id,
            owner = esc(&s.owner),
            url = esc(&redact(&s.url)),
            services = esc(&or_every(&s.services)),
            severities = esc(&or_every(&s.severities)),
            since = time(s.created_ms),
            delivered = s.delivered,
            csrf = esc(&session.csrf),
        ));
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The list again after `post`'s user did `action`, audited with `detail`.
pub(super) async fn changed<F>(
    console: &Console,
    post: &Post<F>,
    action: &str,
    detail: &str,
) -> Response {
    post.audit(console, action, "ok", detail).await;
    Redirect::to("/ui/subscriptions").into_response()
}

/// The page again, with `error` and `status`.
pub(super) async fn failed(
    console: &Console,
    session: &Session,
    status: StatusCode,
    error: &str,
) -> Response {
    render(console, session, status, Some(error)).await
}

/// The page again with `error` (503) after the store or SNS failed
/// `post`'s `action`; audited.
pub(super) async fn unavailable<F>(
    console: &Console,
    post: &Post<F>,
    action: &str,
    error: &str,
) -> Response {
    post.audit(console, action, "error", error).await;
    failed(
        console,
        &post.session,
        StatusCode::SERVICE_UNAVAILABLE,
        error,
    )
    .await
}

/// The refusal to remove subscription `what` (`#7`, `sns#7`), which is
/// not `post`'s user's to remove (or does not exist); audited.
pub(super) async fn not_yours<F>(console: &Console, post: &Post<F>, what: &str) -> Response {
    post.audit(
        console,
        "unsubscribe",
        "denied",
        &format!("{what}: none of this user's"),
    )
    .await;
    failed(
        console,
        &post.session,
        StatusCode::NOT_FOUND,
        "no such subscription of yours",
    )
    .await
}

impl CsrfForm for SubscribeForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

impl CsrfForm for RemoveForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /ui/subscriptions`.
pub async fn subscribe(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<SubscribeForm>, FormRejection>,
) -> Response {
    let post = match csrf_post(&console, &parts, form, "subscribe").await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let session = &post.session;
    let url = post.form.url.trim().to_string();
    let services = list(&post.form.services);
    let severities: Vec<String> = list(&post.form.severities)
        .into_iter()
        .map(|s| s.to_ascii_uppercase())
        .collect();
    let bad = check_url(&url).err().or_else(|| {
        severities
            .iter()
            .find(|s| !SEVERITIES.contains(&s.as_str()))
            .map(|s| format!("unknown severity {s:?} (CRITICAL, ERROR or WARNING)"))
    });
    if let Some(bad) = bad {
        return failed(&console, session, StatusCode::BAD_REQUEST, &bad).await;
    }
    let detail = format!(
        "webhook {} services {services:?} severities {severities:?}",
        redact(&url)
    );
    let user = session.user.clone();
    let added = console
        .with_store(move |store| {
            store.subscribe(&user, &url, &services, &severities, wall_clock_ms())
        })
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    match added {
        Ok(id) => changed(&console, &post, "subscribe", &format!("#{id} {detail}")).await,
        Err(e) => unavailable(&console, &post, "subscribe", &e).await,
    }
}

/// `POST /ui/subscriptions/remove`.
pub async fn remove(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Response {
    let post = match csrf_post(&console, &parts, form, "unsubscribe").await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let owner = owner(&post.session);
    let id = post.form.id;
    let removed = console
        .with_store(move |store| store.unsubscribe(id, owner.as_deref()))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    match removed {
        Ok(true) => changed(&console, &post, "unsubscribe", &format!("#{id}")).await,
        Ok(false) => not_yours(&console, &post, &format!("#{id}")).await,
        Err(e) => failed(&console, &post.session, StatusCode::SERVICE_UNAVAILABLE, &e).await,
    }
}
