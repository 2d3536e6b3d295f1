//! The dedup index of an S3 lake's partition, rebuilt from the bucket when
//! the task's local copy is missing or corrupt (a new container, a lost
//! disk): the `event_id` column of every sealed object of the partition, read
//! one object at a time (memory: the largest object, plus 16 bytes per id).
//! See [`super::dedup`] for the index and the guarantee.

use std::path::Path;

use spate_engine::work_threads::WorkThreads;

use super::LakeError;
use super::dedup::{IdIndex, fingerprints_of, read_index, write_index};
use super::partition::PartitionKey;
use crate::sinks::s3_lake::S3Target;

/// With `[lake.s3]`: rebuilds the index of partition `key` at `path` from
/// the `event_id` column of the partition's sealed objects in the bucket
/// when the local index is missing or corrupt (a new container, a lost
/// disk); returns whether it did. An object that is not a readable lake
/// file is logged and left out. The index covers the objects listed, so a
/// seal that follows drops the rows they hold. The files are read on the
/// writer's seal `thread`.
pub async fn rebuild_from_s3(
    target: &S3Target,
    key: &PartitionKey,
    path: &Path,
    thread: &WorkThreads,
) -> Result<bool, LakeError> {
    let stored = {
        let path = path.to_path_buf();
        thread.run(move || read_index(&path)).await??
    };
    if stored.is_some() {
        return Ok(false);
    }
    let prefix = target.key_for(&format!("logs/{}/", key.path()));
    let mut objects: Vec<String> = target
        .list(&prefix)
        .await?
        .into_iter()
        .map(|(object, _)| object)
        .filter(|o| o.ends_with(".parquet"))
        .collect();
    objects.sort();
    let mut index = IdIndex::default();
    for object in &objects {
        let bytes = target.get(object).await?;
        let name = object.rsplit('/').next().unwrap_or(object).to_string();
        let what = format!("s3://{}/{object}", target.bucket());
        let read = thread.run(move || fingerprints_of(bytes, &what)).await?;
        match read {
            Ok(fingerprints) => index.add(&name, fingerprints),
            Err(e) => {
                tracing::warn!(object = %object, error = %e, "not a readable lake file; left out of the dedup index");
            }
        }
    }
    tracing::info!(index = %path.display(), objects = objects.len(), ids = index.fingerprints.len(), "dedup index rebuilt from the bucket");
    let path = path.to_path_buf();
    thread.run(move || write_index(&path, &index)).await??;
    Ok(true)
}
