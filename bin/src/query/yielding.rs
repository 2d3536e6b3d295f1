//! Makes every query plan give its thread back often, so that a cancelled
//! query stops at once (see [`super::executor`]).
//!
//! A tokio task is cancelled only when it yields. DataFusion's scans yield
//! every so many batches (they spend tokio's cooperative budget), and most
//! operators produce at most one batch per batch they read, so they yield as
//! often as their scans. Joins and `unnest` do not: a cross join emits one
//! batch per row of its build side for each batch of its probe side, and a
//! `count(*)` over it spins inside one poll, never reaching a scan again: the
//! query would run on after its time limit, holding a thread. The
//! [`YieldInJoins`] rule wraps those operators in DataFusion's
//! `CooperativeExec`, which spends the budget on every batch they emit.
//!
//! `EXPLAIN` shows the wrapper as `CooperativeExec` above each join.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::SchedulingType;

/// Wraps joins and `unnest` (operators that emit many batches per batch they
/// read) in `CooperativeExec`; runs after DataFusion's own rules.
#[derive(Debug, Default)]
pub struct YieldInJoins;

impl YieldInJoins {
    /// Whether `plan` can emit many batches without reading its input.
    fn amplifies(plan: &dyn ExecutionPlan) -> bool {
        plan.children().len() > 1 || plan.name() == "UnnestExec"
    }
}

impl PhysicalOptimizerRule for YieldInJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|plan| {
            let cooperative = plan.properties().scheduling_type == SchedulingType::Cooperative;
            if Self::amplifies(plan.as_ref()) && !cooperative {
                let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(plan));
                Ok(Transformed::yes(wrapped))
            } else {
                Ok(Transformed::no(plan))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "spate_yield_in_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    async fn plan(sql: &str) -> String {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(YieldInJoins))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn joins_and_unnest_are_wrapped_once_and_the_rest_is_left_alone() {
        let cross = plan(
            "select count(*) from generate_series(1, 10) a cross join generate_series(1, 10) b",
        )
        .await;
        let lines: Vec<&str> = cross.lines().map(str::trim).collect();
        let join = lines.iter().position(|l| *l == "CrossJoinExec").unwrap();
        assert_eq!(lines[join - 1], "CooperativeExec", "{cross}");
        assert_eq!(cross.matches("CooperativeExec").count(), 1, "{cross}");

        let unnest = plan("select unnest(make_array(1, 2, 3))").await;
        assert!(unnest.contains("CooperativeExec"), "{unnest}");

        let scan = plan("select value + 1 from generate_series(1, 10)").await;
        assert!(!scan.contains("CooperativeExec"), "{scan}");
    }

    /// A cross join counted inside one poll (10^8 build rows: one batch of
    /// the probe side makes 10^8 output batches): cancelled, it stops at once.
    /// (Without the rule it would spin on; its runtime is left behind then, so
    /// the test fails instead of hanging.)
    #[test]
    fn a_cross_join_stops_when_its_task_is_aborted() {
        let queries = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let task = queries.spawn(async {
            let state = SessionStateBuilder::new()
                .with_default_features()
                .with_physical_optimizer_rule(Arc::new(YieldInJoins))
                .build();
            let ctx = SessionContext::new_with_state(state);
            ctx.sql(
                "select count(*) from generate_series(1, 100000000) a \
                 cross join generate_series(1, 1000000000000) b",
            )
            .await?
            .collect()
            .await
        });
        // Let it get into the join.
        std::thread::sleep(std::time::Duration::from_millis(500));
        task.abort();
        let stopped = caller.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), task).await
        });
        queries.shutdown_background();
        let joined = stopped.expect("the aborted query did not stop within 5 s");
        assert!(joined.unwrap_err().is_cancelled());
    }
}
