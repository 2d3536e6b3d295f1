//! `spate run`: the log service.
//!
//! ```text
//! POST /v1/logs ─► journal ─► journal source ─┐
//! tailed files ───────────────────────────────┼─► decode (pool) ─┬─► lake writer (Parquet)
//! stdin (when enabled) ───────────────────────┘                  ├─► hot writer (SQLite)
//!                                                                └─► windows ─► alerts (stdout, file, webhook, hot store)
//! ```
//!
//! HTTP pushes are answered once they are in the journal (fsynced); the journal's
//! checkpoint, and the tail's offsets, advance only when the lake, the hot store
//! and the windows have all taken the data, so a crash or restart replays what
//! was not committed (at-least-once, with the same event ids).
//!
//! # Backpressure
//!
//! Every stage has a bounded mailbox. When the sinks fall behind, the journal
//! source stops reading, the journal backlog grows, and past its limit pushes are
//! answered 429 with `Retry-After`; tailing pauses (the files wait on disk).
//!
//! # Shutdown
//!
//! The first SIGTERM/SIGINT stops the listener (requests in progress are answered),
//! closes the journal to new appends, lets the sources read what was accepted,
//! drains the graph (the lake commits its open files, the hot store commits),
//! prints the last EMF metrics (`[metrics.emf]`), saves the checkpoints, and
//! exits 0. A second signal exits at once (anything not committed is replayed
//! at the next start). In shared-window mode the alert router evaluates the
//! windows still pending their settle delay as it closes.
//!
//! # Several processes
//!
//! With `[hot_dynamodb]`, windows are shared unless `[windows] shared = false`:
//! each process adds its partial window counts to DynamoDB, the alert router
//! runs the rules on the merged counts after `shared_settle_secs`, and only
//! the process that wins a notice's claim sends it (see
//! `spate_operators::alerts::shared`). With `[[sources.kinesis]]` the
//! processes split the stream's shards through the lease table.

pub mod body;
pub mod emf;
pub mod http;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use spate_engine::{ActorOptions, GraphBuilder, SupervisorPolicy};
use spate_operators::alerts::record::AlertStore;
use spate_operators::alerts::router::AlertRouter;
use spate_operators::alerts::shared::SharedWindows;
use spate_operators::sinks::dynamo_hot::{DynamoBatchWriter, DynamoHotStore, DynamoHotWriter};
use spate_operators::sinks::hot::{HotStore, HotWriter};
use spate_operators::sinks::lake::{LakeSettings, LakeTarget};
use spate_operators::sinks::s3_lake::S3Target;
use spate_operators::sinks::sns::SnsPublisher;
use spate_operators::sources::file::{FileReadConfig, FileSource, Input, ReadProgress};
use spate_operators::sources::journal::{Journal, JournalError, JournalRecord, JournalWriter};
use spate_operators::sources::kinesis::KinesisStream;
use spate_operators::sources::sqs::SqsQueue;
use spate_operators::sources::tail::TailSource;
use spate_operators::transforms::decode::{DecodeSettings, DecodeStage};
use spate_operators::windows::WindowAggregator;

use self::body::BodyRecord;
use self::http::{HttpState, LogAcceptor, Refusal};
use crate::config::SpateConfig;
use crate::query::lake::{LakeLocation, S3Url};

/// How long the pipeline gets to drain at shutdown (ECS waits 30 s before
/// SIGKILL).
const DRAIN_DEADLINE: Duration = Duration::from_secs(25);

/// `[stdin]`: read log lines from standard input as a source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// Read stdin (until it closes) besides the other sources.
    #[serde(default)]
    pub enabled: bool,
}

/// Command-line settings of `spate run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Overrides `http.listen`.
    pub listen: Option<String>,
    /// Where the journal, lake, hot store, checkpoints and alerts live.
    pub data_dir: PathBuf,
}

/// The journal as the HTTP layer's [`LogAcceptor`].
struct JournalAcceptor {
    writer: JournalWriter,
    journal: Arc<Journal>,
}

