//! Building a pipeline from a description: named nodes and edges.
//!
//! The builder checks the whole graph before anything runs and rejects, with an
//! error naming the culprit: duplicate names, edges to or from unknown nodes,
//! edges into a source or out of a sink, actors nothing feeds, actors whose output
//! goes nowhere, payload type mismatches across an edge, and cycles.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use spate_engine::{Actor, ActorOptions, ActorResult, Batch, Ctx, GraphBuilder, NoOutput, Source};
//!
//! struct Numbers;
//! impl Source for Numbers {
//!     type Out = Vec<u64>;
//!     async fn run(&mut self, ctx: &mut Ctx<Vec<u64>>) -> ActorResult {
//!         ctx.send(Batch::unacked(vec![1, 2, 3])).await
//!     }
//! }
//!
//! struct Discard;
//! impl Actor for Discard {
//!     type In = Vec<u64>;
//!     type Out = NoOutput;
//!     async fn handle(&mut self, batch: Batch<Vec<u64>>, _: &mut Ctx<NoOutput>) -> ActorResult {
//!         batch.deliver();
//!         Ok(())
//!     }
//! }
//!
//! let mut graph = GraphBuilder::new();
//! graph.source("numbers", || Numbers);
//! graph.actor("discard", || Discard, ActorOptions::default());
//! graph.connect("numbers", "discard");
//! let report = graph.build().unwrap().spawn().join().await.unwrap();
//! assert_eq!(report.actor("discard").unwrap().events_in, 3);
//! # });
//! ```

use std::any::{Any, TypeId, type_name};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::actor::{Actor, Ctx, Source};
use crate::batch::NoOutput;
use crate::batch::Payload;
use crate::kill_switch::KillSwitch;
use crate::lag::SourceLag;
use crate::mailbox::{Control, shared_mailbox};
use crate::pipeline::Pipeline;
use crate::route::{RouteSpec, Splitter, typed_routes};
use crate::runtime::{ActorExit, Liveness, RunningGuard, run_actor, run_source};
use crate::stats::{ActorStats, Instruments};
use crate::supervisor::SupervisorPolicy;

/// Per-actor settings.
#[derive(Debug, Clone)]
pub struct ActorOptions {
    /// Batches the mailbox holds before senders wait.
    pub mailbox_capacity: usize,
    /// How failures are retried.
    pub supervisor: SupervisorPolicy,
}

impl Default for ActorOptions {
    fn default() -> Self {
        ActorOptions {
            mailbox_capacity: 16,
            supervisor: SupervisorPolicy::default(),
        }
    }
}

impl ActorOptions {
    /// Options with the given mailbox capacity.
    pub fn with_capacity(mailbox_capacity: usize) -> Self {
        ActorOptions {
            mailbox_capacity,
            ..Self::default()
        }
    }
}

/// A graph that cannot run, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two nodes share a name.
    #[error("duplicate node name {0:?}")]
    DuplicateNode(String),
    /// An edge names a node that does not exist.
    #[error("edge {from:?} -> {to:?} refers to unknown node {missing:?}")]
    UnknownNode {
        /// Upstream end of the edge.
        from: String,
        /// Downstream end of the edge.
        to: String,
        /// The name that does not exist.
        missing: String,
    },
    /// The same edge was added twice.
    #[error("duplicate edge {from:?} -> {to:?}")]
    DuplicateEdge {
        /// Upstream end.
        from: String,
        /// Downstream end.
        to: String,
    },
    /// A source cannot receive batches.
    #[error("edge {from:?} -> {to:?} points into source {to:?}")]
    EdgeIntoSource {
        /// Upstream end.
        from: String,
        /// The source.
        to: String,
    },
    /// A sink has no output to connect.
    #[error("edge {from:?} -> {to:?} leaves sink {from:?}, which has no output")]
    EdgeFromSink {
        /// The sink.
        from: String,
        /// Downstream end.
        to: String,
    },
    /// An actor that nothing sends to.
    #[error("actor {0:?} has no input edge")]
    NoInput(String),
    /// A source or transform whose output goes nowhere.
    #[error("node {0:?} has no output edge")]
    NoOutput(String),
    /// The payload types on an edge differ.
    #[error("edge {from:?} -> {to:?} sends {sent} but {to:?} takes {expected}")]
    TypeMismatch {
        /// Upstream end.
        from: String,
        /// Downstream end.
        to: String,
        /// Payload type the upstream sends.
        sent: &'static str,
        /// Payload type the downstream takes.
        expected: &'static str,
    },
    /// The edges form a cycle through these nodes.
    #[error("cycle through {0:?}")]
    Cycle(Vec<String>),
    /// The graph has no nodes.
    #[error("the graph is empty")]
    Empty,
    /// A keyed edge with no actor to route to.
    #[error("keyed edge from {0:?} names no actor")]
    EmptyGroup(String),
}

