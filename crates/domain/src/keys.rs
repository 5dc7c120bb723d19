//! ID-token signing keys: generation, the JWKS, signing, and verification of tokens we issued.
//!
//! Keys are generated and used through aws-lc-rs; tokens are compact JWS. Verification goes
//! through `jsonwebtoken` with the algorithm pinned by the key, so `alg=none` or a swapped
//! algorithm can never pass.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::application::SigningAlg;
use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::KeyId;
use crate::secret::base64url;

#[derive(Clone, Serialize, Deserialize)]
pub struct SigningKey {
    pub kid: KeyId,
    pub alg: SigningAlg,
    /// PKCS#8 DER of the private key. Never leaves the store except to sign.
    pub private_pkcs8: Vec<u8>,
    pub created_at: Timestamp,
    /// Set when a newer key took over; the public half stays published until tokens signed
    /// with it have expired.
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

fn internal(what: &str) -> DomainError {
    DomainError::Internal(format!("{what} failed"))
}

impl SigningKey {
    pub fn generate(alg: SigningAlg, now: Timestamp) -> Result<SigningKey, DomainError> {
        let private_pkcs8 = match alg {
            SigningAlg::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| internal("RSA key generation"))?;
                pair.as_der()
                    .map_err(|_| internal("RSA key encoding"))?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::ES256 => {
                let rng = SystemRandom::new();
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| internal("P-256 key generation"))?
                    .as_ref()
                    .to_vec()
            }
        };
        let kid = KeyId::from_string(format!(
            "{}-{}",
            alg.as_str().to_ascii_lowercase(),
            crate::secret::random_hex(8)
        ));
        Ok(SigningKey {
            kid,
            alg,
            private_pkcs8,
            created_at: now,
            retired_at: None,
        })
    }

    /// Loads the key for signing.
    pub fn signer(&self) -> Result<Signer, DomainError> {
        let inner = match self.alg {
            SigningAlg::RS256 => SignerKey::Rsa(
                aws_lc_rs::rsa::KeyPair::from_pkcs8(&self.private_pkcs8)
                    .map_err(|_| internal("RSA key loading"))?,
            ),
            SigningAlg::ES256 => SignerKey::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &self.private_pkcs8,
                )
                .map_err(|_| internal("P-256 key loading"))?,
            ),
        };
        Ok(Signer {
            kid: self.kid.clone(),
            alg: self.alg,
            inner,
            rng: SystemRandom::new(),
        })
    }
}

enum SignerKey {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
}

/// A loaded signing key: signs JWTs and describes its public half as a JWK.
pub struct Signer {
    kid: KeyId,
    alg: SigningAlg,
    inner: SignerKey,
    rng: SystemRandom,
}

impl Signer {
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public key as a JWK (RFC 7517).
    pub fn public_jwk(&self) -> Value {
        match &self.inner {
            SignerKey::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid.as_str(),
                    "n": base64url(public.modulus().big_endian_without_leading_zero()),
                    "e": base64url(public.exponent().big_endian_without_leading_zero()),
                })
            }
            SignerKey::Ec(pair) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC", "use": "sig", "alg": "ES256", "kid": self.kid.as_str(), "crv": "P-256",
                    "x": base64url(&point[1..33]),
                    "y": base64url(&point[33..65]),
                })
            }
        }
    }

    /// Signs `claims` as a compact JWS with this key's algorithm and kid.
    pub fn sign_jwt(&self, claims: &impl Serialize) -> Result<String, DomainError> {
        let header = json!({"alg": self.alg.as_str(), "typ": "JWT", "kid": self.kid.as_str()});
        let payload = serde_json::to_vec(claims).map_err(|_| internal("claims encoding"))?;
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(&payload)
        );
        let signature = match &self.inner {
            SignerKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    signing_input.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| internal("RSA signing"))?;
                sig
            }
            SignerKey::Ec(pair) => pair
                .sign(&self.rng, signing_input.as_bytes())
                .map_err(|_| internal("ECDSA signing"))?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{signing_input}.{}", base64url(&signature)))
    }
}

/// The keys in use: the newest unretired key per algorithm signs; every key still within its
/// publication window verifies and is published in the JWKS.
pub struct Keyring {
    signers: Vec<(Signer, Option<Timestamp>)>,
}

