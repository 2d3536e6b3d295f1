//! The kill switch: stops the whole pipeline at once on an unrecoverable
//! failure, and remembers a failed drain. At the bottom of the engine's
//! import graph: actors, the runtime and the pipeline all hold one.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Stops the whole pipeline at once on an unrecoverable failure.
#[derive(Clone, Debug, Default)]
pub struct KillSwitch {
    token: CancellationToken,
    reason: Arc<Mutex<Option<(String, String)>>>,
    drain_failure: Arc<Mutex<Option<(String, String)>>>,
}

impl KillSwitch {
    /// Trips the switch; the first reason wins.
    pub fn trip(&self, actor: &str, reason: String) {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert((actor.to_string(), reason));
        self.token.cancel();
    }

    /// True once tripped.
    pub fn is_tripped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The actor and reason that tripped it.
    pub fn reason(&self) -> Option<(String, String)> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) async fn tripped(&self) {
        self.token.cancelled().await
    }

    /// Records that an actor's final flush or close failed: the others'
    /// drain goes on, and the pipeline then ends with
    /// [`PipelineError::DrainFailed`](crate::PipelineError::DrainFailed) (the
    /// first failure wins).
    pub fn drain_failed(&self, actor: &str, reason: String) {
        self.drain_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert((actor.to_string(), reason));
    }

    /// The actor and reason of the first failed drain, to report once every
    /// actor has ended.
    pub(crate) fn drain_failure(&self) -> Option<(String, String)> {
        self.drain_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
