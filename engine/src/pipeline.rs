//! A running pipeline: its tasks, its stop and kill switches, its stats.
//!
//! # Shutdown
//!
//! [`Pipeline::stop`] asks the sources to stop; each returns from `run`, drops its
//! outputs, and the graph drains stage by stage (each actor flushes and closes
//! once its mailbox is empty and its upstreams are gone). [`Pipeline::shutdown`]
//! does that within a deadline and aborts whatever is still running when it
//! passes; aborted batches fail their acks, so sources redeliver them.
//! [`Pipeline::run_until_signal`] ties this to SIGTERM/SIGINT: the first signal
//! drains, a second one aborts at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::kill_switch::KillSwitch;
use crate::lag::{LagSnapshot, SourceLag};
use crate::mailbox::Control;
use crate::runtime::{ActorExit, Liveness};
use crate::stats::{ActorStats, StatsSnapshot};

/// Why a pipeline did not end cleanly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// An actor tripped the kill switch.
    #[error("pipeline killed by actor {actor}: {reason}")]
    Killed {
        /// The actor that gave up.
        actor: String,
        /// Why.
        reason: String,
    },
    /// The drain did not finish within the deadline; these were aborted.
    #[error("shutdown deadline of {deadline:?} passed; aborted {still_running:?}")]
    DeadlineExceeded {
        /// The deadline that passed.
        deadline: Duration,
        /// Actors still running when it passed.
        still_running: Vec<String>,
    },
    /// An actor could not flush or close at the end of its input (what it
    /// held was not delivered; its sources were not acknowledged for it).
    #[error("actor {actor} could not finish: {reason}")]
    DrainFailed {
        /// The actor.
        actor: String,
        /// Why.
        reason: String,
    },
    /// A second signal arrived during the drain; everything was aborted.
    #[error("interrupted by a second signal during shutdown; aborted {still_running:?}")]
    Interrupted {
        /// Actors still running when it arrived.
        still_running: Vec<String>,
    },
}

/// Final counters of every actor, in topological order.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    /// One snapshot per actor.
    pub actors: Vec<StatsSnapshot>,
}

impl PipelineReport {
    /// The snapshot of the actor `name`.
    pub fn actor(&self, name: &str) -> Option<&StatsSnapshot> {
        self.actors.iter().find(|s| s.name == name)
    }
}

/// A spawned pipeline. Dropping it aborts every task.
pub struct Pipeline {
    pub(crate) tasks: JoinSet<(String, ActorExit)>,
    pub(crate) stop: CancellationToken,
    pub(crate) kill: KillSwitch,
    pub(crate) stats: Vec<Arc<ActorStats>>,
    /// The lag ledger of each source, by name.
    pub(crate) lags: Vec<(String, Arc<SourceLag>)>,
    pub(crate) controls: Vec<(String, tokio::sync::mpsc::Sender<Control>)>,
    pub(crate) live: Liveness,
}

impl Pipeline {
    /// Asks every source to stop; the graph then drains by itself.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The kill switch shared by every actor.
    pub fn kill_switch(&self) -> KillSwitch {
        self.kill.clone()
    }

