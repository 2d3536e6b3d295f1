//! The executor's admission, time limit, cancellation and panic handling,
//! under tokio's paused clock (queries are futures told when to finish).

use std::sync::atomic::AtomicBool;

use tokio::sync::oneshot;

use super::*;

fn config(max_concurrent: usize, queue_len: usize) -> QueryConfig {
    QueryConfig {
        max_concurrent,
        queue_len,
        ..QueryConfig::default()
    }
}

fn executor(max_concurrent: usize, queue_len: usize) -> QueryExecutor {
    QueryExecutor::on_handle(Handle::current(), &config(max_concurrent, queue_len))
}

/// Sets its flag when dropped: whether a query's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A query that answers `value` when `release` fires, and flags its drop.
fn held_query(
    value: u32,
) -> (
    impl Future<Output = Result<u32, QueryError>> + Send + 'static,
    oneshot::Sender<()>,
    Arc<AtomicBool>,
) {
    let (release, released) = oneshot::channel::<()>();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let query = async move {
        let _flag = flag;
        let _ = released.await;
        Ok(value)
    };
    (query, release, dropped)
}

const LONG: Duration = Duration::from_secs(3600);

/// Lets spawned tasks run until they wait (the clock does not move).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn beyond_slots_and_queue_queries_are_rejected_then_admitted_as_slots_free() {
    let executor = executor(1, 1);
    let (first, release_first, _) = held_query(1);
    let (second, release_second, _) = held_query(2);
    let running = tokio::spawn({
        let executor = executor.clone();
        async move { executor.run(LONG, first).await }
    });
    settle().await;
    let queued = tokio::spawn({
        let executor = executor.clone();
        async move { executor.run(LONG, second).await }
    });
    settle().await;
    assert_eq!(executor.load(), (1, 1));

    let err = executor.run(LONG, async { Ok(3) }).await.unwrap_err();
    assert!(matches!(err, QueryError::Rejected { .. }), "{err:?}");
    assert_eq!(err.http_status(), 429);
    assert_eq!(err.retry_after_secs(), Some(1));
    assert!(err.to_string().contains("1 running and 1 waiting"), "{err}");

    release_first.send(()).unwrap();
    assert_eq!(running.await.unwrap().unwrap(), 1);
    settle().await;
    assert_eq!(executor.load(), (1, 0), "the queued query took the slot");
    release_second.send(()).unwrap();
    assert_eq!(queued.await.unwrap().unwrap(), 2);
    assert_eq!(executor.run(LONG, async { Ok(4) }).await.unwrap(), 4);
    assert_eq!(executor.load(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_running_query_is_cancelled_at_its_deadline() {
    let executor = executor(1, 0);
    let (query, _release, dropped) = held_query(1);
    let started = Instant::now();
    let err = executor
        .run(Duration::from_secs(5), query)
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)), "{err:?}");
    assert_eq!(err.http_status(), 504);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    settle().await;
    assert!(
        dropped.load(Ordering::SeqCst),
        "the query's future was dropped"
    );
    assert_eq!(executor.load(), (0, 0), "its slot is free again");
}