type Spawn = Box<dyn FnOnce(Vec<RouteSpec>, &SpawnEnv, &mut JoinSet<(String, ActorExit)>) + Send>;

struct SpawnEnv {
    stop: CancellationToken,
    kill: KillSwitch,
    live: Liveness,
}

struct Node {
    name: String,
    is_source: bool,
    /// `TypeId` and name of the payload taken, for actors.
    input: Option<(TypeId, &'static str)>,
    /// `TypeId` and name of the payload sent; `None` for sinks.
    output: Option<(TypeId, &'static str)>,
    /// Clones the actor's `Addr<In>` as `Box<dyn Any>`.
    addr: Option<Box<dyn Fn() -> Box<dyn Any + Send> + Send>>,
    controls: Vec<tokio::sync::mpsc::Sender<Control>>,
    stats: Arc<ActorStats>,
    /// The lag ledger of a source.
    lag: Option<Arc<SourceLag>>,
    spawn: Spawn,
}

/// An edge; `group` indexes the keyed group it belongs to.
struct Edge {
    from: String,
    to: String,
    group: Option<usize>,
}

/// The actors of one keyed edge share its splitter.
struct KeyedGroup {
    /// `TypeId` and name of the payload the splitter takes.
    payload: (TypeId, &'static str),
    /// A `Splitter<O>`, taken when the upstream node is spawned.
    split: Option<Box<dyn Any + Send + Sync>>,
}

/// Collects nodes and edges, then validates and spawns them.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    groups: Vec<KeyedGroup>,
    errors: Vec<GraphError>,
}

fn output_type<O: 'static>() -> Option<(TypeId, &'static str)> {
    (TypeId::of::<O>() != TypeId::of::<NoOutput>()).then(|| (TypeId::of::<O>(), type_name::<O>()))
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&mut self, node: Node) {
        if self.nodes.iter().any(|n| n.name == node.name) {
            self.errors.push(GraphError::DuplicateNode(node.name));
        } else {
            self.nodes.push(node);
        }
    }

    /// Adds a source; `factory` builds it, again after each restart.
    pub fn source<S, F>(&mut self, name: &str, factory: F) -> &mut Self
    where
        S: Source,
        F: FnMut() -> S + Send + 'static,
    {
        self.source_with(name, factory, SupervisorPolicy::default())
    }

    /// Adds a source with an explicit restart policy.
    pub fn source_with<S, F>(
        &mut self,
        name: &str,
        factory: F,
        policy: SupervisorPolicy,
    ) -> &mut Self
    where
        S: Source,
        F: FnMut() -> S + Send + 'static,
    {
        let stats = Arc::new(ActorStats::new(name));
        let node_stats = stats.clone();
        let node_name: Arc<str> = Arc::from(name);
        // Registered now, so the source's series exist from the start.
        let lag = SourceLag::new(name);
        let node_lag = lag.clone();
        let spawn: Spawn = Box::new(move |outputs, env, tasks| {
            let outputs = typed_routes::<S::Out>(outputs);
            let (stop, kill, live) = (env.stop.clone(), env.kill.clone(), env.live.clone());
            let guard = RunningGuard::new(&node_name, &live);
            let ins = Instruments::new(stats);
            tasks.spawn(async move {
                let _guard = guard;
                let ctx =
                    Ctx::new(node_name.clone(), outputs, ins, stop, kill.clone()).with_lag(lag);
                (
                    node_name.to_string(),
                    run_source(factory, ctx, policy, kill).await,
                )
            });
        });
        self.add(Node {
            name: name.to_string(),
            is_source: true,
            input: None,
            output: output_type::<S::Out>(),
            addr: None,
            controls: Vec::new(),
            stats: node_stats,
            lag: Some(node_lag),
            spawn,
        });
        self
    }

