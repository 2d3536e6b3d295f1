//! Secrets from AWS Secrets Manager, resolved once at startup.
//!
//! A secret is named by its ARN or name. Its `SecretString` is used whole, or,
//! with a key, parsed as a JSON object and the key's string value taken (the
//! shape the console's "key/value" secrets have). Binary secrets are refused.

use spate_engine::ErrorClass;

/// Why a secret could not be resolved; every message names the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No secret by that name or ARN (or no current version of it).
    #[error("secret {secret} not found in secrets manager: {message}")]
    NotFound {
        /// The ARN or name asked for.
        secret: String,
        /// What Secrets Manager said.
        message: String,
    },
    /// The secret exists but has no usable value (binary only, not a JSON
    /// object when a key is asked for, no such key, or empty).
    #[error("secret {secret}: {reason}")]
    Unusable {
        /// The ARN or name asked for.
        secret: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed (network, permissions, throttling).
    #[error("cannot read secret {secret} from secrets manager: {message}")]
    Request {
        /// The ARN or name asked for.
        secret: String,
        /// The SDK's error, with its context.
        message: String,
    },
}

impl SecretError {
    /// A missing or unusable secret is bad input (the config names it); a
    /// failed request is external.
    pub fn class(&self) -> ErrorClass {
        match self {
            SecretError::NotFound { .. } | SecretError::Unusable { .. } => ErrorClass::BadInput,
            SecretError::Request { .. } => ErrorClass::External,
        }
    }
}

/// Fetches the current value of `secret` (ARN or name); with `key`, the string
/// value of that key of the JSON object it holds.
pub async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    secret: &str,
    key: Option<&str>,
) -> Result<String, SecretError> {
    let out = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| {
            let not_found = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception());
            let message = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
            if not_found {
                SecretError::NotFound {
                    secret: secret.to_string(),
                    message,
                }
            } else {
                SecretError::Request {
                    secret: secret.to_string(),
                    message,
                }
            }
        })?;
    let unusable = |reason: &str| SecretError::Unusable {
        secret: secret.to_string(),
        reason: reason.to_string(),
    };
    let Some(text) = out.secret_string() else {
        return Err(unusable(
            "has no SecretString (binary secrets are not supported)",
        ));
    };
    pick(text, key).map_err(|reason| unusable(&reason))
}

/// The value to use from a secret's text: all of it, or `key` of the JSON
/// object it holds. The error says why not (without the secret's content).
///
/// ```
/// use spate_operators::aws::secrets::pick;
/// assert_eq!(pick("tok", None).unwrap(), "tok");
/// assert_eq!(pick(r#"{"token":"tok","user":"u"}"#, Some("token")).unwrap(), "tok");
/// assert!(pick(r#"{"user":"u"}"#, Some("token")).unwrap_err().contains("token"));
/// ```
pub fn pick(text: &str, key: Option<&str>) -> Result<String, String> {
    let value = match key {
        None => text.trim().to_string(),
        Some(key) => {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
                .map_err(|_| format!("is not a JSON object, so it has no key {key:?}"))?;
            match object.get(key) {
                Some(serde_json::Value::String(s)) => s.trim().to_string(),
                Some(_) => return Err(format!("key {key:?} is not a string")),
                None => return Err(format!("has no key {key:?}")),
            }
        }
    };
    if value.is_empty() {
        return Err("is empty".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_secret_is_trimmed() {
        assert_eq!(pick("  tok\n", None).unwrap(), "tok");
    }

    #[test]
    fn json_key_is_picked_and_problems_are_named() {
        let text = r#"{"token":"abc","n":3}"#;
        assert_eq!(pick(text, Some("token")).unwrap(), "abc");
        assert_eq!(
            pick(text, Some("n")).unwrap_err(),
            "key \"n\" is not a string"
        );
        assert_eq!(pick(text, Some("x")).unwrap_err(), "has no key \"x\"");
        assert!(
            pick("plain", Some("token"))
                .unwrap_err()
                .starts_with("is not a JSON object")
        );
        assert_eq!(pick("   ", None).unwrap_err(), "is empty");
        assert_eq!(
            pick(r#"{"token":""}"#, Some("token")).unwrap_err(),
            "is empty"
        );
    }

    #[test]
    fn errors_name_the_secret_and_are_classified() {
        let e = SecretError::NotFound {
            secret: "prod/hook".into(),
            message: "ResourceNotFoundException".into(),
        };
        assert!(e.to_string().contains("prod/hook"), "{e}");
        assert_eq!(e.class(), ErrorClass::BadInput);
        let e = SecretError::Request {
            secret: "prod/hook".into(),
            message: "timeout".into(),
        };
        assert_eq!(e.class(), ErrorClass::External);
    }
}
