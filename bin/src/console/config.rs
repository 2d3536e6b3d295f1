//! `[console]`: how long the audit trail is kept, and sign-in through an
//! OpenID Connect issuer such as an Amazon Cognito user pool
//! (`[console.oidc]`).

use serde::{Deserialize, Serialize};
use spate_operators::component::ConfigError;

/// The web console (`/ui`) of `spate run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Days an audit record is kept; older ones are deleted when the
    /// service starts and every hour after. 365 by default: a year covers
    /// an annual access review and the usual one-year log retention of
    /// audit standards, and the table stays small (a record per query or
    /// sign-in). `0` keeps records forever.
    #[serde(default = "default_audit_retention_days")]
    pub audit_retention_days: u32,
    /// Sign-in through an OpenID Connect issuer (Amazon Cognito or another
    /// OIDC provider) besides local users. Absent: local users only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            audit_retention_days: default_audit_retention_days(),
            oidc: None,
        }
    }
}

fn default_audit_retention_days() -> u32 {
    365
}

/// An OpenID Connect issuer whose ID tokens sign users in: the console's
/// "Sign in with ..." button (the authorization-code flow with PKCE, e.g.
/// the Cognito hosted UI), and `Authorization: Bearer <ID token>` on
/// `POST /v1/query` and `GET /v1/tap`. Tokens are RS256 JWTs checked
/// against the issuer's JWKS: signature, `iss`, `aud`, `exp`/`nbf` (60 s of
/// leeway) and `token_use` (`id`, when present). The role comes from the
/// group claim; a user in no mapped group is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, exactly as in the tokens' `iss` claim; for Cognito
    /// `https://cognito-idp.<region>.amazonaws.com/<user pool id>`.
    pub issuer: String,
    /// The app client id: the `aud` the ID tokens must carry.
    pub client_id: String,
    /// Where the signing keys are; default `<issuer>/.well-known/jwks.json`
    /// (Cognito's). Fetched at the first sign-in, cached, and fetched again
    /// when a token names a key not in the cache (at most every 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The claim listing the user's groups (an array of strings, or one
    /// string).
    #[serde(default = "default_group_claim")]
    pub group_claim: String,
    /// The claim naming the user (shown and audited as `oidc:<name>`);
    /// `sub` is used when the token lacks it.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Groups whose members are admins.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Groups whose members are viewers (admin groups win).
    #[serde(default)]
    pub viewer_groups: Vec<String>,
    /// The issuer's authorization endpoint; for the Cognito hosted UI
    /// `https://<domain>/oauth2/authorize`. With `token_endpoint` and
    /// `redirect_uri` it enables the sign-in button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// The issuer's token endpoint; for Cognito
    /// `https://<domain>/oauth2/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// This console's callback as the browser reaches it, registered with
    /// the issuer: `https://<host>/ui/oidc/callback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Name of an environment variable holding the app client's secret,
    /// for app clients that have one (sent with HTTP basic auth to the
    /// token endpoint). Public clients leave it out (PKCE protects the
    /// code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Scopes asked for in the authorization-code flow.
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// The name on the sign-in button.
    #[serde(default = "default_display_name")]
    pub display_name: String,
}

fn default_group_claim() -> String {
    "cognito:groups".into()
}

fn default_username_claim() -> String {
    "cognito:username".into()
}

fn default_scopes() -> String {
    "openid email".into()
}

fn default_display_name() -> String {
    "Amazon Cognito".into()
}

impl OidcConfig {
    /// A configuration for `issuer` and `client_id` with every default.
    #[cfg(test)]
    pub fn new(issuer: &str, client_id: &str) -> Self {
        OidcConfig {
            issuer: issuer.into(),
            client_id: client_id.into(),
            jwks_url: None,
            group_claim: default_group_claim(),
            username_claim: default_username_claim(),
            admin_groups: Vec::new(),
            viewer_groups: Vec::new(),
            authorization_endpoint: None,
            token_endpoint: None,
            redirect_uri: None,
            client_secret_env: None,
            scopes: default_scopes(),
            display_name: default_display_name(),
        }
    }

