//! Administrator API tokens: named bearer secrets for the admin API, each with an optional
//! expiry, a last-used time and an explicit revocation.
//!
//! The store keeps only an HMAC-SHA-256 of a token under a server key kept for that purpose,
//! so a copy of the database yields nothing to present. Revoked tokens stay listed (and
//! audited) but never authenticate again; nothing brings one back.

use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::AdminTokenId;
use crate::random::RandomSource;
use crate::secret::{Secret, TokenHash};

/// What every token starts with, so that scanners and people can recognise a leaked one.
pub const TOKEN_PREFIX: &str = "lk_admin_";
/// The longest name a token may have.
pub const MAX_NAME_CHARS: usize = 64;
/// The latest expiry a token may be given: two years, after which it must be replaced.
pub const MAX_LIFETIME_SECONDS: i64 = 2 * 366 * 86_400;
/// The last-used time is written at most this often per token, so that using a token costs a
/// read, not a write, on almost every request.
pub const LAST_USED_PRECISION_SECONDS: i64 = 60;
/// The name of the token made at first start.
pub const INITIAL_TOKEN_NAME: &str = "initial";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub id: AdminTokenId,
    pub name: String,
    /// HMAC-SHA-256 under the administrator-token key; for rows made before keyed hashing,
    /// the bare SHA-256 (see `legacy_sha256`), replaced by the keyed hash on first use.
    pub hash: TokenHash,
    pub legacy_sha256: bool,
    pub created_at: Timestamp,
    /// The audit actor that made it.
    pub created_by: String,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AdminTokenStatus {
    Active,
    Expired,
    Revoked,
}

impl AdminTokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminTokenStatus::Active => "active",
            AdminTokenStatus::Expired => "expired",
            AdminTokenStatus::Revoked => "revoked",
        }
    }
}

impl AdminToken {
    pub fn status(&self, now: Timestamp) -> AdminTokenStatus {
        if self.revoked_at.is_some() {
            AdminTokenStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            AdminTokenStatus::Expired
        } else {
            AdminTokenStatus::Active
        }
    }

    /// Whether a use at `now` should be written down: the stored time is missing or at least
    /// [`LAST_USED_PRECISION_SECONDS`] old.
    pub fn last_use_is_stale(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|at| now.0 - at.0 >= LAST_USED_PRECISION_SECONDS)
    }

    /// What the audit log and the admin API show: never the hash.
    pub fn summary(&self, now: Timestamp) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "displayName": self.name,
            "status": self.status(now).as_str(),
            "createdDateTime": self.created_at.to_rfc3339(),
            "createdBy": self.created_by,
            "expiresDateTime": self.expires_at.map(Timestamp::to_rfc3339),
            "lastUsedDateTime": self.last_used_at.map(Timestamp::to_rfc3339),
            "revokedDateTime": self.revoked_at.map(Timestamp::to_rfc3339),
            "revokedBy": self.revoked_by,
        })
    }
}

/// A fresh token secret: the prefix and 256 random bits.
pub fn new_token_secret(random: &dyn RandomSource) -> Secret {
    Secret::new(format!("{TOKEN_PREFIX}{}", random.token().expose()))
}

/// A token's name: 1 to 64 characters after trimming, with no control characters and no
/// characters that reorder or hide text (bidi overrides, zero-width and line separators), so
/// that the name read in a list is the name that was given.
pub fn validate_token_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("displayName", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::invalid(
            "displayName",
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || is_format_or_separator(c))
    {
        return Err(DomainError::invalid(
            "displayName",
            "must not contain control, formatting or line-separator characters",
        ));
    }
    Ok(name.to_string())
}

fn is_format_or_separator(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width characters and directional marks
        | '\u{2028}' | '\u{2029}' // line and paragraph separators
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' // bidi isolates
        | '\u{FEFF}')
}

/// An expiry must lie in the future and within [`MAX_LIFETIME_SECONDS`].
pub fn validate_expiry(expires_at: Timestamp, now: Timestamp) -> Result<Timestamp, DomainError> {
    if expires_at <= now {
        return Err(DomainError::invalid(
            "expiresDateTime",
            "must be in the future",
        ));
    }
    if expires_at.0 - now.0 > MAX_LIFETIME_SECONDS {
        return Err(DomainError::invalid(
            "expiresDateTime",
            "must be within two years",
        ));
    }
    Ok(expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_free_of_hidden_characters() {
        assert_eq!(validate_token_name("  ci  ").unwrap(), "ci");
        assert!(validate_token_name("").is_err());
        assert!(validate_token_name(&"x".repeat(65)).is_err());
        assert!(validate_token_name(&"é".repeat(64)).is_ok());
        for bad in ["a\nb", "a\u{202E}b", "a\u{2028}b", "a\u{200B}b", "a\u{7}b"] {
            assert!(validate_token_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiry_is_in_the_future_and_within_two_years() {
        let now = Timestamp(1_000_000);
        assert!(validate_expiry(now, now).is_err());
        assert!(validate_expiry(Timestamp(now.0 + 1), now).is_ok());
        assert!(validate_expiry(Timestamp(now.0 + MAX_LIFETIME_SECONDS + 1), now).is_err());
    }

    #[test]
    fn status_and_staleness_follow_the_clock() {
        let token = AdminToken {
            id: AdminTokenId::random(),
            name: "t".into(),
            hash: TokenHash::of("x"),
            legacy_sha256: false,
            created_at: Timestamp(0),
            created_by: "system".into(),
            expires_at: Some(Timestamp(100)),
            last_used_at: Some(Timestamp(10)),
            revoked_at: None,
            revoked_by: None,
        };
        assert_eq!(token.status(Timestamp(99)), AdminTokenStatus::Active);
        assert_eq!(token.status(Timestamp(100)), AdminTokenStatus::Expired);
        assert!(!token.last_use_is_stale(Timestamp(69)));
        assert!(token.last_use_is_stale(Timestamp(70)));
        let revoked = AdminToken {
            revoked_at: Some(Timestamp(5)),
            ..token
        };
        assert_eq!(revoked.status(Timestamp(6)), AdminTokenStatus::Revoked);
    }
}
