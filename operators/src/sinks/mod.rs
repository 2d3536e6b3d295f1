//! Sinks: where events end up.

pub mod hot;
pub mod lake;
