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
    /// The registration campaign (absent from servers before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_enforcement: Option<RegistrationEnforcement>,
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

/// The method a registration campaign nudges users to set up: only the authenticator app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum TargetedAuthenticationMethod {
    #[default]
    MicrosoftAuthenticator,
}

/// Who the campaign nudges: every user (`all_users`) or a group's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignIncludeTarget {
    /// `all_users`, or a group id. The group must exist.
    pub id: String,
    #[serde(default = "group_type")]
    pub target_type: String,
    #[serde(default)]
    pub targeted_authentication_method: TargetedAuthenticationMethod,
}

fn group_type() -> String {
    "group".into()
}

/// Graph's `authenticationMethodsRegistrationCampaign`: after a sign-in by pass or password,
/// nudge targeted users without the authenticator app to set it up. See docs/policy.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationCampaign {
    /// `true`: 3 "Not now"s, then it can no longer be skipped; `false`: unlimited.
    pub enforce_registration_after_allowed_snoozes: bool,
    /// Groups never nudged (exclusion wins). Cannot be `all_users`.
    #[serde(default)]
    pub exclude_targets: Vec<crate::PolicyTarget>,
    pub include_targets: Vec<CampaignIncludeTarget>,
    /// Days before a snoozed nudge comes back, 0 to 14 (0: at the next sign-in).
    pub snooze_duration_in_days: u32,
    /// `enabled`, `disabled`, or `default` (off in Latchkey).
    pub state: crate::FeatureState,
}

/// Graph's `registrationEnforcement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationEnforcement {
    pub authentication_methods_registration_campaign: RegistrationCampaign,
}

/// A JSON merge patch (RFC 7396) of `registrationEnforcement`: `null` removes a setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct RegistrationEnforcementPatch(pub serde_json::Map<String, serde_json::Value>);
