//! Secrets: random generation, hashing for storage, and constant-time comparison.
//!
//! A [`Secret`] never prints its value; stored secrets are only ever hashes: SHA-256 for
//! high-entropy bearer secrets, HMAC-SHA-256 under a server key for passes and administrator
//! tokens ([`TokenHash`]), argon2id for passwords (see `credential`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret value that must not end up in logs. It has no `PartialEq` on purpose: secrets are
/// compared with [`constant_time_eq`] (or through their hashes), never with `==`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: call only where it is shown once or sent to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

pub fn random_hex(len_bytes: usize) -> String {
    let mut bytes = vec![0u8; len_bytes];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bearer secret: 256 random bits, base64url.
pub fn random_token() -> Secret {
    Secret(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// A uniformly random index below `bound`, without modulo bias.
pub fn random_below(bound: u32) -> u32 {
    assert!(bound > 0);
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let value = u32::from_le_bytes(random_bytes::<4>());
        if value < zone {
            return value % bound;
        }
    }
}

/// The SHA-256 of a high-entropy bearer secret, hex-encoded: what the store keeps and looks up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        TokenHash(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// HMAC-SHA-256 of `secret` under a server key, hex-encoded: for secrets short enough to
    /// guess (passes) or worth protecting from a copy of the database (administrator tokens),
    /// so that the stored value is useless without the key.
    pub fn keyed(key: &[u8], secret: &str) -> Self {
        use hmac::{KeyInit, Mac};
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(secret.as_bytes());
        TokenHash(
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// Whether two hashes are equal, compared in constant time.
    pub fn same_as(&self, other: &TokenHash) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }

    pub fn from_stored(hex: impl Into<String>) -> Self {
        TokenHash(hex.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `secret` hashes to this value, compared in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        constant_time_eq(TokenHash::of(secret).0.as_bytes(), self.0.as_bytes())
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_never_shows_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    /// Autoref specialisation: `Probe<T>` answers true through `ComparesWithEq` only when
    /// `T: PartialEq`; otherwise the call falls through to `&Probe<T>`'s answer.
    struct Probe<T>(std::marker::PhantomData<T>);
    trait ComparesWithEq {
        fn has_eq(&self) -> bool {
            true
        }
    }
    impl<T: PartialEq> ComparesWithEq for Probe<T> {}
    trait HasNoEq {
        fn has_eq(&self) -> bool {
            false
        }
    }
    impl<T> HasNoEq for &Probe<T> {}

    #[test]
    // The explicit borrow is what selects between the two answers.
    #[allow(clippy::needless_borrow)]
    fn a_secret_compared_with_eq_would_leak_its_value_through_timing_so_secret_has_no_eq() {
        assert!((&Probe::<String>(std::marker::PhantomData)).has_eq());
        assert!(
            !(&Probe::<Secret>(std::marker::PhantomData)).has_eq(),
            "compare secrets with constant_time_eq, never =="
        );
    }

    #[test]
    fn token_hash_matches_only_its_secret() {
        let hash = TokenHash::of("abc");
        assert!(hash.matches("abc"));
        assert!(!hash.matches("abd"));
    }

    #[test]
    fn random_below_stays_in_range() {
        for _ in 0..1000 {
            assert!(random_below(10) < 10);
        }
    }
}

/// HMAC-SHA256 of `message` under `key`, base64url: binds a value to this server (CSRF tokens,
/// signed cookies) without storing anything.
pub fn keyed_mac(key: &[u8], message: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    base64url(&mac.finalize().into_bytes())
}

/// Whether `tag` is the MAC of `message` under `key`, compared in constant time.
pub fn keyed_mac_matches(key: &[u8], message: &[u8], tag: &str) -> bool {
    constant_time_eq(keyed_mac(key, message).as_bytes(), tag.as_bytes())
}

#[cfg(test)]
mod mac_tests {
    use super::*;

    #[test]
    fn a_mac_verifies_only_with_its_key_and_message() {
        let tag = keyed_mac(b"key", b"message");
        assert!(keyed_mac_matches(b"key", b"message", &tag));
        assert!(!keyed_mac_matches(b"other", b"message", &tag));
        assert!(!keyed_mac_matches(b"key", b"massage", &tag));
    }
}

/// A key for one purpose, derived from a stored server secret with HKDF-SHA256 (RFC 5869):
/// `label` names the purpose, so keys for different purposes are independent and a value made
/// with one can never be presented as made with another.
pub fn derive_key<const N: usize>(secret: &[u8], label: &str) -> [u8; N] {
    use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
    struct Length(usize);
    impl KeyType for Length {
        fn len(&self) -> usize {
            self.0
        }
    }
    let mut out = [0u8; N];
    Salt::new(HKDF_SHA256, b"latchkey key derivation")
        .extract(secret)
        .expand(&[label.as_bytes()], Length(N))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF-SHA256 can produce up to 8160 bytes");
    out
}

#[cfg(test)]
mod derive_tests {
    use super::*;

    #[test]
    fn each_label_gets_its_own_key() {
        let a: [u8; 32] = derive_key(b"secret", "csrf");
        let b: [u8; 32] = derive_key(b"secret", "my-apps cookies");
        let again: [u8; 32] = derive_key(b"secret", "csrf");
        let other_secret: [u8; 32] = derive_key(b"other", "csrf");
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_ne!(a, other_secret);
        assert_ne!(&a[..], b"secret");
    }

    #[test]
    fn a_long_key_is_filled_to_its_end() {
        let long: [u8; 64] = derive_key(b"secret", "x");
        assert!(long[32..].iter().any(|b| *b != 0));
        assert_ne!(long[..32], long[32..]);
    }
}
