//! "Recent events" from the DynamoDB hot table: the blocks of one service's
//! partition newest first, or of every service listed in the registry of
//! the range's days, merged.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoHotError;
use super::block::{BLOCK_SPAN_MS, span_start};
use super::items::{item_events_where, key_ms, n, s, service_pk, services_pk, sk_ms};
use super::store::DynamoHotStore;
use crate::event::{Severity, wall_clock_ms};
use crate::sinks::hot::newest::{NewestEvents, newest_first};
use crate::sinks::hot::{HotEvent, RecentQuery};

const DAY_MS: i64 = 86_400_000;

/// Items a Query page of a service's partition asks for (blocks are up to
/// 128 KB at most; the newest few usually answer).
const PAGE_ITEMS: i32 = 16;

/// Partitions (services, registry days) "recent across services" queries at
/// once.
const PARALLEL_SERVICES: usize = 16;

impl DynamoHotStore {
    /// Recent events matching `q`, newest first (the same answer as
    /// [`HotStore::recent`](crate::sinks::hot::HotStore::recent)).
    ///
    /// With a service: its partition's blocks from the newest span of the
    /// range back, until `limit` events are found and no older block can
    /// hold a newer one. Without: the services listed in the registry of the
    /// range's days (back to the TTL), each answered that way (16 at a time),
    /// merged.
    pub async fn recent(&self, q: &RecentQuery) -> Result<Vec<HotEvent>, DynamoHotError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let Some(service) = &q.service else {
            return self.recent_everywhere(q).await;
        };
        self.recent_of(service, q).await
    }

    async fn recent_everywhere(&self, q: &RecentQuery) -> Result<Vec<HotEvent>, DynamoHotError> {
        let services: Vec<String> = self.services(q).await?.into_iter().collect();
        let mut out: Vec<HotEvent> = Vec::new();
        for chunk in services.chunks(PARALLEL_SERVICES) {
            let mut tasks = tokio::task::JoinSet::new();
            for service in chunk {
                let (store, service, q) = (self.clone(), service.clone(), q.clone());
                tasks.spawn(async move { store.recent_of(&service, &q).await });
            }
            while let Some(done) = tasks.join_next().await {
                let events = done.map_err(|e| {
                    DynamoHotError::Data(format!("recent events task failed: {e}"))
                })??;
                out.extend(events);
            }
        }
        newest_first(&mut out);
        out.truncate(q.limit);
        Ok(out)
    }

    /// The services with blocks on the days of `q`'s range (back to the TTL).
    async fn services(&self, q: &RecentQuery) -> Result<BTreeSet<String>, DynamoHotError> {
        let until = q.until_ms.unwrap_or(i64::MAX);
        let newest = until
            .saturating_sub(1)
            .min(wall_clock_ms().saturating_add(DAY_MS));
        let oldest = q.since_ms.max(
            wall_clock_ms()
                .saturating_sub(self.config.ttl_secs().saturating_mul(1000))
                .saturating_sub(DAY_MS),
        );
        let days: Vec<i64> = (oldest.div_euclid(DAY_MS)..=newest.div_euclid(DAY_MS)).collect();
        let mut out = BTreeSet::new();
        for chunk in days.chunks(PARALLEL_SERVICES) {
            let mut tasks = tokio::task::JoinSet::new();
            for &day in chunk {
                let store = self.clone();
                tasks.spawn(async move { store.services_of_day(day * DAY_MS).await });
            }
            while let Some(done) = tasks.join_next().await {
                out.extend(done.map_err(|e| {
                    DynamoHotError::Data(format!("services query task failed: {e}"))
                })??);
            }
        }
        Ok(out)
    }

    /// The services in the registry of the day of `day_ms`.
    async fn services_of_day(&self, day_ms: i64) -> Result<Vec<String>, DynamoHotError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.config.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(services_pk(day_ms)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| DynamoHotError::dynamo("query services", e))?;
            for item in page.items.unwrap_or_default() {
                if let Some(service) = item.get("sk").and_then(|v| v.as_s().ok()) {
                    out.push(service.clone());
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Recent events of one service matching `q` (its `service` ignored).
    async fn recent_of(
        &self,
        service: &str,
        q: &RecentQuery,
    ) -> Result<Vec<HotEvent>, DynamoHotError> {
        let until = q.until_ms.unwrap_or(i64::MAX);
        // Block keys start with their span, event items (written before
        // blocks) with their time: every key that can hold an event of the
        // range lies in [span of since, until - 1] (`$` sorts after `#`).
        let lo = key_ms(span_start(q.since_ms));
        let hi = format!("{}$", key_ms(until.saturating_sub(1)));
        let min = q.min_severity.filter(|&m| m > Severity::Info);
        let mut newest = NewestEvents::new(q.since_ms, until, min, q.limit);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        'pages: loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.config.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(service_pk(service)))
                .expression_attribute_values(":lo", s(&lo))
                .expression_attribute_values(":hi", s(&hi))
                .scan_index_forward(false)
                .limit(PAGE_ITEMS)
                .set_exclusive_start_key(start.take());
            if let Some(min) = min {
                // Blocks by their highest severity, event items by theirs.
                let severities: Vec<Severity> = Severity::ALL
                    .into_iter()
                    .filter(|&sev| sev >= min)
                    .collect();
                let mut names = Vec::with_capacity(severities.len());
                for (i, sev) in severities.iter().enumerate() {
                    names.push(format!(":sev{i}"));
                    query = query.expression_attribute_values(format!(":sev{i}"), s(sev.as_str()));
                }
                query = query
                    .filter_expression(format!(
                        "#top >= :top OR severity IN ({})",
                        names.join(", ")
                    ))
                    .expression_attribute_names("#top", "top")
                    .expression_attribute_values(":top", n(min.index()));
            }
            let page = query
                .send()
                .await
                .map_err(|e| DynamoHotError::dynamo("query", e))?;
            for item in page.items.unwrap_or_default() {
                let key_ms = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk_ms(sk))
                    .ok_or_else(|| {
                        DynamoHotError::Data(format!("{service}: item without a time key"))
                    })?;
                // Every event of this item and the ones after it is older
                // than `key_ms + span`: done once `limit` events are newer.
                if !newest.wants(key_ms.saturating_add(BLOCK_SPAN_MS - 1)) {
                    break 'pages;
                }
                let events =
                    item_events_where(&item, |times, severities| newest.select(times, severities))?;
                newest.add(service, events);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(newest.finish())
    }
}
