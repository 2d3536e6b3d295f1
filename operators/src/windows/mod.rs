//! Event-time tumbling windows over classified events, and the aggregator
//! actor that counts them and closes them.
//!
//! - [`state`]: the pure window logic ([`window_start`], [`WindowState`]):
//!   counts per (window, service) × severity × tag, the watermark, lateness and
//!   the idle timeout. Its module docs state the exact semantics.
//! - [`aggregator`]: the [`WindowAggregator`] actor (`LogBatch` in,
//!   [`WindowOutput`] out), which sends every closed window to the alert
//!   router, where the rules run ([`crate::alerts`]; with several processes
//!   ([`WindowConfig::shared`]) on the counts merged across them).
//! - [`emf`]: closed windows as CloudWatch EMF lines ([`emf::WindowMetrics`]),
//!   printed by the alert router when `[metrics.emf]` asks for them.

pub mod aggregator;
mod config;
pub mod emf;
pub mod state;

pub use self::aggregator::{WindowAggregator, WindowOutput};
pub use self::config::WindowConfig;
pub use self::state::{WindowState, window_start};
