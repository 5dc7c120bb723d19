//! From the domain's types to the admin API's contract (`latchkey-api`) and back: the one place
//! that knows both, so neither the domain nor the contract depends on the other.

use latchkey_api as api;
use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::application::{AppAssignment, Application, AssignedPrincipal, ClientKind};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::{PassRequest, TemporaryAccessPass};
use latchkey_domain::location::Location;
use latchkey_domain::log::{AuditEvent, SignInRecord};
use latchkey_domain::policy::{
    AuthenticationMode, Evaluation, Feature, MethodConfiguration, MethodKind,
};
use latchkey_domain::risk::{RiskDetection, UserRisk};
use latchkey_domain::service::{ApplicationPatch, NewApplication, NewUser, UserPatch};
use latchkey_domain::user::{Group, User};

pub fn user(user: &User) -> api::User {
    api::User {
        account_enabled: user.enabled,
        created_date_time: user.created_at.to_rfc3339(),
        display_name: user.display_name.clone(),
        id: user.id.to_string(),
        mail: user.email.clone(),
        user_principal_name: user.upn.to_string(),
    }
}

pub fn users(users: &[User]) -> api::UserList {
    users.iter().map(user).collect::<Vec<_>>().into()
}

pub fn group(group: &Group) -> api::Group {
    api::Group {
        created_date_time: group.created_at.to_rfc3339(),
        description: group.description.clone(),
        display_name: group.display_name.clone(),
        id: group.id.to_string(),
    }
}

pub fn application(app: &Application) -> api::Application {
    api::Application {
        app_id: app.client_id.to_string(),
        created_date_time: app.created_at.to_rfc3339(),
        display_name: app.display_name.clone(),
        home_url: app.home_url.clone(),
        id_token_signing_alg: app.id_token_alg.as_str().to_string(),
        post_logout_redirect_uris: app.post_logout_redirect_uris.clone(),
        public_client: matches!(app.kind, ClientKind::Public),
        redirect_uris: app.redirect_uris.clone(),
        required_strength: app.required_strength.map(|s| s.id().to_string()),
        allowed_origins: app.allowed_origins.clone(),
        backchannel_logout_uri: app.backchannel_logout_uri.clone(),
        groups_claim: app.groups_claim.as_str().to_string(),
        assignment_required: app.assignment_required,
    }
}

pub fn app_assignment(assignment: &AppAssignment, display_name: String) -> api::AppAssignment {
    let (principal_type, principal_id) = match &assignment.principal {
        AssignedPrincipal::User(id) => ("User", id.to_string()),
        AssignedPrincipal::Group(id) => ("Group", id.to_string()),
    };
    api::AppAssignment {
        app_id: assignment.client_id.to_string(),
        created_date_time: assignment.created_at.to_rfc3339(),
        principal_display_name: display_name,
        principal_id,
        principal_type: principal_type.to_string(),
    }
}

pub fn application_patch(patch: api::ApplicationPatch) -> ApplicationPatch {
    ApplicationPatch {
        display_name: patch.display_name,
        redirect_uris: patch.redirect_uris,
        post_logout_redirect_uris: patch.post_logout_redirect_uris,
        home_url: patch.home_url,
        groups_claim: patch.groups_claim,
        assignment_required: patch.assignment_required,
        allowed_origins: patch.allowed_origins,
        backchannel_logout_uri: patch.backchannel_logout_uri,
    }
}

pub fn pass(pass: &TemporaryAccessPass, now: Timestamp) -> api::TemporaryAccessPass {
    let usability = pass.usability(now);
    api::TemporaryAccessPass {
        created_date_time: pass.created_at.to_rfc3339(),
        is_usable: usability.is_ok(),
        is_usable_once: pass.usable_once,
        lifetime_in_minutes: pass.lifetime_minutes,
        method_usability_reason: match usability {
            Ok(()) => "EnabledByPolicy".to_string(),
            Err(reason) => format!("{reason:?}"),
        },
        start_date_time: pass.starts_at.to_rfc3339(),
    }
}

