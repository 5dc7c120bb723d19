//! ID-token signing keys: generation, the JWKS, signing, and verification of tokens we issued.
//!
//! Keys are generated with aws-lc-rs (`jsonwebtoken` does not generate keys). A key is parsed
//! once, when the keyring loads, and signs with aws-lc-rs: `jsonwebtoken::encode` parses and
//! checks the private key again for every token, which cost more than half as much as the
//! signature itself (docs/performance.md, version 11). So the compact JWS is put together
//! here, from `jsonwebtoken`'s own header type, exactly as `jsonwebtoken::encode` does (a unit
//! test holds the two to the same bytes). The JWK of a key and verification go through
//! `jsonwebtoken`. Verification pins the algorithm of our key, so `alg=none` or a swapped
//! algorithm can never pass.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::SigningAlg;
use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::KeyId;

#[derive(Clone, Serialize, Deserialize)]
pub struct SigningKey {
    pub kid: KeyId,
    pub alg: SigningAlg,
    /// PKCS#8 DER of the private key. Never leaves the store except to sign.
    pub private_pkcs8: Vec<u8>,
    /// When the key starts signing. A key brought in by a rotation is stored (and so
    /// published in the JWKS) ahead of this time, so that every client's cached JWKS holds it
    /// before the first token it signs.
    pub created_at: Timestamp,
    /// When the key stops signing (set by a rotation, possibly in the future: the moment its
    /// successor takes over). The public half stays published until tokens signed with it
    /// have expired.
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

    /// Loads the key for signing, with its public half as a JWK.
    pub fn signer(&self) -> Result<Signer, DomainError> {
        let key = match self.alg {
            // The library reads RSA keys as PKCS#1; its PEM reader unwraps our PKCS#8.
            SigningAlg::RS256 => {
                EncodingKey::from_rsa_pem(pkcs8_pem(&self.private_pkcs8).as_bytes())
                    .map_err(|_| internal("RSA key loading"))?
            }
            SigningAlg::ES256 => EncodingKey::from_ec_der(&self.private_pkcs8),
        };
        let algorithm = self.alg.algorithm();
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).map_err(|_| internal("JWK"))?;
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_id = Some(self.kid.to_string());
        let verifying = DecodingKey::from_jwk(&jwk).map_err(|_| internal("JWK"))?;
        let pair = match self.alg {
            SigningAlg::RS256 => KeyPair::Rsa(
                RsaKeyPair::from_pkcs8(&self.private_pkcs8)
                    .map_err(|_| internal("RSA key loading"))?,
            ),
            SigningAlg::ES256 => KeyPair::Ec(
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
            pair,
            jwk,
            verifying,
        })
    }
}

/// A PKCS#8 DER key as PEM (RFC 7468), 64 characters a line.
fn pkcs8_pem(der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

impl SigningAlg {
    /// The algorithm as `jsonwebtoken` names it.
    fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
        }
    }
}

/// A loaded signing key: signs JWTs and describes its public half as a JWK.
pub struct Signer {
    kid: KeyId,
    alg: SigningAlg,
    /// The private key, parsed and checked once.
    pair: KeyPair,
    jwk: Jwk,
    verifying: DecodingKey,
}

enum KeyPair {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256).
    Rsa(RsaKeyPair),
    /// ECDSA on P-256 with SHA-256, the signature as `r || s` (ES256, RFC 7518 §3.4).
    Ec(EcdsaKeyPair),
}

