//! What `POST /v1/query` runs on: the lake's query context, the executor
//! and the time limits.

use std::sync::Arc;

use crate::query::QueryContext;
use crate::query::executor::{QueryConfig, QueryExecutor};

/// What `POST /v1/query` runs on.
pub(super) struct QueryService {
    pub(super) ctx: Arc<QueryContext>,
    pub(super) executor: QueryExecutor,
    pub(super) config: QueryConfig,
}

impl QueryService {
    pub(super) fn new(
        ctx: Arc<QueryContext>,
        executor: QueryExecutor,
        config: &QueryConfig,
    ) -> Self {
        QueryService {
            ctx,
            executor,
            config: config.clone(),
        }
    }
}