    /// The JWKS location in force.
    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/jwks.json",
                self.issuer.trim_end_matches('/')
            )
        })
    }

    /// Whether the browser sign-in (authorization-code flow) is configured.
    pub fn code_flow(&self) -> bool {
        self.authorization_endpoint.is_some()
            && self.token_endpoint.is_some()
            && self.redirect_uri.is_some()
    }

    /// The client secret, read from `client_secret_env`.
    pub fn client_secret(&self) -> Result<Option<String>, ConfigError> {
        let Some(var) = &self.client_secret_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(s) if !s.trim().is_empty() => Ok(Some(s)),
            Ok(_) => Err(ConfigError::new(
                "client_secret_env",
                format!("environment variable {var} is empty"),
            )),
            Err(_) => Err(ConfigError::new(
                "client_secret_env",
                format!("environment variable {var} is not set"),
            )),
        }
    }

    /// Checks what the types alone cannot; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let urls = [
            ("issuer", Some(&self.issuer)),
            ("jwks_url", self.jwks_url.as_ref()),
            (
                "authorization_endpoint",
                self.authorization_endpoint.as_ref(),
            ),
            ("token_endpoint", self.token_endpoint.as_ref()),
            ("redirect_uri", self.redirect_uri.as_ref()),
        ];
        for (key, url) in urls {
            if let Some(url) = url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(ConfigError::new(
                    key,
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::new("client_id", "must not be empty"));
        }
        if self.group_claim.is_empty() {
            return Err(ConfigError::new("group_claim", "must not be empty"));
        }
        if self.admin_groups.is_empty() && self.viewer_groups.is_empty() {
            return Err(ConfigError::new(
                "admin_groups",
                "no group is mapped to a role (set admin_groups or viewer_groups): nobody could sign in",
            ));
        }
        let flow = [
            self.authorization_endpoint.is_some(),
            self.token_endpoint.is_some(),
            self.redirect_uri.is_some(),
        ];
        if flow.contains(&true) && !self.code_flow() {
            return Err(ConfigError::new(
                "authorization_endpoint",
                "the browser sign-in needs authorization_endpoint, token_endpoint and redirect_uri together",
            ));
        }
        self.client_secret()?;
        Ok(())
    }
}

impl ConsoleConfig {
    /// Checks what the types alone cannot; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(oidc) = &self.oidc {
            oidc.validate().map_err(|e| e.within("oidc"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let mut oidc = OidcConfig::new("https://cognito-idp.r.amazonaws.com/pool/", "c");
        assert_eq!(
            oidc.jwks_url(),
            "https://cognito-idp.r.amazonaws.com/pool/.well-known/jwks.json"
        );
        let err = oidc.validate().unwrap_err().to_string();
        assert!(err.contains("admin_groups"), "{err}");
        oidc.viewer_groups = vec!["v".into()];
        oidc.validate().unwrap();
        assert!(!oidc.code_flow());
        oidc.token_endpoint = Some("https://x/oauth2/token".into());
        let err = oidc.validate().unwrap_err().to_string();
        assert!(err.contains("together"), "{err}");
        oidc.authorization_endpoint = Some("https://x/oauth2/authorize".into());
        oidc.redirect_uri = Some("ftp://x".into());
        let err = oidc.validate().unwrap_err().to_string();
        assert!(err.contains("redirect_uri"), "{err}");
        oidc.redirect_uri = Some("https://spate/ui/oidc/callback".into());
        oidc.validate().unwrap();
        assert!(oidc.code_flow());
        oidc.client_secret_env = Some("SPATE_TEST_SURELY_UNSET_SECRET".into());
        assert!(oidc.validate().is_err());
        let console: ConsoleConfig = toml::from_str(
            "[oidc]\nissuer = \"https://i\"\nclient_id = \"c\"\nadmin_groups = [\"a\"]\n",
        )
        .unwrap();
        assert_eq!(console.audit_retention_days, 365);
        assert_eq!(console.oidc.unwrap().group_claim, "cognito:groups");
    }
}
