//! End-to-end acknowledgement.
//!
//! A source creates one [`AckToken`] per batch, with a callback that receives the
//! [`Verdict`]. Every copy of a batch (fan-out clones it) holds its own token; each
//! token must be settled explicitly with [`AckToken::deliver`] or
//! [`AckToken::fail`]. When the last token of a batch is gone the callback runs
//! once, with [`Verdict::Delivered`] only if every token was delivered.
//!
//! A token dropped without a verdict counts as a failure, so a batch lost anywhere
//! (a panic, a forgotten ack, a forced shutdown) can never become a silent success.
//!
//! An actor that merges batches (a file writer buffering rows until it rolls) keeps
//! the tokens of everything it buffered in an [`Ack`] and settles them when the
//! file is durably committed.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;

use crate::lag::{LagEntry, LagSlot};

/// The outcome a source learns for one of its batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every sink that received the batch committed it durably.
    Delivered,
    /// At least one copy failed or was dropped; the reason of the first failure.
    Failed(String),
}

impl Verdict {
    /// True for [`Verdict::Delivered`].
    pub fn is_delivered(&self) -> bool {
        matches!(self, Verdict::Delivered)
    }
}

/// The state every share of one batch points at; type-erased so that the
/// callback lives in the same allocation as the state.
trait AckState: Send + Sync {
    fn record_failure(&self, reason: String);
    fn lag_slot(&self) -> &LagSlot;
}

struct AckShared<F: FnOnce(Verdict) + Send> {
    failure: Mutex<Option<String>>,
    on_verdict: Mutex<Option<F>>,
    /// The source's lag ledger entry, settled with the verdict.
    lag: LagSlot,
}

impl<F: FnOnce(Verdict) + Send> AckState for AckShared<F> {
    fn record_failure(&self, reason: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(reason);
        }
    }

    fn lag_slot(&self) -> &LagSlot {
        &self.lag
    }
}

impl<F: FnOnce(Verdict) + Send> Drop for AckShared<F> {
    fn drop(&mut self) {
        let failure = self
            .failure
            .get_mut()
            .map(Option::take)
            .unwrap_or_else(|p| {
                Some(format!(
                    "ack state poisoned: {}",
                    p.into_inner().take().unwrap_or_default()
                ))
            });
        let verdict = match failure {
            None => Verdict::Delivered,
            Some(reason) => Verdict::Failed(reason),
        };
        if let Some(entry) = self.lag.take() {
            entry.settle(verdict.is_delivered());
        }
        if let Some(cb) = self.on_verdict.get_mut().ok().and_then(Option::take) {
            cb(verdict);
        }
    }
}

/// One holder's share of a batch's acknowledgement.
///
/// ```
/// use spate_engine::{AckToken, Verdict};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(None));
/// let s = seen.clone();
/// let token = AckToken::new(move |v| *s.lock().unwrap() = Some(v));
/// let copy = token.clone(); // fan-out to a second sink
/// token.deliver();
/// assert_eq!(*seen.lock().unwrap(), None); // the other sink has not committed yet
/// drop(copy); // dropped without a verdict
/// assert!(matches!(seen.lock().unwrap().clone(), Some(Verdict::Failed(_))));
/// ```
pub struct AckToken {
    shared: Arc<dyn AckState>,
    settled: bool,
}

impl AckToken {
    /// A token whose final verdict is passed to `on_verdict` (called exactly once,
    /// on whichever thread settles or drops the last token).
    pub fn new(on_verdict: impl FnOnce(Verdict) + Send + 'static) -> Self {
        AckToken {
            shared: Arc::new(AckShared {
                failure: Mutex::new(None),
                on_verdict: Mutex::new(Some(on_verdict)),
                lag: LagSlot::new(),
            }),
            settled: false,
        }
    }

    /// A token plus a receiver that resolves to its verdict.
    pub fn channel() -> (AckToken, tokio::sync::oneshot::Receiver<Verdict>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let token = AckToken::new(move |v| {
            let _ = tx.send(v);
        });
        (token, rx)
    }

    /// Marks this share as durably committed.
    pub fn deliver(mut self) {
        self.settled = true;
    }

    /// Marks this share (and so the whole batch) as failed.
    pub fn fail(mut self, reason: impl Into<String>) {
        self.record_failure(reason.into());
        self.settled = true;
    }

    fn record_failure(&self, reason: String) {
        self.shared.record_failure(reason);
    }
}

impl Clone for AckToken {
    /// Another share of the same batch, which must be settled on its own.
    fn clone(&self) -> Self {
        AckToken {
            shared: self.shared.clone(),
            settled: false,
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.settled {
            self.record_failure("batch dropped without a verdict".to_string());
        }
    }
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckToken")
            .field("holders", &Arc::strong_count(&self.shared))
            .finish()
    }
}

