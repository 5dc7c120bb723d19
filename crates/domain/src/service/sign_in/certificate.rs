//! Certificate-based sign-in's hand-off between the main host and the certificate host
//! (docs/certificates.md).
//!
//! 1. The sign-in page's "Use a certificate or smart card" asks the main host for a reference
//!    ([`SignIns::certificate_reference`]): the sign-in id and a single-use nonce, sealed with
//!    AES-256-GCM under a server key, good for [`REFERENCE_LIFETIME_SECONDS`]. The browser
//!    carries it to the certificate host, which relies on no cookie.
//! 2. The certificate host opens it ([`SignIns::open_certificate_reference`], which uses the
//!    nonce up), verifies the certificate, and records the outcome
//!    ([`SignIns::record_certificate`]): a failure goes to the sign-in log at once; a success is
//!    kept in the sign-in with the hash of a single-use result token.
//! 3. The browser brings the result token back to the main host, which completes the sign-in
//!    the browser's sign-in cookie names ([`SignIns::complete_certificate`]) only if the token
//!    is that sign-in's: another browser's result, a replayed or a forged one is refused.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use super::{SignInFailure, SignIns, SignedIn};
use crate::ids::SignInId;
use crate::log::{AuthenticationStep, SignInContext, SignInRecord, SignInStatus};
use crate::policy::{MethodKind, X509AuthenticationMode};
use crate::secret::{TokenHash, base64url};
use crate::service::certificates::{
    CertificateFacts, CertificateFailure, CertificateResult, CertificateSignIn,
};
use crate::service::messages::STORE_TROUBLE;
use crate::session::AuthMethod;
use crate::signin::{AcceptedCertificate, CertificateHandoff, PendingSignIn, SignInStage};

/// How long a reference (and the result that comes back) may be used.
pub const REFERENCE_LIFETIME_SECONDS: i64 = 5 * 60;
/// A reference or result token longer than this is refused before it is decoded.
pub const MAX_REFERENCE_LENGTH: usize = 512;

const AAD: &[u8] = b"latchkey certificate reference v1";

/// What a reference seals.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The sign-in id.
    s: String,
    /// The single-use nonce.
    n: String,
    /// Good until (Unix seconds).
    e: i64,
}

/// Why the certificate host refused a reference: always the same page, "start again".
pub const REFERENCE_REFUSED: &str = "This certificate sign-in link has expired, was already used, or isn't valid. Go back to the sign-in page and choose \"Use a certificate or smart card\" again.";

/// Why the main host refused a result.
pub const RESULT_REFUSED: &str = "We couldn't match this certificate sign-in to the sign-in in this browser. It may have expired, been used already, or been started in another browser. Start your sign-in again.";

/// A certificate sign-in the certificate host refused: what the page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRefusal {
    pub title: &'static str,
    pub message: String,
    /// The sign-in log's error code (0 when nothing was logged).
    pub error_code: u32,
}