pub fn admin_token(token: &AdminToken, now: Timestamp) -> api::AdminToken {
    use latchkey_domain::admin_token::AdminTokenStatus as Status;
    api::AdminToken {
        created_date_time: token.created_at.to_rfc3339(),
        created_by: token.created_by.clone(),
        display_name: token.name.clone(),
        expires_date_time: token.expires_at.map(Timestamp::to_rfc3339),
        id: token.id.to_string(),
        last_used_date_time: token.last_used_at.map(Timestamp::to_rfc3339),
        revoked_by: token.revoked_by.clone(),
        revoked_date_time: token.revoked_at.map(Timestamp::to_rfc3339),
        status: match token.status(now) {
            Status::Active => api::AdminTokenStatus::Active,
            Status::Expired => api::AdminTokenStatus::Expired,
            Status::Revoked => api::AdminTokenStatus::Revoked,
        },
    }
}

pub fn administrator_role(group: &Group) -> api::AdministratorRole {
    api::AdministratorRole {
        display_name: group.display_name.clone(),
        group_id: group.id.to_string(),
    }
}

pub fn location(location: &Location) -> api::SignInLocation {
    let geo_coordinates = (location.latitude.is_some() || location.longitude.is_some()).then_some(
        api::GeoCoordinates {
            latitude: location.latitude,
            longitude: location.longitude,
        },
    );
    api::SignInLocation {
        city: location.city.clone(),
        country_name: location.country.clone(),
        country_or_region: location.country_code.clone(),
        geo_coordinates,
        state: location.region.clone(),
    }
}

pub fn sign_in(record: &SignInRecord) -> api::SignInRecord {
    api::SignInRecord {
        app_display_name: record.app_display_name.clone(),
        app_id: record.app_id.as_ref().map(ToString::to_string),
        authentication_details: record
            .authentication_details
            .iter()
            .map(|step| api::AuthenticationStep {
                authentication_method: step.authentication_method.clone(),
                authentication_method_detail: step.authentication_method_detail.clone(),
                authentication_step_date_time: step.authentication_step_date_time.clone(),
                authentication_step_result_detail: step.authentication_step_result_detail.clone(),
                succeeded: step.succeeded,
            })
            .collect(),
        authentication_method: record.authentication_method.clone(),
        created_date_time: record.created_date_time.to_rfc3339(),
        id: record.id.clone(),
        ip_address: record.ip_address.clone(),
        location: record.location.as_ref().map(location),
        status: api::SignInStatus {
            additional_details: record.status.additional_details.clone(),
            error_code: record.status.error_code,
            failure_reason: record.status.failure_reason.clone(),
        },
        user_display_name: record.user_display_name.clone(),
        user_id: record.user_id.as_ref().map(ToString::to_string),
        user_principal_name: record.user_principal_name.clone(),
    }
}

pub fn audit_event(event: &AuditEvent) -> api::AuditEvent {
    api::AuditEvent {
        activity: event.activity.clone(),
        activity_date_time: event.activity_date_time.to_rfc3339(),
        actor: event.actor.0.clone(),
        after: event.after.clone(),
        before: event.before.clone(),
        category: event.category.as_str().to_string(),
        id: event.id.clone(),
        target: event.target.clone(),
    }
}

/// The contract declares its own names; the test below holds them to the domain's serde names.
fn authentication_method(method: MethodKind) -> api::AuthenticationMethod {
    match method {
        MethodKind::MicrosoftAuthenticator => api::AuthenticationMethod::MicrosoftAuthenticator,
        MethodKind::Fido2 => api::AuthenticationMethod::Fido2,
        MethodKind::TemporaryAccessPass => api::AuthenticationMethod::TemporaryAccessPass,
        MethodKind::X509Certificate => api::AuthenticationMethod::X509Certificate,
        MethodKind::Password => api::AuthenticationMethod::Password,
    }
}

