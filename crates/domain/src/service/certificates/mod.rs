//! Certificate-based sign-in (Entra's certificate-based authentication): validate a presented
//! client certificate chain against the policy's certificate authorities and their revocation
//! lists, find the user through the policy's username bindings, and decide single- or
//! multi-factor through its rules.
//!
//! The TLS edge proves possession of the key (the handshake's CertificateVerify) and hands the
//! chain to [`Certificates::verify`]; the sign-in flow writes the sign-in log entry from the
//! answer, so every failure gets a reason.

mod chain;
mod crl;
mod facts;
mod rules;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

pub use crl::{CRL_CACHE_ENTRIES, CRL_FETCH_SECONDS, CrlSource, MAX_CRL_BYTES, NoCrlSource};
pub use facts::CertificateFacts;
pub use rules::ModeDecision;

use super::access::MethodAccess;
use crate::clock::Clock;
use crate::ids::UserId;
use crate::policy::{
    MethodKind, MethodState, UserProperty, UsernameBinding, X509AuthenticationMode, X509Rule,
};
use crate::store::UserStore;
use crate::user::{Upn, User};

/// A client certificate chain as presented (DER), leaf first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedChain {
    pub leaf: Vec<u8>,
    pub intermediates: Vec<Vec<u8>>,
}

/// Why a certificate sign-in failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateFailure {
    /// Certificate-based authentication is off in the methods policy.
    MethodDisabled,
    /// The user the certificate names is not targeted by the certificate method.
    MethodNotAllowed,
    /// The bytes are no certificate.
    Malformed,
    /// The chain does not end at one of the policy's certificate authorities.
    UntrustedIssuer,
    Expired,
    NotYetValid,
    /// The certificate is not for client authentication (extended key usage).
    WrongKeyUsage,
    /// The CA's revocation list names this certificate.
    Revoked,
    /// The CA has a revocation list configured and it could not be had (or was not the CA's):
    /// fail closed.
    RevocationUnavailable,
    /// No binding found a user.
    NoMatchingUser,
    /// A binding found several users: refused rather than guessed.
    SeveralUsers,
    /// The user the binding found is disabled.
    UserDisabled,
    /// The store failed.
    Unavailable,
}

impl CertificateFailure {
    /// What the person at the browser is told.
    pub fn message(self) -> &'static str {
        match self {
            CertificateFailure::MethodDisabled => {
                "Certificate sign-in isn't turned on for this organization."
            }
            CertificateFailure::MethodNotAllowed => {
                "Your account isn't allowed to sign in with a certificate. Ask your administrator, or use another way to sign in."
            }
            CertificateFailure::Malformed => "The certificate sent could not be read.",
            CertificateFailure::UntrustedIssuer => {
                "Your certificate wasn't issued by a certificate authority this organization trusts."
            }
            CertificateFailure::Expired => "Your certificate has expired.",
            CertificateFailure::NotYetValid => "Your certificate isn't valid yet.",
            CertificateFailure::WrongKeyUsage => {
                "Your certificate can't be used for signing in (it isn't a client authentication certificate)."
            }
            CertificateFailure::Revoked => "Your certificate has been revoked.",
            CertificateFailure::RevocationUnavailable => {
                "We couldn't check whether your certificate has been revoked. Try again later."
            }
            CertificateFailure::NoMatchingUser => {
                "We couldn't find an account for your certificate. Ask your administrator to link it to your account."
            }
            CertificateFailure::SeveralUsers => {
                "Your certificate matches more than one account, so it can't be used to sign in. Ask your administrator."
            }
            CertificateFailure::UserDisabled => {
                "Your account has been disabled. Contact your administrator."
            }
            CertificateFailure::Unavailable => "Something went wrong. Try again.",
        }
    }

    /// The sign-in log's error code: Entra's AADSTS number where one is known, else a
    /// descriptive code.
    pub fn error_code(self) -> &'static str {
        match self {
            CertificateFailure::MethodDisabled => "certificateMethodDisabled",
            CertificateFailure::MethodNotAllowed => "certificateMethodNotAllowed",
            CertificateFailure::Malformed => "certificateMalformed",
            CertificateFailure::UntrustedIssuer => "AADSTS50017",
            CertificateFailure::Expired => "certificateExpired",
            CertificateFailure::NotYetValid => "certificateNotYetValid",
            CertificateFailure::WrongKeyUsage => "certificateWrongKeyUsage",
            CertificateFailure::Revoked => "certificateRevoked",
            CertificateFailure::RevocationUnavailable => "certificateRevocationUnavailable",
            CertificateFailure::NoMatchingUser => "AADSTS1001003",
            CertificateFailure::SeveralUsers => "certificateSeveralUsers",
            CertificateFailure::UserDisabled => "AADSTS50057",
            CertificateFailure::Unavailable => "unavailable",
        }
    }
}

/// A certificate that signs a user in.
#[derive(Debug, Clone)]
pub struct CertificateSignIn {
    pub user: User,
    pub facts: CertificateFacts,
    /// The binding that found the user.
    pub binding: UsernameBinding,
    pub mode: X509AuthenticationMode,
    /// The rule that decided the mode; `None` for the default or conflicting rules.
    pub rule: Option<X509Rule>,
    /// How the mode was decided (for the sign-in log).
    pub decision: ModeDecision,
}

