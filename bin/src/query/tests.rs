//! Unit tests of the query module: a small lake written here, queries over it.

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;

use datafusion::parquet::arrow::ArrowWriter;
use serde_json::json;
use spate_engine::ErrorClass;
use spate_operators::alerts::record::AlertState;
use spate_operators::event::{EventBatch, Severity};
use spate_operators::sinks::lake::partition::PartitionKey;
use spate_operators::sinks::lake::schema::to_record_batch;

use super::filters::TimeBound;
use super::history::tests::{sample_alert, sample_window};
use super::history::{NoHistory, StaticHistory};
use super::*;

/// 2026-11-23T10:00:00Z.
const T0: i64 = 1_795_428_000_000;
const HOUR: i64 = 3_600_000;

/// Writes one Parquet file of `rows` (ts, severity, message) for `service` in
/// its partition directory, under `name`.
fn write_file(lake: &Path, service: &str, name: &str, rows: &[(i64, Severity, &str)]) {
    let mut batch = EventBatch::default();
    for (i, (ts, severity, message)) in rows.iter().enumerate() {
        batch.event_id.push(&format!("{service}:{name}:{i}"));
        batch.ts.push(*ts);
        batch.ingest_ts.push(*ts + 1);
        batch.service.push(service);
        batch.host.push_null();
        batch.source.push("test");
        batch.log_group.push_null();
        batch.log_stream.push_null();
        batch.severity.push(*severity);
        batch.tags.push(0);
        batch.status.push(0);
        batch.client_ip.push_null();
        batch.message.push(message);
        batch.attrs.push_null();
    }
    let records = to_record_batch(batch).unwrap();
    let dir = lake
        .join("logs")
        .join(PartitionKey::of(rows[0].0, service).path());
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(name)).unwrap();
    let mut writer = ArrowWriter::try_new(file, records.schema(), None).unwrap();
    writer.write(&records).unwrap();
    writer.close().unwrap();
}

/// Three partitions (api 10h, api 11h, web 10h), plus hidden files that must
/// never be read.
fn sample_lake(lake: &Path) {
    write_file(
        lake,
        "api",
        "part-1.parquet",
        &[
            (T0 + 1, Severity::Info, "GET /a"),
            (T0 + 2, Severity::Error, "upstream timeout"),
        ],
    );
    write_file(
        lake,
        "api",
        "part-2.parquet",
        &[(T0 + HOUR + 5, Severity::Critical, "disk full")],
    );
    write_file(
        lake,
        "web",
        "part-1.parquet",
        &[(T0 + 3, Severity::Warning, "slow page")],
    );
    // An in-progress file and a hidden Parquet file: valid data, never read.
    write_file(
        lake,
        "web",
        ".part-9.parquet.tmp",
        &[(T0 + 4, Severity::Info, "tmp")],
    );
    write_file(
        lake,
        "web",
        ".hidden.parquet",
        &[(T0 + 5, Severity::Info, "hidden")],
    );
}

