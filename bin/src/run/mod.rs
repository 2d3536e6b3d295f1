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
//! runs the rules on the merged counts after `shared_settle`, and only
//! the process that wins a notice's claim sends it (see
//! `spate_operators::alerts::pending`). With `[[sources.kinesis]]` the
//! processes split the stream's shards through the lease table.
//!
//! # Building
//!
//! The pipeline is built from a [`ValidConfig`] (checked once, without I/O,
//! by `crate::config`): the decode pool, the journal source behind HTTP push,
//! every configured source through its kind's `build`
//! (`spate_operators::sources::supported_sources()`), then the sinks
//! ([`graph`]).

mod acceptor;
pub mod body;
pub mod emf;
mod graph;
pub mod http;
#[cfg(test)]
mod toy_source_tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use spate_operators::aws::AwsClients;
use spate_operators::sinks::hot::HotStore;
use spate_operators::sinks::lake::{LakeSettings, LakeTarget};
use spate_operators::sinks::s3_lake::S3Target;
use spate_operators::sinks::s3_lake::glue::GlueCatalog;
use spate_operators::sources::journal::Journal;
use spate_operators::transforms::decode::DecodeSettings;

use self::acceptor::JournalAcceptor;
use self::graph::GraphParts;
use self::http::HttpState;
use crate::config::ValidConfig;
use crate::console::Console;
use crate::console::store::ConsoleStore;
use crate::data_dir_lock::DataDirLock;
use crate::query::lake::{LakeLocation, S3Url};

/// How long the pipeline gets to drain at shutdown (ECS waits 30 s before
/// SIGKILL).
const DRAIN_DEADLINE: Duration = Duration::from_secs(25);

/// Command-line settings of `spate run` besides the configuration.
#[derive(Debug)]
pub struct RunOptions {
    /// Where the journal, lake, hot store, checkpoints and alerts live.
    pub data_dir: PathBuf,
    /// Shutdown requests; `None`: SIGTERM and SIGINT.
    pub signals: Option<tokio::sync::mpsc::Receiver<()>>,
}

