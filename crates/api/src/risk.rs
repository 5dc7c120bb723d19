//! User risk, shaped after Graph's `riskyUser` and `riskDetection`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{SignInLocation, collection};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RiskyUser {
    /// The user's id.
    pub id: String,
    /// `userReportedSuspiciousActivity`, or `adminDismissedAllRiskForUser` once dismissed.
    pub risk_detail: String,
    #[schema(format = DateTime)]
    pub risk_last_updated_date_time: String,
    /// `high` while at risk, `none` once dismissed.
    pub risk_level: String,
    /// `atRisk` or `dismissed`.
    pub risk_state: String,
    pub user_display_name: String,
    pub user_principal_name: String,
}

collection!(
    /// The users with a risk record.
    RiskyUserList of RiskyUser
);

/// What raised a user's risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RiskDetection {
    pub app_display_name: Option<String>,
    #[schema(format = DateTime)]
    pub detected_date_time: String,
    /// The device that reported it.
    pub device_name: Option<String>,
    pub id: String,
    pub ip_address: Option<String>,
    pub location: Option<SignInLocation>,
    /// `userReportedSuspiciousActivity`.
    pub risk_event_type: String,
    pub risk_level: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RiskyUserWithDetections {
    pub detections: Vec<RiskDetection>,
    #[serde(flatten)]
    pub risky_user: RiskyUser,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DismissRiskyUsers {
    /// User ids or user principal names.
    pub user_ids: Vec<String>,
}
