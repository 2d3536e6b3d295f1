//! The pipeline of `spate run`, assembled from validated settings.
//!
//! ```text
//! journal (HTTP push) ─┐
//! [sources.*] ─────────┴─► decode (pool) ─┬─► lake writers (keyed by partition)
//!                                         ├─► hot writer (SQLite | DynamoDB)
//!                                         └─► windows ─► alerts
//! ```
//!
//! Sources come from the registry: each validated source builds itself
//! through its kind. The sinks are the service's own and always present.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use spate_engine::{ActorOptions, Graph, GraphBuilder, SupervisorPolicy};
use spate_operators::alerts::anomaly::store::BaselineStore;
use spate_operators::alerts::record::AlertStore;
use spate_operators::alerts::router::AlertRouter;
use spate_operators::alerts::rules::Rule;
use spate_operators::alerts::silence::SilenceStore;
use spate_operators::alerts::window_store::{MemoryWindowStore, WindowStore};
use spate_operators::aws::AwsClients;
use spate_operators::component::{AfterDrain, BuildContext};
use spate_operators::sinks::dynamo_hot::{DynamoBatchWriter, DynamoHotStore, DynamoHotWriter};
use spate_operators::sinks::hot::{HotStore, HotWriter};
use spate_operators::sinks::lake::LakeSettings;
use spate_operators::sinks::sns::SnsPublisher;
use spate_operators::sources::journal::Journal;
use spate_operators::transforms::decode::{DecodeSettings, DecodeStage};
use spate_operators::windows::WindowAggregator;

use crate::config::{SpateConfig, ValidSource};
use crate::query::history::{DynamoHistory, HistorySource, HotHistory};

/// What the graph is built from.
pub(super) struct GraphParts<'a> {
    pub journal: &'a Arc<Journal>,
    pub hot: &'a HotStore,
    pub lake: &'a LakeSettings,
    pub decode: DecodeSettings,
    pub sources: &'a [ValidSource],
    pub aws: Option<&'a AwsClients>,
    pub shared_windows: bool,
    pub rules: Vec<Rule>,
}

/// The graph, with what the service needs besides it.
pub(super) struct Built {
    /// Ready to spawn.
    pub graph: Graph,
    /// Work the sources finish once the pipeline drained.
    pub after_drain: Vec<AfterDrain>,
    /// Start-up lines: what is read and where things go.
    pub banner: Vec<String>,
    /// Where `alerts` and `windows` are queried: where the hot store is.
    pub history: Arc<dyn HistorySource>,
}