fn context(lake: &Path) -> QueryContext {
    QueryContext::new(
        LakeLocation::local(lake),
        Arc::new(NoHistory),
        &QueryConfig::default(),
    )
    .unwrap()
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn counts_come_from_committed_files_only() {
    let dir = tempfile::tempdir().unwrap();
    sample_lake(dir.path());
    let out = execute(
        &context(dir.path()),
        "select service, count(*) as n from logs group by service order by service",
        100,
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(
        out.rows,
        vec![vec![json!("api"), json!(3)], vec![json!("web"), json!(1)]]
    );
    assert_eq!(out.columns[1].name, "n");
    assert_eq!(out.files_scanned, 3);
    assert!(!out.truncated);
}

#[tokio::test]
async fn partition_filters_skip_files() {
    let dir = tempfile::tempdir().unwrap();
    sample_lake(dir.path());
    let ctx = context(dir.path());
    let scanned = |sql: &'static str| {
        let ctx = &ctx;
        async move { execute(ctx, sql, 10, LONG).await.unwrap().files_scanned }
    };
    // (`count(*)` alone is answered from file statistics, without a scan.)
    assert_eq!(scanned("select message from logs").await, 3);
    assert_eq!(
        scanned("select message from logs where service = 'web'").await,
        1
    );
    assert_eq!(
        scanned("select message from logs where hour = '11'").await,
        1
    );
    assert_eq!(
        scanned("select message from logs where dt = '2026-11-23' and hour = '10'").await,
        2
    );
    assert_eq!(
        scanned("select message from logs where dt = '2020-01-01'").await,
        0
    );
    let partition_values = execute(
        &ctx,
        "select distinct dt, hour from logs where service = 'api' order by hour",
        10,
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(
        partition_values.rows,
        vec![
            vec![json!("2026-11-23"), json!("10")],
            vec![json!("2026-11-23"), json!("11")]
        ]
    );
}

#[tokio::test]
async fn flags_narrow_the_table_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    sample_lake(dir.path());
    let ctx = context(dir.path());
    let request = |filter: LogFilter, sql: Option<&str>| QueryRequest {
        sql: sql.map(String::from),
        filter,
        limit: 10,
        timeout: LONG,
        audit: false,
    };
    // Since 11:00 (absolute): only the 11h partition is opened.
    let since = LogFilter {
        since: Some(TimeBound::At(T0 + HOUR)),
        ..LogFilter::default()
    };
    let out = execute_request(&ctx, &request(since, Some("select message from logs")))
        .await
        .unwrap();
    assert_eq!(out.rows, vec![vec![json!("disk full")]]);
    assert_eq!(out.files_scanned, 1);
    // The listing without SQL: newest first, the recent columns.
    let api = LogFilter {
        service: Some("api".into()),
        severity: Some(Severity::Error),
        ..LogFilter::default()
    };
    let out = execute_request(&ctx, &request(api, None)).await.unwrap();
    let names: Vec<&str> = out.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, RECENT_COLUMNS);
    let messages: Vec<&Value> = out.rows.iter().map(|r| &r[6]).collect();
    assert_eq!(messages, [&json!("disk full"), &json!("upstream timeout")]);
    assert_eq!(out.rows[0][0], json!("2026-11-23T11:00:00.005+00:00"));
}

#[tokio::test]
async fn limit_truncates_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    sample_lake(dir.path());
    let out = execute(&context(dir.path()), "select * from logs", 2, LONG)
        .await
        .unwrap();
    assert_eq!(out.rows.len(), 2);
    assert!(out.truncated);
    let exact = execute(&context(dir.path()), "select * from logs", 4, LONG)
        .await
        .unwrap();
    assert_eq!(exact.rows.len(), 4);
    assert!(!exact.truncated);
}

#[tokio::test]
async fn missing_or_empty_lake_is_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir.path().join("nowhere"));
    let count = execute(&ctx, "select count(*) from logs", 10, LONG)
        .await
        .unwrap();
    assert_eq!(count.rows, vec![vec![json!(0)]]);
    let rows = execute(&ctx, "select * from logs", 10, LONG).await.unwrap();
    assert!(rows.rows.is_empty());
    assert_eq!(rows.columns.len(), 17, "14 file columns and 3 partitions");
    std::fs::create_dir_all(dir.path().join("empty/logs")).unwrap();
    let empty = context(&dir.path().join("empty"));
    let out = execute_request(
        &empty,
        &QueryRequest {
            sql: None,
            filter: LogFilter::default(),
            limit: 10,
            timeout: LONG,
            audit: false,
        },
    )
    .await
    .unwrap();
    assert!(out.rows.is_empty());
}