impl LogAcceptor for JournalAcceptor {
    fn accept(&self, records: Vec<BodyRecord>) -> BoxFuture<'static, Result<(), Refusal>> {
        let writer = self.writer.clone();
        let ingest_ts_ms = spate_operators::event::wall_clock_ms();
        let records: Vec<JournalRecord> = records
            .into_iter()
            .map(|r| JournalRecord {
                format: r.format,
                ingest_ts_ms,
                lines: r.lines,
                bytes: r.bytes.into(),
            })
            .collect();
        Box::pin(async move {
            match writer.append(records).await {
                Ok(_) => Ok(()),
                Err(e @ JournalError::Saturated { .. }) => Err(Refusal::Saturated {
                    reason: format!("pipeline behind: {e}; retry later"),
                }),
                Err(e) => Err(Refusal::Unavailable {
                    reason: e.to_string(),
                }),
            }
        })
    }

    fn ready(&self) -> Result<(), String> {
        let stats = self.journal.stats();
        if stats.saturated() {
            return Err(format!(
                "journal backlog full ({} of {} bytes unread by the pipeline)",
                stats.backlog_bytes, stats.max_backlog_bytes
            ));
        }
        Ok(())
    }
}

/// Runs the service until a signal (or a sink that cannot recover).
pub async fn run(mut config: SpateConfig, options: RunOptions) -> Result<()> {
    let data_dir = options.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let exporter = Arc::new(crate::metric_catalog::install(&config)?);
    let token = config.http.token().map_err(anyhow::Error::msg)?;

    let journal =
        Arc::new(Journal::open(&config.journal, &data_dir.join("journal")).context("journal")?);
    let hot_path = config
        .hot
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("hot.db"));
    config.windows.validate().context("windows")?;
    config.alerts.validate().context("alerts")?;
    let hot = HotStore::open(&hot_path)
        .context("hot store")?
        .with_retention(config.hot.retention());
    // Check the settings once here; the graph builds writers from them later.
    config.hot.validate().context("hot")?;
    let lake_dir = config
        .lake
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("lake"));
    let dead_dir = data_dir.join("deadletter");
    let lake = LakeSettings::new(&config.lake, &lake_dir, &dead_dir)?;
    let aws = AwsParts::connect(&config).await?;
    // The webhook token from Secrets Manager, read once, before anything starts.
    if let (Some(webhook), Some(aws)) = (&config.alerts.webhook, &aws)
        && webhook.needs_secret()
    {
        let client = config.aws.secretsmanager_client(&aws.sdk);
        let resolved = webhook
            .clone()
            .resolve_secret(&client)
            .await
            .context("alerts.webhook.bearer_token_secret")?;
        config.alerts.webhook = Some(resolved);
    }
    let lake = match (&config.lake.s3, &aws) {
        (Some(s3), Some(aws)) => lake.with_target(LakeTarget::S3(Arc::new(
            S3Target::new(config.aws.s3_client(&aws.sdk), s3).context("lake.s3")?,
        ))),
        _ => lake,
    };
    // With `[lake.s3]` the local lake is only a staging area (files leave it
    // once uploaded): queries read the bucket.
    let query_lake = match (&config.lake.s3, &aws) {
        (Some(s3), Some(aws)) => LakeLocation::s3(
            config.aws.s3_client(&aws.sdk),
            &S3Url::new(&s3.bucket, &s3.prefix)
                .map_err(anyhow::Error::msg)
                .context("lake.s3")?,
        ),
        _ => LakeLocation::local(&lake_dir),
    };
    let decode = DecodeSettings::new(
        &config.decode,
        &config.classify,
        &config.enrich,
        &config.pipeline,
    )?
    .with_lake_shards(config.lake.writers);

    let tail = if config.tail.enabled() {
        Some(TailSource::new(config.tail.clone(), data_dir.join("checkpoints")).context("tail")?)
    } else {
        None
    };
    let pipeline_graph = build_graph(
        &config,
        &data_dir,
        GraphParts {
            journal: &journal,
            hot: &hot,
            lake: &lake,
            decode,
            tail: tail.as_ref(),
            aws: aws.as_ref(),
        },
    )?;
    let pipeline = pipeline_graph.spawn();
    let emf = config.metrics.emf.enabled.then(|| {
        let exporter = exporter.clone();
        emf::EmfEmitter::start(&config.metrics.emf, Arc::new(move || exporter.render()))
    });

    let listen = options
        .listen
        .clone()
        .unwrap_or_else(|| config.http.listen.clone());
    let (listener, addr) = http::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let acceptor = Arc::new(JournalAcceptor {
        writer: journal.writer(),
        journal: journal.clone(),
    });
    let metrics = exporter.clone();
    // `alerts` and `windows` come from where the hot store is.
    let history: Arc<dyn crate::query::history::HistorySource> =
        match aws.as_ref().and_then(|a| a.dynamo_hot.as_ref()) {
            Some((_, store)) => Arc::new(crate::query::history::DynamoHistory::new(store.clone())),
            None => Arc::new(crate::query::history::HotHistory::new(hot_path.clone())),
        };
    let query = crate::query::QueryContext::new(query_lake, history).context("query")?;
    let state = HttpState::new(
        &config.http,
        token.clone(),
        acceptor,
        Arc::new(move || metrics.render()),
    )
    .with_query(query);
    eprintln!(
        "spate: listening on http://{addr} (POST /v1/logs{}, POST /v1/query, GET /metrics, /healthz, /readyz)",
        if token.is_some() {
            ", bearer token required"
        } else {
            ""
        }
    );
    eprintln!(
        "spate: data in {} (lake {}, hot store {}, alerts {})",
        data_dir.display(),
        lake.table_dir().display(),
        hot_path.display(),
        alerts_file(&config, &data_dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stdout only".into())
    );
    if !config.tail.paths.is_empty() {
        eprintln!("spate: tailing {}", config.tail.paths.join(", "));
    }
    for sqs in &config.sources.sqs {
        eprintln!("spate: consuming {}", sqs.queue_url);
    }
    for kinesis in &config.sources.kinesis {
        eprintln!("spate: reading kinesis stream {}", kinesis.stream);
    }
    if let Some(hot) = &config.hot_dynamodb {
        eprintln!("spate: hot store in dynamodb table {}", hot.table);
        if config.windows.shared_mode(true).unwrap_or(false) {
            eprintln!(
                "spate: shared windows: alerts decided on the counts merged in {}, {} s after a window closes",
                hot.table, config.windows.shared_settle_secs
            );
        }
    }
    if let Some(s3) = &config.lake.s3 {
        eprintln!(
            "spate: lake files uploaded to s3://{}/{}",
            s3.bucket, s3.prefix
        );
    }

    // The first signal stops the listener and the journal, then the pipeline
    // drains; a second one aborts the drain.
    let mut os_signals = spate_engine::signals::listen()?;
    let (to_pipeline, mut pipeline_signals) = tokio::sync::mpsc::channel(2);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, http::router(Arc::new(state)))
            .with_graceful_shutdown(async move {
                let _ = http_stopped.await;
            })
            .await
    });
    let closing_journal = journal.clone();
    let relay = tokio::spawn(async move {
        if os_signals.recv().await.is_none() {
            return;
        }
        eprintln!("spate: draining (a second signal exits at once)");
        let _ = stop_http.send(());
        let _ = server.await;
        closing_journal.close();
        let _ = to_pipeline.send(()).await;
        if os_signals.recv().await.is_some() {
            let _ = to_pipeline.send(()).await;
        }
    });
    let drain_deadline = DRAIN_DEADLINE;
    let result = pipeline
        .run_until_signal(&mut pipeline_signals, drain_deadline)
        .await;
    relay.abort();
    // Let the last SQS deletes finish.
    if let Some(aws) = &aws {
        for queue in &aws.queues {
            if !queue.settled(Duration::from_secs(10)).await {
                tracing::warn!(
                    "sqs deletes still pending at exit; those messages will be redelivered"
                );
            }
        }
    }
    // The last interval's metrics, the drain included.
    if let Some(emf) = emf {
        emf.finish().await;
    }
    // Everything the sinks committed is now acknowledged: save the checkpoints.
    journal
        .checkpoint_now()
        .await
        .context("journal checkpoint")?;
    if let Some(tail) = &tail {
        tail.checkpoints().save_now().context("tail checkpoint")?;
    }
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("spate: stopped");
    Ok(())
}

