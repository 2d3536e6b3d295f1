//! Email and SMS alert subscriptions through SNS (with `[alerts.sns]`): a
//! console user subscribes an email address or a phone number to the
//! alert topic for chosen services and severities, which becomes an SNS
//! `Subscribe` with a filter policy on the message attributes every alert
//! carries (`service`, `severity`; see
//! `spate_operators::sinks::sns::attributes`), scoped to the message
//! attributes. SNS then delivers only the matching alerts; the console
//! keeps the subscription ARN (to unsubscribe) in the console store.

use rusqlite::params;
use serde::Serialize;

use super::store::{ConsoleStore, StoreError};
use super::subscriptions::SEVERITIES;

/// How notices reach the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    /// An email address (SNS sends a confirmation first).
    Email,
    /// A phone number in E.164 form.
    Sms,
}

impl Protocol {
    /// The SNS protocol name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Email => "email",
            Protocol::Sms => "sms",
        }
    }

    /// `email` or `sms`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "email" => Ok(Protocol::Email),
            "sms" => Ok(Protocol::Sms),
            other => Err(format!("unknown delivery {other:?} (email or sms)")),
        }
    }

    /// Checks `endpoint` for this protocol; the error says what is wrong.
    pub fn check(self, endpoint: &str) -> Result<(), String> {
        match self {
            Protocol::Email => check_email(endpoint),
            Protocol::Sms => check_phone(endpoint),
        }
    }
}

/// An email address: one `@`, a local part, a domain with a dot, no
/// spaces or angle brackets, at most 254 characters.
pub fn check_email(email: &str) -> Result<(), String> {
    let bad = || format!("{email:?} is not an email address (like name@example.com)");
    if email.len() > 254
        || email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if local.is_empty() || domain.contains('@') || !domain.contains('.') || !labels_ok {
        return Err(bad());
    }
    Ok(())
}

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not 0.
pub fn check_phone(phone: &str) -> Result<(), String> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{phone:?} is not a phone number in E.164 form (+ and the country code, like +14155550123)"
        ))
    }
}

/// Checks the chosen severities.
pub fn check_severities(severities: &[String]) -> Result<(), String> {
    match severities
        .iter()
        .find(|s| !SEVERITIES.contains(&s.as_str()))
    {
        Some(s) => Err(format!(
            "unknown severity {s:?} (CRITICAL, ERROR or WARNING)"
        )),
        None => Ok(()),
    }
}

/// The SNS filter policy (on message attributes) for `services` and
/// `severities`; `None` when both are empty (every alert).
pub fn filter_policy(services: &[String], severities: &[String]) -> Option<String> {
    let mut policy = serde_json::Map::new();
    if !services.is_empty() {
        policy.insert("service".into(), services.into());
    }
    if !severities.is_empty() {
        policy.insert("severity".into(), severities.into());
    }
    (!policy.is_empty()).then(|| serde_json::Value::Object(policy).to_string())
}

/// One email or SMS subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnsSubscription {
    /// Its id in the console store.
    pub id: i64,
    /// The user who made it.
    pub owner: String,
    /// Email or SMS.
    pub protocol: String,
    /// The address or number.
    pub endpoint: String,
    /// Only these services; empty: every service.
    pub services: Vec<String>,
    /// Only these severities; empty: every severity.
    pub severities: Vec<String>,
    /// The SNS subscription's ARN.
    pub arn: String,
    /// When it was made, UTC milliseconds.
    pub created_ms: i64,
}

/// What a new subscription is.
#[derive(Debug, Clone)]
pub struct NewSnsSubscription<'a> {
    /// The user.
    pub owner: &'a str,
    /// Email or SMS.
    pub protocol: Protocol,
    /// The address or number.
    pub endpoint: &'a str,
    /// Services.
    pub services: &'a [String],
    /// Severities.
    pub severities: &'a [String],
    /// The SNS subscription's ARN.
    pub arn: &'a str,
    /// Now, UTC milliseconds.
    pub now_ms: i64,
}

impl ConsoleStore {
    /// Records an SNS subscription; its id.
    pub fn add_sns_subscription(&self, new: &NewSnsSubscription<'_>) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO sns_subscriptions \
             (owner, protocol, endpoint, services, severities, arn, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                new.owner,
                new.protocol.as_str(),
                new.endpoint,
                new.services.join(","),
                new.severities.join(","),
                new.arn,
                new.now_ms
            ],
        )
        .map_err(self.error("add sns subscription"))?;
        Ok(conn.last_insert_rowid())
    }

    /// The SNS subscriptions (of `owner` only, unless `None`), oldest first.
    pub fn sns_subscriptions(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<SnsSubscription>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, owner, protocol, endpoint, services, severities, arn, created_ms \
                 FROM sns_subscriptions WHERE (?1 IS NULL OR owner = ?1) ORDER BY id",
            )
            .map_err(self.error("list sns subscriptions"))?;
        let rows = stmt
            .query_map([owner], |r| {
                Ok(SnsSubscription {
                    id: r.get(0)?,
                    owner: r.get(1)?,
                    protocol: r.get(2)?,
                    endpoint: r.get(3)?,
                    services: super::subscriptions::list(&r.get::<_, String>(4)?),
                    severities: super::subscriptions::list(&r.get::<_, String>(5)?),
                    arn: r.get(6)?,
                    created_ms: r.get(7)?,
                })
            })
            .map_err(self.error("list sns subscriptions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.error("list sns subscriptions"))
    }

    /// Removes SNS subscription `id` (of `owner` only, unless `None`);
    /// whether it existed.
    pub fn remove_sns_subscription(
        &self,
        id: i64,
        owner: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute(
                "DELETE FROM sns_subscriptions WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
                params![id, owner],
            )
            .map_err(self.error("remove sns subscription"))?;
        Ok(n > 0)
    }
}

