//! Slows password guessing: after [`MAX_FAILURES`] failed sign-ins for one
//! name from one client address within [`WINDOW_MS`], further attempts for
//! that pair are refused (429) until the window has passed, right or wrong
//! password alike. Held in memory; time is passed in.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures allowed in a window.
pub const MAX_FAILURES: u32 = 10;
/// The window, milliseconds (15 minutes).
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Pairs tracked at most (the oldest are forgotten past it).
const MAX_KEYS: usize = 100_000;

/// Failed sign-ins by (client address, name).
#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<(String, String), (u32, i64)>>,
}

impl SignInThrottle {
    /// Whether attempts for `name` from `client` are refused at `now_ms`.
    pub fn blocked(&self, client: &str, name: &str, now_ms: i64) -> bool {
        let failures = self.lock();
        failures
            .get(&(client.to_string(), name.to_string()))
            .is_some_and(|&(n, since)| n >= MAX_FAILURES && now_ms < since + WINDOW_MS)
    }

    /// Counts a failed attempt.
    pub fn fail(&self, client: &str, name: &str, now_ms: i64) {
        let mut failures = self.lock();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, &mut (_, since)| now_ms < since + WINDOW_MS);
        }
        if failures.len() >= MAX_KEYS {
            failures.clear();
        }
        let entry = failures
            .entry((client.to_string(), name.to_string()))
            .or_insert((0, now_ms));
        if now_ms >= entry.1 + WINDOW_MS {
            *entry = (0, now_ms);
        }
        entry.0 += 1;
    }

    /// Forgets the failures of a pair that signed in.
    pub fn clear(&self, client: &str, name: &str) {
        self.lock().remove(&(client.to_string(), name.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (u32, i64)>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The address part of a client (`1.2.3.4:5678` → `1.2.3.4`, `[::1]:80` →
/// `[::1]`), with the `X-Forwarded-For` note kept.
pub fn address(client: &str) -> String {
    let (peer, rest) = client.split_once(' ').unwrap_or((client, ""));
    let host = match peer.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => peer,
    };
    format!("{host}{}{rest}", if rest.is_empty() { "" } else { " " })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_refused_after_too_many_failures_until_the_window_passes() {
        let t = SignInThrottle::default();
        for i in 0..MAX_FAILURES {
            assert!(!t.blocked("1.2.3.4", "ann", 1_000), "after {i}");
            t.fail("1.2.3.4", "ann", 1_000 + i64::from(i));
        }
        assert!(t.blocked("1.2.3.4", "ann", 2_000));
        // Other names and other addresses are not affected.
        assert!(!t.blocked("1.2.3.4", "bob", 2_000));
        assert!(!t.blocked("5.6.7.8", "ann", 2_000));
        // The window passes: a fresh count.
        assert!(!t.blocked("1.2.3.4", "ann", 1_000 + WINDOW_MS));
        t.fail("1.2.3.4", "ann", 1_000 + WINDOW_MS);
        assert!(!t.blocked("1.2.3.4", "ann", 1_000 + WINDOW_MS));
        // A sign-in clears the count.
        for _ in 0..MAX_FAILURES {
            t.fail("5.6.7.8", "ann", 3_000);
        }
        assert!(t.blocked("5.6.7.8", "ann", 3_000));
        t.clear("5.6.7.8", "ann");
        assert!(!t.blocked("5.6.7.8", "ann", 3_000));
    }

    #[test]
    fn addresses_drop_the_port() {
        assert_eq!(address("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(address("[::1]:80"), "[::1]");
        assert_eq!(
            address("10.0.0.1:443 (x-forwarded-for 1.2.3.4)"),
            "10.0.0.1 (x-forwarded-for 1.2.3.4)"
        );
        assert_eq!(address("unknown"), "unknown");
    }
}
