//! The operator traits: [`Actor`] handles batches, [`Source`] produces them.
//!
//! Both get a [`Ctx`] to send batches downstream. An actor has one required
//! method, [`Actor::handle`]; the hooks `start`, `tick`, `flush` and `close` have
//! defaults that do nothing.
//!
//! # Backpressure
//!
//! [`Ctx::send`] waits while a downstream mailbox is full, so a slow sink stalls
//! every stage before it, up to the sources. The time spent waiting is recorded
//! as the actor's backpressure time.
//!
//! # Shutdown
//!
//! A source returns from [`Source::run`] when [`Ctx::stop_requested`] fires (or
//! its input ends). An actor sees its mailbox close once every upstream is done;
//! the runtime then calls `flush` and `close` and drops its outputs, so shutdown
//! flows through the graph in topological order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::batch::{Batch, Payload};
use crate::error::ActorError;
use crate::kill_switch::KillSwitch;
use crate::lag::SourceLag;
use crate::route::Route;
use crate::stats::Instruments;

/// Result of an actor hook.
pub type ActorResult = Result<(), ActorError>;

/// A stage of the pipeline: owns its state and handles one batch at a time.
///
/// ```
/// use spate_engine::{Actor, ActorResult, Batch, Ctx};
///
/// /// Keeps only even numbers.
/// struct Evens;
///
/// impl Actor for Evens {
///     type In = Vec<u64>;
///     type Out = Vec<u64>;
///     async fn handle(&mut self, batch: Batch<Vec<u64>>, ctx: &mut Ctx<Vec<u64>>) -> ActorResult {
///         let out = batch.map(|v| v.into_iter().filter(|x| x % 2 == 0).collect::<Vec<_>>());
///         ctx.send(out).await
///     }
/// }
/// ```
pub trait Actor: Send + 'static {
    /// Payload this actor receives.
    type In: Payload;
    /// Payload it sends downstream ([`NoOutput`](crate::NoOutput) for sinks).
    type Out: Payload + Clone;

    /// Handles one batch. Settle its ack (sinks) or pass it on inside the output
    /// batch (transforms); returning an error fails whatever was not passed on.
    fn handle(
        &mut self,
        batch: Batch<Self::In>,
        ctx: &mut Ctx<Self::Out>,
    ) -> impl Future<Output = ActorResult> + Send;

    /// Called once before the first batch, and again after every restart.
    fn start(&mut self, _ctx: &mut Ctx<Self::Out>) -> impl Future<Output = ActorResult> + Send {
        async { Ok(()) }
    }

    /// Period of [`Actor::tick`]; `None` (the default) disables ticks.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Actor::tick_interval`] of tokio time, between batches.
    fn tick(&mut self, _ctx: &mut Ctx<Self::Out>) -> impl Future<Output = ActorResult> + Send {
        async { Ok(()) }
    }

    /// Writes out anything buffered (asked for on the control lane, and at shutdown).
    fn flush(&mut self, _ctx: &mut Ctx<Self::Out>) -> impl Future<Output = ActorResult> + Send {
        async { Ok(()) }
    }

    /// Called once when the actor's input is drained, after the final flush.
    fn close(&mut self, _ctx: &mut Ctx<Self::Out>) -> impl Future<Output = ActorResult> + Send {
        async { Ok(()) }
    }
}

/// Where batches come from: a queue poller, an HTTP listener, a file reader.
///
/// ```
/// use spate_engine::{ActorResult, Batch, Ctx, Source};
///
/// /// Emits 0..n in batches of 10, then ends.
/// struct Count(u64);
///
/// impl Source for Count {
///     type Out = Vec<u64>;
///     async fn run(&mut self, ctx: &mut Ctx<Vec<u64>>) -> ActorResult {
///         let mut next = 0;
///         while next < self.0 && !ctx.stop_requested() {
///             let end = (next + 10).min(self.0);
///             ctx.send(Batch::unacked((next..end).collect())).await?;
///             next = end;
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Source: Send + 'static {
    /// Payload the source emits.
    type Out: Payload + Clone;

    /// Produces batches until the input ends or a stop is requested. Returning
    /// `Ok` ends the source; an error restarts it with backoff.
    fn run(&mut self, ctx: &mut Ctx<Self::Out>) -> impl Future<Output = ActorResult> + Send;
}

