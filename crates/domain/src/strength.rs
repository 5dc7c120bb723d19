//! Authentication strengths, as Entra names its built-in ones: which ways of signing in are
//! strong enough for an application (or for one OpenID Connect request, through `acr_values`).
//!
//! Each strength is a set of allowed [`AuthMethod`]s, and the three nest: every method that is
//! phishing-resistant is passwordless, and every passwordless method is multi-factor. The
//! `acr` claim names the strongest strength a session meets, so an application can check it.

use serde::{Deserialize, Serialize};

use crate::session::{ACR_MFA, ACR_PASSWORDLESS_MFA, ACR_PHISHING_RESISTANT_MFA, AuthMethod};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthStrength {
    /// Entra's "Multifactor authentication": any two factors, a password among them allowed.
    Mfa,
    /// Entra's "Passwordless MFA": two factors without a password.
    PasswordlessMfa,
    /// Entra's "Phishing-resistant MFA": a key bound to the site's origin (passkeys, security
    /// keys, platform authenticators), unlocked by the user.
    PhishingResistantMfa,
}

impl AuthStrength {
    /// Weakest first.
    pub const ALL: [AuthStrength; 3] = [
        AuthStrength::Mfa,
        AuthStrength::PasswordlessMfa,
        AuthStrength::PhishingResistantMfa,
    ];

    /// The id in the admin API, the command line and the console's form.
    pub fn id(self) -> &'static str {
        match self {
            AuthStrength::Mfa => "mfa",
            AuthStrength::PasswordlessMfa => "passwordlessMfa",
            AuthStrength::PhishingResistantMfa => "phishingResistantMfa",
        }
    }

    pub fn parse(id: &str) -> Option<AuthStrength> {
        AuthStrength::ALL
            .into_iter()
            .find(|s| s.id().eq_ignore_ascii_case(id))
    }

    /// Entra's display name.
    pub fn label(self) -> &'static str {
        match self {
            AuthStrength::Mfa => "Multifactor authentication",
            AuthStrength::PasswordlessMfa => "Passwordless MFA",
            AuthStrength::PhishingResistantMfa => "Phishing-resistant MFA",
        }
    }

    /// The `acr` value that stands for this strength, in tokens and in `acr_values`.
    pub fn acr(self) -> &'static str {
        match self {
            AuthStrength::Mfa => ACR_MFA,
            AuthStrength::PasswordlessMfa => ACR_PASSWORDLESS_MFA,
            AuthStrength::PhishingResistantMfa => ACR_PHISHING_RESISTANT_MFA,
        }
    }

    /// The strength an `acr` value asks for; `None` for values Latchkey does not define.
    pub fn from_acr(acr: &str) -> Option<AuthStrength> {
        AuthStrength::ALL.into_iter().find(|s| s.acr() == acr)
    }

    /// Whether signing in with `method` meets this strength.
    pub fn allows(self, method: AuthMethod) -> bool {
        use AuthMethod::*;
        match self {
            AuthStrength::Mfa => matches!(
                method,
                TemporaryAccessPass
                    | PhoneSignIn
                    | PasswordAndPush
                    | DeviceBoundPasskey
                    | SyncedPasskey
                    | CertificateMultiFactor
            ),
            // As in Entra's built-in strengths, a Temporary Access Pass counts as multi-factor
            // (an administrator checked the person) but not as passwordless MFA.
            AuthStrength::PasswordlessMfa => {
                matches!(
                    method,
                    PhoneSignIn | DeviceBoundPasskey | SyncedPasskey | CertificateMultiFactor
                )
            }
            // As in Entra, a multi-factor certificate is phishing-resistant: the private key
            // never leaves the card, and the TLS handshake binds it to this host.
            AuthStrength::PhishingResistantMfa => {
                matches!(
                    method,
                    DeviceBoundPasskey | SyncedPasskey | CertificateMultiFactor
                )
            }
        }
    }

    /// The strongest strength `method` meets, if any.
    pub fn strongest_met_by(method: AuthMethod) -> Option<AuthStrength> {
        AuthStrength::ALL
            .into_iter()
            .rev()
            .find(|s| s.allows(method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHODS: [AuthMethod; 8] = [
        AuthMethod::CertificateMultiFactor,
        AuthMethod::CertificateSingleFactor,
        AuthMethod::TemporaryAccessPass,
        AuthMethod::Password,
        AuthMethod::PhoneSignIn,
        AuthMethod::PasswordAndPush,
        AuthMethod::DeviceBoundPasskey,
        AuthMethod::SyncedPasskey,
    ];

    #[test]
    fn strengths_nest_so_a_stronger_one_is_never_met_by_a_method_a_weaker_one_refuses() {
        for method in METHODS {
            for pair in AuthStrength::ALL.windows(2) {
                assert!(
                    !pair[1].allows(method) || pair[0].allows(method),
                    "{method:?} meets {:?} but not {:?}",
                    pair[1],
                    pair[0]
                );
            }
        }
    }

    #[test]
    fn phone_sign_in_is_passwordless_but_not_phishing_resistant_and_a_password_meets_none() {
        use AuthStrength::*;
        assert_eq!(
            AuthStrength::strongest_met_by(AuthMethod::PhoneSignIn),
            Some(PasswordlessMfa)
        );
        assert_eq!(
            AuthStrength::strongest_met_by(AuthMethod::DeviceBoundPasskey),
            Some(PhishingResistantMfa)
        );
        assert_eq!(
            AuthStrength::strongest_met_by(AuthMethod::SyncedPasskey),
            Some(PhishingResistantMfa)
        );
        assert_eq!(
            AuthStrength::strongest_met_by(AuthMethod::PasswordAndPush),
            Some(Mfa)
        );
        assert_eq!(AuthStrength::strongest_met_by(AuthMethod::Password), None);
        assert_eq!(
            AuthStrength::strongest_met_by(AuthMethod::CertificateMultiFactor),
            Some(PhishingResistantMfa)
        );
        assert_eq!(
            AuthStrength::strongest_met_by(AuthMethod::CertificateSingleFactor),
            None
        );
    }

    #[test]
    fn the_acr_a_method_reports_is_the_strongest_strength_it_meets() {
        for method in METHODS {
            match AuthStrength::strongest_met_by(method) {
                Some(strength) => assert_eq!(method.acr(), strength.acr(), "{method:?}"),
                None => assert_eq!(method.acr(), crate::session::ACR_SINGLE_FACTOR),
            }
        }
        for strength in AuthStrength::ALL {
            assert_eq!(AuthStrength::from_acr(strength.acr()), Some(strength));
            assert_eq!(AuthStrength::parse(strength.id()), Some(strength));
        }
        assert_eq!(AuthStrength::from_acr("urn:other:gold"), None);
    }
}