fn authenticator_feature(feature: Feature) -> api::AuthenticatorFeature {
    use api::AuthenticatorFeature as Wire;
    match feature {
        Feature::NumberMatching => Wire::NumberMatching,
        Feature::DisplayAppInformation => Wire::DisplayAppInformation,
        Feature::DisplayLocationInformation => Wire::DisplayLocationInformation,
        Feature::ReportSuspiciousActivity => Wire::ReportSuspiciousActivity,
        Feature::SuppressAnomalousNotifications => Wire::SuppressAnomalousNotifications,
    }
}

fn authentication_mode(mode: AuthenticationMode) -> api::AuthenticationMode {
    match mode {
        AuthenticationMode::Any => api::AuthenticationMode::Any,
        AuthenticationMode::Push => api::AuthenticationMode::Push,
        AuthenticationMode::Passwordless => api::AuthenticationMode::DeviceBasedPush,
    }
}

pub fn evaluation(evaluation: &Evaluation) -> api::MethodEvaluation {
    api::MethodEvaluation {
        allowed: evaluation.allowed,
        features: evaluation
            .features
            .iter()
            .map(|f| api::EffectiveFeature {
                enabled: f.enabled,
                feature: authenticator_feature(f.feature),
                reason: f.reason.clone(),
            })
            .collect(),
        method: authentication_method(evaluation.method),
        mode: evaluation.mode.map(authentication_mode),
        reason: evaluation.reason.clone(),
    }
}

/// A method's configuration in the contract's shape. Through serde, because the domain's serde
/// names (Graph's) are the wire's: the contract's types mirror them member for member, and a
/// member one side has and the other lacks fails here, in the tests, rather than on the wire.
pub fn method_configuration(
    method: MethodKind,
    configuration: &MethodConfiguration,
) -> Result<api::AuthenticationMethodConfiguration, serde_json::Error> {
    api::AuthenticationMethodConfiguration::from_json(
        method.id(),
        serde_json::to_value(configuration)?,
    )
}

pub fn risky_user(risk: &UserRisk, user: &User) -> api::RiskyUser {
    api::RiskyUser {
        id: user.id.to_string(),
        risk_detail: risk.detail.clone(),
        risk_last_updated_date_time: risk.last_updated.to_rfc3339(),
        risk_level: if risk.is_at_risk() { "high" } else { "none" }.to_string(),
        risk_state: risk.state.as_str().to_string(),
        user_display_name: user.display_name.clone(),
        user_principal_name: user.upn.to_string(),
    }
}

pub fn risk_detection(detection: &RiskDetection) -> api::RiskDetection {
    api::RiskDetection {
        app_display_name: detection.app_display_name.clone(),
        detected_date_time: detection.detected_date_time.to_rfc3339(),
        device_name: detection.device_name.clone(),
        id: detection.id.clone(),
        ip_address: detection.ip_address.clone(),
        location: detection.location.as_ref().map(location),
        risk_event_type: detection.risk_event_type.clone(),
        // Only high risk exists today.
        risk_level: "high".to_string(),
        user_id: detection.user_id.to_string(),
    }
}

pub fn new_user(new: api::NewUser) -> NewUser {
    NewUser {
        user_principal_name: new.user_principal_name,
        display_name: new.display_name,
        mail: new.mail,
        account_enabled: new.account_enabled,
    }
}

pub fn user_patch(patch: api::UserPatch) -> UserPatch {
    UserPatch {
        display_name: patch.display_name,
        mail: patch.mail,
        account_enabled: patch.account_enabled,
    }
}

pub fn new_application(new: api::NewApplication) -> NewApplication {
    NewApplication {
        display_name: new.display_name,
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        public_client: new.public_client,
        id_token_signing_alg: new.id_token_signing_alg,
        home_url: new.home_url,
        required_strength: new.required_strength,
        allowed_origins: new.allowed_origins,
        groups_claim: new.groups_claim,
        assignment_required: new.assignment_required,
        backchannel_logout_uri: new.backchannel_logout_uri,
    }
}

