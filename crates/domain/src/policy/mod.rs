//! The authentication methods policy, shaped after Microsoft Graph's
//! `authenticationMethodsPolicy`: one configuration per method, each enabled or disabled for
//! all users or groups, with exclusions that always win.
//!
//! [`evaluate`] is the one place that answers "may this user use this method, how, and with
//! which notification features?". Registration and sign-in call it; the console shows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::credential::{PassRules, validate_pass_rules};
use crate::error::DomainError;
use crate::ids::GroupId;

mod campaign;
mod evaluate;
mod validate;

pub use campaign::{
    ALLOWED_SNOOZES, CampaignIncludeTarget, CampaignTargeting, MAX_SNOOZE_DAYS,
    RegistrationCampaign, RegistrationEnforcement, TargetedMethod,
};

pub use evaluate::{EffectiveFeature, Evaluation, UserGroups, evaluate};

/// Graph's id for "every user" in a target.
pub const ALL_USERS: &str = "all_users";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodKind {
    MicrosoftAuthenticator,
    Fido2,
    TemporaryAccessPass,
    X509Certificate,
    Password,
}

impl MethodKind {
    pub const ALL: [MethodKind; 5] = [
        MethodKind::MicrosoftAuthenticator,
        MethodKind::Fido2,
        MethodKind::TemporaryAccessPass,
        MethodKind::X509Certificate,
        MethodKind::Password,
    ];

    /// The id used in URLs, the API and the command line: the serde name (Graph's), except
    /// that the authenticator app is `authenticator` in paths while the API body keeps Graph's
    /// `microsoftAuthenticator`.
    pub fn id(self) -> &'static str {
        match self {
            MethodKind::MicrosoftAuthenticator => "authenticator",
            other => crate::names::serde_name(&other),
        }
    }

    pub fn parse(id: &str) -> Result<MethodKind, DomainError> {
        MethodKind::ALL
            .into_iter()
            .find(|m| m.id().eq_ignore_ascii_case(id))
            .ok_or_else(|| DomainError::invalid("method", format!("unknown method {id:?}; use authenticator, fido2, temporaryAccessPass, x509Certificate or password")))
    }

    pub fn label(self) -> &'static str {
        match self {
            MethodKind::MicrosoftAuthenticator => "Authenticator app",
            MethodKind::Fido2 => "Passkeys (FIDO2)",
            MethodKind::TemporaryAccessPass => "Temporary Access Pass",
            MethodKind::X509Certificate => "Certificate-based authentication",
            MethodKind::Password => "Password",
        }
    }
}