impl Signer {
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public key as a JWK (RFC 7517), with its `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs `claims` as a compact JWS with this key's algorithm and kid.
    pub fn sign_jwt(&self, claims: &impl Serialize) -> Result<String, DomainError> {
        let mut header = Header::new(self.alg.algorithm());
        header.kid = Some(self.kid.to_string());
        self.sign_with(&header, claims)
    }

    /// A JWT with an explicit `typ` header (e.g. `logout+jwt`), so that it can never be taken
    /// for a token of another kind signed by the same key.
    pub fn sign_typed_jwt(
        &self,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, DomainError> {
        let mut header = Header::new(self.alg.algorithm());
        header.kid = Some(self.kid.to_string());
        header.typ = Some(typ.to_string());
        self.sign_with(&header, claims)
    }

    /// The compact JWS (RFC 7515 §7.1): the header and the claims as base64url JSON, joined
    /// by a dot, and the signature of those bytes.
    fn sign_with(&self, header: &Header, claims: &impl Serialize) -> Result<String, DomainError> {
        let mut token = jws_part(header)?;
        token.push('.');
        token.push_str(&jws_part(claims)?);
        let rng = SystemRandom::new();
        let signature = match &self.pair {
            KeyPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    token.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| internal("JWT signing"))?;
                signature
            }
            KeyPair::Ec(pair) => pair
                .sign(&rng, token.as_bytes())
                .map_err(|_| internal("JWT signing"))?
                .as_ref()
                .to_vec(),
        };
        token.push('.');
        token.push_str(&crate::secret::base64url(&signature));
        Ok(token)
    }
}

/// A JWS header or payload: its JSON, base64url without padding.
fn jws_part(value: &impl Serialize) -> Result<String, DomainError> {
    let json = serde_json::to_vec(value).map_err(|_| internal("JWT encoding"))?;
    Ok(crate::secret::base64url(&json))
}

/// The keys in use: per algorithm, the newest key whose signing window (`created_at` until
/// `retired_at`) contains the current time signs; every key from the moment it is stored until
/// its tokens have expired verifies and is published in the JWKS (a key due to start signing
/// is published ahead of its start).
pub struct Keyring {
    signers: Vec<KeyringEntry>,
}

struct KeyringEntry {
    signer: Signer,
    signs_from: Timestamp,
    retired_at: Option<Timestamp>,
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
        // A key is published from the moment it is stored, also while it waits for its start.
        for key in sorted {
            if let Some(retired) = key.retired_at
                && retired.plus_seconds(publish_for_seconds) <= now
            {
                continue;
            }
            signers.push(KeyringEntry {
                signer: key.signer()?,
                signs_from: key.created_at,
                retired_at: key.retired_at,
            });
        }
        Ok(Keyring { signers })
    }

    /// The key that signs with `alg` at `now`: the newest one whose signing window has begun
    /// and not ended. A key published ahead of its start does not sign yet.
    pub fn active(&self, alg: SigningAlg, now: Timestamp) -> Option<&Signer> {
        self.signers
            .iter()
            .find(|e| {
                e.signer.alg == alg
                    && e.signs_from <= now
                    && e.retired_at.is_none_or(|retired| now < retired)
            })
            .map(|e| &e.signer)
    }

    /// The JWK set published at `/jwks`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.signers.iter().map(|e| e.signer.jwk.clone()).collect(),
        }
    }

    /// Verifies a token this server issued (for example an `id_token_hint`). The algorithm
    /// comes from our key, never from the token; expiry is not checked because a hint may be
    /// an expired ID token.
    pub fn verify_own_token(&self, token: &str, issuer: &str) -> Result<Value, DomainError> {
        let rejected = || DomainError::Rejected("the token was not issued by this server".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| rejected())?;
        let kid = header.kid.ok_or_else(rejected)?;
        let signer = self
            .signers
            .iter()
            .map(|e| &e.signer)
            .find(|s| s.kid.as_str() == kid)
            .ok_or_else(rejected)?;
        let mut validation = Validation::new(signer.alg.algorithm());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(token, &signer.verifying, &validation)
            .map(|data| data.claims)
            .map_err(|_| rejected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::base64url;
    use serde_json::json;

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
                .active(alg, Timestamp(1000))
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
    fn a_token_is_the_compact_jws_jsonwebtoken_would_make() {
        let now = Timestamp(1000);
        let claims = json!({"iss": "https://idp", "sub": "u", "name": "Zoë \"Q\" <x>"});
        // RS256 is deterministic: the same key signs the same bytes to the same token.
        let rsa = SigningKey::generate(SigningAlg::RS256, now).unwrap();
        let signer = rsa.signer().unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(rsa.kid.to_string());
        let theirs = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(pkcs8_pem(&rsa.private_pkcs8).as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(signer.sign_jwt(&claims).unwrap(), theirs);
        // ES256 is not: the same header and claims, and a signature the JWK verifies.
        let ec = SigningKey::generate(SigningAlg::ES256, now).unwrap();
        let signer = ec.signer().unwrap();
        let token = signer.sign_typed_jwt("logout+jwt", &claims).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(ec.kid.to_string());
        header.typ = Some("logout+jwt".into());
        let theirs = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_der(&ec.private_pkcs8),
        )
        .unwrap();
        let signed_part = |t: &str| t.rsplit_once('.').unwrap().0.to_string();
        assert_eq!(signed_part(&token), signed_part(&theirs));
        let signature = token.rsplit_once('.').unwrap().1;
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(signature)
                .unwrap()
                .len(),
            64
        );
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let key = DecodingKey::from_jwk(signer.public_jwk()).unwrap();
        let decoded = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims, claims);
    }

    #[test]
    fn the_jwks_names_each_key_with_its_kid_alg_and_use() {
        let (ring, _) = ring(Timestamp(1000));
        let jwks = serde_json::to_value(ring.jwks()).unwrap();
        let rsa = ring.active(SigningAlg::RS256, Timestamp(1000)).unwrap();
        let ec = ring.active(SigningAlg::ES256, Timestamp(1000)).unwrap();
        for key in jwks["keys"].as_array().unwrap() {
            assert_eq!(key["use"], "sig");
            let (signer, fields) = if key["kty"] == "RSA" {
                (rsa, ["n", "e"])
            } else {
                assert_eq!(key["crv"], "P-256");
                (ec, ["x", "y"])
            };
            assert_eq!(key["kid"], signer.kid().as_str());
            assert_eq!(key["alg"], signer.alg().as_str());
            for field in fields {
                assert!(
                    key[field].as_str().is_some_and(|v| !v.is_empty()),
                    "{field}"
                );
            }
        }
    }

    #[test]
    fn unsigned_alg_none_token_is_rejected() {
        let (ring, _) = ring(Timestamp(1000));
        let kid = ring
            .active(SigningAlg::RS256, Timestamp(1000))
            .unwrap()
            .kid()
            .to_string();
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
        let ours = ring.active(SigningAlg::ES256, Timestamp(1000)).unwrap();
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
        assert_eq!(ring.active(SigningAlg::ES256, now).unwrap().kid(), &new.kid);
        assert_eq!(ring.jwks().keys.len(), 2);
        let later = Keyring::load(&keys, Timestamp(9_000 + 3600), 3600).unwrap();
        assert_eq!(later.jwks().keys.len(), 1);
    }

    #[test]
    fn a_rotated_in_key_is_published_before_it_signs_and_the_old_one_signs_until_then() {
        let mut old = SigningKey::generate(SigningAlg::RS256, Timestamp(1)).unwrap();
        old.retired_at = Some(Timestamp(1_120));
        let new = SigningKey::generate(SigningAlg::RS256, Timestamp(1_120)).unwrap();
        let keys = vec![old.clone(), new.clone()];
        let ring = Keyring::load(&keys, Timestamp(1_000), 3600).unwrap();
        assert_eq!(ring.jwks().keys.len(), 2, "both are published at once");
        assert_eq!(
            ring.active(SigningAlg::RS256, Timestamp(1_119))
                .unwrap()
                .kid(),
            &old.kid
        );
        assert_eq!(
            ring.active(SigningAlg::RS256, Timestamp(1_120))
                .unwrap()
                .kid(),
            &new.kid
        );
    }
}