pub fn pass_request(request: api::TemporaryAccessPassRequest) -> PassRequest {
    PassRequest {
        start_date_time: request.start_date_time,
        lifetime_in_minutes: request.lifetime_in_minutes,
        is_usable_once: request.is_usable_once,
        length: request.length,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_domain::policy::default_config;
    use serde_json::json;

    /// What the admin API wrote for a configuration before the contract was typed: the domain's
    /// JSON with the method's `id` added, members in name order.
    fn as_written_before(method: MethodKind, configuration: &MethodConfiguration) -> String {
        let mut fields = match serde_json::to_value(configuration) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => panic!("an object"),
        };
        fields.insert("id".into(), method.id().into());
        serde_json::to_string(&fields).expect("writes")
    }

    #[test]
    fn the_effective_policy_names_methods_features_and_modes_as_the_domain_does() {
        let same = |domain: serde_json::Value, wire: serde_json::Value| assert_eq!(domain, wire);
        for method in MethodKind::ALL {
            same(json!(method), json!(authentication_method(method)));
        }
        for feature in Feature::ALL {
            same(json!(feature), json!(authenticator_feature(feature)));
        }
        for mode in [
            AuthenticationMode::Any,
            AuthenticationMode::Push,
            AuthenticationMode::Passwordless,
        ] {
            same(json!(mode), json!(authentication_mode(mode)));
        }
    }

    #[test]
    fn a_typed_configuration_is_written_byte_for_byte_as_before() {
        let mut configurations: Vec<_> = MethodKind::ALL
            .into_iter()
            .map(|m| (m, default_config(m)))
            .collect();
        // Every optional member present too: exclusions, a mode, a feature exclusion, rules.
        let busy = serde_json::json!({
            "state": "enabled",
            "includeTargets": [{"targetType": "group", "id": "g1", "authenticationMode": "push"}],
            "excludeTargets": [{"targetType": "group", "id": "g2"}],
            "featureSettings": {
                "numberMatchingRequiredState": {"state": "enabled",
                    "includeTarget": {"targetType": "group", "id": "all_users"},
                    "excludeTarget": {"targetType": "group", "id": "g2"}},
                "displayAppInformationRequiredState": {"state": "default",
                    "includeTarget": {"targetType": "group", "id": "all_users"}},
                "displayLocationInformationRequiredState": {"state": "disabled",
                    "includeTarget": {"targetType": "group", "id": "all_users"}},
                "reportSuspiciousActivityState": {"state": "default",
                    "includeTarget": {"targetType": "group", "id": "all_users"}},
            },
        });
        let busy = MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, busy)
            .expect("parses");
        configurations.push((MethodKind::MicrosoftAuthenticator, busy));
        let certificates = serde_json::json!({
            "state": "enabled",
            "includeTargets": [{"targetType": "group", "id": "all_users"}],
            "certificateAuthorities": [{"displayName": "Root", "certificate": "PEM"}],
            "certificateUserBindings": [{"x509CertificateField": "RFC822Name",
                "userProperty": "certificateUserIds", "priority": 2, "trustAffinityLevel": "low"}],
            "rules": [{"issuerSubject": "CN=Root", "authenticationMode": "x509CertificateMultiFactor"},
                      {"policyOid": "1.2.3", "authenticationMode": "x509CertificateSingleFactor"}],
            "defaultMode": "x509CertificateSingleFactor",
        });
        let certificates =
            MethodConfiguration::from_json(MethodKind::X509Certificate, certificates)
                .expect("parses");
        configurations.push((MethodKind::X509Certificate, certificates));
        for (method, configuration) in configurations {
            let typed = method_configuration(method, &configuration).expect("converts");
            assert_eq!(
                serde_json::to_string(&typed).expect("writes"),
                as_written_before(method, &configuration),
                "{method:?}"
            );
            let read_back: api::AuthenticationMethodConfiguration =
                serde_json::from_str(&as_written_before(method, &configuration)).expect("reads");
            assert_eq!(read_back, typed, "{method:?}");
        }
    }
}
