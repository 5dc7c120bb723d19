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

    /// The id used in URLs, the API and the command line.
    pub fn id(self) -> &'static str {
        match self {
            MethodKind::MicrosoftAuthenticator => "authenticator",
            MethodKind::Fido2 => "fido2",
            MethodKind::TemporaryAccessPass => "temporaryAccessPass",
            MethodKind::X509Certificate => "x509Certificate",
            MethodKind::Password => "password",
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
        }),
        MethodKind::Password => MethodConfiguration::Password(PasswordConfig {
            targeting: Targeting::everyone(MethodState::Enabled, None),
        }),
    }
}

impl AuthenticationMethodsPolicy {
    pub fn configuration(&self, kind: MethodKind) -> MethodConfiguration {
        match kind {
            MethodKind::MicrosoftAuthenticator => {
                MethodConfiguration::Authenticator(self.authenticator.clone())
            }
            MethodKind::Fido2 => MethodConfiguration::Fido2(self.fido2.clone()),
            MethodKind::TemporaryAccessPass => {
                MethodConfiguration::TemporaryAccessPass(self.temporary_access_pass.clone())
            }
            MethodKind::X509Certificate => {
                MethodConfiguration::X509Certificate(self.x509_certificate.clone())
            }
            MethodKind::Password => MethodConfiguration::Password(self.password.clone()),
        }
    }

    /// A copy with one method's configuration replaced (not yet validated).
    pub fn with(&self, configuration: MethodConfiguration) -> AuthenticationMethodsPolicy {
        let mut next = self.clone();
        match configuration {
            MethodConfiguration::Authenticator(c) => next.authenticator = c,
            MethodConfiguration::Fido2(c) => next.fido2 = c,
            MethodConfiguration::TemporaryAccessPass(c) => next.temporary_access_pass = c,
            MethodConfiguration::X509Certificate(c) => next.x509_certificate = c,
            MethodConfiguration::Password(c) => next.password = c,
        }
        next
    }

    /// Checks the whole policy; `group_exists` answers whether a group id is known.
    pub fn validate(&self, group_exists: &dyn Fn(&GroupId) -> bool) -> Result<(), DomainError> {
        let check_target = |field: &'static str, target: &Target| match target {
            Target::Group(id) if !group_exists(id) => Err(DomainError::invalid(
                field,
                format!("group {id} does not exist"),
            )),
            _ => Ok(()),
        };
        for kind in MethodKind::ALL {
            let config = self.configuration(kind);
            let targeting = config.targeting();
            let prefix = kind.id();
            if targeting.include_targets.len() > 50 || targeting.exclude_targets.len() > 50 {
                return Err(DomainError::invalid(
                    "includeTargets",
                    format!("{prefix}: at most 50 targets"),
                ));
            }
            for include in &targeting.include_targets {
                check_target("includeTargets", &include.target)?;
                match (kind, include.authentication_mode) {
                    (MethodKind::MicrosoftAuthenticator, None) => {
                        return Err(DomainError::invalid(
                            "includeTargets.authenticationMode",
                            "is required for the authenticator app",
                        ));
                    }
                    (MethodKind::MicrosoftAuthenticator, Some(_)) | (_, None) => {}
                    (_, Some(_)) => {
                        return Err(DomainError::invalid(
                            "includeTargets.authenticationMode",
                            format!("applies only to the authenticator app, not {prefix}"),
                        ));
                    }
                }
            }
            for exclude in &targeting.exclude_targets {
                if *exclude == Target::AllUsers {
                    return Err(DomainError::invalid(
                        "excludeTargets",
                        "cannot exclude all users; disable the method instead",
                    ));
                }
                check_target("excludeTargets", exclude)?;
            }
        }
        for feature in Feature::ALL {
            let setting = self.authenticator.feature_settings.setting(feature);
            check_target("featureSettings.includeTarget", &setting.include_target)?;
            if let Some(exclude) = &setting.exclude_target {
                if *exclude == Target::AllUsers {
                    return Err(DomainError::invalid(
                        "featureSettings.excludeTarget",
                        "cannot exclude all users; disable the feature instead",
                    ));
                }
                check_target("featureSettings.excludeTarget", exclude)?;
            }
        }
        if self
            .authenticator
            .feature_settings
            .number_matching_required_state
            .state
            == FeatureState::Disabled
        {
            return Err(DomainError::invalid(
                "featureSettings.numberMatchingRequiredState",
                "number matching is always on for authenticator notifications and cannot be disabled",
            ));
        }
        let tap = &self.temporary_access_pass;
        validate_pass_rules(&tap.rules()).map_err(|e| match e {
            DomainError::Invalid { field, message } => DomainError::invalid(field, message),
            other => other,
        })?;
        let fido = &self.fido2.key_restrictions;
        if fido.aa_guids.len() > 500 {
            return Err(DomainError::invalid(
                "keyRestrictions.aaGuids",
                "at most 500 AAGUIDs",
            ));
        }
        for guid in &fido.aa_guids {
            if !is_uuid(guid) {
                return Err(DomainError::invalid(
                    "keyRestrictions.aaGuids",
                    format!("{guid:?} is not an AAGUID (a UUID)"),
                ));
            }
        }
        let x509 = &self.x509_certificate;
        let mut priorities = std::collections::BTreeSet::new();
        for binding in &x509.certificate_user_bindings {
            if !priorities.insert(binding.priority) {
                return Err(DomainError::invalid(
                    "certificateUserBindings.priority",
                    format!(
                        "priority {} is used twice; each binding needs its own",
                        binding.priority
                    ),
                ));
            }
            if binding.trust_affinity_level == Affinity::High
                && binding.x509_certificate_field.natural_affinity() == Affinity::Low
            {
                return Err(DomainError::invalid(
                    "certificateUserBindings.trustAffinityLevel",
                    format!(
                        "{:?} is a low-affinity field and cannot be bound with high affinity",
                        binding.x509_certificate_field
                    ),
                ));
            }
        }
        for rule in &x509.rules {
            if rule.issuer_subject.is_none() && rule.policy_oid.is_none() {
                return Err(DomainError::invalid(
                    "rules",
                    "a rule needs an issuerSubject, a policyOid or both",
                ));
            }
            if let Some(oid) = &rule.policy_oid
                && !is_oid(oid)
            {
                return Err(DomainError::invalid(
                    "rules.policyOid",
                    format!("{oid:?} is not an OID such as 1.2.3.4"),
                ));
            }
        }
        for ca in &x509.certificate_authorities {
            if !ca.certificate.contains("-----BEGIN CERTIFICATE-----") {
                return Err(DomainError::invalid(
                    "certificateAuthorities.certificate",
                    "must be a PEM certificate",
                ));
            }
        }
        Ok(())
    }
}

