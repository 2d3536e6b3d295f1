//! Sinks: where events end up.

pub mod lake;