/// The acknowledgement a batch carries: zero, one or many tokens.
///
/// Batches from a source carry one token; a batch merged from several inputs
/// carries all of theirs; a batch nobody needs to hear about carries none.
///
/// ```
/// use spate_engine::{Ack, AckToken};
/// let (t1, mut r1) = AckToken::channel();
/// let (t2, mut r2) = AckToken::channel();
/// let mut ack = Ack::from(t1);
/// ack.merge(Ack::from(t2));
/// assert_eq!(ack.len(), 2);
/// ack.deliver();
/// assert!(r1.try_recv().unwrap().is_delivered());
/// assert!(r2.try_recv().unwrap().is_delivered());
/// ```
#[derive(Debug, Default)]
pub struct Ack {
    tokens: Tokens,
}

/// Tokens held, without a heap allocation for the common single token.
#[derive(Debug, Default)]
enum Tokens {
    #[default]
    None,
    One(AckToken),
    Many(Vec<AckToken>),
}

impl Ack {
    /// An ack that tracks nothing.
    pub fn none() -> Self {
        Ack::default()
    }

    /// Number of tokens held.
    pub fn len(&self) -> usize {
        match &self.tokens {
            Tokens::None => 0,
            Tokens::One(_) => 1,
            Tokens::Many(v) => v.len(),
        }
    }

    /// True when no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes over the tokens of `other`.
    pub fn merge(&mut self, other: Ack) {
        let mine = std::mem::take(&mut self.tokens);
        self.tokens = match (mine, other.tokens) {
            (Tokens::None, theirs) => theirs,
            (mine, Tokens::None) => mine,
            (mine, theirs) => {
                let mut all = mine.into_vec();
                all.extend(theirs.into_vec());
                Tokens::Many(all)
            }
        };
    }

    /// Another share of every token, for a copy of the batch.
    pub fn share(&self) -> Ack {
        let tokens = match &self.tokens {
            Tokens::None => Tokens::None,
            Tokens::One(t) => Tokens::One(t.clone()),
            Tokens::Many(v) => Tokens::Many(v.clone()),
        };
        Ack { tokens }
    }

    /// Attaches a source lag entry to the batch's first token unless it has
    /// one (a batch sent twice keeps its first acceptance). The entry settles
    /// with that token's verdict.
    pub(crate) fn track_lag(&self, entry: impl FnOnce() -> LagEntry) {
        let first = match &self.tokens {
            Tokens::None => return,
            Tokens::One(t) => t,
            Tokens::Many(v) => match v.first() {
                Some(t) => t,
                None => return,
            },
        };
        first.shared.lag_slot().get_or_init(entry);
    }

    /// Settles every token as committed.
    pub fn deliver(self) {
        match self.tokens {
            Tokens::None => {}
            Tokens::One(t) => t.deliver(),
            Tokens::Many(v) => v.into_iter().for_each(AckToken::deliver),
        }
    }

    /// Settles every token as failed.
    pub fn fail(self, reason: impl Into<String>) {
        let reason = reason.into();
        for t in self.tokens.into_vec() {
            t.fail(reason.clone());
        }
    }
}

impl Tokens {
    fn into_vec(self) -> Vec<AckToken> {
        match self {
            Tokens::None => Vec::new(),
            Tokens::One(t) => vec![t],
            Tokens::Many(v) => v,
        }
    }
}

impl From<AckToken> for Ack {
    fn from(token: AckToken) -> Self {
        Ack {
            tokens: Tokens::One(token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_only_after_every_share_delivers() {
        let (token, mut rx) = AckToken::channel();
        let a = token.clone();
        let b = token.clone();
        token.deliver();
        a.deliver();
        assert!(
            rx.try_recv().is_err(),
            "verdict before the last share settled"
        );
        b.deliver();
        assert_eq!(rx.try_recv().unwrap(), Verdict::Delivered);
    }

    #[test]
    fn one_failure_fails_the_batch_and_keeps_the_first_reason() {
        let (token, mut rx) = AckToken::channel();
        let a = token.clone();
        let b = token.clone();
        a.fail("s3 is down");
        token.deliver();
        b.fail("later failure");
        assert_eq!(rx.try_recv().unwrap(), Verdict::Failed("s3 is down".into()));
    }

    #[test]
    fn dropping_without_verdict_fails() {
        let (token, mut rx) = AckToken::channel();
        drop(token);
        assert_eq!(
            rx.try_recv().unwrap(),
            Verdict::Failed("batch dropped without a verdict".into())
        );
    }

    #[test]
    fn shared_ack_fails_if_a_copy_is_dropped() {
        let (token, mut rx) = AckToken::channel();
        let ack = Ack::from(token);
        let copy = ack.share();
        ack.deliver();
        drop(copy);
        assert!(!rx.try_recv().unwrap().is_delivered());
    }

    #[test]
    fn empty_ack_is_harmless() {
        let mut ack = Ack::none();
        ack.merge(Ack::none());
        assert!(ack.is_empty());
        ack.fail("nothing to fail");
    }
}
