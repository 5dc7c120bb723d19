//! Administrator API tokens and the administrator role.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::collection;

/// A token as lists and revocations show it: never its secret, nor its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminToken {
    #[schema(format = DateTime)]
    pub created_date_time: String,
    pub created_by: String,
    pub display_name: String,
    #[schema(format = DateTime)]
    pub expires_date_time: Option<String>,
    pub id: String,
    #[schema(format = DateTime)]
    pub last_used_date_time: Option<String>,
    pub revoked_by: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_date_time: Option<String>,
    pub status: AdminTokenStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AdminTokenStatus {
    Active,
    Expired,
    Revoked,
}

collection!(
    /// A list of administrator API tokens.
    AdminTokenList of AdminToken
);

/// The answer to creating a token: its secret is here only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAdminToken {
    #[serde(flatten)]
    pub admin_token: AdminToken,
    /// `lk_admin_…`: send it as `Authorization: Bearer <token>`.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAdminToken {
    pub display_name: String,
    /// RFC 3339 (`2027-01-31T00:00:00Z`) or a date; none means the token does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_date_time: Option<String>,
}

/// The group whose members are administrators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdministratorRole {
    pub display_name: String,
    pub group_id: String,
}

/// Binds the administrator role to a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdministratorRoleBinding {
    /// A group id; never a display name, which is what the binding exists to avoid.
    #[schema(max_length = 64)]
    pub group_id: String,
}
