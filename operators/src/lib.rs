//! `spate-operators`: the stages of Spate's pipelines, and the components that
//! put them into one.
//!
//! - [`component`]: the contract a source kind implements ([`component::SourceKind`]:
//!   a pure `validate` to a checked value, a `build` from it), the registry that
//!   reads `[sources.<kind>]` tables with key paths and lines in its errors, and the
//!   units (`"5m"`, `"128MiB"`) settings are written in.
//! - [`sources`]: where raw bytes come from (SQS, Kinesis, tailed files, stdin,
//!   the journal of HTTP pushes); [`sources::supported_sources`] registers each kind
//!   with one line.
//! - [`decode`] and [`classify`]: bytes to classified events ([`event::EventBatch`]),
//!   with dead letters for what cannot be read; [`enrich`]: host IP or CIDR →
//!   service, owner, contact from a reference table.
//! - [`transforms`]: the engine actors wrapping them ([`transforms::decode::DecodeStage`]).
//! - [`log_batch`]: the payload between decode and the sinks (Arrow, split by
//!   partition so the engine can route it by key).
//! - [`sinks`]: where events end up (the Parquet lake, local or S3; the hot store,
//!   SQLite or DynamoDB; dead letters).
//! - [`windows`] and [`alerts`]: counts per window, and the rules evaluated over
//!   them in one place (the alert router) with their outputs.
//! - [`aws`]: the SDK clients, loaded once for every component that needs them.
//! - [`metric_catalog`]: every metric the operators emit, with its help text.
//!
//! It is not the CLI, the HTTP service or the configuration file as a whole:
//! `spate` (bin/) validates the file and wires these into pipelines. It is not the
//! engine either: actors, mailboxes and routing live in `spate-engine`.

pub mod alerts;
pub mod aws;
pub mod classify;
pub mod component;
pub mod decode;
pub mod enrich;
pub mod event;
pub mod log_batch;
pub mod metric_catalog;
pub mod sinks;
pub mod sources;
pub mod tap;
pub mod transforms;
pub mod windows;
