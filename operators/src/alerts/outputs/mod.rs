//! Where alert notices go: [`stdout`](mod@stdout) (one readable line each), [`file`](mod@file)
//! (NDJSON), [`webhook`] (Slack-compatible JSON, in the background, grouped
//! per service), [`sns`], [`pagerduty`] (Events API v2, in the background).
//!
//! # Backpressure
//!
//! Stdout and file writes are synchronous and small; the webhook only enqueues
//! (a full queue drops and counts), so no output blocks the pipeline.
//!
//! # Shutdown
//!
//! [`AlertOutput::close`] flushes the file and drains the webhook queue within
//! its deadline.

pub mod file;
mod format;
pub mod http_delivery;
pub mod pagerduty;
pub mod sns;
pub mod stdout;
pub mod webhook;

pub use self::format::{format_line, format_utc_minute, format_window, group_by_service};
use super::AlertError;
use super::record::AlertRecord;
use super::routing::OutputName;

/// One configured output.
#[derive(Debug)]
pub enum AlertOutput {
    /// Readable lines on stdout.
    Stdout(stdout::StdoutOutput),
    /// NDJSON appended to a file.
    File(file::FileOutput),
    /// POSTs to a webhook.
    Webhook(webhook::WebhookOutput),
    /// An SNS topic (publishing in the background).
    Sns(sns::SnsOutput),
    /// PagerDuty Events API v2 (in the background).
    Pagerduty(pagerduty::PagerDutyOutput),
}

impl AlertOutput {
    /// Label of the output in metrics (`stdout`, `file`, `webhook`, `sns`,
    /// `pagerduty`).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The output's name in routes.
    pub fn kind(&self) -> OutputName {
        match self {
            AlertOutput::Stdout(_) => OutputName::Stdout,
            AlertOutput::File(_) => OutputName::File,
            AlertOutput::Webhook(_) => OutputName::Webhook,
            AlertOutput::Sns(_) => OutputName::Sns,
            AlertOutput::Pagerduty(_) => OutputName::Pagerduty,
        }
    }

    /// Writes (or enqueues) `alerts`.
    pub fn send(&mut self, alerts: &[AlertRecord]) -> Result<(), AlertError> {
        match self {
            AlertOutput::Stdout(o) => o.send(alerts),
            AlertOutput::File(o) => o.send(alerts),
            AlertOutput::Webhook(o) => {
                o.enqueue_all(alerts);
                Ok(())
            }
            AlertOutput::Pagerduty(o) => {
                o.enqueue_all(alerts);
                Ok(())
            }
            AlertOutput::Sns(o) => {
                alerts.iter().for_each(|a| {
                    o.enqueue(a);
                });
                Ok(())
            }
        }
    }

    /// Flushes and releases the output; the webhook drains its queue first.
    pub async fn close(self) {
        match self {
            AlertOutput::Webhook(o) => o.close().await,
            AlertOutput::Sns(o) => o.close().await,
            AlertOutput::Pagerduty(o) => o.close().await,
            AlertOutput::Stdout(_) | AlertOutput::File(_) => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alerts::record::AlertState;

    /// A firing `error_burst` notice for `api`.
    pub(crate) fn sample_alert(state: AlertState) -> AlertRecord {
        let start = 1_795_428_000_000; // 2026-11-23T10:00Z
        AlertRecord {
            id: format!("error_burst:api:{start}:{}", state.as_str()),
            rule: "error_burst".into(),
            service: "api".into(),
            state,
            severity: "ERROR".into(),
            window_start_ms: start,
            window_end_ms: start + 300_000,
            raised_at_ms: start + 360_000,
            value: 14.0,
            threshold: 10.0,
            message: "14 errors > 10".into(),
        }
    }

    #[test]
    fn line_is_readable() {
        assert_eq!(
            format_line(&sample_alert(AlertState::Firing)),
            "ALERT firing error_burst service=api window=2026-11-23T10:00Z/5m: 14 errors > 10"
        );
    }
}
