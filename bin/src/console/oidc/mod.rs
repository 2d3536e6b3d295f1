//! Sign-in through an OpenID Connect issuer (Amazon Cognito or another):
//! ID tokens verified against the issuer's JWKS ([`jwks`]) and checked
//! claim by claim ([`jwt`]), the role from the group claim; and the
//! authorization-code flow with PKCE of the console's "Sign in with ..."
//! button (the URL to send the browser to, the code exchanged at the token
//! endpoint).

mod error;
pub mod jwks;
pub mod jwt;

use std::time::Duration;

use aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

pub use self::error::OidcError;
use self::jwks::JwksCache;
use super::config::OidcConfig;
use super::users::Role;

/// Prefix of the session user name of someone signed in through OIDC (a
/// local user name cannot hold ':', so the two never mix).
pub const USER_PREFIX: &str = "oidc:";

/// Someone whose ID token verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The session user name, `oidc:<name>`.
    pub user: String,
    /// `sub`.
    pub subject: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// The role the groups map to.
    pub role: Role,
}

/// Verifies the ID tokens of one issuer.
pub struct Verifier {
    config: OidcConfig,
    client_secret: Option<String>,
    jwks: JwksCache,
    http: reqwest::Client,
}

impl Verifier {
    /// A verifier for `config` (its client secret, if any, read now).
    pub fn new(config: OidcConfig) -> Result<Self, String> {
        let client_secret = config.client_secret().map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Verifier {
            jwks: JwksCache::new(config.jwks_url(), http.clone()),
            config,
            client_secret,
            http,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Verifies `token` at `now_secs`: signature against the JWKS, then the
    /// claims (and `nonce`, for the browser sign-in), then the role.
    pub async fn verify(
        &self,
        token: &str,
        now_secs: i64,
        nonce: Option<&str>,
    ) -> Result<Identity, OidcError> {
        let parsed = jwt::parse(token)?;
        let key = self.jwks.key(parsed.kid.as_deref()).await?;
        key.verify(
            &RSA_PKCS1_2048_8192_SHA256,
            parsed.signing_input.as_bytes(),
            &parsed.signature,
        )
        .map_err(|_| OidcError::BadSignature)?;
        jwt::check_claims(
            &parsed.claims,
            &jwt::Expected {
                issuer: &self.config.issuer,
                audience: &self.config.client_id,
                now_secs,
                nonce,
            },
        )?;
        let user = format!(
            "{USER_PREFIX}{}",
            jwt::username(&parsed.claims, &self.config)
        );
        let groups = jwt::groups(&parsed.claims, &self.config.group_claim);
        let Some(role) = jwt::role_of(&groups, &self.config) else {
            return Err(OidcError::NoRole { user, groups });
        };
        let subject = parsed
            .claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string();
        Ok(Identity {
            user,
            subject,
            groups,
            role,
        })
    }

    /// Where to send the browser to sign in, for `state`, `nonce` and the
    /// PKCE `verifier`; `None` without the browser flow configured.
    pub fn authorize_url(&self, state: &str, nonce: &str, verifier: &str) -> Option<String> {
        let endpoint = self.config.authorization_endpoint.as_ref()?;
        let redirect = self.config.redirect_uri.as_ref()?;
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        Some(format!(
            "{endpoint}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            encode(&self.config.client_id),
            encode(redirect),
            encode(&self.config.scopes),
            encode(state),
            encode(nonce),
            pkce_challenge(verifier),
        ))
    }

    /// Exchanges the authorization `code` (with the PKCE `verifier`) at the
    /// token endpoint; the ID token.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<String, OidcError> {
        let (Some(endpoint), Some(redirect)) =
            (&self.config.token_endpoint, &self.config.redirect_uri)
        else {
            return Err(OidcError::Exchange(
                "the browser sign-in is not configured".into(),
            ));
        };
        let body = format!(
            "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={}",
            encode(&self.config.client_id),
            encode(code),
            encode(redirect),
            encode(verifier),
        );
        let mut request = self
            .http
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(secret) = &self.client_secret {
            let basic = STANDARD.encode(format!(
                "{}:{}",
                encode(&self.config.client_id),
                encode(secret)
            ));
            request = request.header("authorization", format!("Basic {basic}"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| OidcError::Exchange(format!("POST {endpoint}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| OidcError::Exchange(format!("POST {endpoint}: {e}")))?;
        if !status.is_success() {
            let short: String = text.chars().take(200).collect();
            return Err(OidcError::Exchange(format!(
                "POST {endpoint}: status {status}: {short}"
            )));
        }
        #[derive(Deserialize)]
        struct Tokens {
            id_token: Option<String>,
        }
        let tokens: Tokens = serde_json::from_str(&text)
            .map_err(|e| OidcError::Exchange(format!("POST {endpoint}: not JSON: {e}")))?;
        tokens
            .id_token
            .ok_or_else(|| OidcError::Exchange(format!("POST {endpoint}: no id_token")))
    }
}

/// The S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Percent-encodes `text` for a query string or form body (everything but
/// the unreserved characters of RFC 3986).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `token` looks like a JWT (three base64url parts), as opposed to
/// the service's own bearer token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_and_encoding() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(!looks_like_jwt("s3cret"));
        assert!(!looks_like_jwt("a.b c.d"));
    }

    #[test]
    fn the_authorize_url_carries_state_nonce_and_challenge() {
        let mut config = OidcConfig::new("https://issuer", "client 1");
        config.viewer_groups = vec!["v".into()];
        let verifier = Verifier::new(config.clone()).unwrap();
        assert!(verifier.authorize_url("s", "n", "v").is_none());
        config.authorization_endpoint = Some("https://auth/oauth2/authorize".into());
        config.token_endpoint = Some("https://auth/oauth2/token".into());
        config.redirect_uri = Some("https://spate/ui/oidc/callback".into());
        let verifier = Verifier::new(config).unwrap();
        let url = verifier.authorize_url("st", "no", "ve").unwrap();
        assert!(url.starts_with("https://auth/oauth2/authorize?response_type=code&client_id=client%201&redirect_uri=https%3A%2F%2Fspate%2Fui%2Foidc%2Fcallback&scope=openid%20email&state=st&nonce=no&code_challenge="), "{url}");
        assert!(url.ends_with(&format!(
            "code_challenge={}&code_challenge_method=S256",
            pkce_challenge("ve")
        )));
    }
}
