//! Waiting for observable state with a deadline: the services under test are
//! other processes or threads, so tests poll what they can see until it holds
//! and fail, naming what they waited for, when the deadline passes.

use std::time::{Duration, Instant};

/// How often the state is looked at.
const POLL: Duration = Duration::from_millis(50);

/// Waits (real time) until `done` holds, failing after `limit` with `what`
/// (formatted only then, so it may describe the state at the deadline).
pub async fn wait_until(
    limit: Duration,
    what: impl std::fmt::Display,
    mut done: impl AsyncFnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `value` until it returns `Some`, failing after `limit` with `what`;
/// the value. For synchronous tests (they run the `spate` binary).
pub fn poll_until<T>(limit: Duration, what: &str, mut value: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = value() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_until_returns_the_first_value_and_fails_at_the_deadline() {
        let mut n = 0;
        let got = poll_until(Duration::from_secs(5), "the third poll", || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, 3);
        let failed = std::panic::catch_unwind(|| {
            poll_until(Duration::from_millis(60), "never", || None::<()>)
        });
        let message = failed.unwrap_err();
        let text = message.downcast_ref::<String>().unwrap();
        assert!(text.contains("waiting for never"), "{text}");
    }
}
