//! `[http]`: the settings of the HTTP listener, checked without I/O.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use spate_operators::component::ConfigError;
use spate_operators::component::units::{KiB, Seconds};

/// `[http]`: the HTTP listener of `spate run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on (`--listen`, then the `SPATE_LISTEN` environment
    /// variable, override it; the container image sets `0.0.0.0:8470`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, as sent (compressed or not).
    #[serde(
        rename = "max_body_size",
        alias = "max_body_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_body_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_body_mib: usize,
    /// Largest body after decompression.
    #[serde(
        rename = "max_decoded_size",
        alias = "max_decoded_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_decoded_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_decoded_mib: usize,
    /// Memory that request bodies may hold at once, over all connections:
    /// received, decompressed, parsed and being appended (charged as it
    /// grows). A request that does not fit is answered 429.
    #[serde(
        rename = "max_inflight_size",
        alias = "max_inflight_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_inflight_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_inflight_mib: usize,
    /// Time a client has to send a request's headers, from the connection's
    /// start or the end of the previous response (idle keep-alive
    /// connections close after it too).
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Seconds,
    /// Time a request body may take before `min_body_rate` counts: a body
    /// must arrive within `body_timeout` plus one second per `min_body_rate`
    /// received, else it is answered 408 and its connection closed.
    #[serde(default = "default_body_timeout")]
    pub body_timeout: Seconds,
    /// The slowest a body may arrive on average, per second (see
    /// `body_timeout`).
    #[serde(default = "default_min_body_rate")]
    pub min_body_rate: KiB,
    /// At shutdown, time requests in progress get to finish before their
    /// connections are closed (before the pipeline drains).
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: Seconds,
    /// Require the bearer token on `/metrics` too. Off by default: with a
    /// token configured, `/metrics` (counters and gauges, no log data) stays
    /// open for Prometheus scrapers without credentials.
    #[serde(default)]
    pub metrics_auth: bool,
    /// Bearer token required on `/v1/*` (none: no authentication). Prefer
    /// `auth_token_env` so the token stays out of the file.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Name of an environment variable holding the bearer token.
    #[serde(default)]
    pub auth_token_env: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8470".to_string()
}
fn default_max_body_mib() -> usize {
    16
}
fn default_max_decoded_mib() -> usize {
    64
}
fn default_max_inflight_mib() -> usize {
    256
}
fn default_header_timeout() -> Seconds {
    Seconds::units(30)
}
fn default_body_timeout() -> Seconds {
    Seconds::units(10)
}
fn default_min_body_rate() -> KiB {
    KiB::units(32)
}
fn default_drain_timeout() -> Seconds {
    Seconds::units(5)
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            max_body_mib: default_max_body_mib(),
            max_decoded_mib: default_max_decoded_mib(),
            max_inflight_mib: default_max_inflight_mib(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            min_body_rate: default_min_body_rate(),
            drain_timeout: default_drain_timeout(),
            metrics_auth: false,
            auth_token: None,
            auth_token_env: None,
        }
    }
}

impl HttpConfig {
    /// Checks the settings without I/O: `listen` is an address with a port,
    /// the sizes and timeouts are positive, a token given is not blank.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_listen(&self.listen).map_err(|e| ConfigError::new("listen", e))?;
        for (key, value) in [
            ("max_body_size", self.max_body_mib),
            ("max_decoded_size", self.max_decoded_mib),
            ("max_inflight_size", self.max_inflight_mib),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        for (key, value) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            if value.get() < std::time::Duration::from_millis(100) {
                return Err(ConfigError::new(key, "must be at least 100ms"));
            }
        }
        if self.min_body_rate.bytes() < 1024 {
            return Err(ConfigError::new("min_body_rate", "must be at least 1KiB"));
        }
        if self.max_inflight_mib < self.max_body_mib {
            return Err(ConfigError::new(
                "max_inflight_size",
                format!(
                    "is smaller than max_body_size ({}MiB): no body that size could be received",
                    self.max_body_mib
                ),
            ));
        }
        if self
            .auth_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(ConfigError::new(
                "auth_token",
                "is empty; remove the key to serve without authentication",
            ));
        }
        if self.auth_token_env.as_deref() == Some("") {
            return Err(ConfigError::new("auth_token_env", "names no variable"));
        }
        Ok(())
    }

    /// The token in force: `auth_token_env`'s variable, else `auth_token`.
    /// A variable that is unset or empty is an error, never "no auth".
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        if let Some(var) = &self.auth_token_env {
            return match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => Ok(Some(t)),
                Ok(_) => Err(ConfigError::new(
                    "auth_token_env",
                    format!("environment variable {var} is empty"),
                )),
                Err(_) => Err(ConfigError::new(
                    "auth_token_env",
                    format!("environment variable {var} is not set"),
                )),
            };
        }
        Ok(self.auth_token.clone())
    }
}

/// `listen` must be `ADDRESS:PORT` (`127.0.0.1:8470`, `0.0.0.0:8470`,
/// `[::]:8470`, or a host name with a port).
pub fn check_listen(listen: &str) -> Result<(), String> {
    if listen.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let hint = "must be an address and a port, such as 127.0.0.1:8470 (this machine only) or 0.0.0.0:8470 (every interface)";
    match listen.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !host.contains(['[', ']', ':', '/'])
                && port.parse::<u16>().is_ok() =>
        {
            Ok(())
        }
        _ => Err(format!("{listen:?} {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_tokens_and_impossible_budgets_are_refused() {
        let with = |f: &dyn Fn(&mut HttpConfig)| {
            let mut config = HttpConfig::default();
            f(&mut config);
            config.validate().map_err(|e| e.to_string())
        };
        for token in ["", "  "] {
            let err = with(&|c| c.auth_token = Some(token.into())).unwrap_err();
            assert!(err.contains("auth_token"), "{err}");
        }
        let err = with(&|c| c.max_inflight_mib = 8).unwrap_err();
        assert!(err.contains("max_inflight_size"), "{err}");
        let err = with(&|c| c.min_body_rate = KiB::from_bytes(100)).unwrap_err();
        assert!(err.contains("min_body_rate"), "{err}");
        let err = with(&|c| c.body_timeout = Seconds::units(0)).unwrap_err();
        assert!(err.contains("body_timeout"), "{err}");
        assert!(with(&|_| {}).is_ok());
    }
}