impl CertificateSignIn {
    pub fn is_multi_factor(&self) -> bool {
        self.mode == X509AuthenticationMode::X509CertificateMultiFactor
    }
}

pub type CertificateResult =
    Result<CertificateSignIn, (CertificateFailure, Option<CertificateFacts>)>;

pub struct Certificates {
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) access: Arc<MethodAccess>,
    pub(crate) crl_source: RwLock<Arc<dyn CrlSource>>,
    pub(crate) crls: crl::CrlCache,
}

impl Certificates {
    /// Sets where revocation lists come from (the binary's HTTP fetcher).
    pub fn set_crl_source(&self, source: Arc<dyn CrlSource>) {
        *self.crl_source.write().unwrap_or_else(|e| e.into_inner()) = source;
    }

    fn crl_source(&self) -> Arc<dyn CrlSource> {
        self.crl_source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The trust anchors for the TLS listener's handshake: the DER of the policy's CAs.
    pub async fn trusted_authorities(&self) -> Vec<Vec<u8>> {
        let Ok(policy) = self.access.policy().await else {
            return vec![];
        };
        chain::authorities(&policy.x509_certificate.certificate_authorities)
            .into_iter()
            .map(|a| a.der.as_ref().to_vec())
            .collect()
    }

    /// Validates the chain against the policy's CAs at the domain clock's time, checks the
    /// CRLs, applies the policy's bindings, targets and rules. Writes no sign-in log; the
    /// caller does.
    pub async fn verify(&self, presented: &PresentedChain) -> CertificateResult {
        let policy = self
            .access
            .policy()
            .await
            .map_err(|_| (CertificateFailure::Unavailable, None))?;
        let config = &policy.x509_certificate;
        if config.targeting.state != MethodState::Enabled {
            return Err((CertificateFailure::MethodDisabled, None));
        }
        let Some(facts) = facts::read(&presented.leaf) else {
            return Err((CertificateFailure::Malformed, None));
        };
        let fail = |failure: CertificateFailure| (failure, Some(facts.clone()));
        let now = self.clock.now();
        let authorities = chain::authorities(&config.certificate_authorities);
        // First the path (which CA vouches for it), then that CA's list, then the path again
        // with the list: webpki checks the list's signature against the CA.
        let anchor = chain::validate(
            &presented.leaf,
            &presented.intermediates,
            &authorities,
            now,
            None,
        )
        .map_err(fail)?;
        if let Some(url) = &authorities[anchor].crl_url {
            let Some(list) = self.crls.get(self.crl_source().as_ref(), url, now).await else {
                return Err(fail(CertificateFailure::RevocationUnavailable));
            };
            // A list from another issuer says nothing about this certificate: fail closed.
            if chain::subject_der(&authorities[anchor].der).as_deref() != Some(&list.issuer[..]) {
                return Err(fail(CertificateFailure::RevocationUnavailable));
            }
            let lists = [&list.crl];
            chain::validate(
                &presented.leaf,
                &presented.intermediates,
                &authorities,
                now,
                Some(&lists),
            )
            .map_err(fail)?;
        }
        let (user, binding) = self.find_user(config, &facts).await.map_err(fail)?;
        if !user.enabled {
            return Err(fail(CertificateFailure::UserDisabled));
        }
        let allowed = self
            .access
            .method_allowed(&user.id, MethodKind::X509Certificate)
            .await
            .map_err(|_| fail(CertificateFailure::Unavailable))?;
        if !allowed {
            return Err(fail(CertificateFailure::MethodNotAllowed));
        }
        let (mode, rule, decision) = rules::decide_mode(config, &facts);
        Ok(CertificateSignIn {
            user,
            facts,
            binding,
            mode,
            rule,
            decision,
        })
    }

    /// The first binding (in priority order) that finds exactly one user wins; one that finds
    /// several refuses the certificate.
    async fn find_user(
        &self,
        config: &crate::policy::X509Config,
        facts: &CertificateFacts,
    ) -> Result<(User, UsernameBinding), CertificateFailure> {
        for binding in rules::bindings_in_order(config) {
            let mut found: Vec<User> = vec![];
            match binding.user_property {
                UserProperty::UserPrincipalName | UserProperty::OnPremisesUserPrincipalName => {
                    for value in rules::upn_candidates(binding.x509_certificate_field, facts) {
                        let Ok(upn) = Upn::parse(&value) else {
                            continue;
                        };
                        if let Some(user) = self
                            .users
                            .user_by_upn(&upn)
                            .await
                            .map_err(|_| CertificateFailure::Unavailable)?
                        {
                            found.push(user);
                        }
                    }
                }
                UserProperty::CertificateUserIds => {
                    for value in
                        rules::certificate_user_id_candidates(binding.x509_certificate_field, facts)
                    {
                        found.extend(
                            self.users
                                .users_by_certificate_user_id(&value)
                                .await
                                .map_err(|_| CertificateFailure::Unavailable)?,
                        );
                    }
                }
            }
            let mut ids: Vec<&UserId> = found.iter().map(|u| &u.id).collect();
            ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            ids.dedup();
            match ids.len() {
                0 => continue,
                1 => return Ok((found.swap_remove(0), binding)),
                _ => return Err(CertificateFailure::SeveralUsers),
            }
        }
        Err(CertificateFailure::NoMatchingUser)
    }
}
