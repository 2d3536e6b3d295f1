//! `POST /ui/subscriptions/sns` (an email address or phone number for
//! chosen services and severities: an SNS `Subscribe` with a filter
//! policy) and `POST /ui/subscriptions/sns/remove` (`Unsubscribe`). Both
//! need the session's CSRF token and are audited; the page that lists them
//! is `/ui/subscriptions`.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::Response;
use serde::Deserialize;
use spate_operators::event::wall_clock_ms;

use super::guard::{CsrfForm, Post, csrf_post};
use super::subscriptions::{RemoveForm, changed, failed, not_yours, owner, unavailable};
use crate::console::Console;
use crate::console::sns_subscriptions::{
    NewSnsSubscription, Protocol, SnsSubscriber, check_severities,
};
use crate::console::subscriptions::list;

/// The subscribe form's fields.
#[derive(Debug, Deserialize)]
pub struct SnsForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    services: String,
    #[serde(default)]
    severities: String,
}

impl CsrfForm for SnsForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The post to `action` (see [`csrf_post`]) and the SNS subscriber; or
/// the answer, 404 when `[alerts.sns]` is not configured.
async fn sns_post<F: CsrfForm>(
    console: &Console,
    parts: &Parts,
    form: Result<Form<F>, FormRejection>,
    action: &str,
) -> Result<(Post<F>, Arc<SnsSubscriber>), Box<Response>> {
    let post = csrf_post(console, parts, form, action).await?;
    match console.sns() {
        Some(sns) => Ok((post, sns)),
        None => Err(Box::new(
            failed(
                console,
                &post.session,
                StatusCode::NOT_FOUND,
                "email and SMS subscriptions need [alerts.sns]",
            )
            .await,
        )),
    }
}

/// `POST /ui/subscriptions/sns`.
pub async fn subscribe(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<SnsForm>, FormRejection>,
) -> Response {
    let (post, sns) = match sns_post(&console, &parts, form, "subscribe").await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (session, form) = (&post.session, &post.form);
    let endpoint = form.endpoint.trim().to_string();
    let services = list(&form.services);
    let severities: Vec<String> = list(&form.severities)
        .into_iter()
        .map(|s| s.to_ascii_uppercase())
        .collect();
    let checked = Protocol::parse(form.protocol.trim()).and_then(|protocol| {
        protocol.check(&endpoint)?;
        check_severities(&severities)?;
        Ok(protocol)
    });
    let protocol = match checked {
        Ok(p) => p,
        Err(bad) => return failed(&console, session, StatusCode::BAD_REQUEST, &bad).await,
    };
    let detail = format!(
        "{} {endpoint} services {services:?} severities {severities:?}",
        protocol.as_str()
    );
    let arn = match sns
        .subscribe(protocol, &endpoint, &services, &severities)
        .await
    {
        Ok(arn) => arn,
        Err(e) => {
            tracing::warn!("console: {e}");
            post.audit(&console, "subscribe", "error", &format!("{detail}: {e}"))
                .await;
            return failed(&console, session, StatusCode::BAD_GATEWAY, &e).await;
        }
    };
    let user = session.user.clone();
    let stored_arn = arn.clone();
    let added = console
        .with_store(move |store| {
            store.add_sns_subscription(&NewSnsSubscription {
                owner: &user,
                protocol,
                endpoint: &endpoint,
                services: &services,
                severities: &severities,
                arn: &stored_arn,
                now_ms: wall_clock_ms(),
            })
        })
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    match added {
        Ok(id) => {
            let detail = format!("sns#{id} {detail} ({arn})");
            changed(&console, &post, "subscribe", &detail).await
        }
        Err(e) => {
            // Not recorded: undo the SNS subscription rather than leave one
            // nobody can remove from the console.
            if let Err(undo) = sns.unsubscribe(&arn).await {
                tracing::warn!("console: {undo}");
            }
            unavailable(&console, &post, "subscribe", &e).await
        }
    }
}

/// `POST /ui/subscriptions/sns/remove`.
pub async fn remove(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Response {
    let (post, sns) = match sns_post(&console, &parts, form, "unsubscribe").await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let session = &post.session;
    let owner = owner(session);
    let id = post.form.id;
    let lookup_owner = owner.clone();
    let found = console
        .with_store(move |store| store.sns_subscriptions(lookup_owner.as_deref()))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map(|subs| subs.into_iter().find(|s| s.id == id));
    let subscription = match found {
        Ok(Some(s)) => s,
        Ok(None) => return not_yours(&console, &post, &format!("sns#{id}")).await,
        Err(e) => return failed(&console, session, StatusCode::SERVICE_UNAVAILABLE, &e).await,
    };
    if let Err(e) = sns.unsubscribe(&subscription.arn).await {
        tracing::warn!("console: {e}");
        post.audit(&console, "unsubscribe", "error", &format!("sns#{id}: {e}"))
            .await;
        return failed(&console, session, StatusCode::BAD_GATEWAY, &e).await;
    }
    let removed = console
        .with_store(move |store| store.remove_sns_subscription(id, owner.as_deref()))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    match removed {
        Ok(_) => {
            let detail = format!(
                "sns#{id} {} {} ({})",
                subscription.protocol, subscription.endpoint, subscription.arn
            );
            changed(&console, &post, "unsubscribe", &detail).await
        }
        Err(e) => failed(&console, session, StatusCode::SERVICE_UNAVAILABLE, &e).await,
    }
}
