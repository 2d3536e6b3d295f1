//! [`HotWriter`]: the actor that keeps the important events hot.
//!
//! For each [`LogBatch`] it picks the rows at or above the configured severity,
//! buffers them with the batch's ack, and commits them in one transaction every
//! `commit_interval` (on `tick`) or as soon as `max_buffered_rows` are
//! buffered; only then are the held acks delivered. A batch without hot rows is
//! delivered at once. Retention runs from `tick` every [`EXPIRE_INTERVAL`].
//!
//! # Backpressure
//!
//! The commit runs on the blocking pool while `handle`/`tick` awaits it, so the
//! writer takes no new batch until the disk has the previous ones; the buffer
//! never holds more than `max_buffered_rows` rows plus one batch.
//!
//! # Shutdown
//!
//! `flush` (asked for at shutdown, before `close`) commits what is buffered and
//! delivers its acks. A failed commit fails every held batch with the reason and
//! returns a classified error (busy or disk full: external, retried with
//! backoff). A writer dropped with rows still buffered (a restart) fails their
//! batches, so their sources redeliver them.

use std::time::Duration;

use spate_engine::work_threads::WorkThreads;
use spate_engine::{Actor, ActorResult, Batch, Ctx, NoOutput};
use tokio::time::Instant;

use super::buffer::HotBuffer;
use super::store::{ExpireStats, HotStore};
use super::{HotConfig, HotError};
use crate::event::wall_clock_ms;
use crate::log_batch::LogBatch;
use crate::tap::{self, TapItem, TapStage};

/// How often retention deletes old rows.
pub const EXPIRE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The hot store's writer actor (see the [module docs](self)).
pub struct HotWriter {
    store: HotStore,
    commit_interval: Duration,
    buffer: HotBuffer,
    next_expire: Instant,
    /// Where SQLite runs: one thread, so its page cache and statement memory
    /// stay in one allocator heap (see [`WorkThreads`]); started at first use.
    thread: Option<WorkThreads>,
}

impl HotWriter {
    /// A writer into `store` with `config`'s severity threshold and commit
    /// policy (the store's retention applies to expiry); `config` passed
    /// [`HotConfig::validate`].
    pub fn new(store: HotStore, config: &HotConfig) -> Self {
        HotWriter {
            store,
            commit_interval: Duration::from_millis(config.commit_interval_ms),
            buffer: HotBuffer::new(
                config.min_severity,
                config.max_buffered_rows,
                "spate_hot_buffered_rows",
                "hot writer stopped before committing the batch",
            ),
            // The first expiry runs at the first tick: a restarted process
            // catches up at once.
            next_expire: Instant::now(),
            thread: None,
        }
    }

    /// Runs `work` on the store's thread.
    async fn on_store_thread<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(HotStore) -> Result<T, HotError> + Send + 'static,
    ) -> Result<T, HotError> {
        let thread = match &self.thread {
            Some(thread) => thread.clone(),
            None => {
                let thread = WorkThreads::spawn("hot-store", 1)
                    .map_err(|e| HotError::Task(e.to_string()))?;
                self.thread.insert(thread).clone()
            }
        };
        let store = self.store.clone();
        thread
            .run(move || work(store))
            .await
            .unwrap_or_else(|e| Err(HotError::Task(e.to_string())))
    }

    /// Rows waiting for the next commit.
    pub fn buffered_rows(&self) -> usize {
        self.buffer.len()
    }

    /// Commits the buffered rows, then delivers the held acks; on failure fails
    /// them with the reason and returns the classified error.
    async fn commit(&mut self) -> ActorResult {
        let Some((rows, ack)) = self.buffer.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let result = self
            .on_store_thread(move |store| store.insert_events(&rows))
            .await;
        match result {
            Ok(written) => {
                metrics::histogram!("spate_hot_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("spate_hot_commits_total").increment(1);
                metrics::counter!("spate_hot_rows_written_total").increment(written);
                ack.deliver();
                Ok(())
            }
            Err(e) => {
                metrics::counter!("spate_hot_commit_failures_total").increment(1);
                tracing::warn!(error = %e, "hot store commit failed; failing held batches");
                ack.fail(e.to_string());
                Err(e.into())
            }
        }
    }

    /// Deletes rows past retention, at most every [`EXPIRE_INTERVAL`].
    async fn expire_if_due(&mut self) {
        let now = Instant::now();
        if now < self.next_expire {
            return;
        }
        self.next_expire = now + EXPIRE_INTERVAL;
        let now_ms = wall_clock_ms();
        let result = self
            .on_store_thread(move |store| store.expire(now_ms))
            .await;
        match result {
            Ok(ExpireStats {
                events,
                windows,
                alerts,
            }) => {
                let expired =
                    metrics::counter!("spate_hot_rows_expired_total", "table" => "events");
                expired.increment(events);
                metrics::counter!("spate_hot_rows_expired_total", "table" => "windows")
                    .increment(windows);
                metrics::counter!("spate_hot_rows_expired_total", "table" => "alerts")
                    .increment(alerts);
            }
            // Nothing is lost: the rows stay until the next attempt.
            Err(e) => {
                metrics::counter!("spate_hot_expire_failures_total").increment(1);
                tracing::warn!(error = %e, "hot store retention failed; retrying later");
            }
        }
    }
}

impl Actor for HotWriter {
    type In = LogBatch;
    type Out = NoOutput;

    async fn handle(&mut self, batch: Batch<LogBatch>, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        tap::point(TapStage::Hot).offer(|| TapItem::Events(batch.payload.clone()));
        if self.buffer.add(batch)? {
            self.commit().await?;
        }
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.commit_interval)
    }

    async fn tick(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.commit().await?;
        self.expire_if_due().await;
        Ok(())
    }

    async fn flush(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.commit().await
    }
}

