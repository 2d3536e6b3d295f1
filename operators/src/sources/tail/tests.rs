//! Pipelines of a tail source and a capture sink over temporary directories,
//! under tokio's paused clock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use spate_engine::testkit::{CaptureSink, SinkStep};
use spate_engine::{ActorOptions, GraphBuilder, Pipeline};

use super::*;

/// One line as the decoder would see it: source, offset, text.
type Line = (String, u64, String);

fn config(dir: &Path) -> TailConfig {
    TailConfig {
        paths: vec![format!("{}/*.log", dir.display())],
        poll_interval_ms: 100,
        chunk_kib: 1,
        rotated_idle_secs: 2,
        fingerprint_bytes: 16,
        ..TailConfig::default()
    }
}

fn spawn(
    config: TailConfig,
    checkpoint_dir: &Path,
    sink: &CaptureSink<RawChunk>,
) -> (Pipeline, TailCheckpoints) {
    let tail = TailSource::new(config, checkpoint_dir).unwrap();
    let checkpoints = tail.checkpoints();
    let mut graph = GraphBuilder::new();
    graph.source("tail", move || tail.clone());
    let sink = sink.clone();
    graph.actor("sink", move || sink.clone(), ActorOptions::default());
    graph.connect("tail", "sink");
    (graph.build().unwrap().spawn(), checkpoints)
}

/// Lets the source poll a few times.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(450)).await;
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(chunks: &[RawChunk]) -> Vec<Line> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut pos = chunk.first_position;
        for piece in chunk.bytes.split_inclusive(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(piece).trim_end().to_string();
            out.push((chunk.source.to_string(), pos, text));
            pos += piece.len() as u64;
        }
    }
    out
}

fn texts(sink: &CaptureSink<RawChunk>) -> Vec<String> {
    lines(&sink.delivered()).into_iter().map(|l| l.2).collect()
}

fn line(source: &str, pos: u64, text: &str) -> Line {
    (source.to_string(), pos, text.to_string())
}

fn src(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// `n` lines of 32 bytes each: `line 0000 ...\n`.
fn numbered(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| format!("line {i:04} {}\n", "x".repeat(21)))
        .collect()
}

fn on_disk(checkpoints: &TailCheckpoints) -> Vec<FileCheckpoint> {
    let bytes = std::fs::read(checkpoints.path()).unwrap();
    let file: checkpoint::CheckpointFile = serde_json::from_slice(&bytes).unwrap();
    file.files
}

