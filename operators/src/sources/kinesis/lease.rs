//! Shard leases in a DynamoDB table, and the plan of which leases to take.
//!
//! One item per shard, keyed by `lease_key` = the shard id (so one lease
//! table per stream and consuming application, as with the KCL):
//!
//! | attribute | meaning |
//! | --- | --- |
//! | `lease_key` | the shard id |
//! | `stream` | the stream's name (informational) |
//! | `owner` | worker id of the holder; absent when free |
//! | `lease_token` | unique per acquisition; every write of the holder is conditional on it |
//! | `expiry` | epoch milliseconds after which the lease is free to take |
//! | `checkpoint` | last sequence number every sink committed, or `SHARD_END` |
//! | `parents` | parent shard ids (list), when the shard came from a reshard |
//!
//! Acquisition is a conditional update (`attribute_not_exists(owner) OR
//! expiry < :now`, and not `SHARD_END`); renewal, checkpoints and release are
//! conditional on the holder's `lease_token`, so a worker that lost a lease
//! (expired, stolen for balance) can never overwrite the new holder's
//! checkpoint. Lease times are wall-clock milliseconds: they are compared
//! across processes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::KinesisError;

/// The checkpoint of a closed shard whose every record was delivered.
pub const SHARD_END: &str = "SHARD_END";

/// One lease item as read from the table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    /// The shard id (`lease_key`).
    pub shard_id: String,
    /// Worker holding it (until `expiry_ms`).
    pub owner: Option<String>,
    /// The holder's acquisition token.
    pub token: Option<String>,
    /// Epoch milliseconds after which the lease is free.
    pub expiry_ms: i64,
    /// Last delivered sequence number, or [`SHARD_END`].
    pub checkpoint: Option<String>,
    /// Parent shard ids.
    pub parents: Vec<String>,
}

impl Lease {
    /// True when the shard is closed and fully delivered.
    pub fn is_finished(&self) -> bool {
        self.checkpoint.as_deref() == Some(SHARD_END)
    }

    /// The live holder at `now_ms`, if any.
    pub fn holder(&self, now_ms: i64) -> Option<&str> {
        self.owner.as_deref().filter(|_| self.expiry_ms > now_ms)
    }

    fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Lease> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        Some(Lease {
            shard_id: s("lease_key")?,
            owner: s("owner"),
            token: s("lease_token"),
            expiry_ms: item
                .get("expiry")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            checkpoint: s("checkpoint"),
            parents: item
                .get("parents")
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|p| p.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
        })
    }
}

/// A shard as ListShards describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard id.
    pub shard_id: String,
    /// Its parents (none, one after a split, two after a merge).
    pub parents: Vec<String>,
    /// Its last sequence number once the shard is closed (resharded).
    pub ending_sequence: Option<String>,
}

/// What one balancing round decides to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A free or expired lease.
    Free(String),
    /// A lease held by a worker above its fair share.
    Steal {
        /// The shard.
        shard_id: String,
        /// The holder's token the take is conditional on.
        token: String,
    },
}

/// Decides which leases `me` should take this round.
///
/// A shard is eligible when its lease is not finished and every parent that
/// is still listed has finished. Live workers are the holders of unexpired
/// leases plus `me`; each should hold `ceil(eligible / workers)`. Below that,
/// `me` takes free leases (parents first, then by shard id) up to its share,
/// or, when none is free, steals one from the most loaded worker above its
/// share.
pub fn plan(leases: &[Lease], listed: &[ShardInfo], me: &str, now_ms: i64) -> Vec<Claim> {
    let by_shard: BTreeMap<&str, &Lease> =
        leases.iter().map(|l| (l.shard_id.as_str(), l)).collect();
    let listed_ids: BTreeSet<&str> = listed.iter().map(|s| s.shard_id.as_str()).collect();
    let parent_done = |p: &String| {
        !listed_ids.contains(p.as_str())
            || by_shard.get(p.as_str()).is_some_and(|l| l.is_finished())
    };
    let eligible: Vec<&Lease> = listed
        .iter()
        .filter_map(|s| by_shard.get(s.shard_id.as_str()).copied())
        .filter(|l| !l.is_finished() && l.parents.iter().all(parent_done))
        .collect();
    if eligible.is_empty() {
        return Vec::new();
    }
    let mut held: BTreeMap<&str, Vec<&Lease>> = BTreeMap::new();
    for l in &eligible {
        if let Some(owner) = l.holder(now_ms) {
            held.entry(owner).or_default().push(l);
        }
    }
    let workers = held.keys().filter(|w| **w != me).count() + 1;
    let target = eligible.len().div_ceil(workers);
    let mine = held.get(me).map_or(0, Vec::len);
    if mine >= target {
        return Vec::new();
    }
    let free: Vec<Claim> = eligible
        .iter()
        .filter(|l| l.holder(now_ms).is_none())
        .take(target - mine)
        .map(|l| Claim::Free(l.shard_id.clone()))
        .collect();
    if !free.is_empty() {
        return free;
    }
    let victim = held
        .iter()
        .filter(|(w, ls)| **w != me && ls.len() > target)
        .max_by_key(|(w, ls)| (ls.len(), std::cmp::Reverse(**w)));
    match victim.and_then(|(_, ls)| ls.last()) {
        Some(l) => vec![Claim::Steal {
            shard_id: l.shard_id.clone(),
            token: l.token.clone().unwrap_or_default(),
        }],
        None => Vec::new(),
    }
}

