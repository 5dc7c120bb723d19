//! P-256 keys: the device key (MFA push, every signed request) and the passwordless key
//! (phone sign-in). Public keys travel as the base64url of the uncompressed SEC1 point;
//! signatures as the base64url of the fixed-length `r || s` form.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// A P-256 public key, as sent on the wire. Construction checks the encoding, not the curve:
/// a point that is not on the curve fails every verification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey(String);

/// The uncompressed SEC1 encoding of a P-256 point: 0x04, then x and y.
const POINT_LEN: usize = 65;
const SIGNATURE_LEN: usize = 64;

impl PublicKey {
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        if text.len() > 100 {
            return Err("the public key is too long".into());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| "the public key is not base64url".to_string())?;
        if bytes.len() != POINT_LEN || bytes[0] != 0x04 {
            return Err("the public key is not an uncompressed P-256 point".into());
        }
        Ok(PublicKey(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn bytes(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(&self.0).unwrap_or_default()
    }
}

impl TryFrom<String> for PublicKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PublicKey::parse(&value)
    }
}

impl From<PublicKey> for String {
    fn from(key: PublicKey) -> String {
        key.0
    }
}

/// Whether `signature` (base64url, fixed form) is `key`'s ECDSA P-256/SHA-256 signature of
/// `message`. Anything malformed is simply not a valid signature.
pub fn verify_signature(key: &PublicKey, message: &[u8], signature: &str) -> bool {
    if signature.len() > 100 {
        return false;
    }
    let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    if sig.len() != SIGNATURE_LEN {
        return false;
    }
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.bytes())
        .verify(message, &sig)
        .is_ok()
}

/// A P-256 key pair held by a device.
pub struct DeviceKeyPair {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for DeviceKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeyPair")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl DeviceKeyPair {
    pub fn generate() -> Result<DeviceKeyPair, String> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|_| "P-256 key generation failed".to_string())?;
        DeviceKeyPair::from_pkcs8(pkcs8.as_ref())
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<DeviceKeyPair, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| "the stored key is not a P-256 PKCS#8 key".to_string())?;
        Ok(DeviceKeyPair {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The private key as PKCS#8 DER, for the device's key store. Handle as a secret.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref()))
    }

    pub fn sign(&self, message: &[u8]) -> String {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .expect("ECDSA signing with a valid key does not fail");
        URL_SAFE_NO_PAD.encode(sig.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_and_message() {
        let a = DeviceKeyPair::generate().unwrap();
        let b = DeviceKeyPair::generate().unwrap();
        let sig = a.sign(b"hello");
        assert!(verify_signature(&a.public_key(), b"hello", &sig));
        assert!(!verify_signature(&a.public_key(), b"hellO", &sig));
        assert!(!verify_signature(&b.public_key(), b"hello", &sig));
        assert!(!verify_signature(&a.public_key(), b"hello", "not base64!"));
        assert!(!verify_signature(&a.public_key(), b"hello", &sig[..40]));
    }

    #[test]
    fn keys_survive_a_round_trip_through_pkcs8() {
        let a = DeviceKeyPair::generate().unwrap();
        let again = DeviceKeyPair::from_pkcs8(a.pkcs8()).unwrap();
        assert_eq!(a.public_key(), again.public_key());
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        assert!(PublicKey::parse("AAAA").is_err());
        assert!(PublicKey::parse(&"A".repeat(200)).is_err());
        let mut wrong_prefix = vec![0x02u8; 65];
        wrong_prefix[0] = 0x03;
        assert!(PublicKey::parse(&URL_SAFE_NO_PAD.encode(wrong_prefix)).is_err());
        let good = DeviceKeyPair::generate().unwrap().public_key();
        assert!(PublicKey::parse(good.as_str()).is_ok());
    }
}