    /// What the source `name` has sent and not yet heard a verdict for.
    pub fn source_lag(&self, name: &str) -> Option<LagSnapshot> {
        self.lags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, lag)| lag.snapshot())
    }

    /// Names of the actors whose tasks are still running.
    pub fn running_actors(&self) -> Vec<String> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Current counters of every actor, in topological order.
    pub fn stats(&self) -> Vec<StatsSnapshot> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// Asks every actor (not sources), in topological order, to flush and waits
    /// until each has.
    pub async fn flush(&self) {
        for (_, control) in &self.controls {
            flush_via(control).await;
        }
    }

    /// Asks one actor (every worker of a pool) to flush, served before its
    /// queued data, and waits until it has; false if no running actor has that
    /// name.
    pub async fn flush_actor(&self, name: &str) -> bool {
        let mut found = false;
        for (_, control) in self.controls.iter().filter(|(n, _)| n == name) {
            found = flush_via(control).await;
        }
        found
    }

    pub(crate) fn liveness(&self) -> Liveness {
        self.live.clone()
    }

    /// Waits until every task has ended: sources finished and the graph drained,
    /// or the kill switch tripped (then everything is aborted).
    pub async fn join(mut self) -> Result<PipelineReport, PipelineError> {
        loop {
            tokio::select! {
                biased;
                _ = self.kill.tripped() => {
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                    return Err(self.killed_error());
                }
                next = self.tasks.join_next() => match next {
                    Some(_) => continue,
                    None => break,
                }
            }
        }
        if self.kill.is_tripped() {
            return Err(self.killed_error());
        }
        if let Some((actor, reason)) = self.kill.drain_failure() {
            return Err(PipelineError::DrainFailed { actor, reason });
        }
        Ok(self.report())
    }

    /// Stops the sources and waits for the drain, aborting everything still
    /// running after `deadline`.
    pub async fn shutdown(mut self, deadline: Duration) -> Result<PipelineReport, PipelineError> {
        self.stop();
        let live = self.liveness();
        let kill = self.kill.clone();
        let stats = self.stats.clone();
        let mut tasks = std::mem::take(&mut self.tasks);
        let drained = tokio::time::timeout(deadline, async {
            loop {
                tokio::select! {
                    biased;
                    _ = kill.tripped() => return,
                    next = tasks.join_next() => if next.is_none() { return },
                }
            }
        })
        .await;
        let still_running = names(&live);
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        if kill.is_tripped() {
            return Err(self.killed_error());
        }
        if drained.is_err() {
            return Err(PipelineError::DeadlineExceeded {
                deadline,
                still_running,
            });
        }
        if let Some((actor, reason)) = kill.drain_failure() {
            return Err(PipelineError::DrainFailed { actor, reason });
        }
        Ok(PipelineReport {
            actors: stats.iter().map(|s| s.snapshot()).collect(),
        })
    }

    /// Runs until the sources finish or a shutdown signal arrives on `signals`;
    /// then drains within `deadline`. A second signal during the drain aborts
    /// everything at once ([`PipelineError::Interrupted`]).
    ///
    /// Pass [`crate::signals::listen`] in production, or any channel in tests.
    pub async fn run_until_signal(
        mut self,
        signals: &mut tokio::sync::mpsc::Receiver<()>,
        deadline: Duration,
    ) -> Result<PipelineReport, PipelineError> {
        // Phase 1: run until the graph ends by itself, the kill switch, or a signal.
        let kill = self.kill.clone();
        loop {
            tokio::select! {
                biased;
                _ = kill.tripped() => return self.join().await,
                Some(()) = signals.recv() => break,
                next = self.tasks.join_next() => if next.is_none() { return self.join().await },
            }
        }
        tracing::info!(?deadline, "shutdown signal received; draining");
        // Phase 2: drain, unless a second signal says to stop now.
        let live = self.liveness();
        let stop = self.stop.clone();
        let drain = self.shutdown(deadline);
        tokio::pin!(drain);
        tokio::select! {
            result = &mut drain => result,
            Some(()) = signals.recv() => {
                stop.cancel();
                let still_running = names(&live);
                Err(PipelineError::Interrupted { still_running })
            }
        }
    }

    fn killed_error(&self) -> PipelineError {
        let (actor, reason) = self
            .kill
            .reason()
            .unwrap_or_else(|| ("unknown".into(), "kill switch tripped".into()));
        PipelineError::Killed { actor, reason }
    }

    fn report(&self) -> PipelineReport {
        PipelineReport {
            actors: self.stats(),
        }
    }
}

async fn flush_via(control: &tokio::sync::mpsc::Sender<Control>) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    control.send(Control::Flush(Some(tx))).await.is_ok() && rx.await.is_ok()
}

fn names(live: &Liveness) -> Vec<String> {
    live.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}
