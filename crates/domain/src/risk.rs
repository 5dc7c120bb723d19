//! User risk, shaped after Microsoft Graph's identity protection (`riskyUser`,
//! `riskDetection`): a user who answers a notification with "No, it's not me" is at high risk
//! until an administrator dismisses it.
//!
//! While a user is at risk their devices get no pushed notifications (they can still pull
//! what is waiting from the app), so an attacker who keeps starting sign-ins cannot wear them
//! down.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::UserId;
use crate::location::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskState {
    AtRisk,
    Dismissed,
}

impl RiskState {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskState::AtRisk => "atRisk",
            RiskState::Dismissed => "dismissed",
        }
    }
}

/// One user's risk (Graph `riskyUser`). Only high risk exists today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRisk {
    pub user_id: UserId,
    pub state: RiskState,
    /// `userReportedSuspiciousActivity`, or `adminDismissedAllRiskForUser` once dismissed.
    pub detail: String,
    pub last_updated: Timestamp,
}

impl UserRisk {
    pub fn is_at_risk(&self) -> bool {
        self.state == RiskState::AtRisk
    }
}

/// What raised a user's risk (Graph `riskDetection`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskDetection {
    pub id: String,
    pub user_id: UserId,
    /// `userReportedSuspiciousActivity`.
    pub risk_event_type: String,
    pub detected_date_time: Timestamp,
    pub ip_address: Option<String>,
    pub location: Option<Location>,
    pub app_display_name: Option<String>,
    /// The device that reported it.
    pub device_name: Option<String>,
}

pub const USER_REPORTED_SUSPICIOUS_ACTIVITY: &str = "userReportedSuspiciousActivity";
pub const ADMIN_DISMISSED: &str = "adminDismissedAllRiskForUser";
