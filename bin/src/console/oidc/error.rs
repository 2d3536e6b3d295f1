//! Why an ID token or a sign-in through the issuer was refused.

/// Why an ID token or a sign-in through the issuer was refused.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Not a compact JWS, or a claim of the wrong type.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is not RS256 (`none` included).
    #[error("token algorithm {0:?} is not accepted (RS256 only)")]
    Algorithm(String),
    /// No key of the issuer has the token's `kid`.
    #[error("no signing key {0:?} in the issuer's JWKS")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// `iss` is another issuer.
    #[error("token issuer {0:?} is not the configured one")]
    Issuer(String),
    /// `aud` does not name the client.
    #[error("token audience {0} is not the configured client id")]
    Audience(String),
    /// `exp` has passed.
    #[error("token expired (exp {0})")]
    Expired(i64),
    /// `nbf` is still ahead.
    #[error("token not valid yet (nbf {0})")]
    NotYetValid(i64),
    /// `token_use` is not `id`.
    #[error("token_use {0} is not \"id\"")]
    TokenUse(String),
    /// The browser sign-in's nonce does not match.
    #[error("token nonce does not match the sign-in")]
    Nonce,
    /// The JWKS could not be fetched or read.
    #[error("issuer keys: {0}")]
    Jwks(String),
    /// The code could not be exchanged for tokens.
    #[error("token endpoint: {0}")]
    Exchange(String),
    /// The token is good but none of the user's groups maps to a role.
    #[error("user {user:?} is in no group mapped to a role (groups {groups:?})")]
    NoRole {
        /// Who.
        user: String,
        /// Their groups.
        groups: Vec<String>,
    },
}
