//! Alerts: rules over closed windows, deduplication, and the outputs.

pub mod record;
