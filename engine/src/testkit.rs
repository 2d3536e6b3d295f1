//! Fixtures for testing actors and pipelines (feature `testkit`).
//!
//! - [`ScriptedSource`]: emits given payloads, each with its own ack, and records
//!   the verdicts and how many batches were in flight at most.
//! - [`CaptureSink`]: collects what reaches it and settles acks as scripted
//!   (deliver, fail, panic), optionally slowed by a delay or held at a gate.
//! - [`Forward`]: a pass-through transform.
//! - [`LeakCheck`]: fails the test if actors are still running when it drops.
//!
//! Run timing tests with `#[tokio::test(start_paused = true)]`: sleeps and
//! timeouts then advance a virtual clock instantly and deterministically.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ack::{Ack, AckToken, Verdict};
use crate::actor::{Actor, ActorResult, Ctx, Source};
use crate::batch::{Batch, NoOutput, Payload};
use crate::error::ActorError;
use crate::pipeline::Pipeline;
use crate::runtime::Liveness;

/// What a [`ScriptedSource`] saw happen to its batches.
#[derive(Debug, Default)]
pub struct SourceLog {
    /// Verdicts in the order they arrived.
    pub verdicts: Mutex<Vec<Verdict>>,
    /// Batches sent whose verdict has not arrived.
    pub in_flight: AtomicUsize,
    /// The largest `in_flight` seen.
    pub max_in_flight: AtomicUsize,
    /// Batches sent.
    pub sent: AtomicUsize,
}

impl SourceLog {
    /// Verdicts so far.
    pub fn verdicts(&self) -> Vec<Verdict> {
        self.verdicts.lock().unwrap().clone()
    }

    /// Number of delivered verdicts.
    pub fn delivered(&self) -> usize {
        self.verdicts().iter().filter(|v| v.is_delivered()).count()
    }

    /// Number of failed verdicts.
    pub fn failed(&self) -> usize {
        self.verdicts().iter().filter(|v| !v.is_delivered()).count()
    }
}

/// A source that sends scripted payloads, then ends (or waits for a stop).
pub struct ScriptedSource<T> {
    script: Arc<Mutex<VecDeque<T>>>,
    log: Arc<SourceLog>,
    wait_for_stop: bool,
}

impl<T> Clone for ScriptedSource<T> {
    fn clone(&self) -> Self {
        ScriptedSource {
            script: self.script.clone(),
            log: self.log.clone(),
            wait_for_stop: self.wait_for_stop,
        }
    }
}

impl<T: Payload + Clone> ScriptedSource<T> {
    /// A source sending `payloads` in order, one batch each.
    pub fn new(payloads: impl IntoIterator<Item = T>) -> Self {
        ScriptedSource {
            script: Arc::new(Mutex::new(payloads.into_iter().collect())),
            log: Arc::default(),
            wait_for_stop: false,
        }
    }

    /// After the script, keep running until the pipeline asks sources to stop.
    pub fn until_stopped(mut self) -> Self {
        self.wait_for_stop = true;
        self
    }

    /// The shared log of verdicts.
    pub fn log(&self) -> Arc<SourceLog> {
        self.log.clone()
    }

    fn token(&self) -> AckToken {
        let log = self.log.clone();
        let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        log.max_in_flight.fetch_max(now, Ordering::SeqCst);
        log.sent.fetch_add(1, Ordering::SeqCst);
        AckToken::new(move |v| {
            log.in_flight.fetch_sub(1, Ordering::SeqCst);
            log.verdicts.lock().unwrap().push(v);
        })
    }
}

impl<T: Payload + Clone> Source for ScriptedSource<T> {
    type Out = T;

    async fn run(&mut self, ctx: &mut Ctx<T>) -> ActorResult {
        loop {
            if ctx.stop_requested() {
                return Ok(());
            }
            let next = self.script.lock().unwrap().pop_front();
            let Some(payload) = next else { break };
            ctx.send(Batch::new(payload, Ack::from(self.token())))
                .await?;
        }
        if self.wait_for_stop {
            ctx.stopped().await;
        }
        Ok(())
    }
}

/// How a [`CaptureSink`] settles batch number `n` (counting from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkStep {
    /// Commit it.
    Deliver,
    /// Fail its ack and keep running.
    Fail,
    /// Return an external error (the actor restarts).
    Error,
    /// Panic (the actor restarts).
    Panic,
}

/// Shared state of a [`CaptureSink`], readable by the test.
pub struct SinkState<T> {
    /// Payloads committed, in order.
    pub delivered: Mutex<Vec<T>>,
    /// Batches seen (whatever happened to them).
    pub seen: AtomicUsize,
    /// Number of times the actor was (re)started.
    pub starts: AtomicUsize,
    /// Number of flushes.
    pub flushes: AtomicUsize,
    /// Number of closes.
    pub closes: AtomicUsize,
    script: Mutex<VecDeque<SinkStep>>,
    gate: tokio::sync::Semaphore,
    gated: bool,
    delay: Duration,
}

/// A sink that records what reaches it and settles acks as scripted.
pub struct CaptureSink<T> {
    state: Arc<SinkState<T>>,
}