/// The lease table: every DynamoDB call the source makes.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    stream: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// True when a DynamoDB error is a failed condition (someone else's lease).
fn condition_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl LeaseTable {
    /// The leases of `stream` in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str, stream: &str) -> Self {
        LeaseTable {
            client,
            table: table.to_string(),
            stream: stream.to_string(),
        }
    }

    fn key(&self, shard_id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("lease_key".to_string(), s(shard_id))])
    }

    /// Every lease item (strongly consistent).
    pub async fn scan(&self) -> Result<Vec<Lease>, KinesisError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| KinesisError::dynamo("scan leases", e))?;
            out.extend(page.items().iter().filter_map(Lease::from_item));
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Creates the lease of a shard unless it exists; true when created.
    pub async fn create(&self, shard: &ShardInfo) -> Result<bool, KinesisError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("lease_key", s(&shard.shard_id))
            .item("stream", s(&self.stream))
            .item("expiry", n(0))
            .condition_expression("attribute_not_exists(lease_key)");
        if !shard.parents.is_empty() {
            put = put.item(
                "parents",
                AttributeValue::L(shard.parents.iter().map(s).collect()),
            );
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(KinesisError::dynamo("create lease", e)),
        }
    }

    /// Takes a lease (free, or the `steal` holder's); returns the lease as
    /// taken (with its checkpoint), or `None` when someone else got it.
    pub async fn acquire(
        &self,
        claim: &Claim,
        me: &str,
        token: &str,
        now_ms: i64,
        expiry_ms: i64,
    ) -> Result<Option<Lease>, KinesisError> {
        let (shard_id, condition) = match claim {
            Claim::Free(shard) => (
                shard,
                "(attribute_not_exists(#owner) OR expiry < :now) AND \
                 (attribute_not_exists(checkpoint) OR checkpoint <> :end)",
            ),
            Claim::Steal { shard_id, .. } => (
                shard_id,
                "lease_token = :victim AND (attribute_not_exists(checkpoint) OR checkpoint <> :end)",
            ),
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(shard_id)))
            .update_expression("SET #owner = :me, lease_token = :token, expiry = :expiry")
            .condition_expression(condition)
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":expiry", n(expiry_ms))
            .expression_attribute_values(":end", s(SHARD_END))
            .return_values(ReturnValue::AllNew);
        update = match claim {
            Claim::Free(_) => update.expression_attribute_values(":now", n(now_ms)),
            Claim::Steal { token, .. } => update.expression_attribute_values(":victim", s(token)),
        };
        match update.send().await {
            Ok(out) => Ok(out.attributes().and_then(Lease::from_item)),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(KinesisError::dynamo("acquire lease", e)),
        }
    }

    async fn update_held(
        &self,
        op: &'static str,
        shard_id: &str,
        token: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
        owner_name: bool,
    ) -> Result<bool, KinesisError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(shard_id)))
            .update_expression(expression)
            .condition_expression("lease_token = :held")
            .expression_attribute_values(":held", s(token));
        if owner_name {
            update = update.expression_attribute_names("#owner", "owner");
        }
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(KinesisError::dynamo(op, e)),
        }
    }

    /// Extends a held lease; false when it was lost.
    pub async fn renew(
        &self,
        shard_id: &str,
        token: &str,
        expiry_ms: i64,
    ) -> Result<bool, KinesisError> {
        self.update_held(
            "renew lease",
            shard_id,
            token,
            "SET expiry = :expiry",
            vec![(":expiry", n(expiry_ms))],
            false,
        )
        .await
    }

    /// Saves a checkpoint of a held lease; false when it was lost.
    pub async fn checkpoint(
        &self,
        shard_id: &str,
        token: &str,
        sequence: &str,
    ) -> Result<bool, KinesisError> {
        let saved = self
            .update_held(
                "write checkpoint",
                shard_id,
                token,
                "SET checkpoint = :seq",
                vec![(":seq", s(sequence))],
                false,
            )
            .await?;
        if saved {
            metrics::counter!("spate_kinesis_checkpoint_writes_total").increment(1);
        }
        Ok(saved)
    }

    /// Marks a closed shard finished and frees its lease.
    pub async fn finish(&self, shard_id: &str, token: &str) -> Result<bool, KinesisError> {
        let done = self
            .update_held(
                "finish shard",
                shard_id,
                token,
                "SET checkpoint = :end, expiry = :zero REMOVE #owner, lease_token",
                vec![(":end", s(SHARD_END)), (":zero", n(0))],
                true,
            )
            .await?;
        if done {
            metrics::counter!("spate_kinesis_checkpoint_writes_total").increment(1);
        }
        Ok(done)
    }

    /// Frees a held lease so another worker can take it at once.
    pub async fn release(&self, shard_id: &str, token: &str) -> Result<bool, KinesisError> {
        self.update_held(
            "release lease",
            shard_id,
            token,
            "SET expiry = :zero REMOVE #owner, lease_token",
            vec![(":zero", n(0))],
            true,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str]) -> ShardInfo {
        ShardInfo {
            shard_id: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            ending_sequence: None,
        }
    }

    fn lease(id: &str, owner: Option<&str>, expiry_ms: i64) -> Lease {
        Lease {
            shard_id: id.into(),
            owner: owner.map(str::to_string),
            token: owner.map(|o| format!("{o}-token")),
            expiry_ms,
            ..Lease::default()
        }
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn alone_takes_every_free_shard() {
        let listed = [shard("s0", &[]), shard("s1", &[])];
        let leases = [lease("s0", None, 0), lease("s1", None, 0)];
        assert_eq!(
            plan(&leases, &listed, "a", NOW),
            vec![Claim::Free("s0".into()), Claim::Free("s1".into())]
        );
    }

    #[test]
    fn a_second_worker_takes_only_its_share_then_steals() {
        let listed = [shard("s0", &[]), shard("s1", &[])];
        // b holds one: a takes the free one only.
        let leases = [lease("s0", Some("b"), NOW + 10), lease("s1", None, 0)];
        assert_eq!(
            plan(&leases, &listed, "a", NOW),
            vec![Claim::Free("s1".into())]
        );
        // b holds both: a steals one.
        let leases = [
            lease("s0", Some("b"), NOW + 10),
            lease("s1", Some("b"), NOW + 10),
        ];
        assert_eq!(
            plan(&leases, &listed, "a", NOW),
            vec![Claim::Steal {
                shard_id: "s1".into(),
                token: "b-token".into()
            }]
        );
        // a split: nothing to do for either.
        let leases = [
            lease("s0", Some("b"), NOW + 10),
            lease("s1", Some("a"), NOW + 10),
        ];
        assert!(plan(&leases, &listed, "a", NOW).is_empty());
        assert!(plan(&leases, &listed, "b", NOW).is_empty());
    }

    #[test]
    fn expired_leases_are_free() {
        let listed = [shard("s0", &[]), shard("s1", &[])];
        let leases = [
            lease("s0", Some("dead"), NOW - 1),
            lease("s1", Some("a"), NOW + 10),
        ];
        // The dead worker does not count: a's share is both.
        assert_eq!(
            plan(&leases, &listed, "a", NOW),
            vec![Claim::Free("s0".into())]
        );
    }

    #[test]
    fn children_wait_for_every_listed_parent_to_finish() {
        let listed = [
            shard("p", &[]),
            shard("c1", &["p"]),
            shard("c2", &["p"]),
            shard("m", &["c1", "gone"]),
        ];
        let mut leases = vec![
            lease("p", Some("a"), NOW + 10),
            Lease {
                parents: vec!["p".into()],
                ..lease("c1", None, 0)
            },
            Lease {
                parents: vec!["p".into()],
                ..lease("c2", None, 0)
            },
            Lease {
                parents: vec!["c1".into(), "gone".into()],
                ..lease("m", None, 0)
            },
        ];
        assert!(plan(&leases, &listed, "a", NOW).is_empty());
        leases[0] = Lease {
            checkpoint: Some(SHARD_END.into()),
            ..lease("p", None, 0)
        };
        assert_eq!(
            plan(&leases, &listed, "a", NOW),
            vec![Claim::Free("c1".into()), Claim::Free("c2".into())]
        );
        leases[1].checkpoint = Some(SHARD_END.into());
        // "gone" is no longer listed (trimmed): it does not block "m".
        assert_eq!(
            plan(&leases, &listed, "a", NOW),
            vec![Claim::Free("c2".into()), Claim::Free("m".into())]
        );
    }

    #[test]
    fn finished_and_unlisted_shards_are_ignored() {
        let listed = [shard("s0", &[])];
        let leases = [
            Lease {
                checkpoint: Some(SHARD_END.into()),
                ..lease("s0", None, 0)
            },
            lease("old", None, 0),
        ];
        assert!(plan(&leases, &listed, "a", NOW).is_empty());
    }

    #[test]
    fn items_round_trip() {
        let item = HashMap::from([
            ("lease_key".to_string(), s("s0")),
            ("owner".to_string(), s("a")),
            ("lease_token".to_string(), s("t")),
            ("expiry".to_string(), n(42)),
            ("checkpoint".to_string(), s("123")),
            ("parents".to_string(), AttributeValue::L(vec![s("p")])),
        ]);
        let l = Lease::from_item(&item).unwrap();
        assert_eq!(l.shard_id, "s0");
        assert_eq!(l.holder(41), Some("a"));
        assert_eq!(l.holder(42), None);
        assert_eq!(l.checkpoint.as_deref(), Some("123"));
        assert_eq!(l.parents, ["p"]);
        assert!(!l.is_finished());
        assert!(Lease::from_item(&HashMap::new()).is_none());
    }
}
