//! The per-method configurations of the authentication methods policy, in Graph's shapes
//! (`docs/policy.md`). On the wire a configuration is one JSON object whose `id` names the
//! method; every object's members come out in name order, as they always have.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A disabled method allows no one, whatever its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum MethodState {
    Enabled,
    Disabled,
}

/// Whom a rule applies to: every user (`id` `all_users`) or the members of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTarget {
    /// `all_users`, or a group id. The group must exist.
    pub id: String,
    /// Always `group`.
    #[serde(default = "group_type")]
    pub target_type: String,
}

fn group_type() -> String {
    "group".into()
}

impl PolicyTarget {
    pub fn group(id: impl Into<String>) -> Self {
        PolicyTarget {
            id: id.into(),
            target_type: group_type(),
        }
    }
}

/// How the authenticator app may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AuthenticationMode {
    /// MFA push and passwordless phone sign-in.
    #[serde(rename = "any")]
    Any,
    /// Only as a second factor after a password.
    #[serde(rename = "push")]
    Push,
    /// Only passwordless phone sign-in (the console's Passwordless).
    #[serde(rename = "deviceBasedPush", alias = "passwordless")]
    DeviceBasedPush,
}

/// Who may use the authenticator app, and in which mode. A user in several targets gets the
/// union of their modes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorIncludeTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_mode: Option<AuthenticationMode>,
    /// `all_users`, or a group id.
    pub id: String,
    #[serde(default = "group_type")]
    pub target_type: String,
}

/// `default` is Latchkey's built-in value: on, except `suppressAnomalousNotificationsState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum FeatureState {
    Default,
    Enabled,
    Disabled,
}

/// One notification feature: its state, whom it includes, whom it excludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorFeatureSetting {
    /// Members of this group never get the feature. Cannot be `all_users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_target: Option<PolicyTarget>,
    pub include_target: PolicyTarget,
    pub state: FeatureState,
}

/// The authenticator app's notification features (Graph's `featureSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorFeatureSettings {
    /// Show the application name in push and passwordless notifications.
    pub display_app_information_required_state: AuthenticatorFeatureSetting,
    /// Show the sign-in's geographic location in push and passwordless notifications.
    pub display_location_information_required_state: AuthenticatorFeatureSetting,
    /// Require number matching for push notifications. Always on; `disabled` is refused.
    pub number_matching_required_state: AuthenticatorFeatureSetting,
    /// Let users report a sign-in they did not start.
    pub report_suspicious_activity_state: AuthenticatorFeatureSetting,
    /// Latchkey's own: hold back the push for an unusual sign-in. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_anomalous_notifications_state: Option<AuthenticatorFeatureSetting>,
}

/// The authenticator app (Graph: `microsoftAuthenticatorAuthenticationMethodConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorConfiguration {
    /// Who may not, even when included. Exclusions win.
    #[serde(default)]
    pub exclude_targets: Vec<PolicyTarget>,
    pub feature_settings: AuthenticatorFeatureSettings,
    /// Who may use the method.
    pub include_targets: Vec<AuthenticatorIncludeTarget>,
    pub state: MethodState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum EnforcementType {
    Allow,
    Block,
}

/// Which authenticator models (AAGUIDs) may register passkeys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fido2KeyRestrictions {
    pub aa_guids: Vec<String>,
    pub enforcement_type: EnforcementType,
    pub is_enforced: bool,
}

/// Passkeys (FIDO2). Default: disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Configuration {
    #[serde(default)]
    pub exclude_targets: Vec<PolicyTarget>,
    pub include_targets: Vec<PolicyTarget>,
    pub is_attestation_enforced: bool,
    pub is_self_service_registration_allowed: bool,
    pub key_restrictions: Fido2KeyRestrictions,
    pub state: MethodState,
}

/// Temporary Access Passes: the rules passes are issued under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPassConfiguration {
    pub default_length: u32,
    pub default_lifetime_in_minutes: u32,
    #[serde(default)]
    pub exclude_targets: Vec<PolicyTarget>,
    pub include_targets: Vec<PolicyTarget>,
    pub is_usable_once: bool,
    pub maximum_lifetime_in_minutes: u32,
    pub minimum_lifetime_in_minutes: u32,
    pub state: MethodState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum X509AuthenticationMode {
    X509CertificateSingleFactor,
    X509CertificateMultiFactor,
}

/// A trusted certificate authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct X509CertificateAuthority {
    /// PEM of the CA certificate.
    pub certificate: String,
    /// Where this CA publishes its certificate revocation list (an http or https URL). When
    /// set, every certificate this CA issued is checked against the list, and a sign-in fails
    /// closed when the list cannot be fetched (at most 20 MB, within 10 seconds; cached until
    /// the list's nextUpdate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_revocation_list_url: Option<String>,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum X509CertificateField {
    PrincipalName,
    RFC822Name,
    IssuerAndSubject,
    Subject,
    SKI,
    SHA1PublicKey,
    IssuerAndSerialNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum X509UserProperty {
    UserPrincipalName,
    OnPremisesUserPrincipalName,
    CertificateUserIds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum X509TrustAffinity {
    Low,
    High,
}

/// Which certificate field finds which user property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct X509CertificateUserBinding {
    pub priority: u32,
    pub trust_affinity_level: X509TrustAffinity,
    pub user_property: X509UserProperty,
    pub x509_certificate_field: X509CertificateField,
}

/// Which certificates (by issuer or policy OID) count as which factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct X509CertificateRule {
    pub authentication_mode: X509AuthenticationMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_oid: Option<String>,
}