#[tokio::test]
async fn bad_sql_and_writes_are_bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    for sql in [
        "selec * from logs",
        "select nope from logs",
        "select * from nowhere",
        "create table t as select 1",
        "insert into alerts select * from alerts",
        "set datafusion.execution.batch_size = 1",
        "select 1; select 2",
    ] {
        let err = execute(&ctx, sql, 10, LONG).await.unwrap_err();
        assert!(matches!(err, QueryError::BadQuery(_)), "{sql}: {err:?}");
        assert_eq!(err.http_status(), 400);
        assert_eq!(err.class(), ErrorClass::BadInput);
    }
    let err = execute(&ctx, "selec 1", 10, LONG).await.unwrap_err();
    assert!(err.to_string().contains("selec"), "{err}");
}

#[tokio::test]
async fn every_session_has_the_memory_limit_and_no_spilling() {
    let dir = tempfile::tempdir().unwrap();
    let limits = QueryConfig {
        memory_limit_mib: 8,
        ..QueryConfig::default()
    };
    let ctx = QueryContext::new(
        LakeLocation::local(dir.path()),
        Arc::new(NoHistory),
        &limits,
    )
    .unwrap();
    // Needs about 80 MB for its groups, sorted: more than the pool, and it
    // may not spill to disk instead.
    for sql in [
        "select value % 100000 as k, array_agg(value) from generate_series(1, 10000000) group by 1",
        "select value from generate_series(1, 10000000) order by value desc",
    ] {
        let err = execute(&ctx, sql, 10_000_000, LONG).await.unwrap_err();
        assert!(
            matches!(err, QueryError::ResourcesExhausted(_)),
            "{sql}: {err:?}"
        );
        assert_eq!(err.http_status(), 400);
        assert!(
            err.to_string()
                .starts_with("query needs more than 8 MiB of memory (query.memory_limit)"),
            "{err}"
        );
    }
    // Within the limit: fine, the next query gets a pool of its own.
    let ok = execute(
        &ctx,
        "select count(*) from generate_series(1, 1000)",
        10,
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(ok.rows, vec![vec![json!(1000)]]);
}

#[tokio::test]
async fn history_tables_come_from_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let history = StaticHistory {
        alerts: vec![
            sample_alert("api", AlertState::Firing),
            sample_alert("api", AlertState::Resolved),
            sample_alert("web", AlertState::Firing),
        ],
        windows: vec![
            sample_window("api", [5, 4, 3, 2]),
            sample_window("web", [1, 0, 0, 0]),
        ],
    };
    let ctx = QueryContext::new(
        LakeLocation::local(dir.path()),
        Arc::new(history),
        &QueryConfig::default(),
    )
    .unwrap();
    let firing = execute(
        &ctx,
        "select service, count(*) from alerts where state = 'firing' group by service order by service",
        10,
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(
        firing.rows,
        vec![vec![json!("api"), json!(1)], vec![json!("web"), json!(1)]]
    );
    let windows = execute(
        &ctx,
        "select sum(error + critical), max(window_end) from windows",
        10,
        LONG,
    )
    .await
    .unwrap();
    assert_eq!(windows.rows[0][0], json!(5));
    assert_eq!(windows.rows[0][1], json!("1970-01-01T00:05:01+00:00"));
    let tables = execute(&ctx, "show tables", 100, LONG).await.unwrap();
    let names: Vec<&Value> = tables.rows.iter().map(|r| &r[2]).collect();
    for table in ["logs", "alerts", "windows"] {
        assert!(names.contains(&&json!(table)), "{names:?}");
    }
}

/// A history source that blocks until released.
struct BlockedHistory(Mutex<mpsc::Receiver<()>>);

impl HistorySource for BlockedHistory {
    fn alerts(&self) -> Result<Vec<spate_operators::alerts::record::AlertRecord>, String> {
        self.0.lock().unwrap().recv().ok();
        Ok(Vec::new())
    }
    fn windows(&self) -> Result<Vec<spate_operators::alerts::record::WindowRecord>, String> {
        Ok(Vec::new())
    }
}

#[tokio::test(start_paused = true)]
async fn slow_queries_time_out_and_failing_history_is_external() {
    let dir = tempfile::tempdir().unwrap();
    let (release, blocked) = mpsc::channel();
    let history = Arc::new(BlockedHistory(Mutex::new(blocked)));
    let ctx = Arc::new(
        QueryContext::new(
            LakeLocation::local(dir.path()),
            history,
            &QueryConfig::default(),
        )
        .unwrap(),
    );
    let query = tokio::spawn({
        let ctx = ctx.clone();
        async move { execute(&ctx, "select * from alerts", 10, Duration::from_secs(5)).await }
    });
    // Let the query start (its time limit starts with it), then pass the limit.
    // The clock does not advance by itself while a blocking task runs.
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_secs(6)).await;
    let err = query.await.unwrap().unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)), "{err:?}");
    assert_eq!(err.http_status(), 504);
    release.send(()).unwrap();

    struct Broken;
    impl HistorySource for Broken {
        fn alerts(&self) -> Result<Vec<spate_operators::alerts::record::AlertRecord>, String> {
            Err("hot store unavailable".into())
        }
        fn windows(&self) -> Result<Vec<spate_operators::alerts::record::WindowRecord>, String> {
            Ok(Vec::new())
        }
    }
    let ctx = QueryContext::new(
        LakeLocation::local(dir.path()),
        Arc::new(Broken),
        &QueryConfig::default(),
    )
    .unwrap();
    let err = execute(&ctx, "select * from alerts", 10, LONG)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::External);
    assert!(err.to_string().contains("hot store unavailable"), "{err}");
    // A query that does not name the history does not read it.
    let ok = execute(&ctx, "select count(*) from logs", 10, LONG)
        .await
        .unwrap();
    assert_eq!(ok.rows, vec![vec![json!(0)]]);
}

