//! The WebAuthn relying party: webauthn-rs's `Webauthn`, built once from the issuer, and the
//! attestation roots an administrator configured. Also the ceremony rules both registration
//! and sign-in share: the user handle, reading a browser's answer, naming webauthn-rs's errors.

use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    AttestationCaList, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::ids::UserId;
use crate::passkey::{MAX_RESPONSE_BYTES, PasskeyError};

/// The relying party, or why there is none (an issuer WebAuthn cannot use, such as a bare IP
/// address: a relying-party id must be a domain name).
pub(crate) struct RelyingParty {
    webauthn: Result<Webauthn, String>,
    /// The relying-party id (the issuer's host), when WebAuthn can be used.
    rp_id: Option<String>,
    /// `Ok(None)` when no roots are configured.
    attestation_roots: Result<Option<AttestationCaList>, String>,
}

/// The setting that names the attestation roots, as the configuration spells it.
pub(crate) const ATTESTATION_ROOTS_SETTING: &str = "passkeys.attestation_roots";

impl RelyingParty {
    /// Relying-party id = the issuer's host, origin = its origin.
    pub(crate) fn new(issuer: &str, attestation_roots: &[String]) -> RelyingParty {
        let webauthn = (|| {
            let url = Url::parse(issuer).map_err(|e| format!("the issuer is not a URL: {e}"))?;
            let host = url
                .domain()
                .ok_or("the issuer's host is not a domain name, which WebAuthn needs")?
                .to_string();
            let origin = Url::parse(&url.origin().ascii_serialization())
                .map_err(|e| format!("the issuer has no origin: {e}"))?;
            WebauthnBuilder::new(&host, &origin)
                .and_then(|b| b.rp_name("Latchkey").build())
                .map_err(|e| format!("WebAuthn refused the issuer {issuer}: {e}"))
        })();
        let rp_id = Url::parse(issuer)
            .ok()
            .and_then(|u| u.domain().map(str::to_string))
            .filter(|_| webauthn.is_ok());
        let attestation_roots = if attestation_roots.is_empty() {
            Ok(None)
        } else {
            let mut list = AttestationCaList::default();
            let mut result = Ok(());
            for (i, pem) in attestation_roots.iter().enumerate() {
                match AttestationCaList::try_from(pem.as_bytes()) {
                    Ok(one) => list.union(&one),
                    Err(e) => {
                        result = Err(format!(
                            "attestation root {} of {ATTESTATION_ROOTS_SETTING} is not a PEM certificate: {e:?}",
                            i + 1
                        ));
                        break;
                    }
                }
            }
            result.map(|()| Some(list))
        };
        RelyingParty {
            webauthn,
            rp_id,
            attestation_roots,
        }
    }

    /// The relying-party id, when WebAuthn can be used with this issuer.
    pub(crate) fn rp_id(&self) -> Option<&str> {
        self.rp_id.as_deref()
    }

    /// Why passkeys cannot work with this configuration, for the server to report at start.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = &self.webauthn {
            problems.push(e.clone());
        }
        if let Err(e) = &self.attestation_roots {
            problems.push(e.clone());
        }
        problems
    }

    pub(crate) fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_ref().map_err(|_| {
            PasskeyError::NotAllowed(
                "Passkeys can't be used with this server's address. Ask your administrator.".into(),
            )
        })
    }

    /// The roots attestation must chain to, or why registration with attestation enforced is
    /// refused.
    pub(crate) fn attestation_roots(&self) -> Result<&AttestationCaList, PasskeyError> {
        match &self.attestation_roots {
            Ok(Some(list)) => Ok(list),
            Ok(None) => Err(PasskeyError::NotAllowed(format!(
                "Your organisation requires attested security keys, but no attestation root certificates are configured ({ATTESTATION_ROOTS_SETTING}). Ask your administrator."
            ))),
            Err(_) => Err(PasskeyError::NotAllowed(format!(
                "Your organisation requires attested security keys, but the attestation root certificates ({ATTESTATION_ROOTS_SETTING}) could not be read. Ask your administrator."
            ))),
        }
    }
}