/// Certificate-based authentication. Default: disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct X509CertificateConfiguration {
    pub certificate_authorities: Vec<X509CertificateAuthority>,
    pub certificate_user_bindings: Vec<X509CertificateUserBinding>,
    pub default_mode: X509AuthenticationMode,
    #[serde(default)]
    pub exclude_targets: Vec<PolicyTarget>,
    pub include_targets: Vec<PolicyTarget>,
    /// Entra's high-affinity requirement: when true, only the high-affinity bindings (SKI,
    /// SHA1PublicKey, IssuerAndSerialNumber) may find the user; low-affinity ones are skipped.
    /// Default false.
    #[serde(default)]
    pub require_high_affinity_binding: bool,
    pub rules: Vec<X509CertificateRule>,
    pub state: MethodState,
}

/// Passwords (legacy, single factor). Default: enabled for all users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordConfiguration {
    #[serde(default)]
    pub exclude_targets: Vec<PolicyTarget>,
    pub include_targets: Vec<PolicyTarget>,
    pub state: MethodState,
}

/// One method's configuration: its `id` (`authenticator`, `fido2`, `temporaryAccessPass`,
/// `x509Certificate` or `password`) decides the shape. In a request body the `id` is optional
/// and must match the method in the path; the server refuses unknown fields.
// A handful of these exist at a time (one per method), so the authenticator's larger settings
// are kept inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(untagged)]
pub enum AuthenticationMethodConfiguration {
    Authenticator(AuthenticatorConfiguration),
    Fido2(Fido2Configuration),
    TemporaryAccessPass(TemporaryAccessPassConfiguration),
    X509Certificate(X509CertificateConfiguration),
    Password(PasswordConfiguration),
}

impl AuthenticationMethodConfiguration {
    /// The method's id, as in the configuration's path.
    pub fn id(&self) -> &'static str {
        match self {
            Self::Authenticator(_) => "authenticator",
            Self::Fido2(_) => "fido2",
            Self::TemporaryAccessPass(_) => "temporaryAccessPass",
            Self::X509Certificate(_) => "x509Certificate",
            Self::Password(_) => "password",
        }
    }

    pub fn state(&self) -> MethodState {
        match self {
            Self::Authenticator(c) => c.state,
            Self::Fido2(c) => c.state,
            Self::TemporaryAccessPass(c) => c.state,
            Self::X509Certificate(c) => c.state,
            Self::Password(c) => c.state,
        }
    }

    /// Who may use the method; a mode only for the authenticator app.
    pub fn include_targets(&self) -> Vec<AuthenticatorIncludeTarget> {
        let plain = |targets: &[PolicyTarget]| {
            targets
                .iter()
                .map(|t| AuthenticatorIncludeTarget {
                    authentication_mode: None,
                    id: t.id.clone(),
                    target_type: t.target_type.clone(),
                })
                .collect()
        };
        match self {
            Self::Authenticator(c) => c.include_targets.clone(),
            Self::Fido2(c) => plain(&c.include_targets),
            Self::TemporaryAccessPass(c) => plain(&c.include_targets),
            Self::X509Certificate(c) => plain(&c.include_targets),
            Self::Password(c) => plain(&c.include_targets),
        }
    }

    pub fn exclude_targets(&self) -> &[PolicyTarget] {
        match self {
            Self::Authenticator(c) => &c.exclude_targets,
            Self::Fido2(c) => &c.exclude_targets,
            Self::TemporaryAccessPass(c) => &c.exclude_targets,
            Self::X509Certificate(c) => &c.exclude_targets,
            Self::Password(c) => &c.exclude_targets,
        }
    }

    /// The method's settings with its `id` beside them, as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let settings = match self {
            Self::Authenticator(c) => serde_json::to_value(c),
            Self::Fido2(c) => serde_json::to_value(c),
            Self::TemporaryAccessPass(c) => serde_json::to_value(c),
            Self::X509Certificate(c) => serde_json::to_value(c),
            Self::Password(c) => serde_json::to_value(c),
        };
        let mut settings = match settings {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        settings.insert("id".into(), self.id().into());
        serde_json::Value::Object(settings)
    }

    /// Reads a configuration of the method `id` (the path's), without an `id` member.
    pub fn from_json(id: &str, settings: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde::de::Error;
        Ok(match id {
            "authenticator" => Self::Authenticator(serde_json::from_value(settings)?),
            "fido2" => Self::Fido2(serde_json::from_value(settings)?),
            "temporaryAccessPass" => Self::TemporaryAccessPass(serde_json::from_value(settings)?),
            "x509Certificate" => Self::X509Certificate(serde_json::from_value(settings)?),
            "password" => Self::Password(serde_json::from_value(settings)?),
            other => {
                return Err(serde_json::Error::custom(format!(
                    "unknown method {other:?}"
                )));
            }
        })
    }
}

// By hand rather than `#[serde(tag = "id")]`: an internal tag would be written first, and the
// members have always come out in name order (`id` among them).
impl Serialize for AuthenticationMethodConfiguration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AuthenticationMethodConfiguration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let id = match fields.remove("id") {
            Some(serde_json::Value::String(id)) => id,
            _ => return Err(D::Error::missing_field("id")),
        };
        Self::from_json(&id, serde_json::Value::Object(fields)).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_configuration_reads_and_writes_its_id_among_its_members_in_name_order() {
        let wire = json!({"excludeTargets": [], "id": "password",
            "includeTargets": [{"id": "all_users", "targetType": "group"}], "state": "enabled"});
        let configuration: AuthenticationMethodConfiguration =
            serde_json::from_value(wire.clone()).expect("parses");
        assert_eq!(configuration.id(), "password");
        assert_eq!(
            serde_json::to_string(&configuration).expect("writes"),
            serde_json::to_string(&wire).expect("writes")
        );
    }
}