#[tokio::test]
async fn an_object_store_lake_is_queried_like_a_directory() {
    use datafusion::object_store::memory::InMemory;
    use datafusion::object_store::{ObjectStoreExt, PutPayload, path::Path as ObjectPath};
    // Copy the sample lake's visible and hidden files into an in-memory store.
    let dir = tempfile::tempdir().unwrap();
    sample_lake(dir.path());
    let store = Arc::new(InMemory::new());
    let root = dir.path();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let bytes = std::fs::read(&path).unwrap();
            store
                .put(
                    &ObjectPath::from(format!("prefix/{key}")),
                    PutPayload::from(bytes),
                )
                .await
                .unwrap();
        }
    }
    let lake = LakeLocation::ObjectStore {
        url: "memory://bucket/prefix".into(),
        store,
        staging: None,
    };
    let ctx = QueryContext::new(lake, Arc::new(NoHistory), &QueryConfig::default()).unwrap();
    let out = execute(
        &ctx,
        "select message from logs where service = 'api' order by ts",
        10,
        LONG,
    )
    .await
    .unwrap();
    let messages: Vec<&Value> = out.rows.iter().map(|r| &r[0]).collect();
    assert_eq!(
        messages,
        [
            &json!("GET /a"),
            &json!("upstream timeout"),
            &json!("disk full")
        ]
    );
    assert_eq!(out.files_scanned, 2);
}

#[tokio::test]
async fn files_committed_after_a_query_are_seen_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    write_file(
        dir.path(),
        "api",
        "part-1.parquet",
        &[(T0 + 1, Severity::Info, "first")],
    );
    let first = execute(&ctx, "select message from logs", 10, LONG)
        .await
        .unwrap();
    assert_eq!(first.rows.len(), 1);
    // A long-lived context (the HTTP API's) must list the lake on every query.
    write_file(
        dir.path(),
        "web",
        "part-1.parquet",
        &[(T0 + 2, Severity::Info, "second")],
    );
    let second = execute(&ctx, "select message from logs", 10, LONG)
        .await
        .unwrap();
    assert_eq!(second.rows.len(), 2, "{:?}", second.rows);
}