/// Runs the service until a signal (or a sink that cannot recover).
pub async fn run(valid: ValidConfig, options: RunOptions) -> Result<()> {
    let uses_aws = valid.uses_aws();
    let exporter = Arc::new(crate::metric_catalog::install(&valid)?);
    let ValidConfig {
        mut config,
        sources,
        token,
        shared_windows,
        classifier,
        rules,
    } = valid;
    let data_dir = options.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let lake_dir = config
        .lake
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("lake"));
    // One process per data dir, for the life of the service.
    let _locks = DataDirLock::acquire_all(&data_dir, &lake_dir, "spate run")?;

    let journal =
        Arc::new(Journal::open(&config.journal, &data_dir.join("journal")).context("journal")?);
    let hot_path = config
        .hot
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("hot.db"));
    let hot = HotStore::open(&hot_path)
        .context("hot store")?
        .with_retention(config.hot.retention());
    let dead_dir = data_dir.join("deadletter");
    let lake = LakeSettings::new(&config.lake, &lake_dir, &dead_dir)?;
    lake.create_table_dir()?;
    // The SDK configuration, loaded once when anything uses AWS.
    let aws = match uses_aws {
        true => Some(AwsClients::load(&config.aws).await),
        false => None,
    };
    // The webhook token from Secrets Manager, read once, before anything starts.
    if let (Some(webhook), Some(aws)) = (&config.alerts.webhook, &aws)
        && webhook.needs_secret()
    {
        let resolved = webhook
            .clone()
            .resolve_secret(&aws.secretsmanager())
            .await
            .context("alerts.webhook.bearer_token_secret")?;
        config.alerts.webhook = Some(resolved);
    }
    // The PagerDuty routing key likewise.
    if let (Some(pagerduty), Some(aws)) = (&config.alerts.pagerduty, &aws)
        && pagerduty.needs_secret()
    {
        let resolved = pagerduty
            .clone()
            .resolve_secret(&aws.secretsmanager())
            .await
            .context("alerts.pagerduty.routing_key_secret")?;
        config.alerts.pagerduty = Some(resolved);
    }
    let lake = match (&config.lake.s3, &aws) {
        (Some(s3), Some(aws)) => {
            let mut target = S3Target::new(aws.s3(), s3).context("lake.s3")?;
            if let Some(glue) = &s3.glue {
                let catalog = Arc::new(GlueCatalog::new(
                    aws.glue(),
                    glue,
                    &target.table_location(),
                    s3.max_attempts,
                ));
                // The table must exist before the first seal registers a
                // partition in it.
                catalog
                    .check()
                    .await
                    .with_context(|| format!("lake.s3.glue: table {}", catalog.table_name()))?;
                target = target.with_catalog(catalog);
            }
            lake.with_target(LakeTarget::S3(Arc::new(target)))
        }
        _ => lake,
    };
    // With `[lake.s3]` sealed files leave the local lake once uploaded:
    // queries read the bucket, plus this process's staged rows.
    let query_lake = match (&config.lake.s3, &aws) {
        (Some(s3), Some(aws)) => LakeLocation::s3(
            aws.s3(),
            &S3Url::new(&s3.bucket, &s3.prefix)
                .map_err(anyhow::Error::msg)
                .context("lake.s3")?,
        )
        .with_staging(lake.staging_dir().to_path_buf(), lake.coverage()),
        _ => LakeLocation::local(&lake_dir),
    };
    let decode = DecodeSettings::load(
        &config.decode,
        classifier,
        &config.enrich,
        &config.pipeline,
        aws.as_ref().map(AwsClients::s3),
    )
    .await?;
    let console_rules = rules.clone();
    let built = graph::build(
        &config,
        &data_dir,
        GraphParts {
            journal: &journal,
            hot: &hot,
            lake: &lake,
            decode,
            sources: &sources,
            aws: aws.as_ref(),
            shared_windows,
            rules,
        },
    )?;
    let pipeline = built.graph.spawn();
    let emf = config.metrics.emf.enabled.then(|| {
        let exporter = exporter.clone();
        emf::EmfEmitter::start(&config.metrics.emf, Arc::new(move || exporter.render()))
    });

    let (listener, addr) = http::bind(&config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let journal_dir = config
        .journal
        .dir
        .clone()
        .unwrap_or_else(|| data_dir.join("journal"));
    let acceptor = Arc::new(JournalAcceptor::new(
        journal.clone(),
        journal_dir,
        config.journal.max_disk_mib.saturating_mul(1 << 20),
    ));
    let metrics = exporter.clone();
    let console_store = Arc::new(ConsoleStore::open_in(&data_dir).context("console")?);
    let query = Arc::new(
        crate::query::QueryContext::new(query_lake, built.history.clone(), &config.query)
            .context("query")?
            .with_audit(console_store.clone()),
    );
    let queries =
        crate::query::executor::QueryExecutor::new(&config.query).context("query threads")?;
    let mut console = Console::new(
        console_store.clone(),
        query.clone(),
        queries.clone(),
        &config.query,
        config.hot_dynamodb.is_none().then(|| hot_path.clone()),
        console_rules,
    );
    if let Some(oidc) = &config.console.oidc {
        let verifier = crate::console::oidc::Verifier::new(oidc.clone())
            .map_err(|e| anyhow::anyhow!("console.oidc: {e}"))?;
        console = console.with_oidc(verifier);
    }
    if let (Some(sns), Some(aws)) = (&config.alerts.sns, &aws) {
        console = console.with_sns(crate::console::sns_subscriptions::SnsSubscriber::new(
            aws.sns(),
            &sns.topic_arn,
        ));
    }
    let state = HttpState::new(
        &config.http,
        config.decode.max_payload_bytes,
        token.clone(),
        acceptor,
        Arc::new(move || metrics.render()),
    )
    .with_query(query.clone(), queries.clone(), &config.query)
    .with_console(Arc::new(console));
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
    let state = state.with_closing(closing_seen.clone());
    // Audit records past `console.audit_retention_days`, at start and hourly.
    let audit_retention = tokio::spawn(crate::console::retention::run(
        console_store.clone(),
        config.console.audit_retention_days,
        crate::console::retention::PRUNE_INTERVAL,
        spate_operators::event::wall_clock_ms,
        closing_seen.clone(),
    ));
    // Alert notices to the webhooks console users subscribed.
    let subscriptions = tokio::spawn(
        crate::console::subscriptions::Dispatcher::new(console_store.clone(), built.history)
            .run(closing_seen),
    );
    // Installed before the service says it listens, so that a signal sent as
    // soon as it does is handled. The first signal stops the listener and the
    // journal, then the pipeline drains; a second one aborts the drain.
    let mut os_signals = match options.signals {
        Some(signals) => signals,
        None => spate_engine::signals::listen()?,
    };
    eprintln!(
        "spate: listening on http://{addr} (POST /v1/logs{}, POST /v1/query, GET /v1/tap, GET /metrics, /healthz, /readyz, console at /ui)",
        if token.is_some() {
            ", bearer token required"
        } else {
            ""
        }
    );
    for line in built.banner {
        eprintln!("spate: {line}");
    }

    let (to_pipeline, mut pipeline_signals) = tokio::sync::mpsc::channel(2);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let timeouts = http::serve::ServeTimeouts {
        header: config.http.header_timeout.get(),
        drain: config.http.drain_timeout.get(),
    };
    let server = tokio::spawn(http::serve::serve(
        listener,
        http::router(Arc::new(state)),
        timeouts,
        async move {
            let _ = http_stopped.await;
        },
    ));
    let closing_journal = journal.clone();
    let relay = tokio::spawn(async move {
        if os_signals.recv().await.is_none() {
            return;
        }
        eprintln!("spate: draining (a second signal exits at once)");
        let _ = closing.send(true);
        let _ = stop_http.send(());
        queries.shutdown();
        let _ = server.await;
        closing_journal.close();
        let _ = to_pipeline.send(()).await;
        if os_signals.recv().await.is_some() {
            let _ = to_pipeline.send(()).await;
        }
    });
    let result = pipeline
        .run_until_signal(&mut pipeline_signals, DRAIN_DEADLINE)
        .await;
    relay.abort();
    subscriptions.abort();
    audit_retention.abort();
    // What the sources finish once drained: the last SQS deletes, Kinesis
    // checkpoints and lease releases, tail checkpoints.
    for work in built.after_drain {
        work.await?;
    }
    // The last interval's metrics, the drain included.
    if let Some(emf) = emf {
        emf.finish().await;
    }
    // Everything the sinks committed is now acknowledged: save the checkpoint.
    journal
        .checkpoint_now()
        .await
        .context("journal checkpoint")?;
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("spate: stopped");
    Ok(())
}
