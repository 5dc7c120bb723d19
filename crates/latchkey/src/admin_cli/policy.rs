//! `latchkey admin policy …` and `users effective-policy`: the authentication methods policy.
//!
//! Configurations arrive typed (the contract's `AuthenticationMethodConfiguration`); changes go
//! out as JSON merge patches built from typed parts, or as the administrator's own document,
//! which the server checks and names the field at fault in.

use clap::{Args, ValueEnum};
use latchkey_api::{
    AuthenticationMethod, AuthenticationMethodConfiguration,
    AuthenticationMethodConfigurationPatch, AuthenticationMode, AuthenticatorFeature,
    AuthenticatorFeatureSetting, AuthenticatorIncludeTarget, Client, EffectivePolicy, FeatureState,
    Group, MethodState, PolicyTarget,
};
use latchkey_domain::policy::{ALL_USERS, MethodKind};
use serde::Serialize;
use serde_json::{Value, json};

use super::output::{print_json, print_raw, print_table};
use super::{Failure, PolicyAction};

#[derive(Args)]
pub(super) struct PolicySet {
    /// authenticator, fido2, temporaryAccessPass, x509Certificate or password.
    pub(super) method: String,
    /// Replace the whole configuration with the JSON in FILE ("-" reads standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "authenticator_options")]
    pub(super) json: Option<String>,
    #[command(flatten)]
    pub(super) options: AuthenticatorOptions,
}

/// A method's settings. `--state`, `--target` and `--exclude` apply to every method; `--mode`
/// and the notification options to the authenticator app only. Options left out are left as
/// they are.
#[derive(Args, Debug, Default, Clone)]
#[group(id = "authenticator_options", multiple = true)]
pub(super) struct AuthenticatorOptions {
    /// Turn the method on or off.
    #[arg(long, value_enum)]
    pub(super) state: Option<StateArg>,
    /// Who may use the app: "all" (every user) or a group id or display name. Replaces the
    /// include targets with this one (keeping the current mode unless --mode is given).
    #[arg(long, value_name = "all|GROUP")]
    pub(super) target: Option<String>,
    /// any: push and phone sign-in; push: second factor only; passwordless: phone sign-in only.
    /// Replaces the include targets with one (keeping the current target unless --target is
    /// given).
    #[arg(long, value_enum)]
    pub(super) mode: Option<ModeArg>,
    /// A group (id or display name) that may not use the app; repeat for more. Replaces the
    /// current exclusions.
    #[arg(long = "exclude", value_name = "GROUP")]
    pub(super) exclude: Vec<String>,
    /// Remove every exclusion.
    #[arg(long, conflicts_with = "exclude")]
    pub(super) no_exclusions: bool,
    /// Require number matching (always on; "disabled" is refused).
    #[arg(long, value_enum, value_name = "STATE")]
    pub(super) number_matching: Option<FeatureArg>,
    /// Show the application name in notifications.
    #[arg(long, value_enum, value_name = "STATE")]
    pub(super) show_app_name: Option<FeatureArg>,
    /// Show the sign-in's geographic location in notifications.
    #[arg(long, value_enum, value_name = "STATE")]
    pub(super) show_location: Option<FeatureArg>,
    /// Let users report a sign-in they did not start.
    #[arg(long, value_enum, value_name = "STATE")]
    pub(super) report_suspicious: Option<FeatureArg>,
    /// Don't push notifications for unusual sign-ins (a new country, or soon after a denial);
    /// the user opens the app to find them. Default is off.
    #[arg(long, value_enum, value_name = "STATE")]
    pub(super) suppress_unusual: Option<FeatureArg>,
}

impl AuthenticatorOptions {
    pub(super) fn is_empty(&self) -> bool {
        self.state.is_none()
            && self.target.is_none()
            && self.mode.is_none()
            && self.exclude.is_empty()
            && !self.no_exclusions
            && self.features() == FeatureSettingsPatch::default()
    }