#[tokio::test(start_paused = true)]
async fn time_in_the_queue_counts_toward_the_deadline() {
    let executor = executor(1, 1);
    let (first, release_first, _) = held_query(1);
    let running = tokio::spawn({
        let executor = executor.clone();
        async move { executor.run(LONG, first).await }
    });
    settle().await;
    let (second, _release_second, second_dropped) = held_query(2);
    let started = Instant::now();
    let err = executor
        .run(Duration::from_secs(3), second)
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(second_dropped.load(Ordering::SeqCst), "never started");
    assert_eq!(executor.load(), (1, 0));
    release_first.send(()).unwrap();
    assert_eq!(running.await.unwrap().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_caller_cancels_the_query() {
    let executor = executor(1, 0);
    let (query, _release, dropped) = held_query(1);
    let caller = tokio::spawn({
        let executor = executor.clone();
        async move { executor.run(LONG, query).await }
    });
    settle().await;
    assert_eq!(executor.load(), (1, 0));
    caller.abort();
    settle().await;
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(executor.load(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_panic_becomes_an_answer() {
    let executor = executor(1, 0);
    let err = executor
        .run(LONG, async {
            if LONG > Duration::ZERO {
                panic!("index out of bounds: the len is 3 but the index is 7");
            }
            Ok(1u32)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Internal(_)), "{err:?}");
    assert_eq!(err.http_status(), 500);
    assert!(err.to_string().contains("the index is 7"), "{err}");
    // A result too large for 32-bit offsets is the query's to narrow.
    let err = executor
        .run(LONG, async {
            if LONG > Duration::ZERO {
                panic!("offset overflow");
            }
            Ok(1u32)
        })
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 400, "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
    // The executor goes on.
    assert_eq!(executor.run(LONG, async { Ok(2) }).await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_running_and_queued_queries_and_refuses_new_ones() {
    let executor = executor(1, 1);
    let (first, _release_first, first_dropped) = held_query(1);
    let (second, _release_second, second_dropped) = held_query(2);
    let running = tokio::spawn({
        let executor = executor.clone();
        async move { executor.run(LONG, first).await }
    });
    settle().await;
    let queued = tokio::spawn({
        let executor = executor.clone();
        async move { executor.run(LONG, second).await }
    });
    settle().await;
    executor.shutdown();
    for answer in [running.await.unwrap(), queued.await.unwrap()] {
        let err = answer.unwrap_err();
        assert!(matches!(err, QueryError::ShuttingDown), "{err:?}");
        assert_eq!(err.http_status(), 503);
    }
    settle().await;
    assert!(first_dropped.load(Ordering::SeqCst));
    assert!(second_dropped.load(Ordering::SeqCst));
    let err = executor.run(LONG, async { Ok(3) }).await.unwrap_err();
    assert!(matches!(err, QueryError::ShuttingDown), "{err:?}");
}

#[test]
fn timeouts_are_clamped_and_the_config_is_checked() {
    let config = QueryConfig::default();
    assert_eq!(config.timeout(None), Duration::from_secs(30));
    assert_eq!(config.timeout(Some(0)), Duration::from_secs(1));
    assert_eq!(config.timeout(Some(7)), Duration::from_secs(7));
    assert_eq!(config.timeout(Some(100_000)), Duration::from_secs(300));
    assert!(config.validate().is_ok());
    let zero = QueryConfig {
        max_concurrent: 0,
        ..QueryConfig::default()
    };
    assert_eq!(
        zero.validate().unwrap_err().within("query").to_string(),
        "query.max_concurrent: must be at least 1"
    );
    let inverted = QueryConfig {
        default_timeout_secs: 600,
        ..QueryConfig::default()
    };
    assert_eq!(inverted.validate().unwrap_err().key(), "default_timeout");
}

/// On its own runtime, a query that computes without pause does not hold up
/// the caller's timer: the answer comes at the deadline. The query keeps its
/// slot until its task really ends.
#[test]
fn the_deadline_holds_while_the_query_threads_are_busy() {
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let executor = QueryExecutor::new(&QueryConfig {
        threads: 1,
        ..QueryConfig::default()
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = stop.clone();
    let started = std::time::Instant::now();
    let err = caller
        .block_on(executor.run(Duration::from_millis(300), async move {
            // Never yields until told to stop.
            while !spinning.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
            Ok(())
        }))
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, QueryError::Timeout(_)), "{err:?}");
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
    assert_eq!(
        executor.load(),
        (1, 0),
        "still computing: the slot is taken"
    );
    stop.store(true, Ordering::Relaxed);
    let freed = std::time::Instant::now();
    while executor.load() != (0, 0) {
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "the slot was not freed once the task ended"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
