//! The acknowledgement compliance check (`spate_test_support::acks`) run by
//! the sources that need no AWS: the file tail and the HTTP journal. (SQS
//! and Kinesis run it in `aws_sqs.rs` and `aws_kinesis.rs`, against the
//! emulator.)

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use spate_operators::sources::journal::{Journal, JournalConfig, JournalRecord, JournalSource};
use spate_operators::sources::tail::{TailCheckpoints, TailConfig, TailSource};
use spate_test_support::acks::{AckedUpstream, check_acknowledgements};

/// Longest wait for one change of state.
const LIMIT: Duration = Duration::from_secs(20);

/// A tailed file: fed by appending lines, committed when the checkpoint
/// (what `tail.json` would hold) reaches its end.
struct TailedFile {
    path: PathBuf,
    source: TailSource,
    checkpoints: TailCheckpoints,
}

impl AckedUpstream for TailedFile {
    type Source = TailSource;

    fn source(&self) -> impl FnMut() -> TailSource + Send + 'static {
        let source = self.source.clone();
        move || source.clone()
    }

    async fn feed(&mut self, line: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }

    async fn committed(&mut self) -> bool {
        let len = std::fs::metadata(&self.path).unwrap().len();
        self.checkpoints
            .files()
            .iter()
            .any(|f| f.path.ends_with("app.log") && f.offset == len)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_tail_commits_delivered_batches_and_reads_failed_ones_again() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("app.log");
    std::fs::write(&path, "").unwrap();
    let config = TailConfig {
        paths: vec![format!("{}/*.log", logs.display())],
        poll_interval_ms: 20,
        ..TailConfig::default()
    };
    let source = TailSource::new(config, dir.path()).unwrap();
    let checkpoints = source.checkpoints();
    let mut upstream = TailedFile {
        path,
        source,
        checkpoints,
    };
    check_acknowledgements(&mut upstream, "tail", LIMIT).await;
}

/// The HTTP journal: fed by appends (as `POST /v1/logs` makes them),
/// committed when the committed position reaches the appended one.
struct HttpJournal(Journal);

impl AckedUpstream for HttpJournal {
    type Source = JournalSource;

    fn source(&self) -> impl FnMut() -> JournalSource + Send + 'static {
        let journal = self.0.clone();
        move || journal.source()
    }

    async fn feed(&mut self, line: &str) {
        let record = JournalRecord::lines(format!("{line}\n").into_bytes(), 1);
        self.0.writer().append(vec![record]).await.unwrap();
    }

    async fn committed(&mut self) -> bool {
        let stats = self.0.stats();
        stats.committed_position == stats.appended_position
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_journal_commits_delivered_batches_and_replays_failed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        dir: Some(dir.path().join("journal")),
        ..JournalConfig::default()
    };
    let journal = Journal::open(&config, dir.path()).unwrap();
    let mut upstream = HttpJournal(journal.clone());
    check_acknowledgements(&mut upstream, "journal", LIMIT).await;
    journal.close();
}
