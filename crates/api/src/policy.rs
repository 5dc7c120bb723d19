//! The authentication methods policy and a user's effective policy. See `docs/policy.md`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AuthenticationMethodConfiguration, AuthenticationMode};

/// A JSON merge patch (RFC 7396) of a method's configuration: `null` removes a setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct AuthenticationMethodConfigurationPatch(pub serde_json::Map<String, serde_json::Value>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMethodsPolicy {
    pub authentication_method_configurations: Vec<AuthenticationMethodConfiguration>,
    /// Goes up by one with every change; also the configurations' `ETag`.
    pub version: u64,
}

/// A method as the effective policy names it (Graph's names: the authenticator app is
/// `microsoftAuthenticator` here, `authenticator` in paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthenticationMethod {
    MicrosoftAuthenticator,
    Fido2,
    TemporaryAccessPass,
    X509Certificate,
    Password,
}

/// An authenticator notification feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthenticatorFeature {
    NumberMatching,
    DisplayAppInformation,
    DisplayLocationInformation,
    ReportSuspiciousActivity,
    SuppressAnomalousNotifications,
}

/// A feature's effective state for one user, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveFeature {
    pub enabled: bool,
    pub feature: AuthenticatorFeature,
    pub reason: String,
}

/// May this user use this method, in which mode, with which features?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodEvaluation {
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<EffectiveFeature>,
    pub method: AuthenticationMethod,
    /// Authenticator only, when allowed: `any`, `push` or `deviceBasedPush`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AuthenticationMode>,
    /// A sentence an administrator can read, e.g. "excluded by group Contractors".
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePolicy {
    pub user_principal_name: String,
    pub value: Vec<MethodEvaluation>,
}
