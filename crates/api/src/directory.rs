//! Users, groups, applications, Temporary Access Passes and authenticator activations.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::collection;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub account_enabled: bool,
    #[schema(format = DateTime)]
    pub created_date_time: String,
    pub display_name: String,
    pub id: String,
    pub mail: Option<String>,
    pub user_principal_name: String,
}

collection!(
    /// A list of users.
    UserList of User
);

/// What an administrator supplies to create a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// Defaults to `true`.
    #[serde(default = "yes")]
    pub account_enabled: bool,
}

fn yes() -> bool {
    true
}

/// The fields to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
}

/// A user's certificate user ids (Entra's `authorizationInfo.certificateUserIds`): at most 5,
/// each at most 1,024 characters, in one of the `X509:<…>` formats (docs/admin-api.md). A PUT
/// replaces the whole list; an id another user has is a 409.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateUserIds {
    pub certificate_user_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[schema(format = DateTime)]
    pub created_date_time: String,
    pub description: String,
    pub display_name: String,
    pub id: String,
}

collection!(
    /// A list of groups.
    GroupList of Group
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGroup {
    pub display_name: String,
    #[serde(default)]
    pub description: String,
}

/// Names the user to add to a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberReference {
    /// A user id or user principal name.
    pub user_id: String,
}

/// An OpenID Connect client (relying party).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub app_id: String,
    #[schema(format = DateTime)]
    pub created_date_time: String,
    pub display_name: String,
    pub home_url: Option<String>,
    /// `RS256` or `ES256`.
    pub id_token_signing_alg: String,
    pub post_logout_redirect_uris: Vec<String>,
    /// Public clients (browser or native apps) get no secret and must use PKCE.
    pub public_client: bool,
    pub redirect_uris: Vec<String>,
    /// The authentication strength a sign-in must meet before the application gets a code:
    /// `mfa`, `passwordlessMfa` or `phishingResistantMfa`; absent when any sign-in will do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_strength: Option<String>,
    /// Browser origins (`https://spa.example`) besides those of the redirect URIs that get
    /// CORS headers from the token endpoints.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// What the `groups` claim of ID tokens and userinfo holds: `none`, `ids` or `names`.
    #[serde(default = "groups_claim_none")]
    pub groups_claim: String,
    /// Only users assigned to the application (directly or through a group) may sign in to it.
    #[serde(default)]
    pub assignment_required: bool,
    /// Where Latchkey POSTs a logout token when a session the application got tokens in ends
    /// (OpenID Connect Back-Channel Logout 1.0); absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
}

fn groups_claim_none() -> String {
    "none".into()
}

collection!(
    /// A list of applications.
    ApplicationList of Application
);

/// The answer to registering an application: a confidential client's secret is here only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApplication {
    #[serde(flatten)]
    pub application: Application,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApplication {
    pub display_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Public clients (browser or native apps) get no secret and must use PKCE.
    #[serde(default)]
    pub public_client: bool,
    /// `RS256` (the default) or `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_url: Option<String>,
    /// `mfa`, `passwordlessMfa` or `phishingResistantMfa`; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_strength: Option<String>,
    /// Browser origins (`https://spa.example`, exactly as browsers send them) besides those
    /// of the redirect URIs from which a browser app may call the token endpoints (CORS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// `none` (the default), `ids` or `names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub assignment_required: bool,
    /// The back-channel logout URI: https, or http on loopback, like redirect URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
}

/// A change to a registered application's settings: what is absent stays as it is. Validated
/// as at registration. The required strength has its own operation; the client kind, its
/// secret and the signing algorithm cannot change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Replaces the whole list (at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// Replaces the whole list (may be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// An empty string removes the home URL (the application leaves My Apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_url: Option<String>,
    /// `none`, `ids` or `names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_required: Option<bool>,
    /// Replaces the whole list of extra browser origins (may be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// An empty string removes the back-channel logout URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
}

/// An application assigned to a user or a group (Graph's `appRoleAssignment`, with the
/// default role).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppAssignment {
    pub app_id: String,
    #[schema(format = DateTime)]
    pub created_date_time: String,
    /// The user's or group's display name.
    pub principal_display_name: String,
    pub principal_id: String,
    /// `User` or `Group`.
    pub principal_type: String,
}

collection!(
    /// An application's assignments, oldest first.
    AppAssignmentList of AppAssignment
);

/// Names the user or group to assign an application to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAppAssignment {
    /// A user id or user principal name; a group id or display name.
    pub principal_id: String,
    /// `User` or `Group`.
    pub principal_type: String,
}

/// The authentication strength an application requires, set or cleared on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationStrength {
    /// `mfa`, `passwordlessMfa` or `phishingResistantMfa`; `null` to require none.
    pub required_strength: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPass {
    #[schema(format = DateTime)]
    pub created_date_time: String,
    pub is_usable: bool,
    pub is_usable_once: bool,
    pub lifetime_in_minutes: u32,
    /// `EnabledByPolicy` when usable, otherwise why not (`Expired`, `NotYetValid`, …).
    pub method_usability_reason: String,
    #[schema(format = DateTime)]
    pub start_date_time: String,
}

/// The answer to issuing a pass: its value is here only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTemporaryAccessPass {
    #[serde(flatten)]
    pub pass: TemporaryAccessPass,
    pub temporary_access_pass: String,
}

/// What to issue; absent fields take the policy's defaults (an empty body asks for all of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemporaryAccessPassRequest {
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_in_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_usable_once: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
}

/// The answer to starting to add the authenticator app: the link (what the QR code holds) is
/// here only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAuthenticatorActivation {
    pub activation_link: String,
    pub code: String,
    #[schema(format = DateTime)]
    pub expires_date_time: String,
    pub id: String,
    pub server: String,
}

/// Where an activation stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum AuthenticatorActivation {
    #[serde(rename_all = "camelCase")]
    WaitingForDevice {
        #[schema(format = DateTime)]
        expires_date_time: String,
        id: String,
    },
    /// The number to enter in the app.
    #[serde(rename_all = "camelCase")]
    WaitingForTest {
        device_name: String,
        id: String,
        test_number: u8,
    },
    #[serde(rename_all = "camelCase")]
    Registered { device_name: String, id: String },
    /// Why, and what to do.
    Failed { id: String, message: String },
}
