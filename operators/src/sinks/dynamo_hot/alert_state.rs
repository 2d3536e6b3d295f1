//! The alert router's own state in the DynamoDB hot table, shared by every
//! process writing to it: anomaly baselines ([`BaselineStore`]) and silences
//! ([`SilenceStore`]).
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | baseline | `base#<rule>` | `<service>` | `updates` (N), `state` (the baseline as JSON), `expires_at` |
//! | silence | `silences` | `<service>` | `created_ms`, `until_ms` (N), `reason`, `expires_at` (its end) |
//!
//! A baseline is saved with a condition: `attribute_not_exists(pk)` for a
//! new one, `updates = <the number it was learnt from>` otherwise, so of
//! several processes learning the same step exactly one saves. A baseline
//! expires `alert_ttl` after its last save; a silence when it ends.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{n, s};
use super::{DynamoHotError, DynamoHotStore};
use crate::alerts::anomaly::Baseline;
use crate::alerts::anomaly::store::{BaselineKey, BaselineSave, BaselineStore};
use crate::alerts::record::AlertStoreError;
use crate::alerts::silence::{Silence, SilenceStore};
use crate::event::wall_clock_ms;

const SILENCES_PK: &str = "silences";

fn baseline_pk(rule: &str) -> String {
    format!("base#{rule}")
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, DynamoHotError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| DynamoHotError::Data(format!("item without a number {name}")))
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

impl DynamoHotStore {
    /// The stored baselines of `keys` (strongly consistent reads).
    pub async fn baselines(
        &self,
        keys: &[BaselineKey],
    ) -> Result<Vec<(BaselineKey, Baseline)>, DynamoHotError> {
        let mut out = Vec::new();
        for key in keys {
            let got = self
                .client
                .get_item()
                .table_name(&self.config.table)
                .key("pk", s(baseline_pk(&key.rule)))
                .key("sk", s(&key.service))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| DynamoHotError::dynamo("read baseline", e))?;
            if let Some(item) = got.item {
                let baseline = serde_json::from_str(&text(&item, "state")).map_err(|e| {
                    DynamoHotError::Data(format!("baseline of {} / {}: {e}", key.rule, key.service))
                })?;
                out.push((key.clone(), baseline));
            }
        }
        Ok(out)
    }

    /// Saves each baseline whose stored version is its `previous_updates`;
    /// returns which were saved.
    pub async fn save_baselines_now(
        &self,
        saves: &[BaselineSave],
    ) -> Result<Vec<bool>, DynamoHotError> {
        let expires = wall_clock_ms()
            .div_euclid(1000)
            .saturating_add(self.config.alert_ttl_secs());
        let mut out = Vec::with_capacity(saves.len());
        for save in saves {
            let state = serde_json::to_string(&save.baseline)
                .map_err(|e| DynamoHotError::Data(format!("baseline: {e}")))?;
            let put = self
                .client
                .put_item()
                .table_name(&self.config.table)
                .item("pk", s(baseline_pk(&save.key.rule)))
                .item("sk", s(&save.key.service))
                .item("updates", n(save.baseline.updates))
                .item("state", s(state))
                .item("expires_at", n(expires));
            let put = match save.previous_updates {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(previous) => put
                    .condition_expression("updates = :previous")
                    .expression_attribute_values(":previous", n(previous)),
            };
            match put.send().await {
                Ok(_) => out.push(true),
                Err(e) if condition_failed(&e) => out.push(false),
                Err(e) => return Err(DynamoHotError::dynamo("save baseline", e)),
            }
        }
        Ok(out)
    }

    /// Sets (or replaces) the silence of `silence.service`.
    pub async fn set_silence(&self, silence: &Silence) -> Result<(), DynamoHotError> {
        self.client
            .put_item()
            .table_name(&self.config.table)
            .item("pk", s(SILENCES_PK))
            .item("sk", s(&silence.service))
            .item("created_ms", n(silence.created_ms))
            .item("until_ms", n(silence.until_ms))
            .item("reason", s(&silence.reason))
            .item("expires_at", n(silence.until_ms.div_euclid(1000) + 1))
            .send()
            .await
            .map_err(|e| DynamoHotError::dynamo("set silence", e))?;
        Ok(())
    }

    /// Silences in force at `now_ms`, by service (one strongly consistent
    /// Query; ended ones are left out, whether or not TTL removed them).
    pub async fn silences(&self, now_ms: i64) -> Result<Vec<Silence>, DynamoHotError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.config.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(SILENCES_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| DynamoHotError::dynamo("read silences", e))?;
            for item in page.items.unwrap_or_default() {
                let silence = Silence {
                    service: text(&item, "sk"),
                    created_ms: number(&item, "created_ms")?,
                    until_ms: number(&item, "until_ms")?,
                    reason: text(&item, "reason"),
                };
                if silence.until_ms > now_ms {
                    out.push(silence);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Ends the silence of `service`; false when none was in force.
    pub async fn end_silence(&self, service: &str) -> Result<bool, DynamoHotError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.config.table)
            .key("pk", s(SILENCES_PK))
            .key("sk", s(service))
            .condition_expression("until_ms > :now")
            .expression_attribute_values(":now", n(wall_clock_ms()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(DynamoHotError::dynamo("end silence", e)),
        }
    }
}

impl BaselineStore for DynamoHotStore {
    fn load_baselines(
        &self,
        keys: &[BaselineKey],
    ) -> Result<Vec<(BaselineKey, Baseline)>, AlertStoreError> {
        self.block_on(self.baselines(keys))
    }

    fn save_baselines(&self, saves: &[BaselineSave]) -> Result<Vec<bool>, AlertStoreError> {
        self.block_on(self.save_baselines_now(saves))
    }
}

impl SilenceStore for DynamoHotStore {
    fn put_silence(&self, silence: &Silence) -> Result<(), AlertStoreError> {
        self.block_on(self.set_silence(silence))
    }

    fn active_silences(&self, now_ms: i64) -> Result<Vec<Silence>, AlertStoreError> {
        self.block_on(self.silences(now_ms))
    }

    fn remove_silence(&self, service: &str) -> Result<bool, AlertStoreError> {
        self.block_on(self.end_silence(service))
    }
}