    /// Adds an actor (a transform, or a sink when its `Out` is [`NoOutput`]).
    pub fn actor<A, F>(&mut self, name: &str, factory: F, options: ActorOptions) -> &mut Self
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let factory = Mutex::new(factory);
        let shared = move |_: usize| (factory.lock().unwrap_or_else(|p| p.into_inner()))();
        self.actor_pool(name, 1, shared, options)
    }

    /// Adds `workers` instances of an actor sharing one mailbox: each batch goes
    /// to whichever worker is free (competing consumers), so a CPU-heavy stage
    /// uses several cores. Order across workers is not preserved. `factory`
    /// gets the worker index.
    pub fn actor_pool<A, F>(
        &mut self,
        name: &str,
        workers: usize,
        factory: F,
        options: ActorOptions,
    ) -> &mut Self
    where
        A: Actor,
        F: Fn(usize) -> A + Send + Sync + 'static,
    {
        let factory = Arc::new(factory);
        let stats = Arc::new(ActorStats::new(name));
        let node_stats = stats.clone();
        let node_name: Arc<str> = Arc::from(name);
        let (addr, inboxes) = shared_mailbox::<A::In>(name, options.mailbox_capacity, workers);
        let controls = addr.control_senders();
        let addr_for_edges = Mutex::new(Some(addr));
        let policy = options.supervisor;
        let spawn: Spawn = Box::new(move |outputs, env, tasks| {
            let outputs = typed_routes::<A::Out>(outputs);
            let pooled = inboxes.len() > 1;
            for (worker, inbox) in inboxes.into_iter().enumerate() {
                let (stop, kill) = (env.stop.clone(), env.kill.clone());
                let task_name = if pooled {
                    format!("{node_name}[{worker}]")
                } else {
                    node_name.to_string()
                };
                let guard = RunningGuard::new(&task_name, &env.live);
                let (outputs, policy) = (outputs.clone(), policy.clone());
                // Registered now, so the actor's series exist from the start.
                let ins = Instruments::new(stats.clone());
                let worker_factory = factory.clone();
                let ctx_name = node_name.clone();
                tasks.spawn(async move {
                    let _guard = guard;
                    let ctx = Ctx::new(ctx_name, outputs, ins, stop, kill.clone());
                    let build = move || worker_factory(worker);
                    let exit = run_actor(build, inbox, ctx, policy, kill).await;
                    (task_name, exit)
                });
            }
        });
        let addr_fn = move || -> Box<dyn Any + Send> {
            let guard = addr_for_edges.lock().unwrap_or_else(|p| p.into_inner());
            Box::new(guard.as_ref().expect("address taken before spawn").clone())
        };
        self.add(Node {
            name: name.to_string(),
            is_source: false,
            input: Some((TypeId::of::<A::In>(), type_name::<A::In>())),
            output: output_type::<A::Out>(),
            addr: Some(Box::new(addr_fn)),
            controls,
            stats: node_stats,
            lag: None,
            spawn,
        });
        self
    }

    /// Adds the edge `from -> to`: `to` gets a copy of every batch `from`
    /// sends. Checked by [`GraphBuilder::build`].
    pub fn connect(&mut self, from: &str, to: &str) -> &mut Self {
        self.edges.push(Edge {
            from: from.to_string(),
            to: to.to_string(),
            group: None,
        });
        self
    }

    /// Adds a keyed edge from `from` to the group of actors `to`: each batch
    /// `from` sends is split by `split` (see [`Splitter`]) and every part goes
    /// to the one actor of the group that owns its key, holding a share of the
    /// batch's ack. The upstream actor does not know the group's layout; a
    /// stage that keeps state per key (one open file per partition) gets every
    /// batch of its keys.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use spate_engine::{Actor, ActorOptions, ActorResult, Batch, Ctx, GraphBuilder, NoOutput, Source};
    ///
    /// struct Numbers;
    /// impl Source for Numbers {
    ///     type Out = Vec<u64>;
    ///     async fn run(&mut self, ctx: &mut Ctx<Vec<u64>>) -> ActorResult {
    ///         ctx.send(Batch::unacked((0..10).collect())).await
    ///     }
    /// }
    /// struct Discard;
    /// impl Actor for Discard {
    ///     type In = Vec<u64>;
    ///     type Out = NoOutput;
    ///     async fn handle(&mut self, batch: Batch<Vec<u64>>, _: &mut Ctx<NoOutput>) -> ActorResult {
    ///         batch.deliver();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut graph = GraphBuilder::new();
    /// graph.source("numbers", || Numbers);
    /// graph.actor("shard-0", || Discard, ActorOptions::default());
    /// graph.actor("shard-1", || Discard, ActorOptions::default());
    /// // Each number to the shard `n % 2`.
    /// graph.connect_keyed("numbers", &["shard-0", "shard-1"], |numbers: Vec<u64>, shards| {
    ///     let mut parts = vec![Vec::new(); shards];
    ///     numbers.into_iter().for_each(|n| parts[n as usize % shards].push(n));
    ///     parts.into_iter().enumerate().collect()
    /// });
    /// let report = graph.build().unwrap().spawn().join().await.unwrap();
    /// assert_eq!(report.actor("shard-0").unwrap().events_in, 5);
    /// assert_eq!(report.actor("shard-1").unwrap().events_in, 5);
    /// # });
    /// ```
    pub fn connect_keyed<O, F>(&mut self, from: &str, to: &[&str], split: F) -> &mut Self
    where
        O: Payload + Clone,
        F: Fn(O, usize) -> Vec<(usize, O)> + Send + Sync + 'static,
    {
        if to.is_empty() {
            self.errors.push(GraphError::EmptyGroup(from.to_string()));
            return self;
        }
        let group = self.groups.len();
        let split: Splitter<O> = Arc::new(split);
        self.groups.push(KeyedGroup {
            payload: (TypeId::of::<O>(), type_name::<O>()),
            split: Some(Box::new(split)),
        });
        for to in to {
            self.edges.push(Edge {
                from: from.to_string(),
                to: to.to_string(),
                group: Some(group),
            });
        }
        self
    }

    /// Validates the graph.
    pub fn build(mut self) -> Result<Graph, GraphError> {
        if let Some(e) = self.errors.drain(..).next() {
            return Err(e);
        }
        if self.nodes.is_empty() {
            return Err(GraphError::Empty);
        }
        let index: BTreeMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let mut seen = BTreeSet::new();
        let mut adjacency = vec![Vec::new(); self.nodes.len()];
        let mut indegree = vec![0usize; self.nodes.len()];
        for Edge { from, to, group } in &self.edges {
            let lookup = |name: &String| {
                index
                    .get(name.as_str())
                    .copied()
                    .ok_or_else(|| GraphError::UnknownNode {
                        from: from.clone(),
                        to: to.clone(),
                        missing: name.clone(),
                    })
            };
            let (f, t) = (lookup(from)?, lookup(to)?);
            if !seen.insert((f, t)) {
                return Err(GraphError::DuplicateEdge {
                    from: from.clone(),
                    to: to.clone(),
                });
            }
            let (up, down) = (&self.nodes[f], &self.nodes[t]);
            if down.is_source {
                return Err(GraphError::EdgeIntoSource {
                    from: from.clone(),
                    to: to.clone(),
                });
            }
            let Some((sent_id, sent)) = up.output else {
                return Err(GraphError::EdgeFromSink {
                    from: from.clone(),
                    to: to.clone(),
                });
            };
            let (taken_id, expected) = down.input.expect("actors have an input type");
            // A keyed edge's splitter must take what the upstream sends too.
            let split = group.map(|g| self.groups[g].payload);
            for (taken_id, expected) in [(taken_id, expected)].into_iter().chain(split) {
                if sent_id != taken_id {
                    return Err(GraphError::TypeMismatch {
                        from: from.clone(),
                        to: to.clone(),
                        sent,
                        expected,
                    });
                }
            }
            adjacency[f].push((t, *group));
            indegree[t] += 1;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_source && indegree[i] == 0 {
                return Err(GraphError::NoInput(node.name.clone()));
            }
            if node.output.is_some() && adjacency[i].is_empty() {
                return Err(GraphError::NoOutput(node.name.clone()));
            }
        }
        // Kahn's algorithm: whatever is left unsorted sits on a cycle.
        let mut remaining = indegree.clone();
        let mut queue: VecDeque<usize> = (0..self.nodes.len())
            .filter(|&i| remaining[i] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = queue.pop_front() {
            order.push(i);
            for &(t, _) in &adjacency[i] {
                remaining[t] -= 1;
                if remaining[t] == 0 {
                    queue.push_back(t);
                }
            }
        }
        if order.len() < self.nodes.len() {
            let cycle = (0..self.nodes.len())
                .filter(|i| !order.contains(i))
                .map(|i| self.nodes[i].name.clone())
                .collect();
            return Err(GraphError::Cycle(cycle));
        }
        Ok(Graph {
            nodes: self.nodes,
            adjacency,
            order,
            groups: self.groups,
        })
    }
}

