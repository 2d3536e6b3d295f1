//! The issuer's signing keys (JWKS): parsed, cached, and fetched again when
//! a token names a key the cache lacks (key rotation), at most every
//! [`REFETCH_INTERVAL`] so that tokens with made-up `kid`s cannot make the
//! service hammer the issuer.

use std::collections::HashMap;
use std::time::Duration;

use aws_lc_rs::signature::RsaPublicKeyComponents;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tokio::time::Instant;

use super::error::OidcError;

/// Shortest time between two fetches of the JWKS.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// An RSA public key, big-endian components without leading zeros.
pub type RsaKey = RsaPublicKeyComponents<Vec<u8>>;

#[derive(Deserialize)]
struct Document {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

fn component(text: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    Some(bytes[first..].to_vec())
}

/// The RS256 signing keys of a JWKS document, by `kid`. Keys of other
/// types, uses or algorithms are skipped.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, RsaKey>, OidcError> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|e| OidcError::Jwks(format!("not a JWKS document: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in doc.keys {
        if jwk.kty != "RSA"
            || jwk.use_.as_deref().is_some_and(|u| u != "sig")
            || jwk.alg.as_deref().is_some_and(|a| a != "RS256")
        {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        if let (Some(n), Some(e)) = (component(&n), component(&e)) {
            keys.insert(kid, RsaPublicKeyComponents { n, e });
        }
    }
    Ok(keys)
}

/// Whether a fetch may happen at `now` after one at `last`, at most one
/// per `interval`.
pub fn may_fetch(last: Option<Instant>, now: Instant, interval: Duration) -> bool {
    last.is_none_or(|last| now.saturating_duration_since(last) >= interval)
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, RsaKey>,
    fetched: Option<Instant>,
}

/// The cached keys of one JWKS URL.
pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    interval: Duration,
    cached: tokio::sync::Mutex<Cached>,
}

impl JwksCache {
    /// A cache of the keys at `url`, fetched with `http`.
    pub fn new(url: String, http: reqwest::Client) -> Self {
        JwksCache {
            url,
            http,
            interval: REFETCH_INTERVAL,
            cached: tokio::sync::Mutex::new(Cached::default()),
        }
    }

    /// The cache fetching at most every `interval` (tests).
    #[cfg(test)]
    fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The key `kid` (any key when the token names none and the set has
    /// exactly one), fetching the set when the cache lacks it and the last
    /// fetch is old enough.
    pub async fn key(&self, kid: Option<&str>) -> Result<RsaKey, OidcError> {
        let mut cached = self.cached.lock().await;
        if let Some(key) = pick(&cached.keys, kid) {
            return Ok(key);
        }
        let now = Instant::now();
        if !may_fetch(cached.fetched, now, self.interval) {
            return Err(OidcError::UnknownKey(kid.unwrap_or("none").to_string()));
        }
        cached.fetched = Some(now);
        let keys = self.fetch().await?;
        metrics::counter!("spate_console_oidc_jwks_fetches_total").increment(1);
        cached.keys = keys;
        pick(&cached.keys, kid).ok_or_else(|| OidcError::UnknownKey(kid.unwrap_or("none").into()))
    }

    async fn fetch(&self) -> Result<HashMap<String, RsaKey>, OidcError> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| OidcError::Jwks(format!("GET {}: {e}", self.url)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(OidcError::Jwks(format!(
                "GET {}: status {status}",
                self.url
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| OidcError::Jwks(format!("GET {}: {e}", self.url)))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(OidcError::Jwks(format!(
                "GET {}: more than {MAX_JWKS_BYTES} bytes",
                self.url
            )));
        }
        parse_jwks(&body)
    }
}

fn pick(keys: &HashMap<String, RsaKey>, kid: Option<&str>) -> Option<RsaKey> {
    match kid {
        Some(kid) => keys.get(kid).cloned(),
        None if keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_signing_keys_are_kept() {
        let body = br#"{"keys": [
            {"kty": "RSA", "kid": "a", "alg": "RS256", "use": "sig", "n": "AAEC", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQI", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQI", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AQI", "y": "AQI"},
            {"kty": "RSA", "kid": "b", "n": "AQI", "e": "AQAB"},
            {"kty": "RSA", "n": "AQI", "e": "AQAB"}
        ]}"#;
        let keys = parse_jwks(body).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["a", "b"]);
        // Leading zeros are stripped.
        assert_eq!(keys["a"].n, [1, 2]);
        assert_eq!(keys["a"].e, [1, 0, 1]);
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"[]").is_err());
        assert!(pick(&keys, None).is_none(), "two keys and no kid");
        assert!(pick(&keys, Some("c")).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn refetches_are_rate_limited() {
        let every = REFETCH_INTERVAL;
        let start = Instant::now();
        assert!(may_fetch(None, start, every));
        assert!(!may_fetch(Some(start), start, every));
        tokio::time::advance(every - Duration::from_millis(1)).await;
        assert!(!may_fetch(Some(start), Instant::now(), every));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(may_fetch(Some(start), Instant::now(), every));
    }

    /// A JWKS server whose keys the test changes; it counts the fetches.
    async fn serve(
        body: std::sync::Arc<std::sync::Mutex<String>>,
        fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let body = body.lock().unwrap().clone();
                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { body }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/jwks.json")
    }

    #[tokio::test]
    async fn rotated_keys_are_fetched_but_not_more_than_once_per_interval() {
        let key =
            |kid: &str| format!(r#"{{"kty": "RSA", "kid": "{kid}", "n": "AQI", "e": "AQAB"}}"#);
        let body = std::sync::Arc::new(std::sync::Mutex::new(format!(
            r#"{{"keys": [{}]}}"#,
            key("a")
        )));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = serve(body.clone(), fetches.clone()).await;
        let every = Duration::from_millis(300);
        let cache = JwksCache::new(url, reqwest::Client::new()).with_interval(every);
        let count = || fetches.load(std::sync::atomic::Ordering::SeqCst);
        // The first use fetches; a known key then comes from the cache.
        assert_eq!(cache.key(Some("a")).await.unwrap().n, [1, 2]);
        assert_eq!(cache.key(Some("a")).await.unwrap().e, [1, 0, 1]);
        assert_eq!(count(), 1);
        // The issuer rotates to "b". Right after a fetch, an unknown key is
        // refused without asking again (made-up kids cannot hammer it).
        *body.lock().unwrap() = format!(r#"{{"keys": [{}]}}"#, key("b"));
        assert!(matches!(cache.key(Some("b")).await, Err(OidcError::UnknownKey(k)) if k == "b"));
        assert!(matches!(
            cache.key(Some("zz")).await,
            Err(OidcError::UnknownKey(_))
        ));
        assert_eq!(count(), 1);
        // Once the interval has passed, the unknown key is fetched.
        tokio::time::sleep(every).await;
        assert_eq!(cache.key(Some("b")).await.unwrap().n, [1, 2]);
        assert_eq!(count(), 2);
        assert!(cache.key(Some("a")).await.is_err(), "the old key is gone");
        assert_eq!(count(), 2);
        // No kid: the only key.
        assert!(cache.key(None).await.is_ok());
    }
}
