//! One retry loop for the S3 and Glue calls of the S3 lake.

use std::time::Duration;

/// Runs an AWS SDK `request` until it succeeds or `max_attempts` are used,
/// sleeping `delay(attempt)` after each failed attempt but the last;
/// `failed(attempt, message)` sees every failure (to count and log it). On
/// giving up: the attempts made and the last error with its context.
pub(super) async fn retry_sdk_request<T, E, F, Fut>(
    max_attempts: u32,
    delay: fn(u32) -> Duration,
    mut request: F,
    mut failed: impl FnMut(u32, &str),
) -> Result<T, (u32, String)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let message = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                failed(attempt, &message);
                if attempt >= max_attempts {
                    return Err((attempt, message));
                }
                tokio::time::sleep(delay(attempt)).await;
                attempt += 1;
            }
        }
    }
}
