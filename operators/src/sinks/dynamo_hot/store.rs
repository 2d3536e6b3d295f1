//! [`DynamoHotStore`]: the questions of the hot store answered from DynamoDB
//! (recent events in [`recent`](super::recent), alerts), and the alert router's [`AlertStore`] (windows
//! merged with `ADD`, alerts raised once with a conditional transaction) and
//! its shared [`WindowStore`] (partial counts added, merged counts read back
//! strongly consistent, alerts claimed).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::items::{
    Item, TAG_ATTR_PREFIX, alert_item, alert_record, alerts_pk, claim_pk, key_ms, n, s,
    severity_attr, window_pk, window_record,
};
use super::{DynamoHotConfig, DynamoHotError};
use crate::alerts::record::{AlertRecord, AlertStore, AlertStoreError, WindowRecord};
use crate::alerts::window_store::WindowStore;
use crate::event::{Severity, wall_clock_ms};

const DAY_MS: i64 = 86_400_000;

/// The DynamoDB hot table, for reading and for windows and alerts.
#[derive(Debug, Clone)]
pub struct DynamoHotStore {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) config: DynamoHotConfig,
    runtime: tokio::runtime::Handle,
    /// Written into the claims this store wins, so that a retry after a lost
    /// answer recognises its own claim.
    owner: Arc<str>,
}

/// One Query: a partition, a sort-key range, newest first.
struct Range {
    pk: String,
    lo: String,
    hi: String,
    limit: usize,
    /// Strongly consistent (window counts read back for a decision).
    consistent: bool,
}

