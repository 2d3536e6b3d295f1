//! The task loops that drive actors and sources under supervision.
//!
//! # Backpressure
//!
//! An actor takes the next batch only after `handle` returned, and `handle` sends
//! downstream with waiting sends, so at most `capacity + 1` batches sit at each
//! stage. While an actor waits out a restart backoff its mailbox fills and the
//! stages before it stall.
//!
//! # Shutdown
//!
//! The loop ends when the mailbox is closed and drained (every upstream dropped
//! its address): the actor is flushed and closed and its outputs dropped. A task
//! aborted by the pipeline (deadline or kill switch) drops its in-flight batch,
//! which fails its ack.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use crate::actor::{Actor, ActorResult, Ctx, Source};
use crate::batch::Payload;
use crate::error::{ActorError, ErrorClass, RetryHint};
use crate::kill_switch::KillSwitch;
use crate::mailbox::{Control, Inbox};
use crate::supervisor::{SupervisorPolicy, backoff_delay};

/// How an actor's task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorExit {
    /// Input drained, flushed and closed (or a source whose input ended).
    Completed,
    /// Gave up: tripped the kill switch with this reason.
    Killed(String),
}

/// Names of the actors whose tasks are still alive.
pub(crate) type Liveness = Arc<Mutex<std::collections::BTreeSet<String>>>;

/// Registers an actor as running until dropped (also when its task is aborted).
pub(crate) struct RunningGuard {
    name: String,
    live: Liveness,
}

impl RunningGuard {
    pub(crate) fn new(name: &str, live: &Liveness) -> Self {
        live.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        RunningGuard {
            name: name.to_string(),
            live: live.clone(),
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.name);
    }
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs a hook future, turning a panic into an internal error.
async fn guarded(fut: impl std::future::Future<Output = ActorResult>) -> ActorResult {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(ActorError::internal(format!(
            "panicked: {}",
            panic_message(panic)
        ))),
    }
}

/// Decides what follows a failure: `Some(delay)` to restart, `None` to give up.
struct Restarts {
    policy: SupervisorPolicy,
    consecutive: u32,
    last_restart: Option<Instant>,
}

impl Restarts {
    fn new(policy: SupervisorPolicy) -> Self {
        Restarts {
            policy,
            consecutive: 0,
            last_restart: None,
        }
    }

    fn next_delay(&mut self, error: &ActorError) -> Option<Duration> {
        if error.retry() == RetryHint::Never {
            return None;
        }
        if self
            .last_restart
            .is_some_and(|at| at.elapsed() >= self.policy.reset_after)
        {
            self.consecutive = 0;
        }
        if self
            .policy
            .max_consecutive_restarts
            .is_some_and(|max| self.consecutive >= max)
        {
            return None;
        }
        let delay = backoff_delay(&self.policy, self.consecutive, rand::random::<f64>());
        let delay = match error.retry() {
            RetryHint::After(at_least) => delay.max(at_least),
            _ => delay,
        };
        self.consecutive += 1;
        self.last_restart = Some(Instant::now() + delay);
        Some(delay)
    }
}

/// Handles a failure: counts it, then either returns the restart delay or trips
/// the kill switch.
fn on_failure<O>(
    ctx: &mut Ctx<O>,
    restarts: &mut Restarts,
    kill: &KillSwitch,
    what: &str,
    error: ActorError,
) -> Result<Duration, ActorExit> {
    ctx.instruments.error(error.class());
    let name = ctx.instruments.stats.name().to_string();
    match restarts.next_delay(&error) {
        Some(delay) => {
            tracing::warn!(actor = %name, %error, ?delay, "{what} failed; restarting");
            Ok(delay)
        }
        None => {
            let reason = format!("{what} failed: {error}");
            tracing::error!(actor = %name, %reason, "unrecoverable; stopping the pipeline");
            kill.trip(&name, reason.clone());
            Err(ActorExit::Killed(reason))
        }
    }
}

enum Step<T> {
    Control(Control),
    Tick,
    Data(crate::batch::Batch<T>),
    Drained,
}

