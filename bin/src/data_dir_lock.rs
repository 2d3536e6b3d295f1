//! One process per data dir: `spate run`, `spate ingest` and `spate lake
//! compact` hold an exclusive advisory lock (`flock`) on `<dir>/spate.lock`
//! for their whole life. A second process on the same directory exits at once
//! with the holder's pid; the kernel releases the lock when the holder exits,
//! however it exits (a crash or SIGKILL included), so a stale lock file never
//! blocks a restart.
//!
//! Two processes on one data dir would replay the same journal into the same
//! lake and stage into the same segments: every row twice, and worse.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The lock file inside a locked directory.
pub const LOCK_FILE: &str = "spate.lock";

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Locks `dir` (created if missing) for `what` (`spate run`, ...), or
    /// fails naming the process that holds it.
    pub fn acquire(dir: &Path, what: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = match holder.split_whitespace().next() {
                    Some(pid) => format!("process {pid} ({holder})"),
                    None => "another process".to_string(),
                };
                bail!(
                    "{} is in use by {who}: one spate process per data dir; stop it or use another --data-dir",
                    dir.display()
                );
            }
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // Ours now: say who holds it.
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{} {what}", std::process::id()))
            .and_then(|_| file.flush())
            .with_context(|| format!("cannot write lock file {}", path.display()))?;
        Ok(DataDirLock { _file: file })
    }

    /// Locks `data_dir`, and the lake directory too when it is elsewhere
    /// (`lake.path`): two data dirs must not share one lake either.
    pub fn acquire_all(data_dir: &Path, lake_dir: &Path, what: &str) -> Result<Vec<Self>> {
        let mut locks = vec![Self::acquire(data_dir, what)?];
        let inside = std::path::absolute(lake_dir)
            .ok()
            .zip(std::path::absolute(data_dir).ok())
            .is_some_and(|(lake, data)| lake.starts_with(data));
        if !inside {
            locks.push(Self::acquire(lake_dir, what)?);
        }
        Ok(locks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), "spate run").unwrap();
        let err = DataDirLock::acquire(dir.path(), "spate ingest")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("process {} (", std::process::id())) && err.contains("spate run"),
            "{err}"
        );
        drop(first);
        let _again = DataDirLock::acquire(dir.path(), "spate ingest").unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{} spate ingest\n", std::process::id()));
    }

    #[test]
    fn a_lake_outside_the_data_dir_is_locked_too() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let inner = DataDirLock::acquire_all(&data, &data.join("lake"), "x").unwrap();
        assert_eq!(inner.len(), 1);
        drop(inner);
        let outside = DataDirLock::acquire_all(&data, &dir.path().join("lake"), "x").unwrap();
        assert_eq!(outside.len(), 2);
        assert!(DataDirLock::acquire(&dir.path().join("lake"), "y").is_err());
    }
}