#[tokio::test(start_paused = true)]
async fn follows_appends_and_waits_for_partial_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "a\nb");
    let sink = CaptureSink::new();
    let (pipeline, _) = spawn(config(dir.path()), &dir.path().join("ckpt"), &sink);
    settle().await;
    assert_eq!(lines(&sink.delivered()), vec![line(&src(&log), 0, "a")]);
    append(&log, "c\nd\n");
    settle().await;
    assert_eq!(
        lines(&sink.delivered()),
        vec![
            line(&src(&log), 0, "a"),
            line(&src(&log), 2, "bc"),
            line(&src(&log), 5, "d"),
        ]
    );
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rename_rotation_reads_both_files_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let rotated = dir.path().join("app.log.1");
    let mut writer = File::create(&log).unwrap();
    writer.write_all(b"1\n2\n").unwrap();
    let sink = CaptureSink::new();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &dir.path().join("ckpt"), &sink);
    settle().await;
    // logrotate `create`: rename, new file; the app writes to its old fd for a
    // moment before it reopens.
    std::fs::rename(&log, &rotated).unwrap();
    writer.write_all(b"3\n").unwrap();
    append(&log, "4\n");
    settle().await;
    writer.write_all(b"5").unwrap(); // never finished
    settle().await;
    // Each file in its own order; the rotated file's tail and the new file's
    // first line are read by separate readers, so either may come first.
    let seen = texts(&sink);
    let old_file: Vec<&String> = seen.iter().filter(|t| *t != "4").collect();
    assert_eq!(old_file, ["1", "2", "3"], "{seen:?}");
    assert!(seen.contains(&"4".to_string()), "{seen:?}");
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Idle for `rotated_idle`: the partial last line goes out, the file closes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut seen = lines(&sink.delivered());
    seen.sort();
    let new_source = format!("{}@1", src(&log));
    assert_eq!(
        seen,
        vec![
            line(&src(&log), 0, "1"),
            line(&src(&log), 2, "2"),
            line(&src(&log), 4, "3"),
            line(&src(&log), 6, "5"),
            line(&new_source, 0, "4"),
        ]
    );
    checkpoints.save_now().unwrap();
    let saved = on_disk(&checkpoints);
    assert_eq!(saved.len(), 2);
    let old = saved.iter().find(|c| c.source == src(&log)).unwrap();
    assert_eq!((old.offset, old.path.clone()), (7, log.clone()));
    let new = saved.iter().find(|c| c.source == new_source).unwrap();
    assert_eq!((new.offset, new.path.clone()), (2, log.clone()));
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_rename_within_the_globs_keeps_the_file_and_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "one\n");
    let mut config = config(dir.path());
    config.paths = vec![format!("{}/app.log*", dir.path().display())];
    let sink = CaptureSink::new();
    let (pipeline, checkpoints) = spawn(config, &dir.path().join("ckpt"), &sink);
    settle().await;
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&dir.path().join("app.log.1"), "two\n");
    settle().await;
    assert_eq!(
        lines(&sink.delivered()),
        vec![line(&src(&log), 0, "one"), line(&src(&log), 4, "two")]
    );
    let files = checkpoints.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, dir.path().join("app.log.1"));
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_deleted_file_is_read_to_its_end_through_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut writer = File::create(&log).unwrap();
    writer.write_all(b"before\n").unwrap();
    let sink = CaptureSink::new();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &dir.path().join("ckpt"), &sink);
    settle().await;
    std::fs::remove_file(&log).unwrap();
    writer.write_all(b"after\n").unwrap();
    settle().await;
    assert_eq!(texts(&sink), ["before", "after"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Closed and remembered with everything committed.
    let files = checkpoints.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].offset, 13);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn copytruncate_starts_over_under_a_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "first generation\n");
    let sink = CaptureSink::new();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &dir.path().join("ckpt"), &sink);
    settle().await;
    // copytruncate: copy aside (not matched), truncate in place, app writes on.
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, "second\n");
    settle().await;
    // Truncated and rewritten past our offset before the next poll: noticed by
    // the fingerprint.
    std::fs::write(&log, "third generation, longer than before\n").unwrap();
    settle().await;
    assert_eq!(
        lines(&sink.delivered()),
        vec![
            line(&src(&log), 0, "first generation"),
            line(&format!("{}@1", src(&log)), 0, "second"),
            line(
                &format!("{}@2", src(&log)),
                0,
                "third generation, longer than before"
            ),
        ]
    );
    let files = checkpoints.files();
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].source.as_str(), files[0].offset),
        (format!("{}@2", src(&log)).as_str(), 37)
    );
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn new_files_matching_the_globs_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CaptureSink::new();
    let mut config = config(dir.path());
    config.exclude = vec![format!("{}/skip*", dir.path().display())];
    let (pipeline, _) = spawn(config, &dir.path().join("ckpt"), &sink);
    settle().await;
    assert!(sink.delivered().is_empty());
    append(&dir.path().join("b.log"), "hello\n");
    append(&dir.path().join("skip.log"), "excluded\n");
    append(&dir.path().join("c.txt"), "not matched\n");
    settle().await;
    assert_eq!(
        lines(&sink.delivered()),
        vec![line(&src(&dir.path().join("b.log")), 0, "hello")]
    );
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_checkpoint_holds_only_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0..100)); // 3200 bytes: 4 chunks of at most 1 KiB
    let sink = CaptureSink::gated();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &dir.path().join("ckpt"), &sink);
    sink.open(1);
    settle().await;
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1);
    let first_end = delivered[0].bytes.len() as u64;
    assert_eq!(first_end, 1024);
    // The periodic checkpoint (every second) and an explicit save agree.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(on_disk(&checkpoints)[0].offset, first_end);
    assert!(!checkpoints.save_now().unwrap(), "nothing changed");
    sink.open(10);
    settle().await;
    assert!(checkpoints.save_now().unwrap());
    assert_eq!(on_disk(&checkpoints)[0].offset, 3200);
    assert_eq!(texts(&sink).len(), 100);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn checkpoints_keep_coming_while_a_backlog_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0..3200)); // 100 chunks
    // 100 ms a chunk: the backlog takes 10 s to drain.
    let sink = CaptureSink::slow(Duration::from_millis(100));
    let (pipeline, checkpoints) = spawn(config(dir.path()), &dir.path().join("ckpt"), &sink);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let offset = on_disk(&checkpoints)[0].offset;
    assert!((20 * 1024..100 * 1024).contains(&offset), "{offset}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(on_disk(&checkpoints)[0].offset, 3200 * 32);
    assert_eq!(texts(&sink).len(), 3200);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restart_resumes_from_the_checkpoint_without_loss_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let log = dir.path().join("app.log");
    append(&log, &numbered(0..100));
    // First run: only the first chunk is committed before the process goes.
    let stuck = CaptureSink::gated();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &ckpt, &stuck);
    stuck.open(1);
    settle().await;
    let first = lines(&stuck.delivered());
    assert_eq!(first.len(), 32);
    // The sink never drains: the deadline aborts it, its batches fail.
    assert!(pipeline.shutdown(Duration::from_secs(1)).await.is_err());
    checkpoints.save_now().unwrap();
    assert_eq!(on_disk(&checkpoints)[0].offset, 1024);
    append(&log, &numbered(100..110));
    // Second run resumes at 1024: the rest once, nothing already committed.
    let sink = CaptureSink::new();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &ckpt, &sink);
    settle().await;
    let second = lines(&sink.delivered());
    assert_eq!(
        second.first().unwrap(),
        &line(&src(&log), 1024, numbered(32..33).trim_end())
    );
    let mut all: Vec<Line> = first.into_iter().chain(second).collect();
    let expected: Vec<Line> = (0..110)
        .map(|i| line(&src(&log), i as u64 * 32, numbered(i..i + 1).trim_end()))
        .collect();
    assert_eq!(all, expected);
    all.dedup();
    assert_eq!(all.len(), 110);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
    checkpoints.save_now().unwrap();
    assert_eq!(on_disk(&checkpoints)[0].offset, 3520);
}

