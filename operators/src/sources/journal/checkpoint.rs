//! The checkpoint file: the position below which every record is durably
//! committed by the sinks, replaced atomically (write a temporary file, fsync
//! it, rename it over the old one, fsync the directory).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::JournalError;

const CHECKPOINT_FILE: &str = "checkpoint.json";
const CHECKPOINT_TMP: &str = "checkpoint.json.tmp";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    /// Every record below this position is committed.
    committed: u64,
}

/// Loads the checkpoint (0 when there is none). A leftover temporary file
/// from a crash during a save is removed. An unreadable checkpoint restarts
/// from 0 with a warning: replaying too much is safe, skipping is not.
pub(super) fn load(dir: &Path) -> Result<u64, JournalError> {
    let tmp = dir.join(CHECKPOINT_TMP);
    match fs::remove_file(&tmp) {
        Ok(()) => tracing::warn!(path = %tmp.display(), "removed an unfinished checkpoint"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(JournalError::io("remove", &tmp, e)),
    }
    let path = dir.join(CHECKPOINT_FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(JournalError::io("read", &path, e)),
    };
    match serde_json::from_slice::<CheckpointFile>(&text) {
        Ok(file) => Ok(file.committed),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e,
                "unreadable journal checkpoint; replaying the whole journal");
            metrics::counter!("spate_journal_bad_checkpoints_total").increment(1);
            Ok(0)
        }
    }
}

/// The saved checkpoint (0 when there is none or it is unreadable), without
/// changing anything.
pub(super) fn peek(dir: &Path) -> Result<u64, JournalError> {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::read(&path) {
        Ok(text) => Ok(serde_json::from_slice::<CheckpointFile>(&text).map_or(0, |f| f.committed)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(JournalError::io("read", &path, e)),
    }
}

/// Saves `committed` atomically.
pub(super) fn save(dir: &Path, committed: u64) -> Result<(), JournalError> {
    let tmp = dir.join(CHECKPOINT_TMP);
    let path = dir.join(CHECKPOINT_FILE);
    let text = serde_json::to_vec(&CheckpointFile { committed })
        .map_err(|e| JournalError::Corrupt(format!("cannot encode the checkpoint: {e}")))?;
    let mut file = File::create(&tmp).map_err(|e| JournalError::io("create", &tmp, e))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| JournalError::io("write", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))?;
    sync_dir(dir)
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("sync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_and_leftovers_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), 0);
        save(dir.path(), 1234).unwrap();
        fs::write(dir.path().join(CHECKPOINT_TMP), b"{\"committed\": 9999}").unwrap();
        assert_eq!(load(dir.path()).unwrap(), 1234);
        assert!(!dir.path().join(CHECKPOINT_TMP).exists());
        save(dir.path(), 5678).unwrap();
        assert_eq!(load(dir.path()).unwrap(), 5678);
    }

    #[test]
    fn an_unreadable_checkpoint_replays_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CHECKPOINT_FILE), b"not json").unwrap();
        assert_eq!(load(dir.path()).unwrap(), 0);
    }
}