/// Subscribes and unsubscribes on the alert topic.
pub struct SnsSubscriber {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsSubscriber {
    /// Subscriptions to `topic_arn` through `client`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: &str) -> Self {
        SnsSubscriber {
            client,
            topic_arn: topic_arn.to_string(),
        }
    }

    /// The topic.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// `Subscribe`s `endpoint` with the filter policy of `services` and
    /// `severities` (on the message attributes); the subscription ARN.
    pub async fn subscribe(
        &self,
        protocol: Protocol,
        endpoint: &str,
        services: &[String],
        severities: &[String],
    ) -> Result<String, String> {
        let mut request = self
            .client
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol(protocol.as_str())
            .endpoint(endpoint)
            .return_subscription_arn(true);
        if let Some(policy) = filter_policy(services, severities) {
            request = request
                .attributes("FilterPolicy", policy)
                .attributes("FilterPolicyScope", "MessageAttributes");
        }
        let answer = request.send().await.map_err(|e| {
            format!(
                "sns subscribe: {}",
                aws_sdk_sns::error::DisplayErrorContext(e)
            )
        })?;
        answer
            .subscription_arn
            .ok_or_else(|| "sns subscribe: no subscription arn in the answer".to_string())
    }

    /// `Unsubscribe`s `arn`.
    pub async fn unsubscribe(&self, arn: &str) -> Result<(), String> {
        self.client
            .unsubscribe()
            .subscription_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "sns unsubscribe: {}",
                    aws_sdk_sns::error::DisplayErrorContext(e)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phone_numbers_are_checked() {
        for good in ["ann@example.com", "a.b+alerts@sub.example.co.uk"] {
            check_email(good).unwrap();
        }
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "ann @example.com",
            "Ann <ann@example.com>",
            "ann@-x.com",
            "ann@example..com",
        ] {
            let err = check_email(bad).unwrap_err();
            assert!(err.contains("not an email address"), "{bad}: {err}");
        }
        for good in ["+14155550123", "+447911123456", "+4930123456"] {
            check_phone(good).unwrap();
        }
        for bad in [
            "",
            "14155550123",
            "+1415555",
            "+0123456789",
            "+1 415 555 0123",
            "+1415555012345678",
        ] {
            let err = check_phone(bad).unwrap_err();
            assert!(err.contains("E.164"), "{bad}: {err}");
        }
        assert_eq!(Protocol::parse("sms").unwrap(), Protocol::Sms);
        assert!(Protocol::parse("http").is_err());
        assert!(Protocol::Email.check("+14155550123").is_err());
        assert!(Protocol::Sms.check("+14155550123").is_ok());
        check_severities(&["CRITICAL".into()]).unwrap();
        assert!(check_severities(&["FATAL".into()]).is_err());
    }

    #[test]
    fn filter_policies_name_the_message_attributes() {
        assert_eq!(filter_policy(&[], &[]), None);
        assert_eq!(
            filter_policy(&["api".into(), "pay".into()], &["CRITICAL".into()]).unwrap(),
            r#"{"service":["api","pay"],"severity":["CRITICAL"]}"#
        );
        assert_eq!(
            filter_policy(&[], &["ERROR".into()]).unwrap(),
            r#"{"severity":["ERROR"]}"#
        );
        // The names are those of the attributes every alert carries.
        let names: Vec<&str> = spate_operators::sinks::sns::attributes(
            &serde_json::from_value(serde_json::json!({
                "id": "x", "rule": "r", "service": "s", "state": "firing", "severity": "ERROR",
                "window_start_ms": 0, "window_end_ms": 1, "raised_at_ms": 1,
                "value": 1.0, "threshold": 1.0, "message": "m"
            }))
            .unwrap(),
        )
        .iter()
        .map(|(name, _)| *name)
        .collect();
        assert!(
            names.contains(&"service") && names.contains(&"severity"),
            "{names:?}"
        );
    }

    #[test]
    fn subscriptions_are_stored_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConsoleStore::open_in(dir.path()).unwrap();
        let services = vec!["api".to_string()];
        let severities = vec!["CRITICAL".to_string()];
        let new = |owner, arn| NewSnsSubscription {
            owner,
            protocol: Protocol::Email,
            endpoint: "ann@example.com",
            services: &services,
            severities: &severities,
            arn,
            now_ms: 5,
        };
        let a = store.add_sns_subscription(&new("ann", "arn:a")).unwrap();
        let b = store.add_sns_subscription(&new("bob", "arn:b")).unwrap();
        assert_eq!(store.sns_subscriptions(None).unwrap().len(), 2);
        let anns = store.sns_subscriptions(Some("ann")).unwrap();
        assert_eq!(anns.len(), 1);
        assert_eq!(anns[0].arn, "arn:a");
        assert_eq!(anns[0].services, services);
        assert!(!store.remove_sns_subscription(b, Some("ann")).unwrap());
        assert!(store.remove_sns_subscription(b, None).unwrap());
        assert!(store.remove_sns_subscription(a, Some("ann")).unwrap());
        assert!(store.sns_subscriptions(None).unwrap().is_empty());
    }
}
