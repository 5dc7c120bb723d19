//! Sending a number-matching request: after the user name (phone sign-in) or a correct
//! password (MFA push), when the policy and the user's devices allow it; and the sign-in log
//! records of such requests.

use latchkey_protocol::wire::{ApprovalKind, DeviceEvent};

use super::{ApprovalStart, Devices, LOCATION_ATTRIBUTION};
use crate::authenticator::{Approval, ApprovalContext, ApprovalState, Device};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::ids::DeviceId;
use crate::location::is_private_network;
use crate::log::{AuthenticationStep, SignInContext, SignInError, SignInRecord, SignInStatus};
use crate::policy::{Feature, MethodKind};
use crate::session::AuthMethod;
use crate::signin::{PendingSignIn, SignInStage};
use crate::store::{ApprovalPut, ThrottleTake};
use crate::user::User;

impl Devices {
    /// After the user name (`PhoneSignIn`) or a correct password (`MfaPush`): if the policy
    /// and the user's devices allow it, sends the notification and moves the sign-in to the
    /// number page. `None` when it does not apply, and the sign-in goes on as before.
    pub(crate) async fn try_approval(
        &self,
        kind: ApprovalKind,
        sign_in: &PendingSignIn,
        user: &User,
        context: &SignInContext,
    ) -> Result<ApprovalStart, StoreError> {
        if !user.enabled {
            return Ok(ApprovalStart::NotApplicable);
        }
        let policy = self.access.policy().await?;
        let groups = self.access.user_groups(&user.id).await?;
        let evaluation =
            crate::policy::evaluate(&policy, MethodKind::MicrosoftAuthenticator, &groups);
        let phone = kind == ApprovalKind::PhoneSignIn;
        let mode_allows = |mode: crate::policy::AuthenticationMode| {
            if phone {
                mode.allows_phone_sign_in()
            } else {
                mode.allows_push()
            }
        };
        if !evaluation.allowed || !evaluation.mode.is_some_and(mode_allows) {
            return Ok(ApprovalStart::NotApplicable);
        }
        let devices: Vec<DeviceId> = self
            .store
            .devices_of_user(&user.id)
            .await?
            .into_iter()
            .filter(|d| {
                if phone {
                    d.has_phone_sign_in()
                } else {
                    d.is_confirmed()
                }
            })
            .map(|d| d.id)
            .collect();
        if devices.is_empty() {
            return Ok(ApprovalStart::NotApplicable);
        }
        // One waiting notification per user: a second sign-in attempt (perhaps an attacker's,
        // hoping the user taps Approve to make it stop) sends nothing new.
        let now = self.now();
        if self
            .store
            .pending_approvals(&user.id)
            .await?
            .iter()
            .any(|a| {
                a.is_open(now)
                    && matches!(a.kind(), ApprovalKind::PhoneSignIn | ApprovalKind::MfaPush)
            })
        {
            return Ok(ApprovalStart::AlreadyPending);
        }
        let Some(throttles) = self
            .throttles
            .notification_slots(&user.id, context, now)
            .await?
        else {
            let record = self.throttled_record(sign_in, user, context, now).await?;
            return Ok(ApprovalStart::Throttled(Box::new(record)));
        };
        self.send_approval(
            kind,
            sign_in,
            user,
            devices,
            &evaluation,
            context,
            &throttles,
        )
        .await
    }

