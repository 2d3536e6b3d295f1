//! Passwords and secrets of the console: Argon2id password hashes (PHC
//! strings, with the RustCrypto defaults: 19 MiB, 2 passes, 1 lane, a
//! random 16-byte salt), random tokens for session ids and CSRF tokens, and
//! a comparison whose time does not depend on where two values differ.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The operating system gave no random bytes.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// The password is unusable (empty, too long).
    #[error("{0}")]
    Unusable(String),
    /// The stored hash is not an Argon2 PHC string.
    #[error("stored password hash is malformed: {0}")]
    BadHash(String),
}

/// Longest password accepted (Argon2 takes more, but nobody types this much).
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon2id() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], PasswordError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| PasswordError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A random 256-bit token as 64 lowercase hex digits (session ids, CSRF
/// tokens).
pub fn random_token() -> Result<String, PasswordError> {
    let bytes = random_bytes::<32>()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks that a new password is usable: not empty, not all blanks, at most
/// [`MAX_PASSWORD_BYTES`].
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.trim().is_empty() {
        return Err(PasswordError::Unusable("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Unusable(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Hashes `password` with Argon2id and a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    check_new_password(password)?;
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| PasswordError::Random(e.to_string()))?;
    argon2id()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Unusable(e.to_string()))
}

/// Whether `password` matches the PHC string `stored` (the parameters are
/// those in the string). A malformed string is an error, never a match.
pub fn verify_password(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored).map_err(|e| PasswordError::BadHash(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(PasswordError::BadHash(format!(
            "algorithm {} is not argon2id",
            parsed.algorithm
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    Ok(argon2id()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A hash no password matches, verified against when the user does not
/// exist so that the answer takes as long as for a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("decoy password never handed out").unwrap_or_else(|_| {
            // Without randomness the fixed salt below still costs the same.
            let salt = SaltString::encode_b64(b"spate-decoy-salt").expect("16 bytes encode");
            argon2id()
                .hash_password(b"decoy", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
    })
}

/// Compares in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_the_right_password_only() {
        let stored = hash_password("correct horse").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify_password("correct horse", &stored).unwrap());
        assert!(!verify_password("correct hors", &stored).unwrap());
        assert!(!verify_password("", &stored).unwrap());
        // A fresh salt each time: the same password hashes differently.
        let again = hash_password("correct horse").unwrap();
        assert_ne!(stored, again);
        assert!(verify_password("correct horse", &again).unwrap());
    }

    #[test]
    fn malformed_and_foreign_hashes_are_errors() {
        assert!(verify_password("x", "not a hash").is_err());
        // An Argon2i hash (not id) is refused rather than trusted.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default())
            .hash_password(b"x", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
            .unwrap()
            .to_string();
        let err = verify_password("x", &argon2i).unwrap_err().to_string();
        assert!(err.contains("argon2id"), "{err}");
        assert!(!verify_password("decoy", decoy_hash()).unwrap());
    }

    #[test]
    fn blank_and_huge_passwords_are_refused() {
        assert!(hash_password("").is_err());
        assert!(hash_password("   ").is_err());
        assert!(hash_password(&"a".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(b"", a.as_bytes()));
    }
}
