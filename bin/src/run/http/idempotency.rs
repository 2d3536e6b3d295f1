//! `Idempotency-Key` on `POST /v1/logs`: a client that lost the answer to a
//! push retries it with the same key, and the retry lands once.
//!
//! Two mechanisms, one per failure:
//!
//! - **The same process.** The server remembers the keys of the pushes it
//!   accepted for [`KEY_TTL`] (at most [`MAX_KEYS`], oldest forgotten first),
//!   in memory: a retry within that window is answered 200 (`"replayed":
//!   true`) without appending. A push whose key is still being accepted is
//!   answered 409 with `Retry-After: 1`.
//! - **After a restart** (the 200 lost because the process died, or the key
//!   forgotten): the retry is appended again, but the push's key is stored
//!   with its journal records and its events' ids derive from it,
//!   `http:<key>:<byte offset in the body>` (the `i`-th record after the
//!   first of a body that holds several, e.g. CloudWatch payloads, uses
//!   `<key> <i>`), instead of from their journal positions. The retry's rows
//!   have the ids of the first push's rows, and the lake's seal drops them
//!   (`spate_lake_duplicates_dropped_total{source="http"}`), as it drops
//!   journal replays. That holds while the first push's partition is within
//!   `lake.dedup_horizon`, for a retry with the same body: a row lands in the
//!   partition of its own time, and a line without a time takes the time it
//!   was received, so its retry can fall into another hour's partition.
//!
//! Keys are global to the service, not per client: clients must make them
//! unique (a client id and a batch number, a UUID). The first body accepted
//! under a key wins; a later body under the same key is not compared with it
//! (in memory it is answered as replayed; after a restart its lines at the
//! offsets of the first body's lines are dropped at seal).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// How long an accepted key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(600);
/// How many keys are remembered at most.
pub const MAX_KEYS: usize = 100_000;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// What a push with a key may do.
pub enum Claim {
    /// The key is new: accept the push, then [`KeyClaim::complete`].
    New(KeyClaim),
    /// A push with this key was accepted: `lines` then.
    Done {
        /// Lines that push accepted.
        lines: u64,
    },
    /// A push with this key is being accepted now.
    InFlight,
}

#[derive(Clone, Copy)]
enum KeyState {
    Pending,
    Done { lines: u64 },
}

#[derive(Default)]
struct Keys {
    states: HashMap<Arc<str>, (Instant, KeyState)>,
    order: VecDeque<(Instant, Arc<str>)>,
}

/// The keys of recent pushes.
#[derive(Clone, Default)]
pub struct KeyWindow {
    keys: Arc<Mutex<Keys>>,
}

/// A key being accepted; forgotten unless completed (so a refused push can
/// be retried with its key).
pub struct KeyClaim {
    window: KeyWindow,
    key: Arc<str>,
    since: Instant,
    done: bool,
}

impl KeyClaim {
    /// The push was accepted with `lines` lines.
    pub fn complete(mut self, lines: u64) {
        let mut keys = self.window.lock();
        if let Some((since, state)) = keys.states.get_mut(&self.key)
            && *since == self.since
        {
            *state = KeyState::Done { lines };
        }
        self.done = true;
    }
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut keys = self.window.lock();
        if keys
            .states
            .get(&self.key)
            .is_some_and(|(since, _)| *since == self.since)
        {
            keys.states.remove(&self.key);
        }
    }
}

/// Checks a key's form: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

impl KeyWindow {
    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `key` for a push at `now`.
    pub fn claim(&self, key: &str, now: Instant) -> Claim {
        let mut keys = self.lock();
        // Forget what is too old, or too many.
        while let Some((at, oldest)) = keys.order.front().cloned() {
            if now.duration_since(at) < KEY_TTL && keys.order.len() < MAX_KEYS {
                break;
            }
            keys.order.pop_front();
            if keys
                .states
                .get(&oldest)
                .is_some_and(|(since, _)| *since == at)
            {
                keys.states.remove(&oldest);
            }
        }
        match keys.states.get(key) {
            Some((_, KeyState::Done { lines })) => Claim::Done { lines: *lines },
            Some((_, KeyState::Pending)) => Claim::InFlight,
            None => {
                let key: Arc<str> = Arc::from(key);
                keys.states.insert(key.clone(), (now, KeyState::Pending));
                keys.order.push_back((now, key.clone()));
                Claim::New(KeyClaim {
                    window: self.clone(),
                    key,
                    since: now,
                    done: false,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_claim(window: &KeyWindow, key: &str, now: Instant) -> KeyClaim {
        match window.claim(key, now) {
            Claim::New(claim) => claim,
            _ => panic!("{key} is not new"),
        }
    }

    fn lines(claim: Claim) -> Option<u64> {
        match claim {
            Claim::Done { lines } => Some(lines),
            _ => None,
        }
    }

    #[test]
    fn an_accepted_key_is_answered_again_until_it_expires() {
        let window = KeyWindow::default();
        let t0 = Instant::now();
        let claim = new_claim(&window, "k", t0);
        assert!(matches!(window.claim("k", t0), Claim::InFlight));
        claim.complete(7);
        assert_eq!(
            lines(window.claim("k", t0 + Duration::from_secs(1))),
            Some(7)
        );
        assert!(matches!(window.claim("k", t0 + KEY_TTL), Claim::New(_)));
    }

    #[test]
    fn a_refused_push_frees_its_key() {
        let window = KeyWindow::default();
        let t0 = Instant::now();
        let claim = new_claim(&window, "k", t0);
        drop(claim);
        assert!(matches!(window.claim("k", t0), Claim::New(_)));
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(valid_key("batch-0001:ab"));
        assert!(!valid_key(""));
        assert!(!valid_key("a b"));
        assert!(!valid_key(&"x".repeat(MAX_KEY_LEN + 1)));
    }
}