impl DynamoHotStore {
    /// The store of `config.table`; must be created inside a Tokio runtime
    /// (the [`AlertStore`] calls run on it).
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        config: DynamoHotConfig,
    ) -> Result<Self, DynamoHotError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            DynamoHotError::Config("store must be created inside a tokio runtime".into())
        })?;
        static STORES: AtomicU64 = AtomicU64::new(0);
        let owner = format!(
            "{}-{}-{}",
            std::process::id(),
            wall_clock_ms(),
            STORES.fetch_add(1, Ordering::Relaxed)
        );
        Ok(DynamoHotStore {
            client,
            config,
            runtime,
            owner: owner.into(),
        })
    }

    /// Items of one partition in `[lo, hi]`, newest first, at most `limit`.
    async fn query(&self, range: Range) -> Result<Vec<Item>, DynamoHotError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while out.len() < range.limit {
            let q = self
                .client
                .query()
                .table_name(&self.config.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(&range.pk))
                .expression_attribute_values(":lo", s(&range.lo))
                .expression_attribute_values(":hi", s(&range.hi))
                .scan_index_forward(false)
                .consistent_read(range.consistent)
                .limit(
                    i32::try_from(range.limit - out.len())
                        .unwrap_or(i32::MAX)
                        .max(1),
                )
                .set_exclusive_start_key(start.take());
            let page = q
                .send()
                .await
                .map_err(|e| DynamoHotError::dynamo("query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.truncate(range.limit);
        Ok(out)
    }

    /// Alert notices raised in `[since_ms, until_ms)`, newest first (the same
    /// answer as [`HotStore::alerts`](crate::sinks::hot::HotStore::alerts)).
    pub async fn alerts(
        &self,
        since_ms: i64,
        until_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, DynamoHotError> {
        let until = until_ms.unwrap_or(i64::MAX);
        let newest = until
            .saturating_sub(1)
            .min(wall_clock_ms().saturating_add(DAY_MS));
        let oldest = since_ms.max(
            wall_clock_ms()
                .saturating_sub(self.config.alert_ttl_secs().saturating_mul(1000))
                .saturating_sub(DAY_MS),
        );
        let lo = key_ms(since_ms);
        let hi = format!("{}$", key_ms(until.saturating_sub(1)));
        let mut out = Vec::new();
        let mut day = newest.div_euclid(DAY_MS);
        while day >= oldest.div_euclid(DAY_MS) && out.len() < limit {
            let items = self
                .query(Range {
                    pk: alerts_pk(day * DAY_MS),
                    lo: lo.clone(),
                    hi: hi.clone(),
                    limit: limit - out.len(),
                    consistent: false,
                })
                .await?;
            for item in &items {
                out.push(alert_record(item)?);
            }
            day -= 1;
        }
        Ok(out)
    }

    /// Every window record in the table, any order: one paginated Scan
    /// keeping the `win#` items (the `windows` table of `spate query`). A Scan
    /// reads the whole table, so its cost grows with the table, not with the
    /// answer.
    pub async fn all_windows(&self) -> Result<Vec<WindowRecord>, DynamoHotError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.config.table)
                .filter_expression("begins_with(pk, :win)")
                .expression_attribute_values(":win", s(window_pk("")))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| DynamoHotError::dynamo("scan", e))?;
            for item in page.items.unwrap_or_default() {
                out.push(window_record(&item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// [`Self::alerts`] over the whole retention, for a caller on a blocking
    /// thread (not a runtime worker).
    pub fn all_alerts_blocking(&self) -> Result<Vec<AlertRecord>, String> {
        self.block_on(self.alerts(0, None, usize::MAX >> 1))
            .map_err(|e| e.to_string())
    }

    /// [`Self::alerts`] raised at or after `since_ms`, for a caller on a
    /// blocking thread.
    pub fn alerts_since_blocking(&self, since_ms: i64) -> Result<Vec<AlertRecord>, String> {
        self.block_on(self.alerts(since_ms, None, usize::MAX >> 1))
            .map_err(|e| e.to_string())
    }

    /// [`Self::all_windows`] for a caller on a blocking thread.
    pub fn all_windows_blocking(&self) -> Result<Vec<WindowRecord>, String> {
        self.block_on(self.all_windows()).map_err(|e| e.to_string())
    }

    /// Adds a closed window's counts to its item (atomic `ADD`, so the
    /// partial counts of several processes sum up).
    pub async fn record_window(&self, window: &WindowRecord) -> Result<(), DynamoHotError> {
        let set = "window_end_ms = :end, service = :service, expires_at = :exp";
        let mut add = vec!["events :events".to_string()];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.config.table)
            .key("pk", s(window_pk(&window.service)))
            .key("sk", s(key_ms(window.window_start_ms)))
            .expression_attribute_values(":end", n(window.window_end_ms))
            .expression_attribute_values(":service", s(&window.service))
            .expression_attribute_values(
                ":exp",
                n(window
                    .window_end_ms
                    .div_euclid(1000)
                    .saturating_add(self.config.alert_ttl_secs())),
            )
            .expression_attribute_values(":events", n(window.events));
        for (i, sev) in Severity::ALL.iter().enumerate() {
            add.push(format!("#sev{i} :sev{i}"));
            update = update
                .expression_attribute_names(format!("#sev{i}"), severity_attr(*sev))
                .expression_attribute_values(format!(":sev{i}"), n(window.severity[i]));
        }
        for (i, (tag, count)) in window.tags.iter().enumerate() {
            add.push(format!("#tag{i} :tag{i}"));
            update = update
                .expression_attribute_names(format!("#tag{i}"), format!("{TAG_ATTR_PREFIX}{tag}"))
                .expression_attribute_values(format!(":tag{i}"), n(count));
        }
        update
            .update_expression(format!("SET {set} ADD {}", add.join(", ")))
            .send()
            .await
            .map_err(|e| DynamoHotError::dynamo("record window", e))?;
        Ok(())
    }

    /// Records an alert notice once across processes: the notice and its
    /// claim (`attribute_not_exists(pk)`) in one transaction. True when this
    /// call wrote it, false when the alert was already recorded (by another
    /// process, or earlier by this one).
    pub async fn record_alert(&self, alert: &AlertRecord) -> Result<bool, DynamoHotError> {
        let ttl = self.config.alert_ttl_secs();
        let claim = HashMap::from([
            ("pk".to_string(), s(claim_pk(&alert.id))),
            ("sk".to_string(), s("claim")),
            ("owner".to_string(), s(&*self.owner)),
            ("raised_at_ms".to_string(), n(alert.raised_at_ms)),
            (
                "expires_at".to_string(),
                n(alert.raised_at_ms.div_euclid(1000).saturating_add(ttl)),
            ),
        ]);
        let put = |item: Item, condition: Option<&str>| {
            Put::builder()
                .table_name(&self.config.table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_string))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| DynamoHotError::Data(format!("alert transaction: {e}")))
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(claim, Some("attribute_not_exists(pk)"))?)
            .transact_items(put(alert_item(alert, ttl), None)?)
            .send()
            .await;
        match result {
            Ok(_) => {
                metrics::counter!("spate_dynamo_hot_alerts_won_total").increment(1);
                Ok(true)
            }
            Err(e) => {
                let lost = e
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                        _ => None,
                    })
                    .is_some_and(|c| {
                        c.cancellation_reasons()
                            .iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed"))
                    });
                if lost {
                    metrics::counter!("spate_dynamo_hot_alerts_lost_total").increment(1);
                    Ok(false)
                } else {
                    Err(DynamoHotError::dynamo("record alert", e))
                }
            }
        }
    }

    /// Claims and records an alert ([`WindowStore::claim`]):
    /// [`DynamoHotStore::record_alert`], and when that loses, true still if
    /// the claim is this store's own (an earlier attempt whose answer was
    /// lost).
    pub async fn claim_alert(&self, alert: &AlertRecord) -> Result<bool, DynamoHotError> {
        if self.record_alert(alert).await? {
            return Ok(true);
        }
        let claim = self
            .client
            .get_item()
            .table_name(&self.config.table)
            .key("pk", s(claim_pk(&alert.id)))
            .key("sk", s("claim"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoHotError::dynamo("read alert claim", e))?;
        let owner = claim
            .item
            .as_ref()
            .and_then(|i| i.get("owner"))
            .and_then(|v| v.as_s().ok());
        Ok(owner.is_some_and(|o| **o == *self.owner))
    }

    /// The merged window counts of `services` for windows starting in
    /// `[from_ms, until_ms)` ([`WindowStore::merged`]): one
    /// strongly consistent Query per service; ordered by window start, then
    /// service.
    pub async fn merged_windows(
        &self,
        services: &[String],
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<WindowRecord>, DynamoHotError> {
        let mut out = Vec::new();
        if from_ms >= until_ms {
            return Ok(out);
        }
        for service in services {
            let items = self
                .query(Range {
                    pk: window_pk(service),
                    lo: key_ms(from_ms),
                    hi: key_ms(until_ms.saturating_sub(1)),
                    limit: usize::MAX,
                    consistent: true,
                })
                .await?;
            for item in &items {
                out.push(window_record(item)?);
            }
        }
        out.sort_by(|a, b| (a.window_start_ms, &a.service).cmp(&(b.window_start_ms, &b.service)));
        Ok(out)
    }

    /// Runs `work` to completion on the store's runtime from a scoped
    /// thread, so it is safe to call from any thread (the alert router
    /// calls the store on the blocking pool).
    pub(super) fn block_on<T: Send>(
        &self,
        work: impl std::future::Future<Output = Result<T, DynamoHotError>> + Send,
    ) -> Result<T, AlertStoreError> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.runtime.block_on(work))
                .join()
                .map_err(|_| AlertStoreError::Internal("dynamodb hot store call panicked".into()))?
                .map_err(AlertStoreError::from)
        })
    }

    /// Records windows and alerts (async form of [`AlertStore::record`]).
    pub async fn record_all(
        &self,
        windows: &[WindowRecord],
        alerts: &[AlertRecord],
    ) -> Result<(), DynamoHotError> {
        for w in windows {
            self.record_window(w).await?;
        }
        for a in alerts {
            self.record_alert(a).await?;
        }
        Ok(())
    }
}

impl AlertStore for DynamoHotStore {
    /// Runs [`DynamoHotStore::record_all`] (from any thread).
    fn record(
        &self,
        windows: &[WindowRecord],
        alerts: &[AlertRecord],
    ) -> Result<(), AlertStoreError> {
        self.block_on(self.record_all(windows, alerts))
    }
}

/// The table as the window store shared by every process writing to it
/// (from any thread).
impl WindowStore for DynamoHotStore {
    /// Always: every process of the table adds to the same counts.
    fn is_shared(&self) -> bool {
        true
    }

    /// [`DynamoHotStore::record_window`] for each.
    fn add(&self, windows: &[WindowRecord]) -> Result<(), AlertStoreError> {
        self.block_on(async {
            for w in windows {
                self.record_window(w).await?;
            }
            Ok(())
        })
    }

    /// [`DynamoHotStore::merged_windows`].
    fn merged(
        &self,
        services: &[String],
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<WindowRecord>, AlertStoreError> {
        self.block_on(self.merged_windows(services, from_ms, until_ms))
    }

    /// [`DynamoHotStore::claim_alert`].
    fn claim(&self, alert: &AlertRecord) -> Result<bool, AlertStoreError> {
        self.block_on(self.claim_alert(alert))
    }
}