/// A validated graph, ready to spawn.
pub struct Graph {
    nodes: Vec<Node>,
    /// Per node, its downstream nodes and the keyed group of each edge.
    adjacency: Vec<Vec<(usize, Option<usize>)>>,
    order: Vec<usize>,
    groups: Vec<KeyedGroup>,
}

impl Graph {
    /// Node names in topological order (sources first).
    pub fn topological_order(&self) -> Vec<&str> {
        self.order
            .iter()
            .map(|&i| self.nodes[i].name.as_str())
            .collect()
    }

    /// Spawns every node on the current tokio runtime.
    pub fn spawn(self) -> Pipeline {
        let env = SpawnEnv {
            stop: CancellationToken::new(),
            kill: KillSwitch::default(),
            live: Liveness::default(),
        };
        let mut groups = self.groups;
        let outputs: Vec<Vec<RouteSpec>> = self
            .adjacency
            .iter()
            .map(|targets| {
                let mut routes: Vec<RouteSpec> = Vec::new();
                let mut keyed: BTreeMap<usize, usize> = BTreeMap::new();
                for &(t, group) in targets {
                    let addr = (self.nodes[t].addr.as_ref().expect("targets are actors"))();
                    match group {
                        None => routes.push(RouteSpec {
                            actors: vec![addr],
                            split: None,
                        }),
                        Some(g) => match keyed.get(&g) {
                            Some(&route) => routes[route].actors.push(addr),
                            None => {
                                keyed.insert(g, routes.len());
                                routes.push(RouteSpec {
                                    actors: vec![addr],
                                    split: groups[g].split.take(),
                                });
                            }
                        },
                    }
                }
                routes
            })
            .collect();
        let mut slots: Vec<Option<Node>> = self.nodes.into_iter().map(Some).collect();
        let mut outputs: Vec<Option<Vec<RouteSpec>>> = outputs.into_iter().map(Some).collect();
        let mut tasks = JoinSet::new();
        let mut stats = Vec::new();
        let mut lags = Vec::new();
        let mut controls = Vec::new();
        // Sinks first, so every mailbox exists before anything can send to it.
        for &i in self.order.iter().rev() {
            let node = slots[i].take().expect("each node spawned once");
            stats.push(node.stats.clone());
            if let Some(lag) = &node.lag {
                lags.push((node.name.clone(), lag.clone()));
            }
            for c in &node.controls {
                controls.push((node.name.clone(), c.clone()));
            }
            let outs = outputs[i].take().unwrap_or_default();
            // Dropping `node.addr` after spawn releases the builder's own address,
            // so the mailbox closes once its upstreams are done.
            let Node { spawn, addr, .. } = node;
            spawn(outs, &env, &mut tasks);
            drop(addr);
        }
        stats.reverse();
        controls.reverse();
        Pipeline {
            tasks,
            stop: env.stop,
            kill: env.kill,
            stats,
            lags,
            controls,
            live: env.live,
        }
    }
}