#[cfg(test)]
mod tests {
    use spate_engine::testkit::ScriptedSource;
    use spate_engine::{ActorOptions, GraphBuilder, Pipeline, Verdict};

    use super::*;
    use crate::event::Severity;
    use crate::sinks::hot::RecentQuery;
    use crate::sinks::hot::rows::tests::{TestEvent, event, log_batch};

    const HOUR_MS: i64 = 3_600_000;

    fn run(source: &ScriptedSource<LogBatch>, store: &HotStore, config: HotConfig) -> Pipeline {
        let mut graph = GraphBuilder::new();
        let src = source.clone();
        graph.source("src", move || src.clone());
        let store = store.clone();
        graph.actor(
            "hot",
            move || HotWriter::new(store.clone(), &config),
            ActorOptions::default(),
        );
        graph.connect("src", "hot");
        graph.build().unwrap().spawn()
    }

    fn stored_ids(store: &HotStore) -> Vec<String> {
        let mut ids: Vec<String> = store
            .recent(&RecentQuery::since(i64::MIN))
            .unwrap()
            .into_iter()
            .map(|e| e.event.event_id)
            .collect();
        ids.sort();
        ids
    }

    fn fresh(id: &str, service: &'static str, severity: Severity) -> TestEvent {
        event(id, wall_clock_ms() - 1_000, service, severity)
    }

    fn open_store() -> (tempfile::TempDir, HotStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("hot.db")).unwrap();
        (dir, store)
    }

    #[tokio::test(start_paused = true)]
    async fn stores_hot_rows_and_acks_only_after_the_commit() {
        let (_dir, store) = open_store();
        let mixed = log_batch(&[
            fresh("i1", "api", Severity::Info),
            fresh("w1", "api", Severity::Warning),
            fresh("e1", "web", Severity::Error),
            fresh("c1", "api", Severity::Critical),
        ]);
        let routine = log_batch(&[fresh("i2", "api", Severity::Info)]);
        let source = ScriptedSource::new([mixed.clone(), routine]).until_stopped();
        let pipeline = run(&source, &store, HotConfig::default());
        let log = source.log();

        // Before the first tick (200 ms): the batch without hot rows is
        // delivered, the other waits for the commit and nothing is stored.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(log.verdicts(), [Verdict::Delivered]);
        assert_eq!(log.in_flight.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(stored_ids(&store).is_empty());

        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(log.verdicts(), [Verdict::Delivered, Verdict::Delivered]);
        assert_eq!(stored_ids(&store), ["c1", "e1", "w1"]);

        pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn redelivered_batch_does_not_duplicate() {
        let (_dir, store) = open_store();
        let batch = log_batch(&[
            fresh("e1", "api", Severity::Error),
            fresh("e2", "api", Severity::Error),
        ]);
        let source = ScriptedSource::new([batch.clone(), batch]);
        let pipeline = run(&source, &store, HotConfig::default());
        pipeline.join().await.unwrap();
        assert_eq!(source.log().delivered(), 2);
        assert_eq!(stored_ids(&store), ["e1", "e2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn commits_early_when_the_buffer_is_full() {
        let (_dir, store) = open_store();
        let config = HotConfig {
            commit_interval_ms: 60_000,
            max_buffered_rows: 3,
            ..HotConfig::default()
        };
        let source = ScriptedSource::new([
            log_batch(&[fresh("e1", "api", Severity::Error)]),
            log_batch(&[
                fresh("e2", "api", Severity::Error),
                fresh("e3", "web", Severity::Error),
            ]),
            log_batch(&[fresh("e4", "api", Severity::Error)]),
        ])
        .until_stopped();
        let pipeline = run(&source, &store, config);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The first two batches reached 3 rows and were committed; the third
        // waits for the interval.
        assert_eq!(
            source.log().verdicts(),
            [Verdict::Delivered, Verdict::Delivered]
        );
        assert_eq!(stored_ids(&store), ["e1", "e2", "e3"]);
        // Shutdown's flush commits the rest.
        pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
        assert_eq!(source.log().delivered(), 3);
        assert_eq!(stored_ids(&store), ["e1", "e2", "e3", "e4"]);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_commit_fails_held_batches_with_the_reason() {
        let (dir, store) = open_store();
        rusqlite::Connection::open(dir.path().join("hot.db"))
            .unwrap()
            .execute_batch("DROP TABLE event_blocks")
            .unwrap();
        let source = ScriptedSource::new([log_batch(&[fresh("e1", "api", Severity::Error)])])
            .until_stopped();
        let pipeline = run(&source, &store, HotConfig::default());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let verdicts = source.log().verdicts();
        assert_eq!(verdicts.len(), 1);
        match &verdicts[0] {
            Verdict::Failed(reason) => assert!(reason.contains("no such table"), "{reason}"),
            Verdict::Delivered => panic!("delivered without a commit"),
        }
        pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn retention_runs_from_tick() {
        let (_dir, store) = open_store();
        let now = wall_clock_ms();
        let store = store.with_retention(crate::sinks::hot::Retention {
            events_ms: 72 * HOUR_MS,
            alerts_ms: 30 * 24 * HOUR_MS,
            from: crate::sinks::hot::RetentionClock::Ingest,
        });
        let source = ScriptedSource::new([log_batch(&[
            event("old", now - 73 * HOUR_MS, "api", Severity::Error),
            event("new", now - HOUR_MS, "api", Severity::Error),
        ])])
        .until_stopped();
        // The first tick commits, then expires.
        let pipeline = run(&source, &store, HotConfig::default());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(stored_ids(&store), ["new"]);
        pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
        assert_eq!(source.log().delivered(), 1);
    }
}
