//! What a component is built with: the pipeline graph, the data directory,
//! the AWS clients, and a place for work to do once the pipeline has drained.
//!
//! # Shutdown
//!
//! A component that must finish something after the last batch was
//! acknowledged (wait for SQS deletes, save tail checkpoints) registers it
//! with [`BuildContext::after_drain`]; the program awaits every such future,
//! in registration order, after the pipeline stopped.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use spate_engine::{GraphBuilder, Source};

use super::BuildError;
use crate::aws::AwsClients;
use crate::sources::RawChunk;

/// Work to do once the pipeline has drained.
pub type AfterDrain = Pin<Box<dyn Future<Output = Result<(), BuildError>> + Send>>;

/// What [`SourceKind::build`](super::SourceKind::build) gets.
pub struct BuildContext<'a> {
    graph: &'a mut GraphBuilder,
    data_dir: &'a Path,
    input: &'a str,
    aws: Option<&'a AwsClients>,
    after_drain: Vec<AfterDrain>,
}

impl<'a> BuildContext<'a> {
    /// Sources added through this context feed the node `input` (the decode
    /// stage); `aws` is there when any component uses AWS.
    pub fn new(
        graph: &'a mut GraphBuilder,
        data_dir: &'a Path,
        input: &'a str,
        aws: Option<&'a AwsClients>,
    ) -> Self {
        BuildContext {
            graph,
            data_dir,
            input,
            aws,
            after_drain: Vec::new(),
        }
    }

    /// Adds a source of raw chunks named `name`, connected to the decode stage.
    pub fn add_source<S, F>(&mut self, name: &str, factory: F)
    where
        S: Source<Out = RawChunk>,
        F: FnMut() -> S + Send + 'static,
    {
        self.graph.source(name, factory);
        self.graph.connect(name, self.input);
    }

    /// The graph, for components that add more than one source.
    pub fn graph(&mut self) -> &mut GraphBuilder {
        self.graph
    }

    /// The node sources feed.
    pub fn input(&self) -> &str {
        self.input
    }

    /// Where state lives (checkpoints, the journal, the lake).
    pub fn data_dir(&self) -> &Path {
        self.data_dir
    }

    /// The AWS clients; an error for a component that said it needs none.
    pub fn aws(&self, what: &str) -> Result<&'a AwsClients, BuildError> {
        self.aws.ok_or_else(|| {
            BuildError::internal(what, "needs aws clients but did not say so (uses_aws)")
        })
    }

    /// Runs `work` once the pipeline has drained (in registration order).
    pub fn after_drain(
        &mut self,
        work: impl Future<Output = Result<(), BuildError>> + Send + 'static,
    ) {
        self.after_drain.push(Box::pin(work));
    }

    /// The work registered with [`BuildContext::after_drain`].
    pub fn into_after_drain(self) -> Vec<AfterDrain> {
        self.after_drain
    }
}
