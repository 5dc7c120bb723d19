//! Which binding finds the user and which rule decides single- or multi-factor.

use super::facts::{CertificateFacts, comparable_dn};
use crate::policy::{
    Affinity, CertificateField, UsernameBinding, X509AuthenticationMode, X509Config, X509Rule,
};

/// The bindings in the order they are tried: lowest priority number first; with the policy's
/// high-affinity requirement, only high-affinity ones. No bindings at all: Entra's default,
/// SAN principal name → user principal name.
pub(crate) fn bindings_in_order(config: &X509Config) -> Vec<UsernameBinding> {
    let mut bindings: Vec<UsernameBinding> = if config.certificate_user_bindings.is_empty() {
        vec![default_binding()]
    } else {
        config.certificate_user_bindings.clone()
    };
    if config.require_high_affinity_binding {
        bindings.retain(|b| b.trust_affinity_level == Affinity::High);
    }
    bindings.sort_by_key(|b| b.priority);
    bindings
}

pub(crate) fn default_binding() -> UsernameBinding {
    UsernameBinding {
        x509_certificate_field: CertificateField::PrincipalName,
        user_property: crate::policy::UserProperty::UserPrincipalName,
        priority: 1,
        trust_affinity_level: Affinity::Low,
    }
}

/// The values a binding's certificate field has in this certificate, as a user principal name
/// would be compared (principal and RFC 822 names only: the other fields are no UPN).
pub(crate) fn upn_candidates(field: CertificateField, facts: &CertificateFacts) -> Vec<String> {
    match field {
        CertificateField::PrincipalName => facts.principal_names.clone(),
        CertificateField::RFC822Name => facts.rfc822_names.clone(),
        _ => vec![],
    }
}

/// The certificate user ids (Entra's `X509:<…>` formats) this certificate field gives.
pub(crate) fn certificate_user_id_candidates(
    field: CertificateField,
    facts: &CertificateFacts,
) -> Vec<String> {
    match field {
        CertificateField::PrincipalName => facts
            .principal_names
            .iter()
            .map(|v| format!("X509:<PN>{}", v.to_lowercase()))
            .collect(),
        CertificateField::RFC822Name => facts
            .rfc822_names
            .iter()
            .map(|v| format!("X509:<RFC822>{}", v.to_lowercase()))
            .collect(),
        CertificateField::IssuerAndSubject => {
            vec![format!("X509:<I>{}<S>{}", facts.issuer, facts.subject)]
        }
        CertificateField::Subject => vec![format!("X509:<S>{}", facts.subject)],
        CertificateField::SKI => facts
            .subject_key_identifier
            .iter()
            .map(|ski| format!("X509:<SKI>{ski}"))
            .collect(),
        CertificateField::SHA1PublicKey => {
            vec![format!("X509:<SHA1-PUKEY>{}", facts.sha1_public_key)]
        }
        CertificateField::IssuerAndSerialNumber => {
            vec![format!("X509:<I>{}<SR>{}", facts.issuer, facts.serial)]
        }
    }
}

/// Which rule decided the authentication mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeDecision {
    /// A rule naming both the issuer and a policy OID matched.
    IssuerAndPolicyOid,
    /// A rule naming a policy OID matched.
    PolicyOid,
    /// A rule naming the issuer matched.
    Issuer,
    /// Two matching rules of the deciding kind disagree: single-factor (Entra's rule).
    ConflictingRules,
    /// No rule matched: the policy's default mode.
    Default,
}

impl ModeDecision {
    /// How the sign-in log names the decision.
    pub fn as_str(self) -> &'static str {
        match self {
            ModeDecision::IssuerAndPolicyOid => "issuerAndPolicyOid",
            ModeDecision::PolicyOid => "policyOid",
            ModeDecision::Issuer => "issuer",
            ModeDecision::ConflictingRules => "conflictingRules",
            ModeDecision::Default => "default",
        }
    }
}

/// The authentication mode: issuer+OID rules beat OID rules beat issuer rules; matching rules
/// of the deciding kind that disagree make the certificate single-factor; no rule, the default.
pub(crate) fn decide_mode(
    config: &X509Config,
    facts: &CertificateFacts,
) -> (X509AuthenticationMode, Option<X509Rule>, ModeDecision) {
    let issuer = comparable_dn(&facts.issuer);
    let issuer_matches =
        |rule: &X509Rule| rule.issuer_subject.as_deref().map(comparable_dn) == Some(issuer.clone());
    let oid_matches = |rule: &X509Rule| {
        rule.policy_oid
            .as_deref()
            .is_some_and(|oid| facts.policy_oids.iter().any(|o| o == oid))
    };
    // Which kind of rule each is, if it matches this certificate at all.
    let kind = |r: &X509Rule| match (&r.issuer_subject, &r.policy_oid) {
        (Some(_), Some(_)) if issuer_matches(r) && oid_matches(r) => {
            Some(ModeDecision::IssuerAndPolicyOid)
        }
        (None, Some(_)) if oid_matches(r) => Some(ModeDecision::PolicyOid),
        (Some(_), None) if issuer_matches(r) => Some(ModeDecision::Issuer),
        _ => None,
    };
    let tiers = [
        ModeDecision::IssuerAndPolicyOid,
        ModeDecision::PolicyOid,
        ModeDecision::Issuer,
    ];
    for decision in tiers {
        let matching: Vec<&X509Rule> = config
            .rules
            .iter()
            .filter(|r| kind(r) == Some(decision))
            .collect();
        let Some(first) = matching.first() else {
            continue;
        };
        if matching
            .iter()
            .any(|r| r.authentication_mode != first.authentication_mode)
        {
            return (
                X509AuthenticationMode::X509CertificateSingleFactor,
                None,
                ModeDecision::ConflictingRules,
            );
        }
        return (first.authentication_mode, Some((*first).clone()), decision);
    }
    (config.default_mode, None, ModeDecision::Default)
}