/// What an actor or source can do besides handling its input.
pub struct Ctx<O> {
    name: Arc<str>,
    outputs: Vec<Route<O>>,
    pub(crate) instruments: Instruments,
    stop: CancellationToken,
    kill: KillSwitch,
    /// The source's ledger of batches awaiting a verdict (sources only).
    lag: Option<Arc<SourceLag>>,
}

impl<O: Payload + Clone> Ctx<O> {
    pub(crate) fn new(
        name: Arc<str>,
        outputs: Vec<Route<O>>,
        instruments: Instruments,
        stop: CancellationToken,
        kill: KillSwitch,
    ) -> Self {
        Ctx {
            name,
            outputs,
            instruments,
            stop,
            kill,
            lag: None,
        }
    }

    /// Tracks every acked batch sent through this context in `lag` (the
    /// context of a source).
    pub(crate) fn with_lag(mut self, lag: Arc<SourceLag>) -> Self {
        self.lag = Some(lag);
        self
    }

    /// Records a source's batch in its lag ledger, accepted at `accepted`.
    #[inline]
    fn track(&self, batch: &Batch<O>, accepted: Option<tokio::time::Instant>) {
        if let Some(lag) = &self.lag
            && !batch.ack.is_empty()
        {
            batch.ack.track_lag(|| {
                let accepted = accepted.unwrap_or_else(tokio::time::Instant::now);
                lag.track(
                    accepted,
                    batch.payload.len() as u64,
                    batch.payload.bytes() as u64,
                )
            });
        }
    }

    /// Name of this actor in the graph.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of downstream routes (a keyed group counts once).
    pub fn fan_out(&self) -> usize {
        self.outputs.len()
    }

    /// Sends a batch downstream, waiting while a mailbox is full: a copy to
    /// every actor connected with [`GraphBuilder::connect`], and to a keyed
    /// group ([`GraphBuilder::connect_keyed`]) the parts of the batch split by
    /// key, each to the actor that owns it. Every copy and part holds a share
    /// of the batch's ack, so the source hears `Delivered` only when all of
    /// them were delivered.
    ///
    /// With no downstream the batch is dropped and its ack fails.
    ///
    /// [`GraphBuilder::connect`]: crate::GraphBuilder::connect
    /// [`GraphBuilder::connect_keyed`]: crate::GraphBuilder::connect_keyed
    ///
    /// In a source, an acked batch counts in the source's lag from now until
    /// its verdict (see [`lag`](crate::lag)).
    pub async fn send(&mut self, batch: Batch<O>) -> ActorResult {
        self.track(&batch, None);
        self.send_tracked(batch).await
    }

    /// [`Ctx::send`] for a source whose data was accepted earlier than now
    /// (an HTTP push answered before the source read it back): the source's
    /// lag counts from `accepted`.
    pub async fn send_accepted(
        &mut self,
        batch: Batch<O>,
        accepted: tokio::time::Instant,
    ) -> ActorResult {
        self.track(&batch, Some(accepted));
        self.send_tracked(batch).await
    }

    async fn send_tracked(&mut self, batch: Batch<O>) -> ActorResult {
        let Ctx {
            outputs,
            instruments,
            name,
            ..
        } = self;
        let Some((last, rest)) = outputs.split_last() else {
            return Err(ActorError::internal(format!(
                "actor {name} has no downstream to send to"
            )));
        };
        let mut sent = |events, blocked| instruments.sent(events, blocked);
        for route in rest {
            route.send(batch.share(), &mut sent).await?;
        }
        last.send(batch, &mut sent).await
    }

    /// True once the pipeline asked sources to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves when the pipeline asks sources to stop.
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }

    /// Stops the whole pipeline at once: an unrecoverable failure.
    pub fn kill(&self, reason: impl Into<String>) {
        self.kill.trip(&self.name, reason.into());
    }

    /// Total mailbox depth of the downstream actors.
    pub fn downstream_depth(&self) -> usize {
        self.outputs.iter().map(Route::depth).sum()
    }
}
