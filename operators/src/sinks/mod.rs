//! Sinks: where events end up.

pub mod dynamo_hot;
pub mod hot;
pub mod lake;
pub mod s3_lake;
pub mod sns;
