//! The device authorization grant (RFC 8628): a command-line tool or a TV asks for a code, the
//! user confirms it in a browser, and the device polls the token endpoint until it gets tokens.
//!
//! The store keeps only hashes: the device code's SHA-256 (it is a 256-bit bearer secret) and
//! the user code's HMAC under a server key (it is short enough to guess, so a copy of the
//! database must not give it away). A device authorization is decided once and redeemed once.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{ClientId, GrantId};
use crate::secret::TokenHash;

/// The grant type a device polls the token endpoint with.
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The letters a user code is made of: no vowels (no words), no look-alikes (RFC 8628 §6.1).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Letters in a user code: 20^8 ≈ 2^34.6 codes, shown as `XXXX-XXXX`.
pub const USER_CODE_LENGTH: usize = 8;

/// How many seconds `slow_down` adds to a device's polling interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECONDS: i64 = 5;

/// The longest user code input read at all; anything longer is refused unread.
pub const MAX_USER_CODE_INPUT: usize = 32;

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceAuthorizationState {
    /// Waiting for the user.
    Pending,
    /// The user approved; the grant waits for the device to collect its tokens.
    Approved { grant_id: GrantId },
    /// The user denied it.
    Denied,
    /// The device collected its tokens; the device code is spent.
    Redeemed { grant_id: GrantId },
}

impl DeviceAuthorizationState {
    /// The stored status word.
    pub fn status(&self) -> &'static str {
        match self {
            DeviceAuthorizationState::Pending => "pending",
            DeviceAuthorizationState::Approved { .. } => "approved",
            DeviceAuthorizationState::Denied => "denied",
            DeviceAuthorizationState::Redeemed { .. } => "redeemed",
        }
    }

    /// Rebuilds a state from its stored status word and grant id; `None` for a row that
    /// makes no sense (a corrupt store).
    pub fn from_stored(status: &str, grant_id: Option<GrantId>) -> Option<Self> {
        Some(match (status, grant_id) {
            ("pending", None) => DeviceAuthorizationState::Pending,
            ("approved", Some(grant_id)) => DeviceAuthorizationState::Approved { grant_id },
            ("denied", None) => DeviceAuthorizationState::Denied,
            ("redeemed", Some(grant_id)) => DeviceAuthorizationState::Redeemed { grant_id },
            _ => return None,
        })
    }

    pub fn grant_id(&self) -> Option<&GrantId> {
        match self {
            DeviceAuthorizationState::Approved { grant_id }
            | DeviceAuthorizationState::Redeemed { grant_id } => Some(grant_id),
            _ => None,
        }
    }
}

/// One device's request to be signed in, from `POST /device_authorization` until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code_hash: TokenHash,
    pub user_code_hash: TokenHash,
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The least number of seconds between two polls; grows by [`SLOW_DOWN_SECONDS`] each
    /// time the device polls faster.
    pub interval_seconds: i64,
    pub last_polled_at: Option<Timestamp>,
    pub state: DeviceAuthorizationState,
}

impl DeviceAuthorization {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    /// Whether a poll at `now` comes sooner than the interval allows.
    pub fn polled_too_soon(&self, now: Timestamp) -> bool {
        self.last_polled_at
            .is_some_and(|last| now.0 - last.0 < self.interval_seconds)
    }
}

/// A typed user code, normalised: case folded, the dash and spaces dropped. `None` unless it
/// is [`USER_CODE_LENGTH`] letters of [`USER_CODE_ALPHABET`].
pub fn normalise_user_code(typed: &str) -> Option<String> {
    if typed.len() > MAX_USER_CODE_INPUT {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// A normalised user code as shown: `BCDF-GHJK`.
pub fn display_user_code(code: &str) -> String {
    match code.split_at_checked(USER_CODE_LENGTH / 2) {
        Some((a, b)) if code.len() == USER_CODE_LENGTH => format!("{a}-{b}"),
        _ => code.to_string(),
    }
}

/// A fresh user code from `random`, normalised.
pub fn new_user_code(random: &dyn crate::random::RandomSource) -> String {
    (0..USER_CODE_LENGTH)
        .map(|_| USER_CODE_ALPHABET[random.below(USER_CODE_ALPHABET.len() as u32) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_user_codes_are_normalised_or_refused() {
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "ßCDF-GHJK",
        ] {
            assert_eq!(normalise_user_code(bad), None, "{bad}");
        }
        assert_eq!(
            normalise_user_code(&"B".repeat(MAX_USER_CODE_INPUT + 1)),
            None
        );
    }

    #[test]
    fn user_codes_are_shown_in_two_halves() {
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }

    #[test]
    fn new_user_codes_use_only_the_alphabet() {
        let random = crate::random::SeededRandom::new(7);
        for _ in 0..50 {
            let code = new_user_code(&random);
            assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn polling_sooner_than_the_interval_is_too_soon() {
        let mut authorization = DeviceAuthorization {
            device_code_hash: TokenHash::of("d"),
            user_code_hash: TokenHash::of("u"),
            client_id: ClientId::from_string("c"),
            scopes: vec!["openid".into()],
            created_at: Timestamp(100),
            expires_at: Timestamp(700),
            interval_seconds: 5,
            last_polled_at: None,
            state: DeviceAuthorizationState::Pending,
        };
        assert!(!authorization.polled_too_soon(Timestamp(101)));
        authorization.last_polled_at = Some(Timestamp(101));
        assert!(authorization.polled_too_soon(Timestamp(105)));
        assert!(!authorization.polled_too_soon(Timestamp(106)));
        assert!(authorization.is_expired(Timestamp(700)));
    }
}
