//! The ingest journal.
