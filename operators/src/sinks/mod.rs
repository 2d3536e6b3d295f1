//! Sinks: where events end up.

pub mod hot;
pub mod lake;
pub mod s3_lake;
pub mod sns;
