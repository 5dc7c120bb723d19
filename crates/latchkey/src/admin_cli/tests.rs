//! The command line's parsing and what it makes of the API's answers.

use clap::{CommandFactory, Parser};
use latchkey_api::{
    AuthenticationMethodConfiguration, AuthenticatorIncludeTarget, Group, SignInLocation,
    SignInRecord, SignInStatus,
};
use serde_json::{Value, json};

use super::logs::*;
use super::policy::*;
use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    admin: AdminArgs,
}

fn parse(args: &[&str]) -> AdminCommand {
    let mut argv = vec!["latchkey-admin"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .admin
        .command
}

fn set_options(args: &[&str]) -> (String, Option<String>, AuthenticatorOptions) {
    match parse(args) {
        AdminCommand::Policy {
            action: PolicyAction::Set(set),
        } => (set.method, set.json, set.options),
        _ => panic!("{args:?} is not `policy set`"),
    }
}

fn group(id: &str, display_name: &str) -> Group {
    Group {
        created_date_time: "2026-11-29T10:00:00Z".into(),
        description: String::new(),
        display_name: display_name.into(),
        id: id.into(),
    }
}

fn groups() -> Vec<Group> {
    vec![
        group("a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "Passwordless Pilot"),
        group("0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b", "Contractors"),
    ]
}

/// The patch for `args`; `current` is the authenticator's configuration (only its
/// `includeTargets` are read).
fn patch(args: &[&str], current: Option<&Value>) -> Result<Value, Failure> {
    let (_, _, options) = set_options(args);
    let includes: Option<Vec<AuthenticatorIncludeTarget>> =
        current.map(|c| serde_json::from_value(c["includeTargets"].clone()).expect("targets"));
    authenticator_patch(&options, &groups(), includes.as_deref()).map(|p| Value::Object(p.0))
}

/// A configuration as the API answers it.
fn configuration(wire: Value) -> AuthenticationMethodConfiguration {
    serde_json::from_value(wire).expect("a configuration")
}

/// A feature setting for all users in `state`.
fn for_all_users(state: &str) -> Value {
    json!({"state": state, "includeTarget": {"targetType": "group", "id": "all_users"}})
}

/// The patch one `policy set authenticator` command line makes over no current policy.
fn patch_from(line: &str) -> Value {
    let args: Vec<&str> = line.split_whitespace().collect();
    patch(&args, None).unwrap()
}

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn lab_step_1_enables_the_authenticator_for_all_users_in_any_mode() {
    let patch = patch_from("policy set authenticator --state enabled --target all --mode any");
    assert_eq!(
        patch,
        json!({
            "state": "enabled",
            "includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "any"}],
        })
    );
}

#[test]
fn lab_step_4_turns_the_notification_features_on() {
    let patch = patch_from(
        "policy set authenticator --number-matching enabled --show-app-name enabled --show-location enabled",
    );
    assert_eq!(
        patch,
        json!({"featureSettings": {
            "numberMatchingRequiredState": {"state": "enabled"},
            "displayAppInformationRequiredState": {"state": "enabled"},
            "displayLocationInformationRequiredState": {"state": "enabled"},
        }})
    );
    let patch = patch_from(
        "policy set authenticator --report-suspicious default --show-location disabled --suppress-unusual enabled",
    );
    assert_eq!(
        patch,
        json!({"featureSettings": {
            "displayLocationInformationRequiredState": {"state": "disabled"},
            "reportSuspiciousActivityState": {"state": "default"},
            "suppressAnomalousNotificationsState": {"state": "enabled"},
        }})
    );
}

#[test]
fn groups_are_named_by_id_or_display_name_and_modes_use_graph_names() {
    let patch = patch(
        &[
            "policy",
            "set",
            "authenticator",
            "--target",
            "passwordless pilot",
            "--mode",
            "passwordless",
            "--exclude",
            "Contractors",
            "--exclude",
            "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78",
            "--state",
            "disabled",
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        patch,
        json!({
            "state": "disabled",
            "includeTargets": [{"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78",
                                "authenticationMode": "deviceBasedPush"}],
            "excludeTargets": [
                {"targetType": "group", "id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b"},
                {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78"},
            ],
        })
    );
    let cleared =
        self::patch(&["policy", "set", "authenticator", "--no-exclusions"], None).unwrap();
    assert_eq!(cleared, json!({"excludeTargets": []}));
    let unknown = self::patch(
        &["policy", "set", "authenticator", "--exclude", "Nobody"],
        None,
    );
    assert!(
        matches!(&unknown, Err(Failure::Refused(m)) if m.contains("Nobody")),
        "{unknown:?}"
    );
}

#[test]
fn target_or_mode_alone_keeps_the_other_half_of_the_single_target() {
    let one = json!({"includeTargets": [
        {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "deviceBasedPush"}
    ]});
    assert_eq!(
        patch(
            &["policy", "set", "authenticator", "--mode", "push"],
            Some(&one)
        )
        .unwrap(),
        json!({"includeTargets": [{"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "push"}]})
    );
    assert_eq!(
        patch(
            &["policy", "set", "authenticator", "--target", "ALL"],
            Some(&one)
        )
        .unwrap(),
        json!({"includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "deviceBasedPush"}]})
    );
    let two = json!({"includeTargets": [
        {"targetType": "group", "id": "all_users", "authenticationMode": "push"},
        {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "deviceBasedPush"}
    ]});
    assert!(matches!(
        patch(
            &["policy", "set", "authenticator", "--mode", "any"],
            Some(&two)
        ),
        Err(Failure::Usage(_))
    ));
    assert!(matches!(
        patch(
            &["policy", "set", "authenticator", "--target", "Contractors"],
            Some(&two)
        ),
        Err(Failure::Usage(_))
    ));
}

#[test]
fn json_documents_and_options_do_not_mix() {
    let (method, json, options) =
        set_options(&["policy", "set", "temporaryAccessPass", "--json", "-"]);
    assert_eq!(
        (method.as_str(), json.as_deref()),
        ("temporaryAccessPass", Some("-"))
    );
    assert!(options.is_empty());
    let mixed = Cli::try_parse_from([
        "latchkey-admin",
        "policy",
        "set",
        "authenticator",
        "--json",
        "policy.json",
        "--state",
        "enabled",
    ]);
    assert!(mixed.is_err());
    let bad_mode = Cli::try_parse_from([
        "latchkey-admin",
        "policy",
        "set",
        "authenticator",
        "--mode",
        "deviceBasedPush",
    ]);
    assert!(bad_mode.is_err());
}

#[test]
fn log_queries_are_checked_and_encoded() {
    let AdminCommand::Logs {
        action: LogAction::Signins { common, .. },
    } = parse(&[
        "logs",
        "signins",
        "--since",
        "1h",
        "--user",
        "bobby+test@contoso.example",
        "--top",
        "50",
        "--format",
        "csv",
    ])
    else {
        panic!("not logs signins");
    };
    let now = latchkey_domain::clock::Timestamp(1_795_910_400);
    let filters = latchkey_api::LogParameters {
        status: Some("failure".into()),
        ..Default::default()
    };
    assert_eq!(
        log_query(&common, filters, now).unwrap(),
        latchkey_api::LogParameters {
            since: Some("1h".into()),
            user: Some("bobby+test@contoso.example".into()),
            status: Some("failure".into()),
            top: Some(50),
            format: Some("csv".into()),
            ..Default::default()
        }
    );
    let AdminCommand::Logs {
        action: LogAction::Audit { common, .. },
    } = parse(&["logs", "audit", "--since", "yesterday"])
    else {
        panic!("not logs audit");
    };
    assert!(matches!(
        log_query(&common, Default::default(), now),
        Err(Failure::Usage(_))
    ));
    assert!(Cli::try_parse_from(["latchkey-admin", "logs", "signins", "--top", "5000"]).is_err());
}

fn sign_in(
    app: Option<&str>,
    location: Option<SignInLocation>,
    status: SignInStatus,
) -> SignInRecord {
    SignInRecord {
        app_display_name: app.map(str::to_string),
        app_id: None,
        authentication_details: vec![],
        authentication_method: "temporaryAccessPass".into(),
        created_date_time: "2026-11-29T10:00:00Z".into(),
        id: "1".into(),
        ip_address: Some("203.0.113.7".into()),
        location,
        status,
        user_display_name: None,
        user_id: None,
        user_principal_name: "bobby@contoso.example".into(),
    }
}

#[test]
fn sign_in_rows_read_like_the_console() {
    let sydney = SignInLocation {
        city: Some("Sydney".into()),
        country_name: Some("Australia".into()),
        country_or_region: Some("AU".into()),
        geo_coordinates: None,
        state: Some("New South Wales".into()),
    };
    let failed = sign_in(
        Some("Wiki"),
        Some(sydney),
        SignInStatus {
            additional_details: None,
            error_code: 900001,
            failure_reason: Some("The Temporary Access Pass has expired.".into()),
        },
    );
    let row = sign_in_row(&failed);
    assert_eq!(row.time, "2026-11-29T10:00:00Z");
    assert_eq!(row.user, "bobby@contoso.example");
    assert_eq!(row.app.as_deref(), Some("Wiki"));
    assert_eq!(row.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(row.location.as_deref(), Some("Sydney, Australia"));
    assert_eq!(row.method, "temporaryAccessPass");
    assert_eq!(row.result, "900001 The Temporary Access Pass has expired.");
    let succeeded = sign_in(
        None,
        None,
        SignInStatus {
            additional_details: None,
            error_code: 0,
            failure_reason: None,
        },
    );
    let row = sign_in_row(&succeeded);
    assert_eq!(row.result, "Success");
    assert_eq!(row.location, None);
    assert_eq!(row.app, None);
}

#[test]
fn feature_rows_use_the_option_names() {
    let authenticator = configuration(json!({
    "id": "authenticator", "state": "enabled", "excludeTargets": [],
    "includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "any"}],
    "featureSettings": {
        "numberMatchingRequiredState": for_all_users("enabled"),
        "displayAppInformationRequiredState": {"state": "default", "includeTarget": {"targetType": "group", "id": "all_users"},
                                               "excludeTarget": {"targetType": "group", "id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b"}},
        "displayLocationInformationRequiredState": for_all_users("default"),
        "reportSuspiciousActivityState": for_all_users("default"),
    }}));
    let rows = feature_rows(&authenticator, &groups());
    assert_eq!(
        rows[..2],
        [
            json!({"feature": "number-matching", "state": "enabled", "include": "all users", "exclude": null}),
            json!({"feature": "show-app-name", "state": "default", "include": "all users", "exclude": "Contractors"}),
        ]
    );
    // A policy saved before `suppressAnomalousNotificationsState` existed has no row for it.
    assert_eq!(rows.len(), 4);
    let password = configuration(json!({"id": "password", "state": "enabled",
        "includeTargets": [{"targetType": "group", "id": "all_users"}]}));
    assert!(feature_rows(&password, &[]).is_empty());
}

#[test]
fn policy_summary_names_groups_and_modes() {
    let configuration = configuration(json!({
        "id": "authenticator",
        "state": "enabled",
        "featureSettings": {
            "numberMatchingRequiredState": for_all_users("default"),
            "displayAppInformationRequiredState": for_all_users("default"),
            "displayLocationInformationRequiredState": for_all_users("default"),
            "reportSuspiciousActivityState": for_all_users("default"),
        },
        "includeTargets": [
            {"targetType": "group", "id": "all_users", "authenticationMode": "push"},
            {"targetType": "group", "id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "authenticationMode": "deviceBasedPush"},
        ],
        "excludeTargets": [{"targetType": "group", "id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b"}],
    }));
    assert_eq!(
        summary_row(&configuration, &groups()),
        json!({"method": "authenticator", "state": "enabled",
               "include": "all users (push), Passwordless Pilot (passwordless)",
               "exclude": "Contractors"})
    );
}

#[test]
fn policy_set_turns_passkeys_on_for_a_group_without_an_authenticator_mode() {
    let (method, _, options) = set_options(&[
        "policy",
        "set",
        "fido2",
        "--state",
        "enabled",
        "--target",
        "Passwordless Pilot",
        "--exclude",
        "Contractors",
    ]);
    assert_eq!(method, "fido2");
    assert!(options.common_only());
    let sent = Value::Object(method_patch(&options, &groups()).expect("a patch").0);
    assert_eq!(
        sent,
        json!({
            "state": "enabled",
            "includeTargets": [{"id": "a4c9e2f1b7d34e8a9f0c6b5d2e1a3f78", "targetType": "group"}],
            "excludeTargets": [{"id": "0b7e5d3c1a9f4e2d8c6b4a2f0e8d6c4b", "targetType": "group"}],
        })
    );
    // A mode or a notification option is the authenticator app's alone.
    let (_, _, with_mode) = set_options(&["policy", "set", "fido2", "--mode", "push"]);
    assert!(!with_mode.common_only());
    let (_, _, with_feature) =
        set_options(&["policy", "set", "fido2", "--show-location", "enabled"]);
    assert!(!with_feature.common_only());
}
