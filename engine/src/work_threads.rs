//! A few dedicated threads for CPU work that allocates a lot: sealing the
//! lake's Parquet files, decompressing and parsing large HTTP bodies.
//!
//! Why not tokio's blocking pool: it grows to hundreds of threads, runs each
//! job on whichever is idle, and the allocator keeps a heap per thread. So
//! every pool thread's heap grows to the largest working set it ever ran and
//! keeps it, and resident memory becomes (threads that ever ran a job) ×
//! (working set). Measured on 4 M W1 events through `spate ingest` with
//! seals on the blocking pool: a peak RSS of 463–715 MiB; with seals on one
//! of these threads: 242–271 MiB. A fixed set of threads keeps that memory
//! in a fixed number of heaps, reused job after job.
//!
//! # Backpressure
//!
//! The queue is unbounded: callers bound the work they hand over (a lake
//! writer runs at most `seal_threads` seals at a time; HTTP bodies hold a reservation of the
//! in-flight budget while they wait).
//!
//! # Shutdown
//!
//! The threads end once every handle is dropped, after the jobs already
//! queued have run.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

type Job = Box<dyn FnOnce() + Send>;

/// Why a job handed to [`WorkThreads::run`] gave no result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkFailed {
    /// The job panicked (its message).
    #[error("{0}")]
    Panicked(String),
    /// The threads stopped before the job ran.
    #[error("the work threads stopped")]
    Stopped,
    /// The threads could not be started.
    #[error("cannot start a work thread: {0}")]
    Spawn(String),
}

/// A handle to a fixed set of named threads; clones share them.
///
/// ```
/// use spate_engine::work_threads::WorkThreads;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let threads = WorkThreads::spawn("doc-work", 2).unwrap();
/// assert_eq!(threads.run(|| 6 * 7).await, Ok(42));
/// # });
/// ```
#[derive(Clone)]
pub struct WorkThreads {
    jobs: kanal::Sender<Job>,
}

impl WorkThreads {
    /// Starts `count` threads (at least one), named `name-0`, `name-1`, ….
    pub fn spawn(name: &str, count: usize) -> Result<Self, WorkFailed> {
        let (jobs, queue) = kanal::unbounded::<Job>();
        for i in 0..count.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job();
                    }
                })
                .map_err(|e| WorkFailed::Spawn(e.to_string()))?;
        }
        Ok(WorkThreads { jobs })
    }

    /// Runs `work` on one of the threads and waits for its result. A panic
    /// in `work` fails this call with its message; the thread goes on.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkFailed> {
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
        });
        self.jobs.send(job).map_err(|_| WorkFailed::Stopped)?;
        // The wait itself sits on the blocking pool (it allocates nothing),
        // so tokio counts the job as work in flight: a paused test clock
        // does not jump ahead while it runs.
        let waited = tokio::task::spawn_blocking(move || result.recv())
            .await
            .map_err(|_| WorkFailed::Stopped)?;
        match waited {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(WorkFailed::Panicked(panic_message(panic.as_ref()))),
            Err(_) => Err(WorkFailed::Stopped),
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_named_threads_only() {
        let threads = WorkThreads::spawn("work-test", 2).unwrap();
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let name = threads
                .run(|| std::thread::current().name().map(str::to_string))
                .await
                .unwrap();
            seen.insert(name.unwrap());
        }
        assert!(!seen.is_empty() && seen.len() <= 2, "{seen:?}");
        assert!(seen.iter().all(|n| n.starts_with("work-test-")), "{seen:?}");
    }

    #[tokio::test]
    async fn one_thread_runs_every_job() {
        let thread = WorkThreads::spawn("work-one", 1).unwrap();
        let first = thread.run(|| std::thread::current().id()).await.unwrap();
        let second = thread.run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(first, second);
        assert_ne!(first, std::thread::current().id());
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_waits_for_the_job() {
        let thread = WorkThreads::spawn("work-paused", 1).unwrap();
        let started = tokio::time::Instant::now();
        let job = thread.run(|| std::thread::sleep(std::time::Duration::from_millis(50)));
        let timer = tokio::time::sleep(std::time::Duration::from_secs(3600));
        tokio::select! {
            done = job => assert_eq!(done, Ok(())),
            _ = timer => panic!("the paused clock jumped ahead while the job ran"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let thread = WorkThreads::spawn("work-panic", 1).unwrap();
        let failed = thread.run(|| -> u32 { panic!("bad segment") }).await;
        assert_eq!(failed, Err(WorkFailed::Panicked("bad segment".into())));
        assert_eq!(thread.run(|| 1).await, Ok(1));
    }
}
