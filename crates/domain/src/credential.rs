//! Bootstrap credentials: the Temporary Access Pass and the legacy password.
//!
//! A pass is shown once when created and kept only as a hash. Its rules follow Microsoft Entra:
//! one pass per user (a new one replaces the old), lifetime between a configurable minimum and
//! maximum (60 and 480 minutes by default, each settable within 10–43,200; default 60), length
//! 8–48 (default 8), optionally usable once.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::UserId;
use crate::random::RandomSource;
use crate::secret::{Secret, TokenHash};

/// Pass characters: no look-alikes (0/O, 1/l/I), so a pass read aloud or from paper works.
const PASS_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassRules {
    pub min_lifetime_minutes: u32,
    pub max_lifetime_minutes: u32,
    pub default_lifetime_minutes: u32,
    pub default_length: u32,
    pub one_time_only: bool,
}

impl Default for PassRules {
    fn default() -> Self {
        PassRules {
            min_lifetime_minutes: 60,
            max_lifetime_minutes: 480,
            default_lifetime_minutes: 60,
            default_length: 8,
            one_time_only: false,
        }
    }
}

/// What an administrator asks for; unset fields take the rules' defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassRequest {
    pub start_date_time: Option<i64>,
    pub lifetime_in_minutes: Option<u32>,
    pub is_usable_once: Option<bool>,
    pub length: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporaryAccessPass {
    pub user_id: UserId,
    pub hash: TokenHash,
    pub created_at: Timestamp,
    pub starts_at: Timestamp,
    pub lifetime_minutes: u32,
    pub usable_once: bool,
    pub used_at: Option<Timestamp>,
}

/// Why a pass cannot be used now (Entra's usability reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PassUnusable {
    Expired,
    NotYetValid,
    OneTimeUsed,
}

impl PassUnusable {
    pub fn message(self) -> &'static str {
        match self {
            PassUnusable::Expired => {
                "Your Temporary Access Pass has expired. Ask your administrator for a new one."
            }
            PassUnusable::NotYetValid => {
                "Your Temporary Access Pass isn't valid yet. Try again after the start time your administrator gave you."
            }
            PassUnusable::OneTimeUsed => {
                "Your Temporary Access Pass was for one use only and has been used. Ask your administrator for a new one."
            }
        }
    }
}

impl TemporaryAccessPass {
    pub fn expires_at(&self) -> Timestamp {
        self.starts_at
            .plus_seconds(i64::from(self.lifetime_minutes) * 60)
    }

    pub fn usability(&self, now: Timestamp) -> Result<(), PassUnusable> {
        if now < self.starts_at {
            Err(PassUnusable::NotYetValid)
        } else if now >= self.expires_at() {
            Err(PassUnusable::Expired)
        } else if self.usable_once && self.used_at.is_some() {
            Err(PassUnusable::OneTimeUsed)
        } else {
            Ok(())
        }
    }
}

/// Checks a request against the rules and makes a new pass. The secret is returned once; the
/// pass keeps its HMAC-SHA-256 under `pass_key` (the server's key for passes), so a copy of the
/// database cannot test guesses without that key.
pub fn new_pass(
    rules: &PassRules,
    user_id: UserId,
    request: &PassRequest,
    now: Timestamp,
    pass_key: &[u8],
    random: &dyn RandomSource,
) -> Result<(TemporaryAccessPass, Secret), DomainError> {
    let lifetime = request
        .lifetime_in_minutes
        .unwrap_or(rules.default_lifetime_minutes);
    if lifetime < rules.min_lifetime_minutes || lifetime > rules.max_lifetime_minutes {
        return Err(DomainError::invalid(
            "lifetimeInMinutes",
            format!(
                "must be between {} and {} minutes",
                rules.min_lifetime_minutes, rules.max_lifetime_minutes
            ),
        ));
    }
    let length = request.length.unwrap_or(rules.default_length);
    if !(8..=48).contains(&length) {
        return Err(DomainError::invalid(
            "length",
            "must be between 8 and 48 characters",
        ));
    }
    let usable_once = request.is_usable_once.unwrap_or(rules.one_time_only);
    if rules.one_time_only && !usable_once {
        return Err(DomainError::invalid(
            "isUsableOnce",
            "policy allows only one-time passes",
        ));
    }
    let starts_at = match request.start_date_time {
        Some(start) if start < now.0 - 300 => {
            return Err(DomainError::invalid(
                "startDateTime",
                "must not be in the past",
            ));
        }
        Some(start) if start > now.0 + 365 * 86_400 => {
            return Err(DomainError::invalid(
                "startDateTime",
                "must be within a year",
            ));
        }
        Some(start) => Timestamp(start),
        None => now,
    };
    let secret: String = (0..length)
        .map(|_| PASS_ALPHABET[random.below(PASS_ALPHABET.len() as u32) as usize] as char)
        .collect();
    let pass = TemporaryAccessPass {
        user_id,
        hash: TokenHash::keyed(pass_key, &secret),
        created_at: now,
        starts_at,
        lifetime_minutes: lifetime,
        usable_once,
        used_at: None,
    };
    Ok((pass, Secret::new(secret)))
}

