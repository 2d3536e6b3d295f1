//! Responses given before the request's body was read say
//! `Connection: close`.
//!
//! A handler may answer without reading the body: a replayed
//! `Idempotency-Key`, a failed authorization, a declared length over the
//! limit. hyper then cannot find where the next request on the connection
//! starts and closes the connection after the response, but without telling
//! the client. A client that pools connections sends its next request on the
//! closed one and gets a broken connection instead of an answer (seen as
//! hyper's `IncompleteMessage` in a test that replays keyed pushes). Saying
//! `Connection: close` makes the client open a new connection instead.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::Stream;

/// Middleware: runs the request and adds `Connection: close` to its response
/// when the request had a body that was not read to its end.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let tracked = Tracked {
        inner: body.into_data_stream(),
        finished: finished.clone(),
    };
    let mut response = next
        .run(Request::from_parts(parts, Body::from_stream(tracked)))
        .await;
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A body stream that records when it reached its end.
struct Tracked {
    inner: BodyDataStream,
    finished: Arc<AtomicBool>,
}

impl Stream for Tracked {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = polled {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `/read` (reads the body) and `/skip` (answers without it) and
    /// returns the raw response head to a POST of `body` at `path`.
    async fn response_head(path: &str, body: &str) -> String {
        let app = Router::new()
            .route(
                "/read",
                post(|body: Bytes| async move { format!("{}", body.len()) }),
            )
            .route("/skip", post(|| async { "skipped" }))
            .layer(axum::middleware::from_fn(close_if_body_unread));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut head = String::new();
        while !head.contains("\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a response: {head:?}");
            head.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        head.to_ascii_lowercase()
    }

    #[tokio::test]
    async fn an_answer_before_the_body_was_read_closes_the_connection() {
        let head = response_head("/skip", "some body").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
    }

    #[tokio::test]
    async fn a_read_body_or_none_keeps_the_connection() {
        let read = response_head("/read", "some body").await;
        assert!(read.starts_with("http/1.1 200"), "{read}");
        assert!(!read.contains("connection: close"), "{read}");
        let empty = response_head("/skip", "").await;
        assert!(!empty.contains("connection: close"), "{empty}");
    }
}
