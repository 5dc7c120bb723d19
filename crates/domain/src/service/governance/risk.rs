//! Use cases of user risk: a "No, it's not me" report puts the user at high risk and ends
//! their sessions; administrators see risky users and dismiss the risk.

use super::Governance;
use crate::authenticator::{Approval, Device};
use crate::error::{DomainError, StoreError};
use crate::ids::UserId;
use crate::log::{Actor, AuditCategory};
use crate::risk::{RiskDetection, USER_REPORTED_SUSPICIOUS_ACTIVITY, UserRisk};
use crate::user::User;

/// Most users one dismissal may name.
const MAX_DISMISS: usize = 60;

impl Governance {
    /// The user said a sign-in was not them: record it, put them at high risk, and revoke
    /// every session and refresh token they have, in case the attacker already got in.
    pub(crate) async fn user_reported(
        &self,
        approval: &Approval,
        device: &Device,
    ) -> Result<(), StoreError> {
        let record = approval.record.as_ref();
        let detection = RiskDetection {
            id: self.random.hex(16),
            user_id: approval.user_id.clone(),
            risk_event_type: USER_REPORTED_SUSPICIOUS_ACTIVITY.into(),
            detected_date_time: self.now(),
            ip_address: record.and_then(|r| r.ip_address.clone()),
            location: record.and_then(|r| r.location.clone()),
            app_display_name: record.and_then(|r| r.app_display_name.clone()),
            device_name: Some(device.name.clone()),
        };
        self.store.record_risk(&detection).await?;
        self.directory
            .revoke_sessions_and_grants(&approval.user_id)
            .await?;
        self.events
            .publish(crate::notify::DomainEvent::UserReportedSuspiciousActivity {
                user: approval.user_id.clone(),
                user_principal_name: approval.view.user_principal_name.clone(),
                detection: Box::new(detection.clone()),
            });
        let upn = approval.view.user_principal_name.clone();
        self.audit
            .record(
                &Actor::user(&upn),
                AuditCategory::IdentityProtection,
                "User reported suspicious activity",
                &upn,
                None,
                Some(serde_json::json!({
                    "riskState": "atRisk",
                    "riskLevel": "high",
                    "riskEventType": detection.risk_event_type,
                    "ipAddress": detection.ip_address,
                    "deviceName": detection.device_name,
                    "sessionsRevoked": true,
                })),
            )
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    /// Users with a risk record and who they are, at risk first.
    pub async fn risky_users(&self) -> Result<Vec<(UserRisk, User)>, DomainError> {
        let mut out = Vec::new();
        for risk in self.store.risky_users().await? {
            if let Some(user) = self.directory.lookup(&risk.user_id).await? {
                out.push((risk, user));
            }
        }
        Ok(out)
    }

    pub async fn user_risk(
        &self,
        user: &UserId,
    ) -> Result<(Option<UserRisk>, Vec<RiskDetection>), DomainError> {
        self.directory.user(user).await?;
        Ok((
            self.store.user_risk(user).await?,
            self.store.risk_detections(user).await?,
        ))
    }

    /// Dismisses the risk of each named user (ids or UPNs; Graph's `riskyUsers/dismiss`).
    /// Unknown users are refused before anything changes; users not at risk are left as they
    /// are.
    pub async fn dismiss_risk(&self, actor: &Actor, users: &[String]) -> Result<(), DomainError> {
        if users.is_empty() || users.len() > MAX_DISMISS {
            return Err(DomainError::invalid(
                "userIds",
                format!("name 1 to {MAX_DISMISS} users"),
            ));
        }
        let mut found = Vec::new();
        for key in users {
            found.push(self.directory.find_user(key).await?);
        }
        for user in found {
            if self.store.dismiss_risk(&user.id, self.now()).await? {
                self.audit
                    .record(
                        actor,
                        AuditCategory::IdentityProtection,
                        "Dismiss user risk",
                        user.upn.as_str(),
                        Some(serde_json::json!({"riskState": "atRisk"})),
                        Some(serde_json::json!({"riskState": "dismissed"})),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