fn is_uuid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_oid(value: &str) -> bool {
    let arcs: Vec<&str> = value.split('.').collect();
    arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.len() <= 20 && a.chars().all(|c| c.is_ascii_digit()))
}

/// What evaluation knows about a user: their groups, with names for the reasons it gives.
#[derive(Debug, Clone, Default)]
pub struct UserGroups {
    pub groups: BTreeMap<GroupId, String>,
}

impl UserGroups {
    fn contains(&self, target: &Target) -> bool {
        match target {
            Target::AllUsers => true,
            Target::Group(id) => self.groups.contains_key(id),
        }
    }

    fn name(&self, target: &Target) -> String {
        match target {
            Target::AllUsers => "all users".into(),
            Target::Group(id) => format!(
                "group {}",
                self.groups
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            ),
        }
    }
}

/// A feature's effective state for one user, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveFeature {
    pub feature: Feature,
    pub enabled: bool,
    pub reason: String,
}

/// The answer of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub method: MethodKind,
    pub allowed: bool,
    /// Authenticator only: the union of the modes of every target that includes the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<AuthenticationMode>,
    /// A sentence an administrator can read, e.g. "excluded by group Contractors".
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<EffectiveFeature>,
}

/// May this user use this method, in which mode, with which features? Exclusion wins over
/// inclusion; a disabled method allows no one.
pub fn evaluate(
    policy: &AuthenticationMethodsPolicy,
    method: MethodKind,
    user: &UserGroups,
) -> Evaluation {
    let config = policy.configuration(method);
    let targeting = config.targeting();
    let denied = |reason: String| Evaluation {
        method,
        allowed: false,
        mode: None,
        reason,
        features: vec![],
    };
    if targeting.state == MethodState::Disabled {
        return denied(format!("{} is disabled", method.label()));
    }
    if let Some(exclude) = targeting.exclude_targets.iter().find(|t| user.contains(t)) {
        return denied(format!("excluded by {}", user.name(exclude)));
    }
    let including: Vec<&IncludeTarget> = targeting
        .include_targets
        .iter()
        .filter(|t| user.contains(&t.target))
        .collect();
    let Some(first) = including.first() else {
        return denied("not in any target of this method".into());
    };
    let mode = including
        .iter()
        .filter_map(|t| t.authentication_mode)
        .reduce(AuthenticationMode::union);
    let reason = format!(
        "included by {}",
        including
            .iter()
            .map(|t| user.name(&t.target))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = first;
    let features = if method == MethodKind::MicrosoftAuthenticator {
        Feature::ALL
            .into_iter()
            .map(|f| effective_feature(policy.authenticator.feature_settings.setting(f), f, user))
            .collect()
    } else {
        vec![]
    };
    Evaluation {
        method,
        allowed: true,
        mode,
        reason,
        features,
    }
}

fn effective_feature(
    setting: &FeatureSetting,
    feature: Feature,
    user: &UserGroups,
) -> EffectiveFeature {
    let (enabled, why) = if feature == Feature::NumberMatching {
        (true, "always on".to_string())
    } else if setting
        .exclude_target
        .as_ref()
        .is_some_and(|t| user.contains(t))
    {
        (
            false,
            format!(
                "excluded by {}",
                user.name(setting.exclude_target.as_ref().expect("checked"))
            ),
        )
    } else if !user.contains(&setting.include_target) {
        (
            false,
            format!("only for {}", user.name(&setting.include_target)),
        )
    } else {
        match setting.state {
            FeatureState::Enabled => (
                true,
                format!("enabled for {}", user.name(&setting.include_target)),
            ),
            FeatureState::Disabled => (false, "disabled".to_string()),
            FeatureState::Default => (
                feature.built_in_default(),
                format!(
                    "default ({})",
                    if feature.built_in_default() {
                        "on"
                    } else {
                        "off"
                    }
                ),
            ),
        }
    };
    EffectiveFeature {
        feature,
        enabled,
        reason: why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(id: &str) -> GroupId {
        GroupId::from_string(id)
    }

    fn member_of(ids: &[&str]) -> UserGroups {
        UserGroups {
            groups: ids
                .iter()
                .map(|id| (group(id), format!("G-{id}")))
                .collect(),
        }
    }

    fn authenticator(targeting: Targeting) -> AuthenticationMethodsPolicy {
        let mut policy = AuthenticationMethodsPolicy::default();
        policy.authenticator.targeting = targeting;
        policy
    }

    fn include(target: Target, mode: AuthenticationMode) -> IncludeTarget {
        IncludeTarget {
            target,
            authentication_mode: Some(mode),
        }
    }

    #[test]
    fn evaluation_over_targets_exclusions_and_modes() {
        use AuthenticationMode::*;
        let pilot = Target::Group(group("pilot"));
        let contractors = Target::Group(group("contractors"));
        // (case, targeting, the user's groups, allowed, mode, words in the reason)
        type Case<'a> = (
            &'a str,
            Targeting,
            &'a [&'a str],
            bool,
            Option<AuthenticationMode>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "all users, any",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(Target::AllUsers, Any)],
                    exclude_targets: vec![],
                },
                &[],
                true,
                Some(Any),
                "included by all users",
            ),
            (
                "disabled",
                Targeting {
                    state: MethodState::Disabled,
                    include_targets: vec![include(Target::AllUsers, Any)],
                    exclude_targets: vec![],
                },
                &[],
                false,
                None,
                "disabled",
            ),
            (
                "group member",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(pilot.clone(), Passwordless)],
                    exclude_targets: vec![],
                },
                &["pilot"],
                true,
                Some(Passwordless),
                "G-pilot",
            ),
            (
                "not a member",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(pilot.clone(), Passwordless)],
                    exclude_targets: vec![],
                },
                &["other"],
                false,
                None,
                "not in any target",
            ),
            (
                "exclusion wins",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(Target::AllUsers, Any)],
                    exclude_targets: vec![contractors.clone()],
                },
                &["contractors"],
                false,
                None,
                "excluded by group G-contractors",
            ),
            (
                "exclusion wins over group",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(pilot.clone(), Any)],
                    exclude_targets: vec![contractors.clone()],
                },
                &["pilot", "contractors"],
                false,
                None,
                "excluded",
            ),
            (
                "push and passwordless make any",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![
                        include(pilot.clone(), Passwordless),
                        include(Target::AllUsers, Push),
                    ],
                    exclude_targets: vec![],
                },
                &["pilot"],
                true,
                Some(Any),
                "included by",
            ),
            (
                "push only",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![
                        include(pilot.clone(), Passwordless),
                        include(Target::AllUsers, Push),
                    ],
                    exclude_targets: vec![],
                },
                &[],
                true,
                Some(Push),
                "all users",
            ),
        ];
        for (name, targeting, groups, allowed, mode, reason) in cases {
            let result = evaluate(
                &authenticator(targeting),
                MethodKind::MicrosoftAuthenticator,
                &member_of(groups),
            );
            assert_eq!(result.allowed, allowed, "{name}");
            assert_eq!(result.mode, mode, "{name}");
            assert!(result.reason.contains(reason), "{name}: {}", result.reason);
        }
    }

    #[test]
    fn feature_states_resolve_with_include_and_exclude_targets() {
        let mut policy = AuthenticationMethodsPolicy::default();
        let features = &mut policy.authenticator.feature_settings;
        features.display_app_information_required_state = FeatureSetting {
            state: FeatureState::Enabled,
            include_target: Target::AllUsers,
            exclude_target: Some(Target::Group(group("quiet"))),
        };
        features.display_location_information_required_state = FeatureSetting {
            state: FeatureState::Disabled,
            include_target: Target::AllUsers,
            exclude_target: None,
        };
        features.report_suspicious_activity_state = FeatureSetting {
            state: FeatureState::Enabled,
            include_target: Target::Group(group("pilot")),
            exclude_target: None,
        };
        let state = |groups: &[&str], feature: Feature| {
            let evaluation = evaluate(
                &policy,
                MethodKind::MicrosoftAuthenticator,
                &member_of(groups),
            );
            evaluation
                .features
                .iter()
                .find(|f| f.feature == feature)
                .unwrap()
                .enabled
        };
        assert!(
            state(&[], Feature::NumberMatching),
            "number matching is always on"
        );
        assert!(state(&[], Feature::DisplayAppInformation));
        assert!(
            !state(&["quiet"], Feature::DisplayAppInformation),
            "feature exclusion wins"
        );
        assert!(!state(&[], Feature::DisplayLocationInformation));
        assert!(state(&["pilot"], Feature::ReportSuspiciousActivity));
        assert!(
            !state(&[], Feature::ReportSuspiciousActivity),
            "only the included group"
        );
        let defaults = AuthenticationMethodsPolicy::default();
        let evaluation = evaluate(
            &defaults,
            MethodKind::MicrosoftAuthenticator,
            &member_of(&[]),
        );
        for feature in &evaluation.features {
            let held_back = feature.feature == Feature::SuppressAnomalousNotifications;
            assert_eq!(
                feature.enabled, !held_back,
                "Latchkey's defaults show everything and hold nothing back: {feature:?}"
            );
        }
        let suppress = evaluation
            .features
            .iter()
            .find(|f| f.feature == Feature::SuppressAnomalousNotifications)
            .unwrap();
        assert_eq!(suppress.reason, "default (off)");
    }

    #[test]
    fn suppressing_unusual_notifications_is_opt_in_and_targetable() {
        let mut policy = AuthenticationMethodsPolicy::default();
        policy
            .authenticator
            .feature_settings
            .suppress_anomalous_notifications_state = FeatureSetting {
            state: FeatureState::Enabled,
            include_target: Target::AllUsers,
            exclude_target: Some(Target::Group(group("travellers"))),
        };
        let on = |groups: &[&str]| {
            evaluate(
                &policy,
                MethodKind::MicrosoftAuthenticator,
                &member_of(groups),
            )
            .features
            .iter()
            .any(|f| f.feature == Feature::SuppressAnomalousNotifications && f.enabled)
        };
        assert!(on(&[]));
        assert!(!on(&["travellers"]), "the exclusion wins");
    }

    #[test]
    fn a_policy_saved_before_the_suppression_switch_existed_still_loads() {
        let mut stored = serde_json::to_value(AuthenticationMethodsPolicy::default()).unwrap();
        stored["authenticator"]["featureSettings"]
            .as_object_mut()
            .unwrap()
            .remove("suppressAnomalousNotificationsState");
        let loaded: AuthenticationMethodsPolicy = serde_json::from_value(stored).unwrap();
        assert_eq!(loaded, AuthenticationMethodsPolicy::default());
        let mut api = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        api["featureSettings"]
            .as_object_mut()
            .unwrap()
            .remove("suppressAnomalousNotificationsState");
        MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, api).unwrap();
    }

    #[test]
    fn a_malformed_suppression_setting_is_refused_by_name() {
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        json["featureSettings"]["suppressAnomalousNotificationsState"]["state"] =
            json!("sometimes");
        let error = MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, json)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("featureSettings.suppressAnomalousNotificationsState"),
            "{error}"
        );
        assert!(error.contains("sometimes"), "{error}");
    }

    #[test]
    fn other_methods_follow_their_own_targets() {
        let policy = AuthenticationMethodsPolicy::default();
        let user = member_of(&[]);
        assert!(evaluate(&policy, MethodKind::TemporaryAccessPass, &user).allowed);
        assert!(evaluate(&policy, MethodKind::Password, &user).allowed);
        assert!(!evaluate(&policy, MethodKind::Fido2, &user).allowed);
        assert!(!evaluate(&policy, MethodKind::X509Certificate, &user).allowed);
    }

    fn valid(policy: &AuthenticationMethodsPolicy) -> Result<(), DomainError> {
        policy.validate(&|id: &GroupId| id.as_str() == "known")
    }

    #[test]
    fn the_default_policy_is_valid_and_round_trips() {
        let policy = AuthenticationMethodsPolicy::default();
        valid(&policy).unwrap();
        for kind in MethodKind::ALL {
            let json = serde_json::to_value(policy.configuration(kind)).unwrap();
            let parsed = MethodConfiguration::from_json(kind, json).unwrap();
            assert_eq!(parsed, policy.configuration(kind), "{kind:?}");
        }
    }

    #[test]
    fn invalid_configurations_are_refused_naming_the_field() {
        let base = AuthenticationMethodsPolicy::default();
        let mut unknown_group = base.clone();
        unknown_group.authenticator.targeting.include_targets = vec![include(
            Target::Group(group("nope")),
            AuthenticationMode::Any,
        )];
        let mut min_over_max = base.clone();
        min_over_max
            .temporary_access_pass
            .minimum_lifetime_in_minutes = 500;
        let mut duplicate_priority = base.clone();
        duplicate_priority
            .x509_certificate
            .certificate_user_bindings
            .push(
                duplicate_priority
                    .x509_certificate
                    .certificate_user_bindings[0]
                    .clone(),
            );
        let mut no_number_matching = base.clone();
        no_number_matching
            .authenticator
            .feature_settings
            .number_matching_required_state
            .state = FeatureState::Disabled;
        let mut mode_on_password = base.clone();
        mode_on_password.password.targeting.include_targets[0].authentication_mode =
            Some(AuthenticationMode::Any);
        let mut bad_guid = base.clone();
        bad_guid.fido2.key_restrictions.aa_guids = vec!["not-a-guid".into()];
        for (policy, field) in [
            (unknown_group, "includeTargets"),
            (min_over_max, "LifetimeInMinutes"),
            (duplicate_priority, "priority"),
            (no_number_matching, "numberMatching"),
            (mode_on_password, "authenticationMode"),
            (bad_guid, "aaGuids"),
        ] {
            let error = valid(&policy).unwrap_err().to_string();
            assert!(error.contains(field), "{error} should name {field}");
        }
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_by_name() {
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        json["surprise"] = json!(true);
        let error = MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, json)
            .unwrap_err()
            .to_string();
        assert!(error.contains("surprise"), "{error}");
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        json["includeTargets"][0]["colour"] = json!("blue");
        let error = MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, json)
            .unwrap_err()
            .to_string();
        assert!(error.contains("includeTargets[0].colour"), "{error}");
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default().configuration(MethodKind::TemporaryAccessPass),
        )
        .unwrap();
        json["defaultLength"] = json!("eight");
        let error = MethodConfiguration::from_json(MethodKind::TemporaryAccessPass, json)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("eight") || error.contains("invalid type"),
            "{error}"
        );
        let graph_shape = json!({"state": "enabled", "includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "deviceBasedPush"}],
            "excludeTargets": [], "featureSettings": serde_json::to_value(AuthenticatorFeatures::default()).unwrap()});
        let parsed =
            MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, graph_shape)
                .unwrap();
        assert_eq!(
            parsed.targeting().include_targets[0].authentication_mode,
            Some(AuthenticationMode::Passwordless)
        );
    }
}
