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
//! The caller's task awaits the job's result, which the thread hands back
//! itself on a multi-thread runtime (a thread of tokio's blocking pool
//! waiting on each job instead cost `spate run` 2–10 % more CPU per event
//! under HTTP push at 200 k events/s, where the journal's reads and the HTTP
//! bodies go through these threads job by job).
//!
//! An idle thread sleeps on a condition variable: it does not spin or yield
//! waiting for the next job (a channel's blocking receive that spins first
//! cost `spate run` about 5 % of its CPU under HTTP push in `sched_yield`,
//! its HTTP parse and journal read threads waking between small jobs).
//!
//! # Shutdown
//!
//! The threads end once every handle is dropped, after the jobs already
//! queued have run.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::runtime::{Handle, RuntimeFlavor};

type Job = Box<dyn FnOnce() + Send>;

/// The jobs waiting for a thread, shared by the threads and the handles.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when a job is queued or the queue closes.
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// Set when the last handle is dropped: no job comes after those queued.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A job never runs under the lock, so a poisoned lock only means a
        // panic between two plain field updates: the state is still whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job`; gives it back when the queue is closed.
    fn push(&self, job: Job) -> Result<(), Job> {
        let mut state = self.lock();
        if state.closed {
            return Err(job);
        }
        state.jobs.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, sleeping while there is none; `None` once the queue is
    /// closed and empty.
    fn pop(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Closes the queue when the last [`WorkThreads`] handle goes.
struct Handles {
    queue: Arc<Queue>,
}

impl Drop for Handles {
    fn drop(&mut self) {
        self.queue.close();
    }
}

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
    handles: Arc<Handles>,
}

impl WorkThreads {
    /// Starts `count` threads (at least one), named `name-0`, `name-1`, ….
    pub fn spawn(name: &str, count: usize) -> Result<Self, WorkFailed> {
        let handles = Arc::new(Handles {
            queue: Arc::new(Queue::default()),
        });
        for i in 0..count.max(1) {
            let queue = handles.queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    while let Some(job) = queue.pop() {
                        job();
                    }
                })
                .map_err(|e| WorkFailed::Spawn(e.to_string()))?;
        }
        Ok(WorkThreads { handles })
    }

    /// Runs `work` on one of the threads and waits for its result. A panic
    /// in `work` fails this call with its message; the thread goes on.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkFailed> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
        });
        self.handles
            .queue
            .push(job)
            .map_err(|_| WorkFailed::Stopped)?;
        let waited = match Handle::try_current().map(|h| h.runtime_flavor()) {
            // Only a current-thread runtime can have a paused clock, and a
            // paused clock jumps ahead whenever the runtime is idle: there
            // the wait sits on the blocking pool, which tokio counts as
            // work in flight, so the clock stays put while the job runs.
            Ok(RuntimeFlavor::CurrentThread) => {
                tokio::task::spawn_blocking(move || result.blocking_recv())
                    .await
                    .map_err(|_| WorkFailed::Stopped)?
            }
            // Elsewhere the thread wakes the waiting task itself: no
            // blocking-pool thread woken and parked per job.
            _ => result.await,
        };
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_multi_thread_runtime_results_and_panics_come_back() {
        let thread = WorkThreads::spawn("work-multi", 1).unwrap();
        for i in 0..50u32 {
            let (value, name) = thread
                .run(move || (i * 2, std::thread::current().name().map(str::to_string)))
                .await
                .unwrap();
            assert_eq!(value, i * 2);
            assert_eq!(name.as_deref(), Some("work-multi-0"));
        }
        let failed = thread.run(|| panic!("boom {}", 7)).await;
        assert_eq!(failed, Err(WorkFailed::Panicked("boom 7".into())));
        assert_eq!(
            thread.run(|| 1).await,
            Ok(1),
            "the thread goes on after a panic"
        );
    }

    #[tokio::test]
    async fn dropping_the_last_handle_runs_the_queued_jobs_then_ends_the_threads() {
        let threads = WorkThreads::spawn("work-drop", 1).unwrap();
        let queue = threads.handles.queue.clone();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        // The thread is held in the first job while two more queue up.
        queue
            .push(Box::new(move || {
                started_tx.send(()).unwrap();
                gate.recv().unwrap();
            }))
            .unwrap_or_else(|_| panic!("queue closed"));
        started.recv().unwrap();
        for i in 0..2 {
            let done_tx = done_tx.clone();
            queue
                .push(Box::new(move || done_tx.send(i).unwrap()))
                .unwrap_or_else(|_| panic!("queue closed"));
        }
        drop(done_tx);
        let other = threads.clone();
        drop(threads);
        assert!(
            queue.push(Box::new(|| {})).is_ok(),
            "a handle is still alive"
        );
        drop(other);
        assert!(
            queue.push(Box::new(|| {})).is_err(),
            "closed with the last handle"
        );
        release.send(()).unwrap();
        // Both queued jobs ran, then the thread ended (dropping its senders).
        assert_eq!(done.iter().collect::<Vec<_>>(), vec![0, 1]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&queue) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread did not end"
            );
            std::thread::yield_now();
        }
        assert!(queue.lock().jobs.is_empty());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let thread = WorkThreads::spawn("work-panic", 1).unwrap();
        let failed = thread.run(|| -> u32 { panic!("bad segment") }).await;
        assert_eq!(failed, Err(WorkFailed::Panicked("bad segment".into())));
        assert_eq!(thread.run(|| 1).await, Ok(1));
    }
}