/// Drives an actor: restarts it from `factory` after failures, serves the control
/// lane before data, ticks, and flushes and closes it once its input is drained.
pub(crate) async fn run_actor<A, F>(
    mut factory: F,
    mut inbox: Inbox<A::In>,
    mut ctx: Ctx<A::Out>,
    policy: SupervisorPolicy,
    kill: KillSwitch,
) -> ActorExit
where
    A: Actor,
    F: FnMut() -> A + Send + 'static,
{
    let mut restarts = Restarts::new(policy);
    let Inbox { data, control, .. } = &mut inbox;
    // One receive future lives across iterations and restarts: the channel's
    // receive is not cancel-safe, so it is never dropped while waiting.
    let mut recv = pin!(data.recv());
    'restart: loop {
        let mut actor = factory();
        if let Err(e) = guarded(actor.start(&mut ctx)).await {
            match on_failure(&mut ctx, &mut restarts, &kill, "start", e) {
                Ok(delay) => {
                    tokio::time::sleep(delay).await;
                    ctx.instruments.restarted();
                    continue 'restart;
                }
                Err(exit) => return exit,
            }
        }
        let tick_period = actor.tick_interval();
        let mut next_tick = tick_period.map(|p| Instant::now() + p);
        // True while the receive future may hold a registration: it must then be
        // polled (not bypassed with `try_recv`) until it completes.
        let mut armed = false;
        // End of the previous handle: when the next batch is taken straight from
        // the queue it doubles as that handle's start, saving a clock read.
        let mut last_end: Option<Instant> = None;
        loop {
            // Fast path, while batches are queued: no select, one clock read.
            let mut fast = None;
            if !armed {
                if let Ok(c) = control.try_recv() {
                    fast = Some(Step::Control(c));
                } else if next_tick.is_some_and(|at| Instant::now() >= at) {
                    fast = Some(Step::Tick);
                } else {
                    match data.try_recv() {
                        Ok(Some(batch)) => fast = Some(Step::Data(batch)),
                        Ok(None) => {}
                        Err(_) => fast = Some(Step::Drained),
                    }
                }
            }
            let from_queue = fast.is_some();
            let step = match fast {
                Some(step) => {
                    // Let other tasks on this worker run now and then.
                    tokio::task::consume_budget().await;
                    step
                }
                None => {
                    armed = true;
                    tokio::select! {
                        biased;
                        Some(c) = control.recv() => Step::Control(c),
                        _ = async {
                            match next_tick {
                                Some(at) => tokio::time::sleep_until(at).await,
                                None => std::future::pending::<()>().await,
                            }
                        } => Step::Tick,
                        received = &mut recv => {
                            armed = false;
                            recv.set(data.recv());
                            match received {
                                Ok(batch) => Step::Data(batch),
                                Err(_) => Step::Drained,
                            }
                        }
                    }
                }
            };
            if !matches!(step, Step::Data(_)) {
                last_end = None;
            }
            if let (Step::Tick, Some(period)) = (&step, tick_period) {
                // Delay semantics: the next tick is a full period after this one.
                next_tick = Some(Instant::now() + period);
            }
            let (what, result) = match step {
                Step::Control(Control::Flush(reply)) => {
                    let r = guarded(actor.flush(&mut ctx)).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(());
                    }
                    ("flush", r)
                }
                Step::Tick => ("tick", guarded(actor.tick(&mut ctx)).await),
                Step::Data(batch) => {
                    ctx.instruments.received(batch.payload.len(), || data.len());
                    let started = match last_end {
                        Some(end) if from_queue => end,
                        _ => Instant::now(),
                    };
                    let r = guarded(actor.handle(batch, &mut ctx)).await;
                    last_end = Some(ctx.instruments.handled(started));
                    ("handle", r)
                }
                Step::Drained => {
                    let flushed = guarded(actor.flush(&mut ctx)).await;
                    let closed = guarded(actor.close(&mut ctx)).await;
                    ctx.instruments.publish();
                    for (what, r) in [("final flush", flushed), ("close", closed)] {
                        if let Err(e) = r {
                            ctx.instruments.error(e.class());
                            tracing::error!(actor = ctx.name(), error = %e, "{what} failed");
                            kill.drain_failed(ctx.name(), format!("{what} failed: {e}"));
                        }
                    }
                    return ActorExit::Completed;
                }
            };
            let Err(error) = result else { continue };
            if error.class() == ErrorClass::BadInput && error.retry() != RetryHint::Never {
                // The batch is failed; the actor's state is intact.
                ctx.instruments.error(error.class());
                tracing::warn!(actor = ctx.name(), %error, "bad input; batch failed");
                continue;
            }
            match on_failure(&mut ctx, &mut restarts, &kill, what, error) {
                Ok(delay) => {
                    drop(actor);
                    tokio::time::sleep(delay).await;
                    ctx.instruments.restarted();
                    continue 'restart;
                }
                Err(exit) => return exit,
            }
        }
    }
}

/// Drives a source: restarts it after failures unless a stop was requested.
pub(crate) async fn run_source<S, F>(
    mut factory: F,
    mut ctx: Ctx<S::Out>,
    policy: SupervisorPolicy,
    kill: KillSwitch,
) -> ActorExit
where
    S: Source,
    F: FnMut() -> S + Send + 'static,
{
    let mut restarts = Restarts::new(policy);
    loop {
        let mut source = factory();
        let result = guarded(source.run(&mut ctx)).await;
        ctx.instruments.publish();
        let Err(error) = result else {
            return ActorExit::Completed;
        };
        match on_failure(&mut ctx, &mut restarts, &kill, "run", error) {
            Ok(delay) => {
                drop(source);
                if ctx.stop_requested() {
                    return ActorExit::Completed;
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = ctx.stopped() => return ActorExit::Completed,
                }
                ctx.instruments.restarted();
            }
            Err(exit) => return exit,
        }
    }
}