    /// The feature options given, as the `featureSettings` part of a patch.
    fn features(&self) -> FeatureSettingsPatch {
        let state = |arg: Option<FeatureArg>| arg.map(|a| FeatureStatePatch { state: a.state() });
        FeatureSettingsPatch {
            number_matching_required_state: state(self.number_matching),
            display_app_information_required_state: state(self.show_app_name),
            display_location_information_required_state: state(self.show_location),
            report_suspicious_activity_state: state(self.report_suspicious),
            suppress_anomalous_notifications_state: state(self.suppress_unusual),
        }
    }

    /// Whether only the options every method has were given (no mode, no features).
    pub(super) fn common_only(&self) -> bool {
        self.mode.is_none() && self.features() == FeatureSettingsPatch::default()
    }

    /// Every group named by the options (not "all"): these need looking up.
    fn named_groups(&self) -> impl Iterator<Item = &String> {
        self.target
            .iter()
            .filter(|t| !is_all_users(t))
            .chain(self.exclude.iter())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum StateArg {
    Enabled,
    Disabled,
}

impl StateArg {
    fn state(self) -> MethodState {
        match self {
            StateArg::Enabled => MethodState::Enabled,
            StateArg::Disabled => MethodState::Disabled,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum ModeArg {
    Any,
    Push,
    Passwordless,
}

impl ModeArg {
    fn mode(self) -> AuthenticationMode {
        match self {
            ModeArg::Any => AuthenticationMode::Any,
            ModeArg::Push => AuthenticationMode::Push,
            ModeArg::Passwordless => AuthenticationMode::DeviceBasedPush,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum FeatureArg {
    Default,
    Enabled,
    Disabled,
}

impl FeatureArg {
    fn state(self) -> FeatureState {
        match self {
            FeatureArg::Default => FeatureState::Default,
            FeatureArg::Enabled => FeatureState::Enabled,
            FeatureArg::Disabled => FeatureState::Disabled,
        }
    }
}

/// The merge patch `policy set authenticator` sends: members left out are left as they are.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthenticatorPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<MethodState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_targets: Option<Vec<AuthenticatorIncludeTarget>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exclude_targets: Option<Vec<PolicyTarget>>,
    #[serde(skip_serializing_if = "is_default")]
    feature_settings: FeatureSettingsPatch,
}

fn is_default(features: &FeatureSettingsPatch) -> bool {
    *features == FeatureSettingsPatch::default()
}

#[derive(Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct FeatureSettingsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    number_matching_required_state: Option<FeatureStatePatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_app_information_required_state: Option<FeatureStatePatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_location_information_required_state: Option<FeatureStatePatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_suspicious_activity_state: Option<FeatureStatePatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppress_anomalous_notifications_state: Option<FeatureStatePatch>,
}

/// A feature's new state; its targets stay as they are.
#[derive(Serialize, PartialEq)]
struct FeatureStatePatch {
    state: FeatureState,
}

const SUMMARY_COLUMNS: &[&str] = &["method", "state", "include", "exclude"];

fn method_kind(id: &str) -> Result<MethodKind, Failure> {
    MethodKind::parse(id).map_err(|e| Failure::Usage(e.to_string()))
}

/// `--target all` (or Graph's own `all_users`) means every user.
fn is_all_users(target: &str) -> bool {
    target.trim().eq_ignore_ascii_case("all") || target.trim() == ALL_USERS
}

/// The id of an include target: `all_users` for `--target all`, else the group's id.
pub(super) fn target_id(groups: &[Group], key: &str) -> Result<String, Failure> {
    if is_all_users(key) {
        Ok(ALL_USERS.to_string())
    } else {
        group_id(groups, key)
    }
}

/// A group's id from its id or its display name (ignoring case), as the server finds groups.
pub(super) fn group_id(groups: &[Group], key: &str) -> Result<String, Failure> {
    let key = key.trim();
    groups
        .iter()
        .find(|g| g.id == key)
        .or_else(|| {
            groups
                .iter()
                .find(|g| g.display_name.eq_ignore_ascii_case(key))
        })
        .map(|g| g.id.clone())
        .ok_or_else(|| {
            Failure::Refused(format!(
                "group {key:?} was not found (no group has that id or display name)"
            ))
        })
}

/// The JSON merge patch (RFC 7396) that `policy set authenticator` sends for its options.
///
/// `groups` is the list from `GET /groups`, used to turn display names into ids (it may be
/// empty when no group is named). `current` is the authenticator's include targets; they are
/// read only when one of `--target` and `--mode` comes without the other, to keep the other
/// half of the single include target. Either option replaces the include targets with one entry.
pub(super) fn authenticator_patch(
    options: &AuthenticatorOptions,
    groups: &[Group],
    current: Option<&[AuthenticatorIncludeTarget]>,
) -> Result<AuthenticationMethodConfigurationPatch, Failure> {
    let resolve = |key: &str| target_id(groups, key);
    let mut patch = AuthenticatorPatch {
        state: options.state.map(StateArg::state),
        feature_settings: options.features(),
        ..AuthenticatorPatch::default()
    };
    if options.target.is_some() || options.mode.is_some() {
        let includes = current.unwrap_or_default();
        let target = match &options.target {
            Some(target) => resolve(target)?,
            None => match includes {
                [only] => only.id.clone(),
                _ => {
                    return Err(Failure::Usage(format!(
                        "the authenticator app has {} include targets; give --target with --mode \
                         (together they replace the include targets with one)",
                        includes.len()
                    )));
                }
            },
        };
        let mode = match options.mode {
            Some(mode) => mode.mode(),
            None => {
                let mut modes = includes.iter().filter_map(|t| t.authentication_mode);
                let first = modes.next().unwrap_or(AuthenticationMode::Any);
                if modes.any(|m| m != first) {
                    return Err(Failure::Usage(
                        "the current include targets have different modes; give --mode with \
                         --target"
                            .into(),
                    ));
                }
                first
            }
        };
        patch.include_targets = Some(vec![AuthenticatorIncludeTarget {
            authentication_mode: Some(mode),
            id: target,
            target_type: "group".into(),
        }]);
    }
    if options.no_exclusions {
        patch.exclude_targets = Some(vec![]);
    } else if !options.exclude.is_empty() {
        let excludes = options
            .exclude
            .iter()
            .map(|g| resolve(g).map(PolicyTarget::group))
            .collect::<Result<Vec<_>, _>>()?;
        patch.exclude_targets = Some(excludes);
    }
    match serde_json::to_value(patch) {
        Ok(Value::Object(fields)) => Ok(AuthenticationMethodConfigurationPatch(fields)),
        _ => Ok(AuthenticationMethodConfigurationPatch::default()),
    }
}

/// The JSON merge patch `policy set` sends for a method other than the authenticator app:
/// state, one include target (no mode) and exclusions, as the options give them.
pub(super) fn method_patch(
    options: &AuthenticatorOptions,
    groups: &[Group],
) -> Result<AuthenticationMethodConfigurationPatch, Failure> {
    let mut patch = authenticator_patch(options, groups, None)?;
    if let Some(Value::Array(targets)) = patch.0.get_mut("includeTargets") {
        for target in targets.iter_mut().filter_map(Value::as_object_mut) {
            target.remove("authenticationMode");
        }
    }
    Ok(patch)
}

/// A group's display name, or its id when it is not in the list.
fn group_name<'a>(groups: &'a [Group], id: &'a str) -> &'a str {
    groups
        .iter()
        .find(|g| g.id == id)
        .map_or(id, |g| g.display_name.as_str())
}

/// The console's names for the authenticator modes.
fn mode_label(mode: AuthenticationMode) -> &'static str {
    match mode {
        AuthenticationMode::Any => "any",
        AuthenticationMode::Push => "push",
        AuthenticationMode::DeviceBasedPush => "passwordless",
    }
}

/// A target as the summaries show it: "all users", or the group's name.
fn target_name(groups: &[Group], target_id: &str) -> String {
    if target_id == ALL_USERS {
        "all users".to_string()
    } else {
        group_name(groups, target_id).to_string()
    }
}

/// One row of the policy summary: method, state, include targets (with modes), exclusions.
pub(super) fn summary_row(
    configuration: &AuthenticationMethodConfiguration,
    groups: &[Group],
) -> Value {
    let joined = |names: Vec<String>| {
        if names.is_empty() {
            Value::Null
        } else {
            Value::String(names.join(", "))
        }
    };
    let include = configuration
        .include_targets()
        .iter()
        .map(|t| match t.authentication_mode {
            Some(mode) => format!("{} ({})", target_name(groups, &t.id), mode_label(mode)),
            None => target_name(groups, &t.id),
        })
        .collect();
    let exclude = configuration
        .exclude_targets()
        .iter()
        .map(|t| target_name(groups, &t.id))
        .collect();
    json!({
        "method": configuration.id(),
        "state": configuration.state(),
        "include": joined(include),
        "exclude": joined(exclude),
    })
}

/// The authenticator's notification features (`featureSettings`) as table rows: feature (named
/// as the `policy set authenticator` option), state, include target, exclude target.
pub(super) fn feature_rows(
    configuration: &AuthenticationMethodConfiguration,
    groups: &[Group],
) -> Vec<Value> {
    let AuthenticationMethodConfiguration::Authenticator(authenticator) = configuration else {
        return vec![];
    };
    let settings = &authenticator.feature_settings;
    let features: [(&str, Option<&AuthenticatorFeatureSetting>); 5] = [
        (
            "number-matching",
            Some(&settings.number_matching_required_state),
        ),
        (
            "show-app-name",
            Some(&settings.display_app_information_required_state),
        ),
        (
            "show-location",
            Some(&settings.display_location_information_required_state),
        ),
        (
            "report-suspicious",
            Some(&settings.report_suspicious_activity_state),
        ),
        (
            "suppress-unusual",
            settings.suppress_anomalous_notifications_state.as_ref(),
        ),
    ];
    features
        .into_iter()
        .filter_map(|(option, setting)| {
            let setting = setting?;
            Some(json!({
                "feature": option,
                "state": setting.state,
                "include": target_name(groups, &setting.include_target.id),
                "exclude": setting.exclude_target.as_ref().map(|t| target_name(groups, &t.id)),
            }))
        })
        .collect()
}

const FEATURE_COLUMNS: &[&str] = &["feature", "state", "include", "exclude"];

async fn print_configuration(
    client: &Client,
    configuration: &AuthenticationMethodConfiguration,
    as_json: bool,
) -> Result<(), Failure> {
    if as_json {
        print_json(configuration);
    } else {
        // Names only make the summary easier to read; ids will do if groups cannot be listed.
        let groups = client.list_groups().await.unwrap_or_default();
        print_table(&[summary_row(configuration, &groups)], SUMMARY_COLUMNS);
        let features = feature_rows(configuration, &groups);
        if !features.is_empty() {
            print_raw("\n");
            print_table(&features, FEATURE_COLUMNS);
        }
    }
    Ok(())
}

fn read_json_document(file: &str) -> Result<Value, Failure> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::Usage(format!("reading standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::Usage(format!("reading {file}: {e}")))?
    };
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("{file}: not valid JSON: {e}")))
}

pub(super) async fn command(
    client: &Client,
    action: PolicyAction,
    as_json: bool,
) -> Result<(), Failure> {
    match action {
        PolicyAction::Show { method: None } => {
            let policy = client.policy().await?;
            if as_json {
                print_json(&policy);
                return Ok(());
            }
            let groups = client.list_groups().await.unwrap_or_default();
            let configurations = &policy.authentication_method_configurations;
            let rows: Vec<Value> = configurations
                .iter()
                .map(|c| summary_row(c, &groups))
                .collect();
            print_table(&rows, SUMMARY_COLUMNS);
            let features: Vec<Value> = configurations
                .iter()
                .flat_map(|c| feature_rows(c, &groups))
                .collect();
            if !features.is_empty() {
                print_raw("\n");
                print_table(&features, FEATURE_COLUMNS);
            }
            Ok(())
        }
        PolicyAction::Show {
            method: Some(method),
        } => {
            let method = method_kind(&method)?;
            let configuration = client.configuration(method.id()).await?;
            print_json(&configuration);
            Ok(())
        }
        PolicyAction::Set(set) => {
            let method = method_kind(&set.method)?;
            let configuration = if let Some(file) = &set.json {
                let document = match read_json_document(file)? {
                    document @ Value::Object(_) => document,
                    _ => {
                        return Err(Failure::Usage(format!(
                            "{file}: the configuration must be a JSON object"
                        )));
                    }
                };
                // Sent as written: the server checks it and names the field at fault.
                client
                    .put_configuration_document(method.id(), &document)
                    .await?
            } else {
                let options = &set.options;
                if options.is_empty() {
                    return Err(Failure::Usage(format!(
                        "nothing to change: give --json FILE{}",
                        if method == MethodKind::MicrosoftAuthenticator {
                            " or options such as --state, --target, --mode, --number-matching"
                        } else {
                            " or --state, --target, --exclude"
                        }
                    )));
                }
                if method != MethodKind::MicrosoftAuthenticator && !options.common_only() {
                    return Err(Failure::Usage(format!(
                        "--mode and the notification options apply to the authenticator app \
                         only; {} takes --state, --target and --exclude, or --json FILE (see \
                         `policy show {}` for its current JSON)",
                        method.id(),
                        method.id()
                    )));
                }
                let groups = if options.named_groups().next().is_some() {
                    client.list_groups().await?
                } else {
                    vec![]
                };
                let current = if method == MethodKind::MicrosoftAuthenticator
                    && options.target.is_some() != options.mode.is_some()
                {
                    Some(client.configuration(method.id()).await?.include_targets())
                } else {
                    None
                };
                let patch = if method == MethodKind::MicrosoftAuthenticator {
                    authenticator_patch(options, &groups, current.as_deref())?
                } else {
                    method_patch(options, &groups)?
                };
                client.patch_configuration(method.id(), &patch).await?
            };
            print_configuration(client, &configuration, as_json).await
        }
        PolicyAction::Campaign { action } => {
            super::campaign::command(client, action, as_json).await
        }
        PolicyAction::Reset { method } => {
            let method = method_kind(&method)?;
            let configuration = client.reset_configuration(method.id()).await?;
            print_configuration(client, &configuration, as_json).await
        }
    }
}

/// The CLI's (`policy set authenticator`) names for the authenticator's features.
fn feature_option(feature: AuthenticatorFeature) -> &'static str {
    match feature {
        AuthenticatorFeature::NumberMatching => "number-matching",
        AuthenticatorFeature::DisplayAppInformation => "show-app-name",
        AuthenticatorFeature::DisplayLocationInformation => "show-location",
        AuthenticatorFeature::ReportSuspiciousActivity => "report-suspicious",
        AuthenticatorFeature::SuppressAnomalousNotifications => "suppress-unusual",
    }
}

/// The command line names a method as its path does (`authenticator`, not Graph's
/// `microsoftAuthenticator`).
fn method_kind_of(method: AuthenticationMethod) -> MethodKind {
    match method {
        AuthenticationMethod::MicrosoftAuthenticator => MethodKind::MicrosoftAuthenticator,
        AuthenticationMethod::Fido2 => MethodKind::Fido2,
        AuthenticationMethod::TemporaryAccessPass => MethodKind::TemporaryAccessPass,
        AuthenticationMethod::X509Certificate => MethodKind::X509Certificate,
        AuthenticationMethod::Password => MethodKind::Password,
    }
}

/// Two tables: each method (allowed, mode, reason), then the authenticator's features.
pub(super) fn print_effective_policy(policy: &EffectivePolicy) {
    use super::output::{Column, print_rows};
    use latchkey_api::{EffectiveFeature, MethodEvaluation};
    let methods: [Column<MethodEvaluation>; 4] = [
        ("method", |e| {
            // The API names the app with Graph's name; the command line with the path's.
            method_kind_of(e.method).id().to_string()
        }),
        ("allowed", |e| e.allowed.to_string()),
        ("mode", |e| e.mode.map_or("-", mode_label).to_string()),
        ("reason", |e| e.reason.clone()),
    ];
    print_rows(&policy.value, &methods);
    let features: Vec<EffectiveFeature> = policy
        .value
        .iter()
        .flat_map(|e| e.features.iter().cloned())
        .collect();
    if !features.is_empty() {
        print_raw("\n");
        let columns: [Column<EffectiveFeature>; 3] = [
            ("feature", |f| feature_option(f.feature).to_string()),
            ("enabled", |f| f.enabled.to_string()),
            ("reason", |f| f.reason.clone()),
        ];
        print_rows(&features, &columns);
    }
}