#[tokio::test(start_paused = true)]
async fn a_file_renamed_while_stopped_is_finished_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let log = dir.path().join("app.log");
    append(&log, &numbered(0..40)); // 1280 bytes: two chunks
    let stuck = CaptureSink::gated();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &ckpt, &stuck);
    stuck.open(1);
    settle().await;
    assert!(pipeline.shutdown(Duration::from_secs(1)).await.is_err());
    checkpoints.save_now().unwrap();
    // Rotated while Spate was down.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "new file\n");
    let sink = CaptureSink::new();
    let (pipeline, checkpoints) = spawn(config(dir.path()), &ckpt, &sink);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut seen = lines(&sink.delivered());
    seen.sort();
    let mut expected: Vec<Line> = (32..40)
        .map(|i| line(&src(&log), i as u64 * 32, numbered(i..i + 1).trim_end()))
        .collect();
    expected.push(line(&format!("{}@1", src(&log)), 0, "new file"));
    assert_eq!(seen, expected);
    checkpoints.save_now().unwrap();
    let old = on_disk(&checkpoints)
        .into_iter()
        .find(|c| c.source == src(&log))
        .unwrap();
    assert_eq!(old.offset, 1280);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_verdict_sends_the_range_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0..40));
    let sink = CaptureSink::scripted([SinkStep::Fail]);
    let (pipeline, checkpoints) = spawn(config(dir.path()), &dir.path().join("ckpt"), &sink);
    settle().await;
    let mut seen = lines(&sink.delivered());
    assert_eq!(
        sink.state().seen.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    seen.sort();
    let expected: Vec<Line> = (0..40)
        .map(|i| line(&src(&log), i as u64 * 32, numbered(i..i + 1).trim_end()))
        .collect();
    assert_eq!(seen, expected);
    checkpoints.save_now().unwrap();
    assert_eq!(on_disk(&checkpoints)[0].offset, 1280);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn read_from_end_skips_existing_lines_of_files_present_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "old\npart");
    let mut config = config(dir.path());
    config.read_from = ReadFrom::End;
    let sink = CaptureSink::new();
    let (pipeline, _) = spawn(config, &dir.path().join("ckpt"), &sink);
    settle().await;
    append(&log, "ial\n");
    append(&dir.path().join("later.log"), "from the start\n");
    settle().await;
    let mut seen = texts(&sink);
    seen.sort();
    assert_eq!(seen, ["from the start", "partial"]);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_the_poll_wait_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.poll_interval_ms = 3_600_000;
    config.checkpoint_interval_ms = 3_600_000;
    let sink = CaptureSink::new();
    let (pipeline, checkpoints) = spawn(config, &dir.path().join("ckpt"), &sink);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    // The final checkpoint was written on the way out.
    assert!(checkpoints.path().exists());
}

#[test]
fn a_bad_glob_or_checkpoint_fails_construction() {
    let dir = tempfile::tempdir().unwrap();
    let bad_glob = TailConfig {
        paths: vec!["/var/log/[oops".into()],
        ..TailConfig::default()
    };
    assert!(matches!(
        TailSource::new(bad_glob, dir.path()),
        Err(TailError::Glob { .. })
    ));
    std::fs::write(dir.path().join("tail.json"), b"[]").unwrap();
    let err = TailSource::new(config(dir.path()), dir.path()).unwrap_err();
    assert!(matches!(err, TailError::CheckpointFormat { .. }), "{err}");
}