/// Who a rule applies to: everyone, or the members of one group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    AllUsers,
    Group(GroupId),
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let id = match self {
            Target::AllUsers => ALL_USERS,
            Target::Group(g) => g.as_str(),
        };
        serde::Serialize::serialize(
            &TargetRepr {
                target_type: "group".into(),
                id: id.into(),
            },
            s,
        )
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = TargetRepr::deserialize(d)?;
        if repr.target_type != "group" {
            return Err(serde::de::Error::custom("targetType must be \"group\""));
        }
        Ok(if repr.id == ALL_USERS {
            Target::AllUsers
        } else {
            Target::Group(GroupId::from_string(repr.id))
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetRepr {
    #[serde(default = "group_type")]
    target_type: String,
    id: String,
}

fn group_type() -> String {
    "group".into()
}

/// How the authenticator app may be used (console labels: Any, Push, Passwordless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthenticationMode {
    /// Both MFA push and phone sign-in.
    #[serde(rename = "any")]
    Any,
    /// Only as a second factor after a password.
    #[serde(rename = "push")]
    Push,
    /// Only passwordless phone sign-in. Graph calls it `deviceBasedPush`.
    #[serde(rename = "deviceBasedPush", alias = "passwordless")]
    Passwordless,
}

impl AuthenticationMode {
    pub fn allows_push(self) -> bool {
        matches!(self, AuthenticationMode::Any | AuthenticationMode::Push)
    }

    pub fn allows_phone_sign_in(self) -> bool {
        matches!(
            self,
            AuthenticationMode::Any | AuthenticationMode::Passwordless
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            AuthenticationMode::Any => "Any",
            AuthenticationMode::Push => "Push",
            AuthenticationMode::Passwordless => "Passwordless",
        }
    }

    /// What a user in several targets gets: the union of what each allows.
    fn union(self, other: AuthenticationMode) -> AuthenticationMode {
        if self == other {
            self
        } else {
            AuthenticationMode::Any
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncludeTarget {
    #[serde(flatten)]
    pub target: Target,
    /// Only for the authenticator app; ignored (and refused) elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_mode: Option<AuthenticationMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FeatureState {
    Default,
    Enabled,
    Disabled,
}

/// One authenticator notification feature: its state, whom it includes, whom it excludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeatureSetting {
    pub state: FeatureState,
    pub include_target: Target,
    /// `None` is Graph's all-zero "no exclusion" id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_target: Option<Target>,
}

impl FeatureSetting {
    fn default_for_all() -> Self {
        FeatureSetting {
            state: FeatureState::Default,
            include_target: Target::AllUsers,
            exclude_target: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Feature {
    NumberMatching,
    DisplayAppInformation,
    DisplayLocationInformation,
    ReportSuspiciousActivity,
    /// Latchkey's own: hold back the push for an unusual sign-in (see [`crate::anomaly`]).
    SuppressAnomalousNotifications,
}

impl Feature {
    pub const ALL: [Feature; 5] = [
        Feature::NumberMatching,
        Feature::DisplayAppInformation,
        Feature::DisplayLocationInformation,
        Feature::ReportSuspiciousActivity,
        Feature::SuppressAnomalousNotifications,
    ];

    /// What `default` means in Latchkey. For the notification's content, stricter than Entra's
    /// "Microsoft managed" values (all off): the application name and location are what let a
    /// person spot a sign-in that is not theirs, and reporting it is how they stop it, so all
    /// are on unless an administrator turns them off.
    ///
    /// Holding back unusual notifications is off: it changes how every affected user signs in
    /// (they must open the app and look, instead of being told), and it judges "unusual" from
    /// history Latchkey may not have yet (no GeoIP database, a fresh install), so an
    /// administrator opts in knowingly.
    pub fn built_in_default(self) -> bool {
        self != Feature::SuppressAnomalousNotifications
    }

    pub fn label(self) -> &'static str {
        match self {
            Feature::NumberMatching => "Require number matching for push notifications",
            Feature::DisplayAppInformation => {
                "Show application name in push and passwordless notifications"
            }
            Feature::DisplayLocationInformation => {
                "Show geographic location in push and passwordless notifications"
            }
            Feature::ReportSuspiciousActivity => "Report suspicious activity",
            Feature::SuppressAnomalousNotifications => {
                "Don't push notifications for unusual sign-ins"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticatorFeatures {
    /// Always on: the setting exists to be shown, and `disabled` is refused.
    pub number_matching_required_state: FeatureSetting,
    pub display_app_information_required_state: FeatureSetting,
    pub display_location_information_required_state: FeatureSetting,
    pub report_suspicious_activity_state: FeatureSetting,
    /// Latchkey's addition, so policies saved before it existed have no such field: they load
    /// with the default (`default`, all users), which is off.
    #[serde(default = "FeatureSetting::default_for_all")]
    pub suppress_anomalous_notifications_state: FeatureSetting,
}

impl AuthenticatorFeatures {
    pub fn setting(&self, feature: Feature) -> &FeatureSetting {
        match feature {
            Feature::NumberMatching => &self.number_matching_required_state,
            Feature::DisplayAppInformation => &self.display_app_information_required_state,
            Feature::DisplayLocationInformation => {
                &self.display_location_information_required_state
            }
            Feature::ReportSuspiciousActivity => &self.report_suspicious_activity_state,
            Feature::SuppressAnomalousNotifications => &self.suppress_anomalous_notifications_state,
        }
    }
}

impl Default for AuthenticatorFeatures {
    fn default() -> Self {
        AuthenticatorFeatures {
            number_matching_required_state: FeatureSetting::default_for_all(),
            display_app_information_required_state: FeatureSetting::default_for_all(),
            display_location_information_required_state: FeatureSetting::default_for_all(),
            report_suspicious_activity_state: FeatureSetting::default_for_all(),
            suppress_anomalous_notifications_state: FeatureSetting::default_for_all(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodState {
    Enabled,
    Disabled,
}

/// What every method configuration has: state, include and exclude targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Targeting {
    pub state: MethodState,
    pub include_targets: Vec<IncludeTarget>,
    #[serde(default)]
    pub exclude_targets: Vec<Target>,
}

impl Targeting {
    fn everyone(state: MethodState, mode: Option<AuthenticationMode>) -> Self {
        Targeting {
            state,
            include_targets: vec![IncludeTarget {
                target: Target::AllUsers,
                authentication_mode: mode,
            }],
            exclude_targets: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorConfig {
    #[serde(flatten)]
    pub targeting: Targeting,
    pub feature_settings: AuthenticatorFeatures,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnforcementType {
    Allow,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRestrictions {
    pub is_enforced: bool,
    pub enforcement_type: EnforcementType,
    pub aa_guids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Config {
    #[serde(flatten)]
    pub targeting: Targeting,
    pub is_self_service_registration_allowed: bool,
    pub is_attestation_enforced: bool,
    pub key_restrictions: KeyRestrictions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPassConfig {
    #[serde(flatten)]
    pub targeting: Targeting,
    pub minimum_lifetime_in_minutes: u32,
    pub maximum_lifetime_in_minutes: u32,
    pub default_lifetime_in_minutes: u32,
    pub default_length: u32,
    pub is_usable_once: bool,
}

impl TemporaryAccessPassConfig {
    pub fn rules(&self) -> PassRules {
        PassRules {
            min_lifetime_minutes: self.minimum_lifetime_in_minutes,
            max_lifetime_minutes: self.maximum_lifetime_in_minutes,
            default_lifetime_minutes: self.default_lifetime_in_minutes,
            default_length: self.default_length,
            one_time_only: self.is_usable_once,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum X509AuthenticationMode {
    X509CertificateSingleFactor,
    X509CertificateMultiFactor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertificateField {
    PrincipalName,
    RFC822Name,
    IssuerAndSubject,
    Subject,
    SKI,
    SHA1PublicKey,
    IssuerAndSerialNumber,
}

impl CertificateField {
    /// Entra's affinity: fields an attacker cannot choose for a certificate are high.
    pub fn natural_affinity(self) -> Affinity {
        match self {
            CertificateField::PrincipalName
            | CertificateField::RFC822Name
            | CertificateField::IssuerAndSubject
            | CertificateField::Subject => Affinity::Low,
            _ => Affinity::High,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserProperty {
    UserPrincipalName,
    OnPremisesUserPrincipalName,
    CertificateUserIds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Affinity {
    Low,
    High,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsernameBinding {
    pub x509_certificate_field: CertificateField,
    pub user_property: UserProperty,
    pub priority: u32,
    pub trust_affinity_level: Affinity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct X509Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_oid: Option<String>,
    pub authentication_mode: X509AuthenticationMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedCertificateAuthority {
    pub display_name: String,
    /// PEM of the CA certificate.
    pub certificate: String,
    /// The CA's certificate revocation list (http or https). When set, sign-ins with a
    /// certificate from this CA fail closed unless the list can be had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_revocation_list_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct X509Config {
    #[serde(flatten)]
    pub targeting: Targeting,
    pub certificate_authorities: Vec<TrustedCertificateAuthority>,
    pub certificate_user_bindings: Vec<UsernameBinding>,
    pub rules: Vec<X509Rule>,
    pub default_mode: X509AuthenticationMode,
    /// Only high-affinity bindings may find the user (Entra's affinity requirement).
    #[serde(default)]
    pub require_high_affinity_binding: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordConfig {
    #[serde(flatten)]
    pub targeting: Targeting,
}

/// The whole policy. `version` grows by one with every saved change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationMethodsPolicy {
    pub version: u64,
    pub authenticator: AuthenticatorConfig,
    pub fido2: Fido2Config,
    pub temporary_access_pass: TemporaryAccessPassConfig,
    pub x509_certificate: X509Config,
    pub password: PasswordConfig,
    /// Graph's `registrationEnforcement`: the registration campaign. Policies saved before it
    /// existed load with its default (off).
    #[serde(default)]
    pub registration_enforcement: RegistrationEnforcement,
}

impl Default for AuthenticationMethodsPolicy {
    /// The documented defaults (docs/policy.md): the authenticator app, passes and passwords
    /// enabled for all users; passkeys and certificates off until configured.
    fn default() -> Self {
        let rules = PassRules::default();
        AuthenticationMethodsPolicy {
            version: 0,
            authenticator: default_config(MethodKind::MicrosoftAuthenticator)
                .expect_authenticator(),
            fido2: default_config(MethodKind::Fido2).expect_fido2(),
            temporary_access_pass: TemporaryAccessPassConfig {
                targeting: Targeting::everyone(MethodState::Enabled, None),
                minimum_lifetime_in_minutes: rules.min_lifetime_minutes,
                maximum_lifetime_in_minutes: rules.max_lifetime_minutes,
                default_lifetime_in_minutes: rules.default_lifetime_minutes,
                default_length: rules.default_length,
                is_usable_once: rules.one_time_only,
            },
            x509_certificate: default_config(MethodKind::X509Certificate).expect_x509(),
            password: PasswordConfig {
                targeting: Targeting::everyone(MethodState::Enabled, None),
            },
            registration_enforcement: RegistrationEnforcement::default(),
        }
    }
}

/// One method's configuration, as the API reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MethodConfiguration {
    Authenticator(AuthenticatorConfig),
    Fido2(Fido2Config),
    TemporaryAccessPass(TemporaryAccessPassConfig),
    X509Certificate(X509Config),
    Password(PasswordConfig),
}

impl MethodConfiguration {
    fn expect_authenticator(self) -> AuthenticatorConfig {
        match self {
            MethodConfiguration::Authenticator(c) => c,
            _ => unreachable!("authenticator default"),
        }
    }
    fn expect_fido2(self) -> Fido2Config {
        match self {
            MethodConfiguration::Fido2(c) => c,
            _ => unreachable!("fido2 default"),
        }
    }
    fn expect_x509(self) -> X509Config {
        match self {
            MethodConfiguration::X509Certificate(c) => c,
            _ => unreachable!("x509 default"),
        }
    }

    pub fn targeting(&self) -> &Targeting {
        match self {
            MethodConfiguration::Authenticator(c) => &c.targeting,
            MethodConfiguration::Fido2(c) => &c.targeting,
            MethodConfiguration::TemporaryAccessPass(c) => &c.targeting,
            MethodConfiguration::X509Certificate(c) => &c.targeting,
            MethodConfiguration::Password(c) => &c.targeting,
        }
    }

    /// Parses a method's configuration from JSON, refusing unknown fields and wrong types with
    /// a message that names the field.
    pub fn from_json(
        kind: MethodKind,
        value: serde_json::Value,
    ) -> Result<MethodConfiguration, DomainError> {
        // serde cannot refuse unknown fields through `flatten`, so the parsed value is written
        // back and every field of the input must be found in it.
        fn parse<T: serde::de::DeserializeOwned + Serialize>(
            value: serde_json::Value,
        ) -> Result<T, DomainError> {
            // serde_path_to_error names the field a wrong type was found in.
            let parsed: T = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
                let path = e.path().to_string();
                DomainError::invalid("configuration", format!("{path}: {}", e.into_inner()))
            })?;
            let written =
                serde_json::to_value(&parsed).map_err(|e| DomainError::Internal(e.to_string()))?;
            match first_unknown_field(&value, &written, "") {
                Some(path) => Err(DomainError::invalid(
                    "configuration",
                    format!("unknown field `{path}`"),
                )),
                None => Ok(parsed),
            }
        }
        Ok(match kind {
            MethodKind::MicrosoftAuthenticator => MethodConfiguration::Authenticator(parse(value)?),
            MethodKind::Fido2 => MethodConfiguration::Fido2(parse(value)?),
            MethodKind::TemporaryAccessPass => {
                MethodConfiguration::TemporaryAccessPass(parse(value)?)
            }
            MethodKind::X509Certificate => MethodConfiguration::X509Certificate(parse(value)?),
            MethodKind::Password => MethodConfiguration::Password(parse(value)?),
        })
    }
}

/// The first field of `input` that `known` (the parsed input, written back) does not have.
fn first_unknown_field(
    input: &serde_json::Value,
    known: &serde_json::Value,
    path: &str,
) -> Option<String> {
    use serde_json::Value;
    match (input, known) {
        (Value::Object(given), Value::Object(kept)) => given.iter().find_map(|(key, value)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match kept.get(key) {
                Some(inner) => first_unknown_field(value, inner, &here),
                None if value.is_null() => None,
                None => Some(here),
            }
        }),
        (Value::Array(given), Value::Array(kept)) => {
            given
                .iter()
                .zip(kept)
                .enumerate()
                .find_map(|(i, (value, inner))| {
                    first_unknown_field(value, inner, &format!("{path}[{i}]"))
                })
        }
        _ => None,
    }
}

/// The documented default configuration of one method.
pub fn default_config(kind: MethodKind) -> MethodConfiguration {
    match kind {
        MethodKind::MicrosoftAuthenticator => {
            MethodConfiguration::Authenticator(AuthenticatorConfig {
                targeting: Targeting::everyone(MethodState::Enabled, Some(AuthenticationMode::Any)),
                feature_settings: AuthenticatorFeatures::default(),
            })
        }
        MethodKind::Fido2 => MethodConfiguration::Fido2(Fido2Config {
            targeting: Targeting::everyone(MethodState::Disabled, None),
            is_self_service_registration_allowed: true,
            is_attestation_enforced: false,
            key_restrictions: KeyRestrictions {
                is_enforced: false,
                enforcement_type: EnforcementType::Block,
                aa_guids: vec![],
            },
        }),
        MethodKind::TemporaryAccessPass => MethodConfiguration::TemporaryAccessPass(
            AuthenticationMethodsPolicy::default().temporary_access_pass,
        ),
        MethodKind::X509Certificate => MethodConfiguration::X509Certificate(X509Config {
            targeting: Targeting::everyone(MethodState::Disabled, None),
            certificate_authorities: vec![],
            certificate_user_bindings: vec![UsernameBinding {
                x509_certificate_field: CertificateField::PrincipalName,
                user_property: UserProperty::UserPrincipalName,
                priority: 1,
                trust_affinity_level: Affinity::Low,
            }],
            rules: vec![],
            default_mode: X509AuthenticationMode::X509CertificateSingleFactor,
            require_high_affinity_binding: false,
        }),
        MethodKind::Password => MethodConfiguration::Password(PasswordConfig {
            targeting: Targeting::everyone(MethodState::Enabled, None),
        }),
    }
}

/// Targets as the policy tests write them.
#[cfg(test)]
mod test_targets {
    use super::*;

    pub fn group(id: &str) -> GroupId {
        GroupId::from_string(id)
    }

    pub fn include(target: Target, mode: AuthenticationMode) -> IncludeTarget {
        IncludeTarget {
            target,
            authentication_mode: Some(mode),
        }
    }
}

#[cfg(test)]
mod method_ids {
    use super::MethodKind;

    #[test]
    fn method_ids_stay_as_the_paths_use_them() {
        let ids: Vec<&str> = MethodKind::ALL.into_iter().map(MethodKind::id).collect();
        assert_eq!(
            ids,
            [
                "authenticator",
                "fido2",
                "temporaryAccessPass",
                "x509Certificate",
                "password"
            ]
        );
        for kind in MethodKind::ALL {
            assert_eq!(MethodKind::parse(kind.id()).unwrap(), kind);
        }
        assert_eq!(
            MethodKind::parse("TEMPORARYACCESSPASS").unwrap(),
            MethodKind::TemporaryAccessPass
        );
    }
}
