//! The HTTP/1.1 server loop of `spate run`: accepts connections and serves
//! the router on each, with a header timeout, and at shutdown a drain
//! deadline after which the connections still open are closed.
//!
//! (`axum::serve` has neither: a client that sends its headers slowly, or
//! never finishes a body, would hold its connection, and shutdown would wait
//! for it.)
//!
//! # Shutdown
//!
//! When `shutdown` completes the listener closes, idle keep-alive
//! connections close at once, requests in progress get `drain_timeout` to
//! finish and be answered; then the connections still open are dropped (a
//! request whose append was already queued in the journal is still
//! committed; its client, not answered, retries).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::unread::close_if_body_unread;

/// Timeouts of the server loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeTimeouts {
    /// Time a client has to send a request's headers (from the connection's
    /// start, or from the end of the previous response on a kept-alive one).
    pub header: Duration,
    /// Time requests in progress get at shutdown.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains
/// (see the module docs).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: ServeTimeouts,
    shutdown: impl Future<Output = ()>,
) {
    let (closing, closing_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(
                        stream,
                        peer,
                        router.clone(),
                        timeouts.header,
                        closing_seen.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(error = %e, "http: accept failed");
                    metrics::counter!("spate_http_accept_errors_total").increment(1);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    closing.send_replace(true);
    let drained = tokio::time::timeout(timeouts.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let open = connections.len();
        eprintln!(
            "spate: closing {open} connection(s) still open after the {}s drain deadline (http.drain_timeout)",
            timeouts.drain.as_secs_f64()
        );
        metrics::counter!("spate_http_connections_cut_total").increment(open as u64);
        connections.shutdown().await;
    }
}

/// Serves one connection; its requests carry the peer's address
/// (`ConnectInfo<SocketAddr>`, for the audit trail).
async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    header_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let router = router
        .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
        .layer(axum::middleware::from_fn(close_if_body_unread));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|closing| *closing) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;

    use tokio::sync::Notify;

    use axum::routing::get;

    type Started = (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    );

    /// A server with `/` and `/slow` (which notifies `entered`, then never
    /// answers).
    async fn start(timeouts: ServeTimeouts, entered: Arc<Notify>) -> Started {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let router = Router::new().route("/", get(|| async { "ok" })).route(
            "/slow",
            get(move || async move {
                entered.notify_one();
                std::future::pending::<()>().await;
                "never"
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, timeouts, async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    #[tokio::test]
    async fn headers_sent_too_slowly_close_the_connection() {
        let timeouts = ServeTimeouts {
            header: Duration::from_millis(300),
            drain: Duration::from_secs(5),
        };
        let (addr, stop, server) = start(timeouts, Arc::default()).await;
        let got = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            let started = std::time::Instant::now();
            let mut rest = Vec::new();
            // The server closes (EOF, or a reset) instead of waiting.
            let _ = stream.read_to_end(&mut rest);
            (started.elapsed(), rest)
        })
        .await
        .unwrap();
        assert!(got.0 < Duration::from_secs(5), "{:?}", got.0);
        assert!(!String::from_utf8_lossy(&got.1).contains("200 OK"));
        let _ = stop.send(());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_waits_no_longer_than_the_drain_deadline() {
        let timeouts = ServeTimeouts {
            header: Duration::from_secs(30),
            drain: Duration::from_millis(300),
        };
        let entered = Arc::new(Notify::new());
        let (addr, stop, server) = start(timeouts, entered.clone()).await;
        // One request that never finishes, one idle kept-alive connection.
        let url = format!("http://{addr}");
        let slow = tokio::spawn({
            let url = url.clone();
            async move { reqwest::get(format!("{url}/slow")).await }
        });
        let r = reqwest::get(format!("{url}/")).await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        entered.notified().await;
        let started = std::time::Instant::now();
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops at its drain deadline")
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(slow.await.unwrap().is_err(), "the slow request was cut");
    }
}