/// Validates lifetime bounds an administrator configures (each within 10–43,200 minutes).
pub fn validate_pass_rules(rules: &PassRules) -> Result<(), DomainError> {
    let within = |v: u32| (10..=43_200).contains(&v);
    if !within(rules.min_lifetime_minutes) {
        return Err(DomainError::invalid(
            "minimumLifetimeInMinutes",
            "must be between 10 and 43200",
        ));
    }
    if !within(rules.max_lifetime_minutes) {
        return Err(DomainError::invalid(
            "maximumLifetimeInMinutes",
            "must be between 10 and 43200",
        ));
    }
    if rules.min_lifetime_minutes > rules.max_lifetime_minutes {
        return Err(DomainError::invalid(
            "minimumLifetimeInMinutes",
            "must not exceed maximumLifetimeInMinutes",
        ));
    }
    if rules.default_lifetime_minutes < rules.min_lifetime_minutes
        || rules.default_lifetime_minutes > rules.max_lifetime_minutes
    {
        return Err(DomainError::invalid(
            "defaultLifetimeInMinutes",
            "must lie between the minimum and maximum lifetime",
        ));
    }
    if !(8..=48).contains(&rules.default_length) {
        return Err(DomainError::invalid(
            "defaultLength",
            "must be between 8 and 48",
        ));
    }
    Ok(())
}

pub const MAX_PASSWORD_LEN: usize = 256;

/// Hashes a password with argon2id (the crate's defaults: m=19 MiB, t=2, p=1, per OWASP).
pub fn hash_password(password: &Secret) -> Result<String, DomainError> {
    let value = password.expose();
    if value.chars().count() < 12 {
        return Err(DomainError::invalid(
            "password",
            "must be at least 12 characters",
        ));
    }
    if value.len() > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid("password", "is longer than 256 bytes"));
    }
    Argon2::default()
        .hash_password(value.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::Internal(format!("password hashing failed: {e}")))
}

/// Verifies a password against its stored argon2id hash. argon2 compares in constant time.
pub fn verify_password(stored_hash: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A fixed argon2id hash to verify against when a user has no password, so that a password
/// attempt for an unknown user costs the same time as for a known one.
pub const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3ZWYt7Jk5dPpOqW5E5vN+6uKzJw2C6iJ9PZ5mQbZb1A";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    fn rules() -> PassRules {
        PassRules::default()
    }

    #[test]
    fn a_new_pass_has_the_default_length_and_lifetime() {
        let (pass, secret) = new_pass(
            &rules(),
            UserId::random(),
            &PassRequest::default(),
            Timestamp(1000),
            b"pass key",
            &OsRandom,
        )
        .unwrap();
        assert_eq!(secret.expose().len(), 8);
        assert_eq!(pass.lifetime_minutes, 60);
        assert!(
            pass.hash
                .same_as(&TokenHash::keyed(b"pass key", secret.expose()))
        );
        assert!(!pass.hash.matches(secret.expose()), "not a bare SHA-256");
        assert_eq!(pass.usability(Timestamp(1000)), Ok(()));
    }

    #[test]
    fn pass_expiry_start_and_one_time_use_are_enforced() {
        let request = PassRequest {
            start_date_time: Some(2000),
            is_usable_once: Some(true),
            ..Default::default()
        };
        let (mut pass, _) = new_pass(
            &rules(),
            UserId::random(),
            &request,
            Timestamp(1000),
            b"k",
            &OsRandom,
        )
        .unwrap();
        assert_eq!(
            pass.usability(Timestamp(1999)),
            Err(PassUnusable::NotYetValid)
        );
        assert_eq!(pass.usability(Timestamp(2000)), Ok(()));
        assert_eq!(
            pass.usability(Timestamp(2000 + 3600)),
            Err(PassUnusable::Expired)
        );
        pass.used_at = Some(Timestamp(2001));
        assert_eq!(
            pass.usability(Timestamp(2002)),
            Err(PassUnusable::OneTimeUsed)
        );
    }

    #[test]
    fn pass_requests_outside_the_rules_are_refused() {
        let now = Timestamp(1000);
        for request in [
            PassRequest {
                lifetime_in_minutes: Some(59),
                ..Default::default()
            },
            PassRequest {
                lifetime_in_minutes: Some(481),
                ..Default::default()
            },
            PassRequest {
                length: Some(7),
                ..Default::default()
            },
            PassRequest {
                length: Some(49),
                ..Default::default()
            },
            PassRequest {
                start_date_time: Some(0),
                ..Default::default()
            },
        ] {
            assert!(new_pass(&rules(), UserId::random(), &request, now, b"k", &OsRandom).is_err());
        }
    }

    #[test]
    fn pass_rules_bounds_are_validated() {
        assert!(validate_pass_rules(&rules()).is_ok());
        let bad = PassRules {
            min_lifetime_minutes: 500,
            ..rules()
        };
        assert!(validate_pass_rules(&bad).is_err());
        let bad = PassRules {
            max_lifetime_minutes: 50_000,
            ..rules()
        };
        assert!(validate_pass_rules(&bad).is_err());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password(&Secret::new("correct horse battery")).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "wrong horse battery"));
        assert!(hash_password(&Secret::new("short")).is_err());
    }
}
