//! `spate-engine`: the actor runtime Spate's pipelines run on.
//!
//! It knows nothing of logs or AWS. It provides:
//!
//! - **Actors and sources** ([`Actor`], [`Source`]): one required method each,
//!   defaulted hooks (`start`, `tick`, `flush`, `close`).
//! - **Bounded mailboxes** ([`Addr`], [`mailbox`]) with a control lane served
//!   before data. Sending into a full mailbox waits: that is the backpressure that
//!   bounds memory, and the time spent waiting is measured per actor.
//! - **End-to-end acknowledgement** ([`AckToken`], [`Ack`], [`Verdict`]): a
//!   source hears `Delivered` only when every sink that received a batch
//!   committed it; a batch dropped anywhere counts as failed.
//! - **Supervision** ([`SupervisorPolicy`]): failed or panicking actors restart
//!   with capped, jittered exponential backoff; their in-flight batch fails;
//!   unrecoverable errors trip the [`KillSwitch`].
//! - **Graphs** ([`GraphBuilder`]): named nodes and edges, validated (cycles,
//!   dangling edges, type mismatches) before anything runs; an edge to a group
//!   of actors routes each part of a batch by key ([`route`]), so no actor
//!   knows the layout of the stage after it.
//! - **Shutdown** ([`Pipeline::shutdown`], [`Pipeline::run_until_signal`]):
//!   sources stop, the graph drains in topological order, within a deadline.
//! - **Metrics** through the `metrics` facade for every actor, the lag of every
//!   source ([`lag`]), and a Prometheus exporter ([`PrometheusExporter`]) built
//!   from metric catalogs ([`catalog`]).
//!
//! It is not a distributed runtime: scaling out is left to AWS's own services
//! (SQS competing consumers, Kinesis shards), one pipeline per process.
//!
//! All timing (ticks, backoff, deadlines, latency) goes through tokio's clock, so
//! it runs deterministically under a paused clock in tests.

pub mod ack;
pub mod actor;
pub mod batch;
pub mod catalog;
pub mod error;
pub mod graph;
pub mod kill_switch;
pub mod lag;
pub mod mailbox;
pub mod pipeline;
mod process;
pub mod prometheus;
pub mod route;
mod runtime;
pub mod signals;
pub mod stats;
pub mod supervisor;

#[cfg(feature = "testkit")]
pub mod testkit;

#[cfg(feature = "bench-baseline")]
#[doc(hidden)]
pub mod baseline;
pub mod work_threads;

pub use ack::{Ack, AckToken, Verdict};
pub use actor::{Actor, ActorResult, Ctx, Source};
pub use batch::{Batch, InFlightBytes, InFlightGauge, NoOutput, Payload};
pub use error::{ActorError, ErrorClass, MailboxClosed, RetryHint};
pub use graph::{ActorOptions, Graph, GraphBuilder, GraphError};
pub use kill_switch::KillSwitch;
pub use lag::{LagSnapshot, SourceLag};
pub use mailbox::{Addr, Inbox, TrySendError, mailbox};
pub use pipeline::{Pipeline, PipelineError, PipelineReport};
pub use prometheus::PrometheusExporter;
pub use runtime::ActorExit;
pub use stats::{ActorStats, StatsSnapshot};
pub use supervisor::{SupervisorPolicy, backoff_delay};