/// The WebAuthn user handle of a user: stable, opaque (a hash of the user id, so it names no
/// one), and the same on every instance.
pub(crate) fn user_handle(user: &UserId) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"latchkey passkey user handle\0")
        .chain_update(user.as_str().as_bytes())
        .finalize();
    let bytes: [u8; 16] = digest[..16].try_into().expect("16 bytes");
    Uuid::from_bytes(bytes)
}

/// Parses a browser's JSON answer, refusing oversized input before parsing it.
pub(crate) fn parse_response<T: serde::de::DeserializeOwned>(
    response: &str,
) -> Result<(T, serde_json::Value), PasskeyError> {
    if response.len() > MAX_RESPONSE_BYTES {
        return Err(PasskeyError::Invalid(format!(
            "The passkey response is larger than {} KiB.",
            MAX_RESPONSE_BYTES / 1024
        )));
    }
    let value: serde_json::Value = serde_json::from_str(response)
        .map_err(|_| PasskeyError::Invalid("The passkey response is not JSON.".into()))?;
    let parsed = serde_json::from_value(value.clone()).map_err(|_| {
        PasskeyError::Invalid("The passkey response is not a WebAuthn credential.".into())
    })?;
    Ok((parsed, value))
}

/// The sign-in log's and the page's words for why webauthn-rs refused an answer.
pub(crate) fn refusal_detail(error: &WebauthnError) -> &'static str {
    use WebauthnError as E;
    match error {
        E::CredentialPossibleCompromise => "counter went backwards",
        E::UserNotVerified => "user verification required",
        E::InvalidRPOrigin | E::CredentialCrossOrigin => "wrong origin",
        E::InvalidRPIDHash => "wrong relying party",
        E::MismatchedChallenge => "challenge mismatch (replayed or from another ceremony)",
        E::CredentialExcludedFromRequest => "already registered",
        E::CredentialNotFound => "credential not allowed for this sign-in",
        E::InvalidClientDataType => "wrong ceremony type",
        // Every attestation failure (untrusted chain or AAGUID, missing statement, format…).
        other if format!("{other:?}").starts_with("Attestation") => "attestation required",
        _ => "invalid signature or response",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host_and_origin() {
        let rp = RelyingParty::new("https://login.contoso.example/", &[]);
        assert!(rp.webauthn().is_ok());
        assert!(
            RelyingParty::new("http://127.0.0.1:8080", &[])
                .webauthn()
                .is_err()
        );
        assert!(matches!(
            rp.attestation_roots(),
            Err(PasskeyError::NotAllowed(m)) if m.contains(ATTESTATION_ROOTS_SETTING)
        ));
        let broken = RelyingParty::new("https://login.contoso.example", &["nope".into()]);
        assert!(broken.attestation_roots().is_err());
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        let a = UserId::from_string("a");
        assert_eq!(user_handle(&a), user_handle(&a));
        assert_ne!(user_handle(&a), user_handle(&UserId::from_string("b")));
    }

    #[test]
    fn oversized_and_malformed_responses_are_invalid() {
        let big = "x".repeat(MAX_RESPONSE_BYTES + 1);
        let r: Result<(serde_json::Value, _), _> = parse_response(&big);
        assert!(matches!(r, Err(PasskeyError::Invalid(_))));
        let r: Result<(webauthn_rs::prelude::PublicKeyCredential, _), _> =
            parse_response("{\"id\": 1}");
        assert!(matches!(r, Err(PasskeyError::Invalid(_))));
    }

    #[test]
    fn oversized_answer_over_16_kib_is_refused_by_the_domain_as_at_the_edge() {
        // A JSON object just over 16 KiB: refused for its size before it is parsed, the same
        // cap the HTTP edge applies (one constant).
        let over = format!("{{\"id\": \"{}\"}}", "A".repeat(16 * 1024));
        let r: Result<(webauthn_rs::prelude::PublicKeyCredential, _), _> = parse_response(&over);
        assert!(
            matches!(&r, Err(PasskeyError::Invalid(m)) if m.contains("larger than 16 KiB")),
            "{:?}",
            r.err()
        );
    }
}
