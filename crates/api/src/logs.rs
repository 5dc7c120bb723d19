//! The sign-in log and the audit log (Graph's `auditLogs/signIns` and `directoryAudits`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::collection;

/// An approximate place for an IP address (Graph's `signInLocation`), as precise as the
/// database knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInLocation {
    #[serde(default)]
    pub city: Option<String>,
    /// The country's English name (no Graph property).
    #[serde(default)]
    pub country_name: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `AU`.
    #[serde(default)]
    pub country_or_region: Option<String>,
    #[serde(default)]
    pub geo_coordinates: Option<GeoCoordinates>,
    /// The first-level subdivision: state, province, region.
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GeoCoordinates {
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
}

/// One step of a sign-in (Graph's `authenticationDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationStep {
    pub authentication_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_method_detail: Option<String>,
    pub authentication_step_date_time: String,
    pub authentication_step_result_detail: String,
    pub succeeded: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// Something worth knowing that is not a failure. Absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_details: Option<String>,
    /// 0 for success.
    pub error_code: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInRecord {
    pub app_display_name: Option<String>,
    pub app_id: Option<String>,
    pub authentication_details: Vec<AuthenticationStep>,
    /// The method's id (`temporaryAccessPass`, `password`, …).
    pub authentication_method: String,
    #[schema(format = DateTime)]
    pub created_date_time: String,
    pub id: String,
    pub ip_address: Option<String>,
    pub location: Option<SignInLocation>,
    pub status: SignInStatus,
    pub user_display_name: Option<String>,
    /// `null` when the name typed matches no user.
    pub user_id: Option<String>,
    /// The UPN, or the name typed when it matches no user.
    pub user_principal_name: String,
}

impl SignInRecord {
    pub fn succeeded(&self) -> bool {
        self.status.error_code == 0
    }
}

collection!(
    /// A page of the sign-in log, newest first.
    SignInList of SignInRecord
);

/// One administrative change: who, when, what, and the state before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub activity: String,
    #[schema(format = DateTime)]
    pub activity_date_time: String,
    /// `api-token:<name>`, `user:<upn>` or `system`.
    pub actor: String,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// `UserManagement`, `GroupManagement`, `Policy`, …
    pub category: String,
    pub id: String,
    pub target: String,
}

collection!(
    /// A page of the audit log, newest first.
    AuditEventList of AuditEvent
);

/// Filters, paging and format for both logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogParameters {
    /// RFC 3339 (`2026-11-29T10:00:00Z`), Unix seconds, or a span back from now (`1h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// As `since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// A user id or UPN (sign-ins), or the actor or target (audit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Sign-ins only: an application id or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Sign-ins only: `success` or `failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Sign-ins only: the method's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Audit only: the category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The page size, 1 to 1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<u32>,
    /// `json` (default), `jsonl` or `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}
