//! Store calls with retries, shared by the alert router's two stores (the
//! [`AlertStore`](super::record::AlertStore) and the
//! [`WindowStore`](super::window_store::WindowStore)): each call runs on the
//! blocking pool (the stores are synchronous: SQLite, or DynamoDB driven from
//! its own runtime), and a failure is retried with exponential backoff as
//! long as its [`AlertStoreError::retry`] hint allows, a bounded number of
//! times.

use std::sync::Arc;
use std::time::Duration;

use spate_engine::RetryHint;

use super::AlertError;
use super::record::AlertStoreError;

/// Attempts at one store call before going on without it.
pub(crate) const STORE_ATTEMPTS: u32 = 4;
/// Delay before the first store retry; doubles each time.
pub(crate) const STORE_BACKOFF: Duration = Duration::from_millis(200);

/// Runs `call` on the blocking pool, retrying a few times with backoff
/// unless the error says retrying is useless; gives up with a log line and
/// `spate_alert_store_failures_total`.
pub(crate) async fn blocking_with_retries<T: Send + 'static>(
    what: &'static str,
    call: impl Fn() -> Result<T, AlertStoreError> + Send + Sync + 'static,
) -> Result<T, AlertError> {
    let call = Arc::new(call);
    let mut delay = STORE_BACKOFF;
    let mut attempts = 1;
    loop {
        let c = call.clone();
        let result = tokio::task::spawn_blocking(move || c())
            .await
            .unwrap_or_else(|e| Err(AlertStoreError::Internal(format!("store call failed: {e}"))));
        match result {
            Ok(v) => return Ok(v),
            Err(e) if attempts < STORE_ATTEMPTS && e.retry() != RetryHint::Never => {
                tracing::warn!(
                    attempt = attempts,
                    "alert store failed to {what}, retrying: {e}"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempts += 1;
            }
            Err(source) => {
                metrics::counter!("spate_alert_store_failures_total").increment(1);
                let e = AlertError::Store {
                    what,
                    attempts,
                    source,
                };
                tracing::error!("{e}");
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use spate_engine::ErrorClass;

    use super::*;

    /// Calls `blocking_with_retries` with a call failing `failures` times
    /// with `error`; returns the result and the calls made.
    async fn calls(failures: u32, error: AlertStoreError) -> (Result<u32, AlertError>, u32) {
        let made = Arc::new(AtomicU32::new(0));
        let m = made.clone();
        let result = blocking_with_retries("record windows and alerts", move || {
            let n = m.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= failures {
                Err(error.clone())
            } else {
                Ok(n)
            }
        })
        .await;
        (result, made.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn external_failures_are_retried_with_backoff_then_given_up() {
        let started = tokio::time::Instant::now();
        let (result, made) = calls(2, AlertStoreError::External("throttled".into())).await;
        assert_eq!((result.unwrap(), made), (3, 3));
        // 200 ms, then 400 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(600));
        let (result, made) = calls(u32::MAX, AlertStoreError::Internal("bug".into())).await;
        let err = result.unwrap_err();
        assert_eq!((made, err.class()), (STORE_ATTEMPTS, ErrorClass::Internal));
    }

    #[tokio::test(start_paused = true)]
    async fn bad_input_is_not_retried_and_keeps_its_class() {
        let bad = AlertStoreError::BadInput("hot store at /x has schema version 9".into());
        let (result, made) = calls(u32::MAX, bad).await;
        let err = result.unwrap_err();
        assert_eq!((made, err.class()), (1, ErrorClass::BadInput));
        assert_eq!(
            err.to_string(),
            "alert store: cannot record windows and alerts, giving up after 1 attempts: \
             hot store at /x has schema version 9"
        );
    }
}
