//! Dead letters as NDJSON under `<data-dir>/deadletter/dt=YYYY-MM-DD/`.
//!
//! One line per rejected input: `reason`, `source`, `position`, and the raw bytes
//! as `raw` (UTF-8) or `raw_base64` (anything else). Files are written like lake
//! files: hidden while open, renamed into place on commit. With
//! [`LakeTarget::S3`] the directory only stages them: [`commit_all`] uploads each
//! committed file to `<prefix>deadletter/dt=YYYY-MM-DD/<name>` and removes it
//! locally, before the writer acknowledges the batches that carried them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;

use super::part_file::sync_dir;
use super::{LakeError, LakeTarget};
use crate::decode::DeadLetter;

/// The directory (and S3 key prefix, under the lake's prefix) of dead letters.
pub const DEAD_LETTER_DIR: &str = "deadletter";

#[derive(Serialize)]
struct DeadLetterLine<'a> {
    reason: &'a str,
    source: &'a str,
    position: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_base64: Option<String>,
}

/// The NDJSON line for one dead letter (without the newline).
///
/// ```
/// use spate_operators::decode::DeadLetter;
/// use spate_operators::sinks::lake::dead_letters::dead_letter_line;
/// let dl = DeadLetter { reason: "invalid utf-8".into(), source: "stdin".into(), position: 7, raw: vec![0xff, b'a'] };
/// assert_eq!(
///     dead_letter_line(&dl),
///     r#"{"reason":"invalid utf-8","source":"stdin","position":7,"raw_base64":"/2E="}"#
/// );
/// ```
pub fn dead_letter_line(dl: &DeadLetter) -> String {
    let (raw, raw_base64) = match std::str::from_utf8(&dl.raw) {
        Ok(s) => (Some(s), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&dl.raw)),
        ),
    };
    serde_json::to_string(&DeadLetterLine {
        reason: &dl.reason,
        source: &dl.source,
        position: dl.position,
        raw,
        raw_base64,
    })
    .unwrap_or_else(|e| format!(r#"{{"reason":"unserializable dead letter: {e}"}}"#))
}

/// An open dead-letter file.
pub struct DeadLetterFile {
    tmp_path: PathBuf,
    final_path: PathBuf,
    out: BufWriter<File>,
    lines: u64,
}

impl DeadLetterFile {
    /// Creates `dir/.name.tmp`, to become `dir/name` on commit.
    pub fn create(dir: &Path, name: &str) -> Result<Self, LakeError> {
        std::fs::create_dir_all(dir).map_err(|e| LakeError::io("create directory", dir, e))?;
        let final_path = dir.join(name);
        let tmp_path = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp_path).map_err(|e| LakeError::io("create", &tmp_path, e))?;
        Ok(DeadLetterFile {
            tmp_path,
            final_path,
            out: BufWriter::new(file),
            lines: 0,
        })
    }

    /// Appends dead letters.
    pub fn append(&mut self, letters: &[DeadLetter]) -> Result<(), LakeError> {
        for dl in letters {
            let line = dead_letter_line(dl);
            self.out
                .write_all(line.as_bytes())
                .and_then(|_| self.out.write_all(b"\n"))
                .map_err(|e| LakeError::io("write", &self.tmp_path, e))?;
            self.lines += 1;
        }
        Ok(())
    }

    /// Lines written.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Makes the lines written so far durable (still under the hidden name;
    /// recovery publishes them if the process stops before
    /// [`commit`](Self::commit)).
    pub fn sync(&mut self) -> Result<(), LakeError> {
        self.out
            .flush()
            .and_then(|_| self.out.get_ref().sync_data())
            .map_err(|e| LakeError::io("fsync", &self.tmp_path, e))
    }

    /// Flushes, fsyncs and renames into place.
    pub fn commit(self) -> Result<PathBuf, LakeError> {
        let DeadLetterFile {
            tmp_path,
            final_path,
            out,
            ..
        } = self;
        let file = out
            .into_inner()
            .map_err(|e| LakeError::io("flush", &tmp_path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| LakeError::io("fsync", &tmp_path, e))?;
        std::fs::rename(&tmp_path, &final_path)
            .map_err(|e| LakeError::io("rename", &tmp_path, e))?;
        if let Some(dir) = final_path.parent() {
            sync_dir(dir)?;
        }
        Ok(final_path)
    }

    /// Abandons the file, removing the temporary.
    pub fn abort(self) {
        let DeadLetterFile { tmp_path, out, .. } = self;
        drop(out);
        let _ = std::fs::remove_file(tmp_path);
    }
}

/// Commits every file in `files` (under `dead_letter_dir`); with an S3 target,
/// uploads each committed file to `<prefix>deadletter/<path under
/// dead_letter_dir>` and removes the local copy. Returns how many files were
/// committed. On a failure the files not yet committed are aborted and the
/// committed ones still staged for S3 are removed (their batches fail and are
/// redelivered, which writes them again).
pub async fn commit_all(
    files: Vec<DeadLetterFile>,
    target: &LakeTarget,
    dead_letter_dir: &Path,
) -> Result<u64, LakeError> {
    let mut committed = Vec::with_capacity(files.len());
    let mut iter = files.into_iter();
    while let Some(f) = iter.next() {
        match f.commit() {
            Ok(path) => committed.push(path),
            Err(e) => {
                iter.for_each(DeadLetterFile::abort);
                remove_staged(target, &committed);
                return Err(e);
            }
        }
    }
    if let LakeTarget::S3(s3) = target {
        for (i, path) in committed.iter().enumerate() {
            let uploaded = match path.strip_prefix(dead_letter_dir) {
                Ok(relative) => {
                    let relative = relative.to_string_lossy().replace('\\', "/");
                    let key = s3.key_for(&format!("{DEAD_LETTER_DIR}/{relative}"));
                    s3.upload_and_remove(path, &key)
                        .await
                        .map(|_| ())
                        .map_err(LakeError::from)
                }
                Err(_) => Err(LakeError::Config(format!(
                    "{} is outside the dead-letter directory",
                    path.display()
                ))),
            };
            if let Err(e) = uploaded {
                remove_staged(target, &committed[i..]);
                return Err(e);
            }
        }
    }
    Ok(committed.len() as u64)
}

/// Removes committed dead-letter files whose upload will not happen.
fn remove_staged(target: &LakeTarget, files: &[PathBuf]) {
    if matches!(target, LakeTarget::S3(_)) {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    }
}
