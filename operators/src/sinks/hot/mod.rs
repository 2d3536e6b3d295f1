//! The embedded hot store.