/// The AWS clients and sources a config asks for.
struct AwsParts {
    sdk: aws_config::SdkConfig,
    queues: Vec<Arc<SqsQueue>>,
    streams: Vec<Arc<KinesisStream>>,
    sns: Option<SnsPublisher>,
    dynamo_hot: Option<(DynamoBatchWriter, DynamoHotStore)>,
}

impl AwsParts {
    /// Loads the SDK configuration (standard credential chain, region,
    /// endpoint overrides) when anything in `config` uses AWS.
    async fn connect(config: &SpateConfig) -> Result<Option<AwsParts>> {
        let uses_aws = !config.sources.sqs.is_empty()
            || !config.sources.kinesis.is_empty()
            || config.hot_dynamodb.is_some()
            || config.lake.s3.is_some()
            || config.alerts.sns.is_some()
            || config
                .alerts
                .webhook
                .as_ref()
                .is_some_and(|w| w.needs_secret());
        if !uses_aws {
            return Ok(None);
        }
        let sdk = config.aws.load().await;
        let queues = config
            .sources
            .sqs
            .iter()
            .enumerate()
            .map(|(i, sqs)| {
                SqsQueue::new(config.aws.sqs_client(&sdk), sqs.clone())
                    .with_context(|| format!("sources.sqs[{i}]"))
            })
            .collect::<Result<Vec<_>>>()?;
        let sns = config
            .alerts
            .sns
            .as_ref()
            .map(|sns| SnsPublisher::new(config.aws.sns_client(&sdk), sns).context("alerts.sns"))
            .transpose()?;
        let streams = config
            .sources
            .kinesis
            .iter()
            .enumerate()
            .map(|(i, kinesis)| {
                KinesisStream::new(
                    config.aws.kinesis_client(&sdk),
                    config.aws.dynamodb_client(&sdk),
                    kinesis.clone(),
                )
                .with_context(|| format!("sources.kinesis[{i}]"))
            })
            .collect::<Result<Vec<_>>>()?;
        let dynamo_hot = match &config.hot_dynamodb {
            Some(hot) => {
                let client = config.aws.dynamodb_client(&sdk);
                let store =
                    DynamoHotStore::new(client.clone(), hot.clone()).context("hot_dynamodb")?;
                Some((DynamoBatchWriter::new(client, hot.table.clone()), store))
            }
            None => None,
        };
        Ok(Some(AwsParts {
            sdk,
            queues,
            streams,
            sns,
            dynamo_hot,
        }))
    }
}

