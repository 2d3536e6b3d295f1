//! The checkpoint file `<checkpoint dir>/tail.json`: per file identity, the
//! offset below which every byte is durably committed by the sinks.
//!
//! ```json
//! {
//!   "version": 1,
//!   "files": [
//!     {"dev": 2049, "ino": 1234, "fingerprint_len": 256, "fingerprint_crc32": 3735928559,
//!      "path": "/var/log/app/api.log", "source": "file:/var/log/app/api.log", "offset": 52311}
//!   ],
//!   "generations": {"/var/log/app/api.log": 1}
//! }
//! ```
//!
//! `generations` counts the file identities seen at each path, so a successor
//! file gets a source name of its own (see the module docs of `tail`).
//!
//! The file is replaced atomically: written to `tail.json.tmp`, fsynced,
//! renamed over `tail.json`, and the directory fsynced.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TailError;

/// Format version written and read.
const VERSION: u32 = 1;

/// Name of the checkpoint file inside the checkpoint directory.
pub(super) const FILE_NAME: &str = "tail.json";

/// The committed position of one file identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCheckpoint {
    /// Device number of the file.
    pub dev: u64,
    /// Inode number of the file.
    pub ino: u64,
    /// Bytes at the start of the file covered by the fingerprint.
    pub fingerprint_len: u64,
    /// CRC-32 of those bytes.
    pub fingerprint_crc32: u32,
    /// Where the file was last seen.
    pub path: PathBuf,
    /// Its source name (event id prefix).
    pub source: String,
    /// Every byte below this offset is durably committed.
    pub offset: u64,
}

/// The whole checkpoint file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckpointFile {
    pub version: u32,
    pub files: Vec<FileCheckpoint>,
    #[serde(default)]
    pub generations: BTreeMap<String, u64>,
}

impl CheckpointFile {
    pub(super) fn new(files: Vec<FileCheckpoint>, generations: BTreeMap<String, u64>) -> Self {
        CheckpointFile {
            version: VERSION,
            files,
            generations,
        }
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain structs and maps with string keys cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Reads the checkpoint at `path`; `None` when there is none yet.
pub(super) fn load(path: &Path) -> Result<Option<CheckpointFile>, TailError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TailError::CheckpointIo {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file: CheckpointFile =
        serde_json::from_slice(&bytes).map_err(|e| TailError::CheckpointFormat {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if file.version != VERSION {
        return Err(TailError::CheckpointFormat {
            path: path.to_path_buf(),
            reason: format!("version {} (expected {VERSION})", file.version),
        });
    }
    Ok(Some(file))
}

/// Replaces the file at `path` with `bytes` atomically and durably.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TailError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| TailError::CheckpointIo {
            action,
            path,
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create directory for", dir))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(bytes).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("fsync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io("rename", path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory of", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckpointFile {
        CheckpointFile::new(
            vec![FileCheckpoint {
                dev: 1,
                ino: 2,
                fingerprint_len: 10,
                fingerprint_crc32: 99,
                path: "/var/log/a.log".into(),
                source: "file:/var/log/a.log".into(),
                offset: 1234,
            }],
            BTreeMap::from([("/var/log/a.log".to_string(), 1)]),
        )
    }

    #[test]
    fn round_trips_through_an_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints").join(FILE_NAME);
        assert_eq!(load(&path).unwrap(), None);
        write_atomically(&path, &sample().to_bytes()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        assert!(!dir.path().join("checkpoints/tail.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            load(&path),
            Err(TailError::CheckpointFormat { .. })
        ));
        let mut other = sample();
        other.version = 7;
        std::fs::write(&path, other.to_bytes()).unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.to_string().contains("version 7"), "{err}");
    }
}