    /// Takes the notification's `throttles` slots, creates the request and pushes it to
    /// `devices`, unless it is held back (the stage says why); all the writes are one trip to
    /// the store. `AlreadyPending` when another request of the user got in first.
    #[allow(clippy::too_many_arguments)]
    async fn send_approval(
        &self,
        kind: ApprovalKind,
        sign_in: &PendingSignIn,
        user: &User,
        devices: Vec<DeviceId>,
        evaluation: &crate::policy::Evaluation,
        context: &SignInContext,
        throttles: &[ThrottleTake],
    ) -> Result<ApprovalStart, StoreError> {
        let feature = |f: Feature| {
            evaluation
                .features
                .iter()
                .any(|e| e.feature == f && e.enabled)
        };
        let app = match &sign_in.authorization {
            Some(request) => self.applications.cached(&request.client_id).await?,
            None => None,
        };
        let (location, location_attribution) = if feature(Feature::DisplayLocationInformation) {
            describe_location(context)
        } else {
            (None, None)
        };
        let shown = ApprovalContext {
            user_principal_name: user.upn.to_string(),
            application: if feature(Feature::DisplayAppInformation) {
                Some(
                    app.as_ref()
                        .map(|a| a.display_name.clone())
                        .unwrap_or_else(|| "Latchkey".into()),
                )
            } else {
                None
            },
            location,
            location_attribution,
            report_allowed: feature(Feature::ReportSuspiciousActivity),
        };
        let now = self.now();
        let mut approval = Approval::new(
            kind,
            user.id.clone(),
            Some(sign_in.id.clone()),
            devices,
            shown,
            now,
            self.settings.approval_lifetime_seconds,
        )
        .drawn_from(self.random.as_ref());
        if approval.view.location_attribution.is_some() {
            // The place was shown and came from the GeoIP database: the app may draw its map.
            if let Some((latitude, longitude)) = context.location.as_ref().and_then(coordinates) {
                approval.view.latitude = Some(latitude);
                approval.view.longitude = Some(longitude);
            }
        }
        let held_back = self
            .anomalies
            .held_back(&user.id, evaluation, context, now)
            .await?;
        let mut record = self.authenticator_record(app.as_ref(), user, context, now);
        record.status.additional_details = held_back.map(|why| why.log_detail().to_string());
        approval.record = Some(record);
        let phone = kind == ApprovalKind::PhoneSignIn;
        let moved = PendingSignIn {
            stage: SignInStage::AwaitingApproval {
                upn: user.upn.to_string(),
                user_id: user.id.clone(),
                approval: approval.id.clone(),
                first_factor: (!phone).then_some(AuthMethod::Password),
                held_back,
            },
            ..sign_in.clone()
        };
        match self
            .store
            .put_approval_if_none_waiting(&approval, now, throttles, Some(&moved))
            .await?
        {
            ApprovalPut::Stored => {}
            ApprovalPut::AlreadyWaiting => return Ok(ApprovalStart::AlreadyPending),
            ApprovalPut::Throttled => {
                let record = self.throttled_record(sign_in, user, context, now).await?;
                return Ok(ApprovalStart::Throttled(Box::new(record)));
            }
        }
        // A request held back (the user is at risk, or the sign-in is unusual and the policy
        // says so) still waits, and the app can pull it.
        if held_back.is_none() {
            let event = DeviceEvent::Request {
                request: approval.view.clone(),
            };
            let notifier = self.notifier();
            for device in &approval.device_ids {
                notifier.notify(device, &event);
            }
        }
        Ok(ApprovalStart::Sent(Box::new(moved)))
    }

    /// The sign-in log record of an authenticator sign-in for `user` from `context`: who,
    /// which application, from where; its outcome is filled in when it is known.
    fn authenticator_record(
        &self,
        app: Option<&crate::application::Application>,
        user: &User,
        context: &SignInContext,
        now: Timestamp,
    ) -> SignInRecord {
        SignInRecord {
            id: self.random.hex(16),
            created_date_time: now,
            user_id: Some(user.id.clone()),
            user_principal_name: user.upn.to_string(),
            user_display_name: Some(user.display_name.clone()),
            app_id: app.map(|a| a.client_id.clone()),
            app_display_name: app.map(|a| a.display_name.clone()),
            ip_address: context.ip_address.map(|ip| ip.to_string()),
            location: context.location.clone(),
            authentication_method: MethodKind::MicrosoftAuthenticator.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        }
    }