fn alerts_file(config: &SpateConfig, data_dir: &Path) -> Option<PathBuf> {
    config.alerts.file_path(&data_dir.join("alerts.ndjson"))
}

/// What the graph is built from.
struct GraphParts<'a> {
    journal: &'a Arc<Journal>,
    hot: &'a HotStore,
    lake: &'a LakeSettings,
    decode: DecodeSettings,
    tail: Option<&'a TailSource>,
    aws: Option<&'a AwsParts>,
}

fn build_graph(
    config: &SpateConfig,
    data_dir: &Path,
    parts: GraphParts<'_>,
) -> Result<spate_engine::Graph> {
    let GraphParts {
        journal,
        hot,
        lake,
        decode,
        tail,
        aws,
    } = parts;
    let mut graph = GraphBuilder::new();
    let workers = config.pipeline.workers();
    graph.actor_pool(
        "decode",
        workers,
        move |_| DecodeStage::new(&decode),
        ActorOptions::with_capacity(workers * 2),
    );

    let source = journal.clone();
    graph.source("http", move || source.source());
    graph.connect("http", "decode");
    if let Some(tail) = tail {
        let tail = tail.clone();
        graph.source("tail", move || tail.clone());
        graph.connect("tail", "decode");
    }
    for (i, queue) in aws.iter().flat_map(|a| a.queues.iter()).enumerate() {
        let (name, queue) = (format!("sqs-{i}"), queue.clone());
        graph.source(&name, move || queue.source());
        graph.connect(&name, "decode");
    }
    for (i, stream) in aws.iter().flat_map(|a| a.streams.iter()).enumerate() {
        let (name, stream) = (format!("kinesis-{i}"), stream.clone());
        graph.source(&name, move || stream.source());
        graph.connect(&name, "decode");
    }
    if config.stdin.enabled {
        let inputs = Arc::new(vec![Input::Stdin]);
        let read = FileReadConfig::default();
        let progress = Arc::new(ReadProgress::default());
        graph.source("stdin", move || {
            FileSource::new(inputs.clone(), &read, progress.clone())
        });
        graph.connect("stdin", "decode");
    }

    // A service keeps retrying a failing sink (a full disk may be freed); the
    // sources stall meanwhile and nothing is acknowledged.
    let sink_policy = SupervisorPolicy {
        max_consecutive_restarts: None,
        ..SupervisorPolicy::default()
    };
    let sink_options = ActorOptions {
        mailbox_capacity: workers * 2,
        supervisor: sink_policy,
    };
    // Lake writers first: the decode stage shards across its first outputs.
    crate::ingest::add_lake_writers(&mut graph, lake, config.lake.writers, sink_options.clone());
    let dynamo_hot = aws.and_then(|a| a.dynamo_hot.clone());
    match (&dynamo_hot, &config.hot_dynamodb) {
        (Some((writer, _)), Some(dynamo_config)) => {
            let (writer, dynamo_config) = (writer.clone(), dynamo_config.clone());
            graph.actor(
                "hot",
                move || {
                    DynamoHotWriter::new(writer.clone(), &dynamo_config)
                        .expect("hot_dynamodb settings checked at start")
                },
                sink_options.clone(),
            );
        }
        _ => {
            let (store, hot_config) = (hot.clone(), config.hot.clone());
            graph.actor(
                "hot",
                move || {
                    HotWriter::new(store.clone(), &hot_config)
                        .expect("hot settings checked at start")
                },
                sink_options.clone(),
            );
        }
    }
    graph.connect("decode", "hot");
    // Shared-window mode: several processes share the DynamoDB store, so the
    // rules run in the router on the merged counts.
    let shared = config
        .windows
        .shared_mode(dynamo_hot.is_some())
        .context("windows")?;
    let (windows, alerts_config) = (config.windows.clone(), config.alerts.clone());
    graph.actor(
        "windows",
        move || {
            let aggregator = WindowAggregator::new(&windows, &alerts_config)
                .expect("alert rules checked at start");
            if shared {
                aggregator.shared()
            } else {
                aggregator
            }
        },
        sink_options.clone(),
    );
    graph.connect("decode", "windows");
    let (alerts, store) = (config.alerts.clone(), hot.clone());
    let windows = config.windows.clone();
    let default_file = data_dir.join("alerts.ndjson");
    let sns = aws.and_then(|a| a.sns.clone());
    graph.actor(
        "alerts",
        move || {
            let store: Arc<dyn AlertStore> = match &dynamo_hot {
                Some((_, dynamo)) => Arc::new(dynamo.clone()),
                None => Arc::new(store.clone()),
            };
            let router = AlertRouter::new(alerts.clone(), default_file.clone(), Some(store));
            let router = match (&dynamo_hot, shared) {
                (Some((_, dynamo)), true) => {
                    let rules = alerts.validate().expect("alert rules checked at start");
                    router.with_shared(SharedWindows::new(
                        Arc::new(dynamo.clone()),
                        &windows,
                        rules,
                        alerts.cooldown_ms(),
                    ))
                }
                _ => router,
            };
            match &sns {
                Some(publisher) => router.with_sns(publisher.clone()),
                None => router,
            }
        },
        sink_options,
    );
    graph.connect("windows", "alerts");
    Ok(graph.build()?)
}