impl SignIns {
    async fn reference_key(&self) -> Result<LessSafeKey, SignInFailure> {
        let secret = self
            .keys
            .server_secret("certificate-reference-key")
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        let key: [u8; 32] = crate::secret::derive_key(&secret, "latchkey certificate reference");
        let unbound = UnboundKey::new(&AES_256_GCM, &key)
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// The main host: a new single-use reference to this browser's sign-in, for the link to
    /// the certificate host. A reference handed out before stops working.
    pub async fn certificate_reference(&self, id: &SignInId) -> Result<String, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let mut sign_in = self.sign_in(id).await?;
        if matches!(sign_in.stage, SignInStage::AwaitingApproval { .. }) {
            return Err(SignInFailure::OutOfOrder);
        }
        let nonce = self.random.hex(16);
        let expires_at = self.now().plus_seconds(REFERENCE_LIFETIME_SECONDS);
        sign_in.certificate = Some(CertificateHandoff {
            nonce: Some(TokenHash::of(&nonce)),
            expires_at,
            accepted: None,
        });
        self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
        let sealed = serde_json::to_vec(&Sealed {
            s: id.to_string(),
            n: nonce,
            e: expires_at.0,
        })
        .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        let key = self.reference_key().await?;
        let iv: [u8; NONCE_LEN] = crate::secret::random_bytes();
        let mut in_out = sealed;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(AAD),
            &mut in_out,
        )
        .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        let mut bytes = iv.to_vec();
        bytes.extend_from_slice(&in_out);
        Ok(base64url(&bytes))
    }

    /// The certificate host: the sign-in a reference stands for, using the reference up. A
    /// malformed, oversized, forged, expired or used reference is refused alike.
    pub async fn open_certificate_reference(
        &self,
        reference: &str,
    ) -> Result<PendingSignIn, CertificateRefusal> {
        let refused = || CertificateRefusal {
            title: "Start your sign-in again",
            message: REFERENCE_REFUSED.into(),
            error_code: 0,
        };
        if reference.is_empty() || reference.len() > MAX_REFERENCE_LENGTH {
            return Err(refused());
        }
        let mut bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, reference)
                .map_err(|_| refused())?;
        if bytes.len() <= NONCE_LEN {
            return Err(refused());
        }
        let key = self.reference_key().await.map_err(|_| refused())?;
        let mut sealed = bytes.split_off(NONCE_LEN);
        let iv = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| refused())?;
        let opened = key
            .open_in_place(iv, Aad::from(AAD), &mut sealed)
            .map_err(|_| refused())?;
        let sealed: Sealed = serde_json::from_slice(opened).map_err(|_| refused())?;
        if self.now().0 >= sealed.e {
            return Err(refused());
        }
        let id = SignInId::from_string(&sealed.s);
        let mut sign_in = self.sign_in(&id).await.map_err(|_| refused())?;
        let Some(handoff) = sign_in.certificate.as_mut() else {
            return Err(refused());
        };
        let matches = handoff
            .nonce
            .as_ref()
            .is_some_and(|n| n.same_as(&TokenHash::of(&sealed.n)));
        if !matches || self.now() >= handoff.expires_at {
            return Err(refused());
        }
        // Used up before the certificate is looked at: a second request with it is refused,
        // even one racing this one on another instance (one of them remembers the mark first).
        let mark = format!(
            "certificate-reference:{}",
            TokenHash::of(&sealed.n).as_str()
        );
        let first = self
            .tokens
            .store
            .remember_once(&mark, handoff.expires_at)
            .await
            .map_err(|_| refused())?;
        if !first {
            return Err(refused());
        }
        handoff.nonce = None;
        self.store
            .put_sign_in(&sign_in)
            .await
            .map_err(|_| refused())?;
        Ok(sign_in)
    }

    /// The certificate host: records what the certificate service said about the certificate.
    /// A failure is written to the sign-in log (with the certificate's facts and the reason)
    /// and refused; a success is kept in the sign-in, and the returned result token takes the
    /// browser back to the main host.
    pub async fn record_certificate(
        &self,
        mut sign_in: PendingSignIn,
        verdict: CertificateResult,
        context: &SignInContext,
    ) -> Result<String, CertificateRefusal> {
        let trouble = || CertificateRefusal {
            title: "Something went wrong",
            message: STORE_TROUBLE.into(),
            error_code: 0,
        };
        match verdict {
            Err((failure, facts)) => {
                let mut record = self
                    .certificate_record(&sign_in, None, context)
                    .await
                    .map_err(|_| trouble())?;
                record.status = SignInStatus {
                    error_code: log_code(failure),
                    failure_reason: Some(failure.message().to_string()),
                    additional_details: Some(format!("Certificate: {}", failure.error_code())),
                };
                record.authentication_details.push(AuthenticationStep {
                    authentication_method: MethodKind::X509Certificate.label().to_string(),
                    authentication_method_detail: facts.as_ref().map(facts_detail),
                    authentication_step_date_time: self.now().to_rfc3339(),
                    authentication_step_result_detail: failure.message().to_string(),
                    succeeded: false,
                });
                if let Some(facts) = &facts {
                    record.user_principal_name = facts.subject.clone();
                }
                self.store
                    .fail_sign_in(&sign_in, false, &record)
                    .await
                    .map_err(|_| trouble())?;
                Err(CertificateRefusal {
                    title: "Certificate validation failed",
                    message: failure.message().to_string(),
                    error_code: log_code(failure),
                })
            }
            Ok(verified) => {
                let result = self.random.token();
                let Some(handoff) = sign_in.certificate.as_mut() else {
                    return Err(trouble());
                };
                handoff.accepted = Some(AcceptedCertificate {
                    user_id: verified.user.id.clone(),
                    multi_factor: verified.is_multi_factor(),
                    result: TokenHash::of(result.expose()),
                    detail: accepted_detail(&verified),
                });
                self.store
                    .put_sign_in(&sign_in)
                    .await
                    .map_err(|_| trouble())?;
                Ok(result.expose().to_string())
            }
        }
    }

    /// The main host: the browser came back from the certificate host with `result`. Only the
    /// sign-in this browser's cookie names, holding exactly this result, completes. A
    /// single-factor certificate where the sign-in needs a strength goes on to the second
    /// factor (`SecondFactor`), as after a password.
    pub async fn complete_certificate(
        &self,
        id: &SignInId,
        result: &str,
        context: &SignInContext,
    ) -> Result<SignedIn, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let refused = || SignInFailure::StartAgain(RESULT_REFUSED.into());
        if result.is_empty() || result.len() > MAX_REFERENCE_LENGTH {
            return Err(refused());
        }
        let mut sign_in = self.sign_in(id).await?;
        let Some(handoff) = sign_in.certificate.take() else {
            return Err(refused());
        };
        let Some(accepted) = handoff.accepted else {
            return Err(refused());
        };
        if !accepted.result.same_as(&TokenHash::of(result)) || self.now() >= handoff.expires_at {
            return Err(refused());
        }
        // One completion per result, even for two requests racing with it.
        let mark = format!("certificate-result:{}", TokenHash::of(result).as_str());
        if !self
            .tokens
            .store
            .remember_once(&mark, handoff.expires_at)
            .await
            .map_err(trouble)?
        {
            return Err(refused());
        }
        let now = self.now();
        let user = match self
            .directory
            .lookup(&accepted.user_id)
            .await
            .map_err(trouble)?
        {
            Some(user) if user.enabled => user,
            _ => return Err(refused()),
        };
        let method = if accepted.multi_factor {
            AuthMethod::CertificateMultiFactor
        } else {
            AuthMethod::CertificateSingleFactor
        };
        // The result is used up whatever happens next.
        self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
        if let Some(required) = sign_in.required_strength
            && !required.allows(method)
        {
            // The certificate said who the user is; the second factor proves it, as after a
            // password: the Authenticator app's notification, or a passkey.
            let upn = user.upn.to_string();
            return match self.offer_methods(sign_in, &upn, Some(user), context).await {
                Ok(_) => Err(SignInFailure::SecondFactor),
                Err(failure) => Err(failure),
            };
        }
        let (session, cookie_secret) = self.new_session(&user, method, now);
        let mut record = self
            .certificate_record(&sign_in, Some(&user), context)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        record.authentication_details.push(AuthenticationStep {
            authentication_method: MethodKind::X509Certificate.label().to_string(),
            authentication_method_detail: Some(accepted.detail.clone()),
            authentication_step_date_time: now.to_rfc3339(),
            authentication_step_result_detail: if accepted.multi_factor {
                "Correct certificate (multi-factor)".into()
            } else {
                "Correct certificate (single-factor)".into()
            },
            succeeded: true,
        });
        self.finish_sign_in(
            sign_in,
            user,
            (session, cookie_secret),
            &record,
            context.browser.as_ref(),
            now,
            |_| refused(),
        )
        .await
    }

    async fn certificate_record(
        &self,
        sign_in: &PendingSignIn,
        user: Option<&crate::user::User>,
        context: &SignInContext,
    ) -> Result<SignInRecord, crate::error::DomainError> {
        let app = match &sign_in.authorization {
            Some(request) => self.applications.cached(&request.client_id).await?,
            None => None,
        };
        Ok(SignInRecord {
            id: self.random.hex(16),
            created_date_time: self.now(),
            user_id: user.map(|u| u.id.clone()),
            user_principal_name: user.map(|u| u.upn.to_string()).unwrap_or_default(),
            user_display_name: user.map(|u| u.display_name.clone()),
            app_id: app.as_ref().map(|a| a.client_id.clone()),
            app_display_name: app.as_ref().map(|a| a.display_name.clone()),
            ip_address: context.ip_address.map(|ip| ip.to_string()),
            location: context.location.clone(),
            authentication_method: MethodKind::X509Certificate.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        })
    }
}