    /// The sign-in log record of a notification a throttle stopped.
    async fn throttled_record(
        &self,
        sign_in: &PendingSignIn,
        user: &User,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<SignInRecord, StoreError> {
        let error = SignInError::Throttled;
        let app = match &sign_in.authorization {
            Some(request) => self.applications.cached(&request.client_id).await?,
            None => None,
        };
        let mut record = self.authenticator_record(app.as_ref(), user, context, now);
        record.status.fail(error);
        record.authentication_details.push(AuthenticationStep {
            authentication_method: MethodKind::MicrosoftAuthenticator.label().into(),
            authentication_method_detail: None,
            authentication_step_date_time: now.to_rfc3339(),
            authentication_step_result_detail: error.failure_reason().into(),
            succeeded: false,
        });
        Ok(record)
    }

    /// The sign-in log record of a settled approval.
    pub(crate) fn approval_record(
        &self,
        approval: &Approval,
        state: ApprovalState,
        device: Option<&Device>,
        now: Timestamp,
    ) -> SignInRecord {
        let mut record = approval.record.clone().unwrap_or_else(|| SignInRecord {
            id: String::new(),
            created_date_time: now,
            user_id: Some(approval.user_id.clone()),
            user_principal_name: approval.view.user_principal_name.clone(),
            user_display_name: None,
            app_id: None,
            app_display_name: None,
            ip_address: None,
            location: None,
            authentication_method: MethodKind::MicrosoftAuthenticator.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        });
        record.id = self.random.hex(16);
        record.created_date_time = now;
        let error = match state {
            ApprovalState::Approved => None,
            ApprovalState::Denied | ApprovalState::Cancelled => Some(SignInError::ApprovalDenied),
            ApprovalState::Reported => Some(SignInError::ApprovalReported),
            ApprovalState::WrongNumber => Some(SignInError::WrongNumber),
            ApprovalState::Expired | ApprovalState::Pending => Some(SignInError::ApprovalTimedOut),
        };
        let mfa_push = approval.kind() == ApprovalKind::MfaPush;
        if mfa_push {
            record.authentication_details.push(AuthenticationStep {
                authentication_method: MethodKind::Password.label().to_string(),
                authentication_method_detail: None,
                authentication_step_date_time: Timestamp(approval.view.created_at).to_rfc3339(),
                authentication_step_result_detail: "Correct password".into(),
                succeeded: true,
            });
        }
        record.authentication_details.push(AuthenticationStep {
            authentication_method: if mfa_push {
                "Authenticator app notification".into()
            } else {
                "Passwordless phone sign-in".into()
            },
            authentication_method_detail: device.map(|d| d.name.clone()),
            authentication_step_date_time: now.to_rfc3339(),
            authentication_step_result_detail: match error {
                None => "MFA successfully completed".into(),
                Some(e) => e.failure_reason().into(),
            },
            succeeded: error.is_none(),
        });
        if let Some(error) = error {
            record.status.fail(error);
        }
        record
    }
}

/// The location a notification shows: the database's place, "Private network" for loopback
/// and private addresses, "Unknown location" otherwise.
/// The location's coordinates when both are known and on the globe (a damaged database record
/// must not put NaN or 1000° on the wire).
fn coordinates(location: &crate::location::Location) -> Option<(f64, f64)> {
    use latchkey_protocol::wire::coordinate;
    Some((
        coordinate(location.latitude?, 90.0)?,
        coordinate(location.longitude?, 180.0)?,
    ))
}

fn describe_location(context: &SignInContext) -> (Option<String>, Option<String>) {
    if let Some(place) = context.location.as_ref().and_then(|l| l.display()) {
        return (Some(place), Some(LOCATION_ATTRIBUTION.to_string()));
    }
    match context.ip_address {
        Some(ip) if is_private_network(ip) => (Some("Private network".into()), None),
        _ => (Some("Unknown location".into()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Location;

    #[test]
    fn locations_say_private_network_or_unknown_when_not_placed() {
        let local = SignInContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            location: None,
            ..Default::default()
        };
        assert_eq!(
            describe_location(&local).0.as_deref(),
            Some("Private network")
        );
        let lan = SignInContext {
            ip_address: Some("192.168.1.20".parse().unwrap()),
            location: None,
            ..Default::default()
        };
        assert_eq!(
            describe_location(&lan).0.as_deref(),
            Some("Private network")
        );
        let public = SignInContext {
            ip_address: Some("203.0.113.7".parse().unwrap()),
            location: None,
            ..Default::default()
        };
        assert_eq!(
            describe_location(&public).0.as_deref(),
            Some("Unknown location")
        );
        let placed = SignInContext {
            ip_address: Some("1.1.1.1".parse().unwrap()),
            location: Some(Location {
                city: Some("Sydney".into()),
                country: Some("Australia".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (place, credit) = describe_location(&placed);
        assert_eq!(place.as_deref(), Some("Sydney, Australia"));
        assert!(credit.unwrap().contains("db-ip.com"));
    }
}