impl Keyring {
    /// `publish_for_seconds`: how long a retired key stays published (the longest lifetime of a
    /// token it may have signed).
    pub fn load(
        keys: &[SigningKey],
        now: Timestamp,
        publish_for_seconds: i64,
    ) -> Result<Keyring, DomainError> {
        let mut signers = Vec::new();
        let mut sorted: Vec<&SigningKey> = keys.iter().collect();
        sorted.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        for key in sorted {
            if let Some(retired) = key.retired_at
                && retired.plus_seconds(publish_for_seconds) <= now
            {
                continue;
            }
            signers.push((key.signer()?, key.retired_at));
        }
        Ok(Keyring { signers })
    }

    pub fn active(&self, alg: SigningAlg) -> Option<&Signer> {
        self.signers
            .iter()
            .find(|(s, retired)| s.alg == alg && retired.is_none())
            .map(|(s, _)| s)
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": self.signers.iter().map(|(s, _)| s.public_jwk()).collect::<Vec<_>>()})
    }

    /// Verifies a token this server issued (for example an `id_token_hint`). The algorithm
    /// comes from our key, never from the token; expiry is not checked because a hint may be
    /// an expired ID token.
    pub fn verify_own_token(&self, token: &str, issuer: &str) -> Result<Value, DomainError> {
        let rejected = || DomainError::Rejected("the token was not issued by this server".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| rejected())?;
        let kid = header.kid.ok_or_else(rejected)?;
        let (signer, _) = self
            .signers
            .iter()
            .find(|(s, _)| s.kid.as_str() == kid)
            .ok_or_else(rejected)?;
        let jwk = signer.public_jwk();
        let field = |name: &str| jwk[name].as_str().unwrap_or_default().to_string();
        let (key, algorithm) = match signer.alg {
            SigningAlg::RS256 => (
                DecodingKey::from_rsa_components(&field("n"), &field("e")),
                Algorithm::RS256,
            ),
            SigningAlg::ES256 => (
                DecodingKey::from_ec_components(&field("x"), &field("y")),
                Algorithm::ES256,
            ),
        };
        let key = key.map_err(|_| rejected())?;
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|_| rejected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(now: Timestamp) -> (Keyring, Vec<SigningKey>) {
        let keys = vec![
            SigningKey::generate(SigningAlg::RS256, now).unwrap(),
            SigningKey::generate(SigningAlg::ES256, now).unwrap(),
        ];
        (Keyring::load(&keys, now, 3600).unwrap(), keys)
    }

    #[test]
    fn tokens_signed_by_each_key_verify() {
        let (ring, _) = ring(Timestamp(1000));
        for alg in SigningAlg::ALL {
            let token = ring
                .active(alg)
                .unwrap()
                .sign_jwt(&json!({"iss": "https://idp", "sub": "u"}))
                .unwrap();
            assert_eq!(
                ring.verify_own_token(&token, "https://idp").unwrap()["sub"],
                "u"
            );
        }
    }

    #[test]
    fn unsigned_alg_none_token_is_rejected() {
        let (ring, _) = ring(Timestamp(1000));
        let kid = ring.active(SigningAlg::RS256).unwrap().kid().to_string();
        let header = base64url(json!({"alg": "none", "kid": kid}).to_string().as_bytes());
        let body = base64url(br#"{"iss":"https://idp","sub":"u"}"#);
        assert!(
            ring.verify_own_token(&format!("{header}.{body}."), "https://idp")
                .is_err()
        );
    }

    #[test]
    fn token_signed_by_a_foreign_key_with_our_kid_is_rejected() {
        let (ring, _) = ring(Timestamp(1000));
        let ours = ring.active(SigningAlg::ES256).unwrap();
        let mut foreign = SigningKey::generate(SigningAlg::ES256, Timestamp(1000)).unwrap();
        foreign.kid = ours.kid().clone();
        let forged = foreign
            .signer()
            .unwrap()
            .sign_jwt(&json!({"iss": "https://idp"}))
            .unwrap();
        assert!(ring.verify_own_token(&forged, "https://idp").is_err());
    }

    #[test]
    fn retired_keys_stay_published_until_their_tokens_expire() {
        let now = Timestamp(10_000);
        let mut old = SigningKey::generate(SigningAlg::ES256, Timestamp(1)).unwrap();
        old.retired_at = Some(Timestamp(9_000));
        let new = SigningKey::generate(SigningAlg::ES256, Timestamp(9_000)).unwrap();
        let keys = vec![old.clone(), new.clone()];
        let ring = Keyring::load(&keys, now, 3600).unwrap();
        assert_eq!(ring.active(SigningAlg::ES256).unwrap().kid(), &new.kid);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
        let later = Keyring::load(&keys, Timestamp(9_000 + 3600), 3600).unwrap();
        assert_eq!(later.jwks()["keys"].as_array().unwrap().len(), 1);
    }
}
