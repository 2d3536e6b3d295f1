//! The pure parts of checking an ID token: splitting the compact JWS,
//! the header's algorithm, and the claims (`iss`, `aud`, `exp`, `nbf`,
//! `token_use`, `nonce`), the user name and the role from the groups.
//! The signature is checked by the caller, against the issuer's keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::error::OidcError;
use crate::console::config::OidcConfig;
use crate::console::users::Role;

/// Seconds of clock difference tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;

/// Longest token accepted (Cognito's are a few KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A compact JWS split into its parts; the signature is not checked yet.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// `kid` of the header.
    pub kid: Option<String>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// `<header>.<payload>`, what the signature covers.
    pub signing_input: &'a str,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, OidcError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| OidcError::Malformed(format!("the {what} is not base64url: {e}")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, OidcError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OidcError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
        Err(e) => Err(OidcError::Malformed(format!("the {what} is not JSON: {e}"))),
    }
}

/// Splits `token` and reads its header and claims. Only RS256 is accepted
/// (`none` and the HMAC algorithms never are).
pub fn parse(token: &str) -> Result<Parsed<'_>, OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::Malformed(format!(
            "the token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed(
            "a JWT has three parts separated by '.'".into(),
        ));
    };
    let header_map = json_object(&decode_part(header, "header")?, "header")?;
    let alg = header_map
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if alg != "RS256" {
        return Err(OidcError::Algorithm(alg));
    }
    let kid = header_map
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let claims = json_object(&decode_part(payload, "payload")?, "payload")?;
    let signature = decode_part(signature, "signature")?;
    if signature.is_empty() {
        return Err(OidcError::BadSignature);
    }
    Ok(Parsed {
        kid,
        claims,
        signing_input: &token[..header.len() + 1 + payload.len()],
        signature,
    })
}

/// What the claims must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// One of `aud`.
    pub audience: &'a str,
    /// Now, UTC seconds.
    pub now_secs: i64,
    /// `nonce`, for tokens of the browser sign-in.
    pub nonce: Option<&'a str>,
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, OidcError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|f| Some(f as i64))
            .ok_or_else(|| OidcError::Malformed(format!("claim {name} is not a number"))),
    }
}

/// Checks `iss`, `aud`, `exp` (required), `nbf`, `token_use` (`id` when
/// present: Cognito access tokens are refused) and `nonce`.
pub fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), OidcError> {
    let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if issuer.trim_end_matches('/') != expected.issuer.trim_end_matches('/') {
        return Err(OidcError::Issuer(issuer.to_string()));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(OidcError::Audience(
            claims.get("aud").map_or("none".into(), Value::to_string),
        ));
    }
    let exp = number(claims, "exp")?
        .ok_or_else(|| OidcError::Malformed("claim exp is missing".into()))?;
    if expected.now_secs >= exp.saturating_add(LEEWAY_SECS) {
        return Err(OidcError::Expired(exp));
    }
    if let Some(nbf) = number(claims, "nbf")?
        && expected.now_secs < nbf.saturating_sub(LEEWAY_SECS)
    {
        return Err(OidcError::NotYetValid(nbf));
    }
    if let Some(token_use) = claims.get("token_use")
        && token_use.as_str() != Some("id")
    {
        return Err(OidcError::TokenUse(token_use.to_string()));
    }
    if let Some(nonce) = expected.nonce {
        let presented = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !crate::console::auth::constant_time_eq(presented.as_bytes(), nonce.as_bytes()) {
            return Err(OidcError::Nonce);
        }
    }
    Ok(())
}

