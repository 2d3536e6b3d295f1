//! File tail.
