//! The file output: every notice appended as one JSON line ([`AlertRecord`]),
//! flushed and synced after each batch of notices.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::alerts::AlertError;
use crate::alerts::record::AlertRecord;

/// Appends NDJSON to a file.
#[derive(Debug)]
pub struct FileOutput {
    path: PathBuf,
    file: File,
}

impl FileOutput {
    /// Opens (creating it and its directory if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<Self, AlertError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| AlertError::io("create", dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| AlertError::io("open", path, e))?;
        Ok(FileOutput {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per notice (in one write), then syncs the data.
    pub fn send(&mut self, alerts: &[AlertRecord]) -> Result<(), AlertError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(alerts.len() * 256);
        for alert in alerts {
            serde_json::to_writer(&mut buf, alert)?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .map_err(|e| AlertError::io("append to", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| AlertError::io("sync", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::outputs::tests::sample_alert;
    use crate::alerts::record::AlertState;

    #[test]
    fn writes_parseable_ndjson_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/alerts.ndjson");
        let firing = sample_alert(AlertState::Firing);
        let resolved = sample_alert(AlertState::Resolved);
        FileOutput::open(&path)
            .unwrap()
            .send(std::slice::from_ref(&firing))
            .unwrap();
        // Reopening appends.
        let mut out = FileOutput::open(&path).unwrap();
        out.send(std::slice::from_ref(&resolved)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: Vec<AlertRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed, [firing, resolved]);
        assert!(text.contains(r#""state":"firing""#));
    }
}
