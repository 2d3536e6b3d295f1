//! The dedup index of an S3 lake's partition, kept in step with the bucket
//! before every seal. The partition's objects are listed (one LIST):
//!
//! - a missing or corrupt local index (a new container, a lost disk) is
//!   rebuilt from the `event_id` column of all of them;
//! - otherwise the index is trusted, except that objects of this writer's
//!   own seals that it does not cover are read and added. Such an object is
//!   the upload of a seal whose answer never came back (the connection cut
//!   after the request was sent): the object is whole in the bucket, the
//!   seal failed, and its rows are still staged. Caught up, the index drops
//!   them from the next seal instead of sealing them twice. Other tasks'
//!   objects are not read (that would have each task download what the
//!   others write; see the guarantee in [`super::dedup`]).
//!
//! Objects are read one at a time (memory: the largest object, plus 16
//! bytes per id).

use std::path::Path;

use spate_engine::work_threads::WorkThreads;

use super::LakeError;
use super::dedup::{IdIndex, fingerprints_of, read_index, write_index};
use super::partition::PartitionKey;
use super::staging::parse_sealed_file_name;
use crate::sinks::s3_lake::S3Target;

/// What the bucket already holds under the name a seal is about to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyUploaded {
    /// Its size.
    pub bytes: u64,
    /// The ids read from it for the index (0 when the index already covered
    /// it).
    pub rows: u64,
}

/// With `[lake.s3]`: brings the index of partition `key` at `path` in step
/// with the partition's objects in the bucket (see the module docs) and
/// returns what the bucket holds under `name`, the file the seal is about to
/// write, if anything. Such an object is the upload of this very seal (the
/// same segments) whose answer was lost: the seal is done once its segments
/// are removed. An object that is not a readable lake file is logged and
/// left out. The files are read on the writer's seal `thread`.
pub async fn catch_up_from_s3(
    target: &S3Target,
    key: &PartitionKey,
    path: &Path,
    name: &str,
    thread: &WorkThreads,
) -> Result<Option<AlreadyUploaded>, LakeError> {
    let stored = {
        let path = path.to_path_buf();
        thread.run(move || read_index(&path)).await??
    };
    let prefix = target.key_for(&format!("logs/{}/", key.path()));
    let mut objects: Vec<(String, u64)> = target
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|(object, bytes)| {
            let file = object.strip_prefix(&prefix)?;
            (!file.contains('/') && file.ends_with(".parquet")).then(|| (file.to_string(), bytes))
        })
        .collect();
    objects.sort();
    let mut named = objects
        .iter()
        .find(|(file, _)| file == name)
        .map(|&(_, bytes)| AlreadyUploaded { bytes, rows: 0 });
    let (mut index, add) = match stored {
        None => (
            IdIndex::default(),
            objects.into_iter().map(|(file, _)| file).collect(),
        ),
        Some(index) => {
            let add = own_uncovered(&index, name, objects.into_iter().map(|(file, _)| file));
            if add.is_empty() {
                return Ok(named);
            }
            (index, add)
        }
    };
    for file in &add {
        let object = format!("{prefix}{file}");
        let bytes = target.get(&object).await?;
        let what = format!("s3://{}/{object}", target.bucket());
        let read = thread.run(move || fingerprints_of(bytes, &what)).await?;
        match read {
            Ok(fingerprints) => {
                if let Some(named) = named.as_mut().filter(|_| file == name) {
                    named.rows = fingerprints.len() as u64;
                }
                index.add(file, fingerprints);
            }
            Err(e) => {
                tracing::warn!(object = %object, error = %e, "not a readable lake file; left out of the dedup index");
            }
        }
    }
    tracing::info!(index = %path.display(), objects = add.len(), ids = index.fingerprints.len(), "dedup index caught up with the bucket");
    let path = path.to_path_buf();
    thread.run(move || write_index(&path, &index)).await??;
    Ok(named)
}

/// The files among `listed` that `index` does not cover and that this
/// writer sealed: those named by the same stager as `name`, the file about
/// to be written.
///
/// ```
/// use spate_operators::sinks::lake::dedup::IdIndex;
/// use spate_operators::sinks::lake::dedup_s3::own_uncovered;
/// use spate_operators::sinks::lake::staging::sealed_file_name;
/// let mut index = IdIndex::default();
/// index.add(&sealed_file_name("0000000a", 1), vec![1]);
/// let listed = [
///     sealed_file_name("0000000a", 1), // covered
///     sealed_file_name("0000000a", 3), // ours, lost answer
///     sealed_file_name("0000000b", 2), // another task's
///     "part-c0000000000000001.parquet".to_string(), // compacted
/// ];
/// let add = own_uncovered(&index, &sealed_file_name("0000000a", 5), listed);
/// assert_eq!(add, [sealed_file_name("0000000a", 3)]);
/// ```
pub fn own_uncovered(
    index: &IdIndex,
    name: &str,
    listed: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let Some((stager, _)) = parse_sealed_file_name(name) else {
        return Vec::new();
    };
    listed
        .into_iter()
        .filter(|file| parse_sealed_file_name(file).is_some_and(|(s, _)| s == stager))
        .filter(|file| index.files.binary_search(file).is_err())
        .collect()
}