impl<T> Clone for CaptureSink<T> {
    fn clone(&self) -> Self {
        CaptureSink {
            state: self.state.clone(),
        }
    }
}

impl<T: Payload + Clone> CaptureSink<T> {
    /// A sink that delivers everything at once.
    pub fn new() -> Self {
        Self::build(Vec::new(), false, Duration::ZERO)
    }

    /// A sink following `steps` for its first batches, delivering the rest.
    pub fn scripted(steps: impl IntoIterator<Item = SinkStep>) -> Self {
        Self::build(steps.into_iter().collect(), false, Duration::ZERO)
    }

    /// A sink that takes `delay` of tokio time per batch.
    pub fn slow(delay: Duration) -> Self {
        Self::build(Vec::new(), false, delay)
    }

    /// A sink that handles a batch only after [`CaptureSink::open`] grants it.
    pub fn gated() -> Self {
        Self::build(Vec::new(), true, Duration::ZERO)
    }

    fn build(steps: Vec<SinkStep>, gated: bool, delay: Duration) -> Self {
        CaptureSink {
            state: Arc::new(SinkState {
                delivered: Mutex::new(Vec::new()),
                seen: AtomicUsize::new(0),
                starts: AtomicUsize::new(0),
                flushes: AtomicUsize::new(0),
                closes: AtomicUsize::new(0),
                script: Mutex::new(steps.into()),
                gate: tokio::sync::Semaphore::new(0),
                gated,
                delay,
            }),
        }
    }

    /// Lets `batches` more batches through a gated sink.
    pub fn open(&self, batches: usize) {
        self.state.gate.add_permits(batches);
    }

    /// The shared state.
    pub fn state(&self) -> Arc<SinkState<T>> {
        self.state.clone()
    }

    /// Payloads committed so far.
    pub fn delivered(&self) -> Vec<T> {
        self.state.delivered.lock().unwrap().clone()
    }
}

impl<T: Payload + Clone> Default for CaptureSink<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Payload + Clone> Actor for CaptureSink<T> {
    type In = T;
    type Out = NoOutput;

    async fn start(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.state.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn handle(&mut self, batch: Batch<T>, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        if self.state.gated {
            self.state
                .gate
                .acquire()
                .await
                .map_err(|_| ActorError::internal("gate closed"))?
                .forget();
        }
        if !self.state.delay.is_zero() {
            tokio::time::sleep(self.state.delay).await;
        }
        self.state.seen.fetch_add(1, Ordering::SeqCst);
        let step = self
            .state
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(SinkStep::Deliver);
        match step {
            SinkStep::Deliver => {
                self.state
                    .delivered
                    .lock()
                    .unwrap()
                    .push(batch.payload.clone());
                batch.deliver();
                Ok(())
            }
            SinkStep::Fail => {
                batch.fail("scripted failure");
                Ok(())
            }
            SinkStep::Error => Err(ActorError::external("scripted sink error")),
            SinkStep::Panic => panic!("scripted sink panic"),
        }
    }

    async fn flush(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.state.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn close(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.state.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A transform that passes every batch through unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct Forward<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Forward<T> {
    /// A pass-through stage.
    pub fn new() -> Self {
        Forward(std::marker::PhantomData)
    }
}

impl<T: Payload + Clone> Actor for Forward<T> {
    type In = T;
    type Out = T;

    async fn handle(&mut self, batch: Batch<T>, ctx: &mut Ctx<T>) -> ActorResult {
        ctx.send(batch).await
    }
}

/// A transform that takes `delay` of tokio time per batch, then passes it on.
#[derive(Debug, Clone, Copy)]
pub struct ForwardSlow<T> {
    delay: Duration,
    _payload: std::marker::PhantomData<fn() -> T>,
}

impl<T> ForwardSlow<T> {
    /// A pass-through stage taking `delay` per batch.
    pub fn new(delay: Duration) -> Self {
        ForwardSlow {
            delay,
            _payload: std::marker::PhantomData,
        }
    }
}

impl<T: Payload + Clone> Actor for ForwardSlow<T> {
    type In = T;
    type Out = T;

    async fn handle(&mut self, batch: Batch<T>, ctx: &mut Ctx<T>) -> ActorResult {
        tokio::time::sleep(self.delay).await;
        ctx.send(batch).await
    }
}

/// Fails the test if any actor of the pipeline is still running when dropped.
///
/// Create it right after spawning; it must drop before the pipeline (declare it
/// after the pipeline binding, or drop it explicitly at the end of the test).
pub struct LeakCheck {
    live: Liveness,
}

impl LeakCheck {
    /// Watches `pipeline`'s actors.
    pub fn new(pipeline: &Pipeline) -> Self {
        LeakCheck {
            live: pipeline.liveness(),
        }
    }

    /// Actors still running.
    pub fn running(&self) -> Vec<String> {
        self.live.lock().unwrap().iter().cloned().collect()
    }
}

impl Drop for LeakCheck {
    fn drop(&mut self) {
        let running = self.running();
        if !running.is_empty() && !std::thread::panicking() {
            panic!("actors left running at the end of the test: {running:?}");
        }
    }
}