/// Builds the pipeline of `spate run`.
pub(super) fn build(config: &SpateConfig, data_dir: &Path, parts: GraphParts<'_>) -> Result<Built> {
    let GraphParts {
        journal,
        hot,
        lake,
        decode,
        sources,
        aws,
        shared_windows,
        rules,
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

    let mut banner = vec![format!(
        "data in {} (lake {}, hot store {}, alerts {})",
        data_dir.display(),
        lake.table_dir().display(),
        config
            .hot
            .path
            .clone()
            .unwrap_or_else(|| data_dir.join("hot.db"))
            .display(),
        alerts_file(config, data_dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stdout only".into())
    )];
    let mut ctx = BuildContext::new(&mut graph, data_dir, "decode", aws);
    for source in sources {
        source
            .source
            .build(&source.name, &mut ctx)
            .with_context(|| source.key.clone())?;
        banner.push(source.source.describe());
    }
    let after_drain = ctx.into_after_drain();

    // A service keeps retrying a failing sink (a full disk may be freed); the
    // sources stall meanwhile and nothing is acknowledged.
    let sink_options = ActorOptions {
        mailbox_capacity: workers * 2,
        supervisor: SupervisorPolicy {
            max_consecutive_restarts: None,
            ..SupervisorPolicy::default()
        },
    };
    crate::ingest::add_lake_writers(&mut graph, lake, config.lake.writers, sink_options.clone());
    if let Some(s3) = &config.lake.s3 {
        banner.push(format!(
            "lake files uploaded to s3://{}/{} (sources acknowledged once sealed and uploaded, within {}s)",
            s3.bucket,
            s3.prefix,
            config.lake.seal_policy().max_age.as_secs()
        ));
        if let Some(glue) = &s3.glue {
            banner.push(format!(
                "lake partitions registered in glue table {}.{}",
                glue.database, glue.table
            ));
        }
    }

    let dynamo = match (&config.hot_dynamodb, aws) {
        (Some(dynamo_config), Some(aws)) => {
            let client = aws.dynamodb();
            let store = DynamoHotStore::new(client.clone(), dynamo_config.clone())
                .context("hot_dynamodb")?;
            let writer = DynamoBatchWriter::new(client, dynamo_config.table.clone());
            banner.push(format!(
                "hot store in dynamodb table {}",
                dynamo_config.table
            ));
            if shared_windows {
                banner.push(format!(
                    "shared windows: alerts decided on the counts merged in {}, {} s after a window closes",
                    dynamo_config.table, config.windows.shared_settle_secs
                ));
            }
            let dynamo_config = dynamo_config.clone();
            graph.actor(
                "hot",
                move || DynamoHotWriter::new(writer.clone(), &dynamo_config),
                sink_options.clone(),
            );
            Some(store)
        }
        _ => {
            let (store, hot_config) = (hot.clone(), config.hot.clone());
            graph.actor(
                "hot",
                move || HotWriter::new(store.clone(), &hot_config),
                sink_options.clone(),
            );
            None
        }
    };
    graph.connect("decode", "hot");

    let windows = config.windows.clone();
    graph.actor(
        "windows",
        move || WindowAggregator::new(&windows),
        sink_options.clone(),
    );
    graph.connect("decode", "windows");

    let (alerts, store, hot_store) = (config.alerts.clone(), hot.clone(), hot.clone());
    let windows = config.windows.clone();
    let default_file = data_dir.join("alerts.ndjson");
    let sns = match (&config.alerts.sns, aws) {
        (Some(sns), Some(aws)) => Some(SnsPublisher::new(aws.sns(), sns).context("alerts.sns")?),
        _ => None,
    };
    let router_dynamo = dynamo.clone();
    let window_metrics = config.metrics.emf.window_metrics();
    graph.actor(
        "alerts",
        move || {
            let store: Arc<dyn AlertStore> = match &router_dynamo {
                Some(dynamo) => Arc::new(dynamo.clone()),
                None => Arc::new(store.clone()),
            };
            // Shared windows merge in DynamoDB; otherwise this process's
            // counts are the whole story.
            let window_store: Arc<dyn WindowStore> = match &router_dynamo {
                Some(dynamo) if shared_windows => Arc::new(dynamo.clone()),
                _ => Arc::new(MemoryWindowStore::default()),
            };
            // Baselines and silences live where the hot store is, so they
            // survive restarts (and are shared with DynamoDB).
            let (baselines, silences): (Arc<dyn BaselineStore>, Arc<dyn SilenceStore>) =
                match &router_dynamo {
                    Some(dynamo) => (Arc::new(dynamo.clone()), Arc::new(dynamo.clone())),
                    None => (Arc::new(hot_store.clone()), Arc::new(hot_store.clone())),
                };
            let router = AlertRouter::with_rules(
                alerts.clone(),
                rules.clone(),
                &windows,
                default_file.clone(),
                Some(store),
                window_store,
            )
            .with_baselines(baselines)
            .with_silences(silences);
            let router = match &window_metrics {
                Some(metrics) => router.with_window_metrics(metrics.clone()),
                None => router,
            };
            match &sns {
                Some(publisher) => router.with_sns(publisher.clone()),
                None => router,
            }
        },
        sink_options,
    );
    graph.connect("windows", "alerts");

    let history: Arc<dyn HistorySource> = match dynamo {
        Some(store) => Arc::new(DynamoHistory::new(store)),
        None => Arc::new(HotHistory::new(
            config
                .hot
                .path
                .clone()
                .unwrap_or_else(|| data_dir.join("hot.db")),
        )),
    };
    Ok(Built {
        graph: graph.build()?,
        after_drain,
        banner,
        history,
    })
}

fn alerts_file(config: &SpateConfig, data_dir: &Path) -> Option<std::path::PathBuf> {
    config.alerts.file_path(&data_dir.join("alerts.ndjson"))
}