/// The groups in `claim`: an array of strings, one string, or none.
pub fn groups(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    match claims.get(claim) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// The role `groups` map to: admin if any is an admin group, else viewer if
/// any is a viewer group, else none.
pub fn role_of(groups: &[String], config: &OidcConfig) -> Option<Role> {
    if groups.iter().any(|g| config.admin_groups.contains(g)) {
        Some(Role::Admin)
    } else if groups.iter().any(|g| config.viewer_groups.contains(g)) {
        Some(Role::Viewer)
    } else {
        None
    }
}

/// The user's name: the `username_claim`, else `sub`, else `unknown`;
/// characters other than letters, digits and `.-_@` become `_`, at most
/// 64 of them.
pub fn username(claims: &Map<String, Value>, config: &OidcConfig) -> String {
    let raw = claims
        .get(&config.username_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| claims.get("sub").and_then(Value::as_str))
        .unwrap_or("unknown");
    raw.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn good() -> Map<String, Value> {
        claims(json!({
            "iss": "https://issuer/pool", "aud": "client", "exp": 1_000, "nbf": 900,
            "token_use": "id", "sub": "s-1", "cognito:username": "ann",
            "cognito:groups": ["staff", "ops"], "nonce": "n1"
        }))
    }

    fn expected(now_secs: i64) -> Expected<'static> {
        Expected {
            issuer: "https://issuer/pool",
            audience: "client",
            now_secs,
            nonce: None,
        }
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn claims_are_checked() {
        let c = good();
        check_claims(&c, &expected(950)).unwrap();
        // Leeway on both ends.
        check_claims(&c, &expected(1_000 + LEEWAY_SECS - 1)).unwrap();
        check_claims(&c, &expected(900 - LEEWAY_SECS)).unwrap();
        assert!(matches!(
            check_claims(&c, &expected(1_000 + LEEWAY_SECS)),
            Err(OidcError::Expired(1_000))
        ));
        assert!(matches!(
            check_claims(&c, &expected(900 - LEEWAY_SECS - 1)),
            Err(OidcError::NotYetValid(900))
        ));
        let mut other = expected(950);
        other.issuer = "https://elsewhere/pool";
        assert!(matches!(
            check_claims(&c, &other),
            Err(OidcError::Issuer(_))
        ));
        let mut other = expected(950);
        other.audience = "another-client";
        assert!(matches!(
            check_claims(&c, &other),
            Err(OidcError::Audience(_))
        ));
        // An audience array containing the client is fine.
        let mut arr = good();
        arr.insert("aud".into(), json!(["x", "client"]));
        check_claims(&arr, &expected(950)).unwrap();
        // Access tokens (no aud, token_use access) are refused.
        let mut access = good();
        access.insert("token_use".into(), json!("access"));
        assert!(matches!(
            check_claims(&access, &expected(950)),
            Err(OidcError::TokenUse(_))
        ));
        access.remove("aud");
        assert!(check_claims(&access, &expected(950)).is_err());
        // exp is required.
        let mut no_exp = good();
        no_exp.remove("exp");
        assert!(matches!(
            check_claims(&no_exp, &expected(950)),
            Err(OidcError::Malformed(_))
        ));
        // The nonce of the browser sign-in.
        let mut with_nonce = expected(950);
        with_nonce.nonce = Some("n1");
        check_claims(&c, &with_nonce).unwrap();
        with_nonce.nonce = Some("n2");
        assert!(matches!(
            check_claims(&c, &with_nonce),
            Err(OidcError::Nonce)
        ));
    }

    #[test]
    fn groups_map_to_roles_and_names_are_cleaned() {
        let mut config = OidcConfig::new("https://issuer/pool", "client");
        config.viewer_groups = vec!["staff".into()];
        let c = good();
        let g = groups(&c, &config.group_claim);
        assert_eq!(g, ["staff", "ops"]);
        assert_eq!(role_of(&g, &config), Some(Role::Viewer));
        config.admin_groups = vec!["ops".into()];
        assert_eq!(role_of(&g, &config), Some(Role::Admin));
        assert_eq!(role_of(&["other".into()], &config), None);
        assert_eq!(role_of(&[], &config), None);
        let mut one = good();
        one.insert("cognito:groups".into(), json!("staff"));
        assert_eq!(groups(&one, "cognito:groups"), ["staff"]);
        assert!(groups(&one, "groups").is_empty());

        assert_eq!(username(&c, &config), "ann");
        let mut odd = good();
        odd.insert("cognito:username".into(), json!("a b/c"));
        assert_eq!(username(&odd, &config), "a_b_c");
        odd.remove("cognito:username");
        assert_eq!(username(&odd, &config), "s-1");
    }

    #[test]
    fn only_rs256_compact_tokens_parse() {
        let payload = b64(&json!({"iss": "x"}));
        let sig = URL_SAFE_NO_PAD.encode([1u8, 2, 3]);
        let rs = format!(
            "{}.{payload}.{sig}",
            b64(&json!({"alg": "RS256", "kid": "k"}))
        );
        let parsed = parse(&rs).unwrap();
        assert_eq!(parsed.kid.as_deref(), Some("k"));
        assert_eq!(parsed.signature, [1, 2, 3]);
        assert_eq!(parsed.claims["iss"], "x");
        assert!(rs.starts_with(parsed.signing_input));
        assert_eq!(parsed.signing_input.matches('.').count(), 1);

        let none = format!("{}.{payload}.", b64(&json!({"alg": "none"})));
        assert!(matches!(parse(&none), Err(OidcError::Algorithm(a)) if a == "none"));
        let hs = format!("{}.{payload}.{sig}", b64(&json!({"alg": "HS256"})));
        assert!(matches!(parse(&hs), Err(OidcError::Algorithm(_))));
        let unsigned = format!("{}.{payload}.", b64(&json!({"alg": "RS256"})));
        assert!(matches!(parse(&unsigned), Err(OidcError::BadSignature)));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.x.y",
            &format!("{payload}.{payload}.{sig}"),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
