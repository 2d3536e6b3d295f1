//! The server-side session table of the console: a random 256-bit id (the
//! cookie's value) maps to the user, their role, a per-session CSRF token
//! and an expiry. Sessions live in memory: a restart signs everyone out.
//!
//! A session expires [`SESSION_IDLE_MS`] after its last use, and at the latest
//! [`SESSION_MAX_MS`] after sign-in. Every sign-in makes a new id (a session id
//! planted before sign-in is never promoted, see [`SessionTable::create`]).

use std::collections::HashMap;
use std::sync::Mutex;

use super::auth::{PasswordError, constant_time_eq, random_token};
use super::users::Role;

/// Idle time after which a session ends, milliseconds (1 hour).
pub const SESSION_IDLE_MS: i64 = 60 * 60 * 1000;
/// Longest life of a session, milliseconds (12 hours).
pub const SESSION_MAX_MS: i64 = 12 * 60 * 60 * 1000;
/// Sessions held at most (the oldest are dropped past it).
const MAX_SESSIONS: usize = 10_000;

/// A signed-in user's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The cookie value.
    pub id: String,
    /// Who.
    pub user: String,
    /// What they may do.
    pub role: Role,
    /// The token every state-changing request of this session must carry.
    pub csrf: String,
    /// Sign-in time, UTC milliseconds.
    pub created_ms: i64,
    /// Last use, UTC milliseconds.
    pub last_seen_ms: i64,
}

impl Session {
    /// Whether the session has ended at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.created_ms.saturating_add(SESSION_MAX_MS)
            || now_ms >= self.last_seen_ms.saturating_add(SESSION_IDLE_MS)
    }

    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| constant_time_eq(p.as_bytes(), self.csrf.as_bytes()))
    }
}

/// The sessions.
#[derive(Debug, Default)]
pub struct SessionTable {
    sessions: Mutex<HashMap<String, Session>>,
}

impl SessionTable {
    /// Opens a session for `user` at `now_ms`, with a new random id and CSRF
    /// token. `previous` (the id the browser presented, if any) is ended:
    /// signing in never keeps an id chosen before it.
    pub fn create(
        &self,
        user: &str,
        role: Role,
        previous: Option<&str>,
        now_ms: i64,
    ) -> Result<Session, PasswordError> {
        let session = Session {
            id: random_token()?,
            user: user.to_string(),
            role,
            csrf: random_token()?,
            created_ms: now_ms,
            last_seen_ms: now_ms,
        };
        let mut sessions = self.lock();
        if let Some(previous) = previous {
            sessions.remove(previous);
        }
        sessions.retain(|_, s| !s.expired(now_ms));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .values()
                .min_by_key(|s| s.last_seen_ms)
                .map(|s| s.id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// The live session with id `id` at `now_ms` (its idle time restarts);
    /// an expired one is removed.
    pub fn get(&self, id: &str, now_ms: i64) -> Option<Session> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if session.expired(now_ms) {
            sessions.remove(id);
            return None;
        }
        session.last_seen_ms = now_ms;
        Some(session.clone())
    }

    /// Ends the session `id`; whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_at_their_maximum_age() {
        let table = SessionTable::default();
        let s = table.create("ann", Role::Viewer, None, 1_000).unwrap();
        assert_eq!(s.id.len(), 64);
        assert_ne!(s.id, s.csrf);
        // Used just before the idle limit: alive, and the idle time restarts.
        let t = 1_000 + SESSION_IDLE_MS - 1;
        assert_eq!(table.get(&s.id, t).unwrap().user, "ann");
        let t2 = t + SESSION_IDLE_MS - 1;
        assert!(table.get(&s.id, t2).is_some());
        // Idle for the whole limit: gone, and stays gone.
        assert!(table.get(&s.id, t2 + SESSION_IDLE_MS).is_none());
        assert!(table.get(&s.id, 1_000).is_none());

        // Kept busy, a session still ends at its maximum age.
        let s = table.create("bob", Role::Admin, None, 0).unwrap();
        let mut now = 0;
        while now + SESSION_IDLE_MS / 2 < SESSION_MAX_MS {
            now += SESSION_IDLE_MS / 2;
            assert!(table.get(&s.id, now).is_some(), "alive at {now}");
        }
        assert!(table.get(&s.id, SESSION_MAX_MS).is_none());
        assert!(table.get("unknown", 0).is_none());
    }

    #[test]
    fn sign_in_replaces_a_planted_session_id() {
        let table = SessionTable::default();
        let first = table.create("ann", Role::Viewer, None, 0).unwrap();
        let second = table
            .create("ann", Role::Viewer, Some(&first.id), 10)
            .unwrap();
        assert_ne!(first.id, second.id);
        assert_ne!(first.csrf, second.csrf);
        assert!(table.get(&first.id, 20).is_none(), "the old id is ended");
        assert!(table.get(&second.id, 20).is_some());
        assert!(table.remove(&second.id));
        assert!(!table.remove(&second.id));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let table = SessionTable::default();
        let s = table.create("ann", Role::Viewer, None, 0).unwrap();
        assert!(s.csrf_ok(Some(&s.csrf)));
        assert!(!s.csrf_ok(None));
        assert!(!s.csrf_ok(Some("")));
        assert!(!s.csrf_ok(Some(&s.csrf[..63])));
        let other = table.create("bob", Role::Viewer, None, 0).unwrap();
        assert!(!s.csrf_ok(Some(&other.csrf)));
        assert!(table.get(&other.id, 1).is_some());
    }
}
