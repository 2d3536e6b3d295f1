//! `POST /ui/subscriptions/sns` (an email address or phone number for
//! chosen services and severities: an SNS `Subscribe` with a filter
//! policy) and `POST /ui/subscriptions/sns/remove` (`Unsubscribe`). Both
//! need the session's CSRF token and are audited; the page that lists them
//! is `/ui/subscriptions`.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use spate_operators::event::wall_clock_ms;

use super::guard::signed_in;
use super::subscriptions::{csrf_refused, owner, render};
use crate::console::sns_subscriptions::{NewSnsSubscription, Protocol, check_severities};
use crate::console::subscriptions::list;
use crate::console::{Console, client_of};

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

/// The unsubscribe form's fields.
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    id: i64,
}

/// `POST /ui/subscriptions/sns`.
pub async fn subscribe(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<SnsForm>, FormRejection>,
) -> Response {
    let session = match signed_in(&console, &parts) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let client = client_of(&parts);
    let form = form.ok().map(|Form(f)| f);
    let Some(form) = form.filter(|f| session.csrf_ok(f.csrf.as_deref())) else {
        return csrf_refused(&console, &session, &client, "subscribe").await;
    };
    let Some(sns) = console.sns() else {
        return render(
            &console,
            &session,
            StatusCode::NOT_FOUND,
            Some("email and SMS subscriptions need [alerts.sns]"),
        )
        .await;
    };
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
        Err(bad) => {
            return render(&console, &session, StatusCode::BAD_REQUEST, Some(&bad)).await;
        }
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
            console
                .audit(
                    &session.user,
                    &client,
                    "subscribe",
                    "error",
                    &format!("{detail}: {e}"),
                )
                .await;
            return render(&console, &session, StatusCode::BAD_GATEWAY, Some(&e)).await;
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
            console
                .audit(
                    &session.user,
                    &client,
                    "subscribe",
                    "ok",
                    &format!("sns#{id} {detail} ({arn})"),
                )
                .await;
            Redirect::to("/ui/subscriptions").into_response()
        }
        Err(e) => {
            // Not recorded: undo the SNS subscription rather than leave one
            // nobody can remove from the console.
            if let Err(undo) = sns.unsubscribe(&arn).await {
                tracing::warn!("console: {undo}");
            }
            console
                .audit(&session.user, &client, "subscribe", "error", &e)
                .await;
            render(
                &console,
                &session,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&e),
            )
            .await
        }
    }
}

/// `POST /ui/subscriptions/sns/remove`.
pub async fn remove(
    State(console): State<Arc<Console>>,
    parts: Parts,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Response {
    let session = match signed_in(&console, &parts) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let client = client_of(&parts);
    let form = form.ok().map(|Form(f)| f);
    let Some(form) = form.filter(|f| session.csrf_ok(f.csrf.as_deref())) else {
        return csrf_refused(&console, &session, &client, "unsubscribe").await;
    };
    let Some(sns) = console.sns() else {
        return render(
            &console,
            &session,
            StatusCode::NOT_FOUND,
            Some("email and SMS subscriptions need [alerts.sns]"),
        )
        .await;
    };
    let owner = owner(&session);
    let id = form.id;
    let lookup_owner = owner.clone();
    let found = console
        .with_store(move |store| store.sns_subscriptions(lookup_owner.as_deref()))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map(|subs| subs.into_iter().find(|s| s.id == id));
    let subscription = match found {
        Ok(Some(s)) => s,
        Ok(None) => {
            console
                .audit(
                    &session.user,
                    &client,
                    "unsubscribe",
                    "denied",
                    &format!("sns#{id}: none of this user's"),
                )
                .await;
            return render(
                &console,
                &session,
                StatusCode::NOT_FOUND,
                Some("no such subscription of yours"),
            )
            .await;
        }
        Err(e) => {
            return render(
                &console,
                &session,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&e),
            )
            .await;
        }
    };
    if let Err(e) = sns.unsubscribe(&subscription.arn).await {
        tracing::warn!("console: {e}");
        console
            .audit(
                &session.user,
                &client,
                "unsubscribe",
                "error",
                &format!("sns#{id}: {e}"),
            )
            .await;
        return render(&console, &session, StatusCode::BAD_GATEWAY, Some(&e)).await;
    }
    let removed = console
        .with_store(move |store| store.remove_sns_subscription(id, owner.as_deref()))
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    match removed {
        Ok(_) => {
            console
                .audit(
                    &session.user,
                    &client,
                    "unsubscribe",
                    "ok",
                    &format!(
                        "sns#{id} {} {} ({})",
                        subscription.protocol, subscription.endpoint, subscription.arn
                    ),
                )
                .await;
            Redirect::to("/ui/subscriptions").into_response()
        }
        Err(e) => {
            render(
                &console,
                &session,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&e),
            )
            .await
        }
    }
}