/// The sign-in log's error code for a refused certificate: Entra's where it has one, else
/// Latchkey's 9000xx (docs/logs.md).
pub fn log_code(failure: CertificateFailure) -> u32 {
    match failure {
        CertificateFailure::MethodDisabled => 900_060,
        CertificateFailure::MethodNotAllowed => 900_010,
        CertificateFailure::Malformed => 900_061,
        CertificateFailure::UntrustedIssuer => 50_017,
        CertificateFailure::Expired => 900_062,
        CertificateFailure::NotYetValid => 900_063,
        CertificateFailure::WrongKeyUsage => 900_064,
        CertificateFailure::Revoked => 900_065,
        CertificateFailure::RevocationUnavailable => 900_066,
        CertificateFailure::NoMatchingUser => 1_001_003,
        CertificateFailure::SeveralUsers => 900_067,
        CertificateFailure::UserDisabled => 50_057,
        CertificateFailure::Unavailable => 900_068,
    }
}

/// The log's detail of a certificate: subject, issuer and serial.
fn facts_detail(facts: &CertificateFacts) -> String {
    format!(
        "Subject: {}; Issuer: {}; Serial: {}",
        facts.subject, facts.issuer, facts.serial
    )
}

/// The log's detail of an accepted certificate: its facts, the binding that matched and the
/// rule that decided single- or multi-factor.
fn accepted_detail(verified: &CertificateSignIn) -> String {
    let binding = &verified.binding;
    let mode = match verified.mode {
        X509AuthenticationMode::X509CertificateMultiFactor => "multi-factor",
        X509AuthenticationMode::X509CertificateSingleFactor => "single-factor",
    };
    let rule = match &verified.rule {
        None => format!("{} ({mode})", verified.decision.as_str()),
        Some(rule) => {
            let mut parts = Vec::new();
            if let Some(issuer) = &rule.issuer_subject {
                parts.push(format!("issuer {issuer}"));
            }
            if let Some(oid) = &rule.policy_oid {
                parts.push(format!("policy OID {oid}"));
            }
            format!(
                "{}: {} ({mode})",
                verified.decision.as_str(),
                parts.join(" and ")
            )
        }
    };
    format!(
        "{}; Binding: {:?} -> {:?} (priority {}, {:?} affinity); Rule: {rule}",
        facts_detail(&verified.facts),
        binding.x509_certificate_field,
        binding.user_property,
        binding.priority,
        binding.trust_affinity_level,
    )
}
