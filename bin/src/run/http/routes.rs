//! The routes of the HTTP API and the handlers' wrappers that count each
//! request; `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::auth::unauthorized;
use super::respond::count;
use super::state::HttpState;
use super::{ingest, query, tap};

/// The routes.
pub fn router(state: Arc<HttpState>) -> Router {
    let console = state.console.clone();
    let api = Router::new()
        .route("/v1/logs", post(post_logs))
        .route("/v1/query", post(post_query))
        .route("/v1/tap", get(get_tap))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    match console {
        Some(console) => api.merge(crate::console::router(console)),
        None => api,
    }
}

/// Binds the listener (so the caller can print the real address).
pub async fn bind(listen: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

async fn post_logs(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let started = Instant::now();
    let response = ingest::handle(&state, request).await;
    count("/v1/logs", response.status(), started);
    response
}

async fn post_query(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let started = Instant::now();
    let response = query::handle(&state, request).await;
    count("/v1/query", response.status(), started);
    response
}

async fn get_tap(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    params: axum::extract::Query<Vec<(String, String)>>,
) -> Response {
    let started = Instant::now();
    let response = tap::handle(&state, &headers, params).await;
    count("/v1/tap", response.status(), started);
    response
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    match state.acceptor.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if state.metrics_auth
        && let Some(response) = unauthorized(&state, &headers)
    {
        return response;
    }
    let text = (state.render_metrics)();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::body::BodyRecord;
    use crate::run::http::config::HttpConfig;
    use crate::run::http::serve;
    use crate::run::http::state::{LogAcceptor, Refusal};
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;

    /// Accepts into memory, or refuses as told.
    #[derive(Default)]
    struct Fake {
        accepted: Mutex<Vec<BodyRecord>>,
        refuse: Mutex<Option<Refusal>>,
    }

    impl LogAcceptor for Fake {
        fn accept(
            &self,
            records: Vec<BodyRecord>,
            _key: Option<&str>,
        ) -> BoxFuture<'static, Result<(), Refusal>> {
            let result = match self.refuse.lock().unwrap().clone() {
                Some(r) => Err(r),
                None => {
                    self.accepted.lock().unwrap().extend(records);
                    Ok(())
                }
            };
            Box::pin(async move { result })
        }
        fn ready(&self) -> Result<(), String> {
            match &*self.refuse.lock().unwrap() {
                Some(_) => Err("journal backlog full".into()),
                None => Ok(()),
            }
        }
    }

    async fn serve(config: HttpConfig, token: Option<&str>) -> (String, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        let state = HttpState::new(
            &config,
            config.max_decoded_mib << 20,
            token.map(str::to_string),
            fake.clone(),
            Arc::new(|| "spate_up 1\n".to_string()),
        );
        let (listener, addr) = bind("127.0.0.1:0").await.unwrap();
        let timeouts = serve::ServeTimeouts {
            header: config.header_timeout.get(),
            drain: config.drain_timeout.get(),
        };
        let app = router(Arc::new(state));
        tokio::spawn(serve::serve(
            listener,
            app,
            timeouts,
            std::future::pending(),
        ));
        (format!("http://{addr}"), fake)
    }

    #[tokio::test]
    async fn answers_by_outcome() {
        let (url, fake) = serve(HttpConfig::default(), Some("s3cret")).await;
        let client = reqwest::Client::new();
        let post = |body: &'static [u8], token: Option<&'static str>| {
            let mut r = client.post(format!("{url}/v1/logs")).body(body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let r = post(b"{\"msg\":\"a\"}\n", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["accepted"], 1);
        assert_eq!(fake.accepted.lock().unwrap().len(), 1);

        assert_eq!(post(b"x\n", None).await.unwrap().status(), 401);
        assert_eq!(post(b"x\n", Some("wrong")).await.unwrap().status(), 401);
        let r = post(b"[{\"a\":", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 400);
        let reason = r.json::<serde_json::Value>().await.unwrap();
        assert!(
            reason["error"].as_str().unwrap().contains("JSON array"),
            "{reason}"
        );

        *fake.refuse.lock().unwrap() = Some(Refusal::Saturated {
            reason: "journal backlog full".into(),
        });
        let r = post(b"x\n", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let r = client.get(format!("{url}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        *fake.refuse.lock().unwrap() = Some(Refusal::Unavailable {
            reason: "shutting down".into(),
        });
        let r = post(b"x\n", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        assert_eq!(fake.accepted.lock().unwrap().len(), 1);

        // With a token, /metrics stays open unless metrics_auth is on.
        let r = client.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "spate_up 1\n");
        let r = client.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let config = HttpConfig {
            metrics_auth: true,
            ..HttpConfig::default()
        };
        let (url, _) = serve(config, Some("s3cret")).await;
        let r = client.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = client
            .get(format!("{url}/metrics"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "spate_up 1\n");
    }

    #[tokio::test]
    async fn oversized_bodies_get_413() {
        let config = HttpConfig {
            max_body_mib: 1,
            ..HttpConfig::default()
        };
        let (url, fake) = serve(config, None).await;
        let client = reqwest::Client::new();
        let big = vec![b'a'; (1 << 20) + 10];
        let r = client
            .post(format!("{url}/v1/logs"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        // Without a Content-Length (a stream), the limit still holds.
        let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big)]);
        let r = client
            .post(format!("{url}/v1/logs"))
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert!(fake.accepted.lock().unwrap().is_empty());
    }
}
