//! The authentication methods policy: the list of methods, the authenticator app's two tabs
//! ("Enable and Target", "Configure") and the page of every other method. Forms are written
//! into the method's configuration JSON and saved whole, so the domain validates them.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum_extra::extract::cookie::CookieJar;
use latchkey_domain::DomainError;
use latchkey_domain::policy::{
    ALL_USERS, AuthenticationMethodsPolicy, AuthenticationMode, AuthenticatorFeatures, Feature,
    FeatureState, MethodKind, MethodState, Target, Targeting,
};
use latchkey_domain::user::Group;
use serde_json::{Value, json};

use super::{
    Admin, Banner, Choice, ConsoleError, ConsoleResult, Fields, Frame, NoticeParam, PathId,
    PostedForm, Refusable, Refused, Section, choices, not_found, notice, redirect, with_blank,
};
use crate::AppState;
use crate::error::PageError;

pub(super) const AUTHENTICATOR_PATH: &str = "/admin/policies/authenticator";
pub(super) const AUTHENTICATOR_CONFIGURE_PATH: &str = "/admin/policies/authenticator/configure";

struct PolicyRow {
    href: String,
    label: &'static str,
    enabled: bool,
    target: String,
    excluded: String,
}

#[derive(Template)]
#[template(path = "console_policies.html")]
struct PoliciesPage {
    frame: Frame,
    rows: Vec<PolicyRow>,
}

/// Targets as people read them: "All users" or group names, comma-separated.
fn target_names<'a>(
    targets: impl IntoIterator<Item = &'a Target>,
    names: &BTreeMap<String, String>,
) -> String {
    targets
        .into_iter()
        .map(|target| match target {
            Target::AllUsers => "All users".into(),
            Target::Group(id) => names
                .get(id.as_str())
                .cloned()
                .unwrap_or_else(|| format!("Unknown group {id}")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn list(
    State(state): State<AppState>,
    jar: CookieJar,
    query: NoticeParam,
) -> ConsoleResult {
    let admin = Admin::signed_in(state, jar, "/admin/policies").await?;
    let banner = notice(query)?;
    let policy = admin.latchkey().governance.policy().await?;
    let names: BTreeMap<String, String> =
        group_options(&admin.latchkey().directory.list_groups().await?)
            .into_iter()
            .collect();
    let rows = MethodKind::ALL
        .into_iter()
        .map(|kind| {
            let config = policy.configuration(kind);
            let targeting = config.targeting();
            PolicyRow {
                href: method_path(kind),
                label: kind.label(),
                enabled: targeting.state == MethodState::Enabled,
                target: target_names(targeting.include_targets.iter().map(|t| &t.target), &names),
                excluded: target_names(&targeting.exclude_targets, &names),
            }
        })
        .collect();
    admin.page(Section::Policies, banner, |frame| PoliciesPage {
        frame,
        rows,
    })
}

fn method_path(kind: MethodKind) -> String {
    format!("/admin/policies/{}", kind.id())
}

/// A target as a form value: `all_users` or a group id.
fn target_value(target: &Target) -> String {
    match target {
        Target::AllUsers => ALL_USERS.to_string(),
        Target::Group(id) => id.to_string(),
    }
}

/// A target as the policy's JSON has it.
fn target_json(value: &str) -> Value {
    json!({"targetType": "group", "id": value})
}

fn mode_value(mode: AuthenticationMode) -> &'static str {
    match mode {
        AuthenticationMode::Any => "any",
        AuthenticationMode::Push => "push",
        AuthenticationMode::Passwordless => "passwordless",
    }
}

fn parse_mode(value: &str) -> Option<AuthenticationMode> {
    match value {
        "any" => Some(AuthenticationMode::Any),
        "push" => Some(AuthenticationMode::Push),
        "passwordless" | "deviceBasedPush" => Some(AuthenticationMode::Passwordless),
        _ => None,
    }
}

fn state_value(state: FeatureState) -> &'static str {
    match state {
        FeatureState::Default => "default",
        FeatureState::Enabled => "enabled",
        FeatureState::Disabled => "disabled",
    }
}

fn parse_feature_state(value: &str) -> Option<FeatureState> {
    match value {
        "default" => Some(FeatureState::Default),
        "enabled" => Some(FeatureState::Enabled),
        "disabled" => Some(FeatureState::Disabled),
        _ => None,
    }
}

/// The prefix of a feature's form fields (`displayAppInformation.state`, …).
fn feature_field(feature: Feature) -> &'static str {
    match feature {
        Feature::NumberMatching => "numberMatching",
        Feature::DisplayAppInformation => "displayAppInformation",
        Feature::DisplayLocationInformation => "displayLocationInformation",
        Feature::ReportSuspiciousActivity => "reportSuspiciousActivity",
        Feature::SuppressAnomalousNotifications => "suppressAnomalousNotifications",
    }
}

/// The feature's key under `featureSettings` in the authenticator's configuration.
fn feature_key(feature: Feature) -> &'static str {
    match feature {
        Feature::NumberMatching => "numberMatchingRequiredState",
        Feature::DisplayAppInformation => "displayAppInformationRequiredState",
        Feature::DisplayLocationInformation => "displayLocationInformationRequiredState",
        Feature::ReportSuspiciousActivity => "reportSuspiciousActivityState",
        Feature::SuppressAnomalousNotifications => "suppressAnomalousNotificationsState",
    }
}

/// One include row of the "Enable and Target" form: a target (empty for none) and, for the
/// authenticator app, its authentication mode.
#[derive(Debug, Clone, PartialEq)]
struct IncludeRow {
    target: String,
    mode: String,
}

/// The "Enable and Target" form, as shown or as posted (kept as typed, to show it again).
#[derive(Debug, Clone, PartialEq)]
struct TargetingInput {
    enabled: bool,
    includes: Vec<IncludeRow>,
    excludes: Vec<String>,
}

impl TargetingInput {
    fn from_targeting(targeting: &Targeting) -> TargetingInput {
        TargetingInput {
            enabled: targeting.state == MethodState::Enabled,
            includes: targeting
                .include_targets
                .iter()
                .map(|t| IncludeRow {
                    target: target_value(&t.target),
                    mode: t.authentication_mode.map_or("any", mode_value).to_string(),
                })
                .collect(),
            excludes: targeting.exclude_targets.iter().map(target_value).collect(),
        }
    }

    /// The posted form over the current values. `enabled` is a checkbox (absent is off);
    /// include and exclude rows replace the current ones when the form has them at all.
    fn from_fields(fields: &Fields, current: TargetingInput) -> Result<TargetingInput, PageError> {
        let enabled = fields.checkbox("enabled")?;
        let includes = if fields.has("include_target") {
            let targets: Vec<&str> = fields.all("include_target").collect();
            let modes: Vec<&str> = fields.all("include_mode").collect();
            if !modes.is_empty() && modes.len() != targets.len() {
                return Err(PageError::bad_request(
                    "include_mode: send one mode for every include_target row.",
                ));
            }
            targets
                .iter()
                .enumerate()
                .map(|(i, target)| IncludeRow {
                    target: target.trim().to_string(),
                    mode: modes.get(i).map_or("any", |m| m.trim()).to_string(),
                })
                .collect()
        } else {
            current.includes
        };
        let excludes = if fields.has("exclude") {
            fields
                .all("exclude")
                .map(|v| v.trim().to_string())
                .collect()
        } else {
            current.excludes
        };
        Ok(TargetingInput {
            enabled,
            includes,
            excludes,
        })
    }

    /// Writes state, include and exclude targets into a method's configuration JSON. Rows
    /// without a target are left out; `with_modes` is true for the authenticator app only.
    fn apply(&self, config: &mut Value, with_modes: bool) -> Result<(), String> {
        let mut includes = Vec::new();
        for row in self.includes.iter().filter(|r| !r.target.is_empty()) {
            let mut target = target_json(&row.target);
            if with_modes {
                let mode = parse_mode(&row.mode).ok_or_else(|| {
                    format!(
                        "include_mode: {:?} is not an authentication mode; choose Any, Push or Passwordless.",
                        row.mode
                    )
                })?;
                target["authenticationMode"] =
                    serde_json::to_value(mode).map_err(|e| e.to_string())?;
            }
            includes.push(target);
        }
        if includes.is_empty() {
            return Err(
                "include_target: choose All users or at least one group to include.".into(),
            );
        }
        let mut excludes: Vec<&str> = Vec::new();
        for exclude in self.excludes.iter().filter(|e| !e.is_empty()) {
            if !excludes.contains(&exclude.as_str()) {
                excludes.push(exclude);
            }
        }
        let Some(object) = config.as_object_mut() else {
            return Err("configuration: must be a JSON object.".into());
        };
        object.insert(
            "state".into(),
            json!(if self.enabled { "enabled" } else { "disabled" }),
        );
        object.insert("includeTargets".into(), Value::Array(includes));
        object.insert(
            "excludeTargets".into(),
            Value::Array(excludes.into_iter().map(target_json).collect()),
        );
        Ok(())
    }
}

/// One feature row of the authenticator's "Configure" tab.
#[derive(Debug, Clone, PartialEq)]
struct FeatureInput {
    feature: Feature,
    state: String,
    include: String,
    /// Empty for no exclusion.
    exclude: String,
}

#[derive(Debug, Clone, PartialEq)]
struct FeaturesInput {
    rows: Vec<FeatureInput>,
}

impl FeaturesInput {
    fn from_features(features: &AuthenticatorFeatures) -> FeaturesInput {
        FeaturesInput {
            rows: Feature::ALL
                .into_iter()
                .map(|feature| {
                    let setting = features.setting(feature);
                    FeatureInput {
                        feature,
                        state: state_value(setting.state).to_string(),
                        include: target_value(&setting.include_target),
                        exclude: setting
                            .exclude_target
                            .as_ref()
                            .map(target_value)
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }

    /// The posted form over the current values: a feature's fields that are absent keep
    /// their current values.
    fn from_fields(fields: &Fields, current: FeaturesInput) -> Result<FeaturesInput, PageError> {
        let mut rows = Vec::with_capacity(current.rows.len());
        for row in current.rows {
            let prefix = feature_field(row.feature);
            let value = |suffix: &str, now: String| -> Result<String, PageError> {
                Ok(fields
                    .one(&format!("{prefix}.{suffix}"))?
                    .map_or(now, |v| v.trim().to_string()))
            };
            rows.push(FeatureInput {
                feature: row.feature,
                state: value("state", row.state)?,
                include: value("include", row.include)?,
                exclude: value("exclude", row.exclude)?,
            });
        }
        Ok(FeaturesInput { rows })
    }

    /// Writes every feature into the authenticator configuration's `featureSettings`.
    fn apply(&self, config: &mut Value) -> Result<(), String> {
        let Some(settings) = config
            .get_mut("featureSettings")
            .and_then(Value::as_object_mut)
        else {
            return Err("featureSettings: missing from the configuration.".into());
        };
        for row in &self.rows {
            let field = feature_field(row.feature);
            let state = parse_feature_state(&row.state)
                .ok_or_else(|| format!("{field}.state: choose Default, Enabled or Disabled."))?;
            if row.include.is_empty() {
                return Err(format!(
                    "{field}.include: choose All users or a group to include."
                ));
            }
            let mut setting = json!({
                "state": serde_json::to_value(state).map_err(|e| e.to_string())?,
                "includeTarget": target_json(&row.include),
            });
            if !row.exclude.is_empty() {
                setting["excludeTarget"] = target_json(&row.exclude);
            }
            settings.insert(feature_key(row.feature).into(), setting);
        }
        Ok(())
    }
}

/// Every group as a select option: its id and its name.
fn group_options(groups: &[Group]) -> Vec<(String, String)> {
    groups
        .iter()
        .map(|g| (g.id.to_string(), g.display_name.clone()))
        .collect()
}

/// The options of a target select: All users, then every group.
fn target_options(groups: &[Group]) -> Vec<(String, String)> {
    let mut options = vec![(ALL_USERS.to_string(), "All users".to_string())];
    options.extend(group_options(groups));
    options
}

struct IncludeRowView {
    targets: Vec<Choice>,
    modes: Vec<Choice>,
}

/// The "Enable and Target" rows ready to show: the rows given plus an empty one to add with.
struct TargetingView {
    enabled: bool,
    includes: Vec<IncludeRowView>,
    excludes: Vec<Vec<Choice>>,
}

fn targeting_view(input: &TargetingInput, groups: &[Group]) -> TargetingView {
    let targets = with_blank("None (remove this row)", target_options(groups));
    let modes: Vec<(String, String)> = [
        AuthenticationMode::Any,
        AuthenticationMode::Push,
        AuthenticationMode::Passwordless,
    ]
    .into_iter()
    .map(|m| (mode_value(m).to_string(), m.label().to_string()))
    .collect();
    let blank = IncludeRow {
        target: String::new(),
        mode: "any".into(),
    };
    let includes = input
        .includes
        .iter()
        .filter(|r| !r.target.is_empty())
        .chain(std::iter::once(&blank))
        .map(|row| IncludeRowView {
            targets: choices(&targets, &row.target),
            modes: choices(&modes, &row.mode),
        })
        .collect();
    let exclude_options = with_blank("None", group_options(groups));
    let excludes = input
        .excludes
        .iter()
        .filter(|e| !e.is_empty())
        .map(String::as_str)
        .chain(std::iter::once(""))
        .map(|e| choices(&exclude_options, e))
        .collect();
    TargetingView {
        enabled: input.enabled,
        includes,
        excludes,
    }
}

struct FeatureRowView {
    field: &'static str,
    label: &'static str,
    states: Vec<Choice>,
    includes: Vec<Choice>,
    excludes: Vec<Choice>,
    /// A sentence under the label, for features whose effect the label cannot say.
    note: Option<&'static str>,
}

/// What an administrator should know about a feature before changing it.
fn feature_note(feature: Feature) -> Option<&'static str> {
    match feature {
        Feature::NumberMatching => Some(
            "Number matching is always on for Authenticator notifications; Disabled is refused.",
        ),
        Feature::SuppressAnomalousNotifications => Some(
            "Off by default. When on, a sign-in from a country the user has never signed in from, or within 24 hours of the user denying or reporting a request, is not pushed to their phone: the sign-in page tells them to open the app and check for pending requests. A user's first sign-in is always pushed.",
        ),
        _ => None,
    }
}

fn features_view(input: &FeaturesInput, groups: &[Group]) -> Vec<FeatureRowView> {
    let states: Vec<(String, String)> = [
        (FeatureState::Default, "Default"),
        (FeatureState::Enabled, "Enabled"),
        (FeatureState::Disabled, "Disabled"),
    ]
    .into_iter()
    .map(|(s, label)| (state_value(s).to_string(), label.to_string()))
    .collect();
    let includes = target_options(groups);
    let excludes = with_blank("None", group_options(groups));
    input
        .rows
        .iter()
        .map(|row| FeatureRowView {
            field: feature_field(row.feature),
            label: row.feature.label(),
            states: choices(&states, &row.state),
            includes: choices(&includes, &row.include),
            excludes: choices(&excludes, &row.exclude),
            note: feature_note(row.feature),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console_authenticator.html")]
struct AuthenticatorPage {
    frame: Frame,
    configure: bool,
    version: u64,
    targeting: TargetingView,
    features: Vec<FeatureRowView>,
}

/// A tab of the authenticator's page, with the input posted to it when shown again.
enum Tab {
    Targeting(Option<TargetingInput>),
    Features(Option<FeaturesInput>),
}

fn authenticator_path(configure: bool) -> &'static str {
    if configure {
        AUTHENTICATOR_CONFIGURE_PATH
    } else {
        AUTHENTICATOR_PATH
    }
}

async fn render_authenticator(
    admin: Admin,
    policy: &AuthenticationMethodsPolicy,
    banner: Banner,
    tab: Tab,
) -> ConsoleResult {
    let groups = admin.latchkey().directory.list_groups().await?;
    let (configure, targeting, features) = match tab {
        Tab::Targeting(posted) => (false, posted, None),
        Tab::Features(posted) => (true, None, posted),
    };
    let authenticator = &policy.authenticator;
    let targeting =
        targeting.unwrap_or_else(|| TargetingInput::from_targeting(&authenticator.targeting));
    let features =
        features.unwrap_or_else(|| FeaturesInput::from_features(&authenticator.feature_settings));
    admin.page(Section::Policies, banner, |frame| AuthenticatorPage {
        frame,
        configure,
        version: policy.version,
        targeting: targeting_view(&targeting, &groups),
        features: features_view(&features, &groups),
    })
}

/// The authenticator app's "Enable and Target" tab, or with `CONFIGURE` its "Configure" tab.
pub(super) async fn authenticator<const CONFIGURE: bool>(
    State(state): State<AppState>,
    jar: CookieJar,
    query: NoticeParam,
) -> ConsoleResult {
    let admin = Admin::signed_in(state, jar, authenticator_path(CONFIGURE)).await?;
    let banner = notice(query)?;
    let policy = admin.latchkey().governance.policy().await?;
    let tab = if CONFIGURE {
        Tab::Features(None)
    } else {
        Tab::Targeting(None)
    };
    render_authenticator(admin, &policy, banner, tab).await
}

/// Refuses a form made from an older policy than the one in force: saving it would quietly
/// undo someone else's change.
fn check_version(fields: &Fields, policy: &AuthenticationMethodsPolicy) -> Result<(), Refused> {
    let Some(sent) = fields.one("version").map_err(|e| Refused::bad(e.message))? else {
        return Ok(());
    };
    let sent: u64 = sent
        .trim()
        .parse()
        .map_err(|_| Refused::bad("version: must be the number the page was shown with."))?;
    if sent != policy.version {
        return Err(Refused {
            status: StatusCode::CONFLICT,
            message: "The policy was changed by someone else since this page was opened. Your input is kept below; reload the page to see the current policy, then save again.".into(),
        });
    }
    Ok(())
}

/// Saves the method's current configuration as `edit` changes it, unless the form is stale;
/// `None` when saved, else why it was refused.
async fn save(
    admin: &Admin,
    fields: &Fields,
    policy: &AuthenticationMethodsPolicy,
    kind: MethodKind,
    edit: impl FnOnce(&mut Value) -> Result<(), String>,
) -> Result<Option<Refused>, ConsoleError> {
    let edited = check_version(fields, policy).and_then(|()| {
        let mut config = serde_json::to_value(policy.configuration(kind)).map_err(|e| Refused {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("The current configuration could not be read: {e}"),
        })?;
        edit(&mut config).map_err(Refused::bad)?;
        Ok(config)
    });
    let configuration = match edited {
        Ok(configuration) => configuration,
        Err(refused) => return Ok(Some(refused)),
    };
    let saved = admin
        .latchkey()
        .governance
        .set_method_configuration(&admin.actor(), kind, configuration)
        .await;
    Ok(saved.refusable()?.err())
}

/// Saves the tab of the authenticator app's page that `CONFIGURE` names.
pub(super) async fn save_authenticator<const CONFIGURE: bool>(
    State(state): State<AppState>,
    jar: CookieJar,
    form: PostedForm,
) -> ConsoleResult {
    let path = authenticator_path(CONFIGURE);
    let (admin, fields) = Admin::form(state, jar, path, form).await?;
    let policy = admin.latchkey().governance.policy().await?;
    let authenticator = &policy.authenticator;
    let kind = MethodKind::MicrosoftAuthenticator;
    let (refused, tab) = if CONFIGURE {
        let current = FeaturesInput::from_features(&authenticator.feature_settings);
        let input = FeaturesInput::from_fields(&fields, current)?;
        let refused = save(&admin, &fields, &policy, kind, |c| input.apply(c)).await?;
        (refused, Tab::Features(Some(input)))
    } else {
        let current = TargetingInput::from_targeting(&authenticator.targeting);
        let input = TargetingInput::from_fields(&fields, current)?;
        let refused = save(&admin, &fields, &policy, kind, |c| input.apply(c, true)).await?;
        (refused, Tab::Targeting(Some(input)))
    };
    match refused {
        None => Ok(redirect(path, "saved")),
        Some(refused) => render_authenticator(admin, &policy, refused.into(), tab).await,
    }
}

/// A method named in a URL, by its exact id.
fn method_by_id(id: &str) -> Result<MethodKind, ConsoleError> {
    MethodKind::ALL
        .into_iter()
        .find(|m| m.id() == id)
        .ok_or_else(|| not_found("authentication method").into())
}

/// The methods other than the authenticator app, whose page is the simple one.
fn simple_method(id: &str) -> Result<MethodKind, ConsoleError> {
    match method_by_id(id)? {
        MethodKind::MicrosoftAuthenticator => Err(not_found("page").into()),
        kind => Ok(kind),
    }
}

#[derive(Template)]
#[template(path = "console_method.html")]
struct MethodPage {
    frame: Frame,
    id: &'static str,
    label: &'static str,
    version: u64,
    targeting: TargetingView,
    settings: String,
}

/// The input posted to another method's page, to show again instead of the policy's values.
#[derive(Default)]
struct MethodInput {
    targeting: Option<TargetingInput>,
    settings: Option<String>,
}

async fn render_method(
    admin: Admin,
    kind: MethodKind,
    policy: &AuthenticationMethodsPolicy,
    banner: Banner,
    posted: MethodInput,
) -> ConsoleResult {
    let groups = admin.latchkey().directory.list_groups().await?;
    let config = policy.configuration(kind);
    let targeting = posted
        .targeting
        .unwrap_or_else(|| TargetingInput::from_targeting(config.targeting()));
    let settings = match posted.settings {
        Some(settings) => settings,
        None => serde_json::to_string_pretty(&config)
            .map_err(|e| PageError::from(DomainError::Internal(e.to_string())))?,
    };
    admin.page(Section::Policies, banner, |frame| MethodPage {
        frame,
        id: kind.id(),
        label: kind.label(),
        version: policy.version,
        targeting: targeting_view(&targeting, &groups),
        settings,
    })
}

pub(super) async fn method_page(
    State(state): State<AppState>,
    jar: CookieJar,
    path: PathId,
    query: NoticeParam,
) -> ConsoleResult {
    let Path(id) = path?;
    let admin = Admin::signed_in(state, jar, &format!("/admin/policies/{id}")).await?;
    let banner = notice(query)?;
    let kind = method_by_id(&id)?;
    if kind == MethodKind::MicrosoftAuthenticator {
        return Ok(Redirect::to(AUTHENTICATOR_PATH).into_response());
    }
    let policy = admin.latchkey().governance.policy().await?;
    render_method(admin, kind, &policy, banner, MethodInput::default()).await
}

/// A form posted from the page of the (simple) method in the path, and the policy in force.
async fn method_form(
    state: AppState,
    jar: CookieJar,
    path: PathId,
    form: PostedForm,
) -> Result<(Admin, Fields, MethodKind, AuthenticationMethodsPolicy), ConsoleError> {
    let Path(id) = path?;
    let (admin, fields) = Admin::form(state, jar, &format!("/admin/policies/{id}"), form).await?;
    let kind = simple_method(&id)?;
    let policy = admin.latchkey().governance.policy().await?;
    Ok((admin, fields, kind, policy))
}

/// After a save: back to the method's page with a notice, or the page again showing why not.
async fn after_save(
    admin: Admin,
    kind: MethodKind,
    policy: &AuthenticationMethodsPolicy,
    refused: Option<Refused>,
    posted: MethodInput,
) -> ConsoleResult {
    match refused {
        None => Ok(redirect(&method_path(kind), "saved")),
        Some(refused) => render_method(admin, kind, policy, refused.into(), posted).await,
    }
}

pub(super) async fn save_method_targeting(
    State(state): State<AppState>,
    jar: CookieJar,
    path: PathId,
    form: PostedForm,
) -> ConsoleResult {
    let (admin, fields, kind, policy) = method_form(state, jar, path, form).await?;
    let current = TargetingInput::from_targeting(policy.configuration(kind).targeting());
    let input = TargetingInput::from_fields(&fields, current)?;
    let refused = save(&admin, &fields, &policy, kind, |c| input.apply(c, false)).await?;
    let posted = MethodInput {
        targeting: Some(input),
        settings: None,
    };
    after_save(admin, kind, &policy, refused, posted).await
}

/// The settings textarea as a configuration: JSON, an object.
fn parse_settings(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Err("configuration: enter the configuration as JSON.".into());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("configuration: must be a JSON object ({ … }).".into()),
        Err(e) => Err(format!("configuration: this is not valid JSON ({e}).")),
    }
}

pub(super) async fn save_method_settings(
    State(state): State<AppState>,
    jar: CookieJar,
    path: PathId,
    form: PostedForm,
) -> ConsoleResult {
    let (admin, fields, kind, policy) = method_form(state, jar, path, form).await?;
    let text = fields.one("configuration")?.unwrap_or_default().to_string();
    let replace = |config: &mut Value| parse_settings(&text).map(|value| *config = value);
    let refused = save(&admin, &fields, &policy, kind, replace).await?;
    let posted = MethodInput {
        targeting: None,
        settings: Some(text),
    };
    after_save(admin, kind, &policy, refused, posted).await
}

pub(super) async fn reset_method(
    State(state): State<AppState>,
    jar: CookieJar,
    path: PathId,
    form: PostedForm,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, _) = Admin::form(state, jar, &format!("/admin/policies/{id}"), form).await?;
    let kind = method_by_id(&id)?;
    let reset = admin
        .latchkey()
        .governance
        .reset_method_configuration(&admin.actor(), kind)
        .await;
    let Err(refused) = reset.refusable()? else {
        // For the authenticator app, that is AUTHENTICATOR_PATH.
        return Ok(redirect(&method_path(kind), "reset"));
    };
    let policy = admin.latchkey().governance.policy().await?;
    if kind == MethodKind::MicrosoftAuthenticator {
        render_authenticator(admin, &policy, refused.into(), Tab::Targeting(None)).await
    } else {
        render_method(admin, kind, &policy, refused.into(), MethodInput::default()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_domain::clock::Timestamp;
    use latchkey_domain::ids::GroupId;
    use latchkey_domain::policy::{MethodConfiguration, default_config};

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn authenticator_json() -> Value {
        serde_json::to_value(AuthenticationMethodsPolicy::default().authenticator).unwrap()
    }

    fn parse_authenticator(value: Value) -> latchkey_domain::policy::AuthenticatorConfig {
        match MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, value).unwrap() {
            MethodConfiguration::Authenticator(config) => config,
            other => panic!("not the authenticator: {other:?}"),
        }
    }

    #[test]
    fn lab_step_one_enables_the_authenticator_for_all_users_in_any_mode() {
        let mut current = AuthenticationMethodsPolicy::default();
        current.authenticator.targeting.state = MethodState::Disabled;
        let form = fields(&[
            ("csrf", "x"),
            ("enabled", "true"),
            ("include_target", "all_users"),
            ("include_mode", "any"),
            ("include_target", ""),
            ("include_mode", "push"),
            ("exclude", ""),
        ]);
        let input = TargetingInput::from_fields(
            &form,
            TargetingInput::from_targeting(&current.authenticator.targeting),
        )
        .unwrap();
        let mut config = serde_json::to_value(&current.authenticator).unwrap();
        input.apply(&mut config, true).unwrap();
        let config = parse_authenticator(config);
        assert_eq!(config.targeting.state, MethodState::Enabled);
        assert_eq!(config.targeting.include_targets.len(), 1);
        assert_eq!(config.targeting.include_targets[0].target, Target::AllUsers);
        assert_eq!(
            config.targeting.include_targets[0].authentication_mode,
            Some(AuthenticationMode::Any)
        );
        assert!(config.targeting.exclude_targets.is_empty());
        assert_eq!(
            config.feature_settings,
            current.authenticator.feature_settings
        );
    }

    #[test]
    fn targeting_form_maps_groups_modes_and_exclusions() {
        let current = TargetingInput::from_targeting(
            &AuthenticationMethodsPolicy::default()
                .authenticator
                .targeting,
        );
        let form = fields(&[
            ("include_target", "pilot"),
            ("include_mode", "passwordless"),
            ("include_target", "all_users"),
            ("include_mode", "push"),
            ("exclude", "contractors"),
            ("exclude", "contractors"),
            ("exclude", ""),
        ]);
        let input = TargetingInput::from_fields(&form, current.clone()).unwrap();
        assert!(!input.enabled, "an unticked checkbox is off");
        let mut config = authenticator_json();
        input.apply(&mut config, true).unwrap();
        let config = parse_authenticator(config);
        assert_eq!(config.targeting.state, MethodState::Disabled);
        assert_eq!(
            config.targeting.include_targets[0].target,
            Target::Group(GroupId::from_string("pilot"))
        );
        assert_eq!(
            config.targeting.include_targets[0].authentication_mode,
            Some(AuthenticationMode::Passwordless)
        );
        assert_eq!(
            config.targeting.include_targets[1].authentication_mode,
            Some(AuthenticationMode::Push)
        );
        assert_eq!(
            config.targeting.exclude_targets,
            vec![Target::Group(GroupId::from_string("contractors"))]
        );
        // Without include or exclude fields the current rows stay.
        let kept =
            TargetingInput::from_fields(&fields(&[("enabled", "true")]), current.clone()).unwrap();
        assert_eq!(kept.includes, current.includes);
        assert!(kept.enabled);
        // Nonsense is refused naming the field, and the input is kept to show again.
        let bad_mode = TargetingInput::from_fields(
            &fields(&[("include_target", "all_users"), ("include_mode", "sms")]),
            current.clone(),
        )
        .unwrap();
        assert_eq!(bad_mode.includes[0].mode, "sms");
        let error = bad_mode.apply(&mut authenticator_json(), true).unwrap_err();
        assert!(error.starts_with("include_mode:"), "{error}");
        let nobody =
            TargetingInput::from_fields(&fields(&[("include_target", "")]), current.clone())
                .unwrap();
        let error = nobody.apply(&mut authenticator_json(), true).unwrap_err();
        assert!(error.starts_with("include_target:"), "{error}");
        assert!(
            TargetingInput::from_fields(
                &fields(&[
                    ("include_target", "all_users"),
                    ("include_target", "pilot"),
                    ("include_mode", "any"),
                ]),
                current.clone(),
            )
            .is_err(),
            "rows that do not pair up"
        );
        assert!(
            TargetingInput::from_fields(&fields(&[("enabled", "yes please")]), current).is_err()
        );
    }

    #[test]
    fn other_methods_get_targets_without_modes() {
        let default = default_config(MethodKind::Fido2);
        let mut config = serde_json::to_value(&default).unwrap();
        let input = TargetingInput::from_fields(
            &fields(&[
                ("enabled", "true"),
                ("include_target", "all_users"),
                ("include_mode", "any"),
            ]),
            TargetingInput::from_targeting(default.targeting()),
        )
        .unwrap();
        input.apply(&mut config, false).unwrap();
        let parsed = MethodConfiguration::from_json(MethodKind::Fido2, config).unwrap();
        assert_eq!(parsed.targeting().state, MethodState::Enabled);
        assert_eq!(
            parsed.targeting().include_targets[0].authentication_mode,
            None
        );
    }

    #[test]
    fn lab_step_four_enables_the_three_features_for_all_users() {
        let policy = AuthenticationMethodsPolicy::default();
        let current = FeaturesInput::from_features(&policy.authenticator.feature_settings);
        let mut pairs = Vec::new();
        for feature in [
            Feature::NumberMatching,
            Feature::DisplayAppInformation,
            Feature::DisplayLocationInformation,
        ] {
            let field = feature_field(feature);
            pairs.push((format!("{field}.state"), "enabled".to_string()));
            pairs.push((format!("{field}.include"), "all_users".to_string()));
            pairs.push((format!("{field}.exclude"), String::new()));
        }
        pairs.push(("reportSuspiciousActivity.exclude".into(), "quiet".into()));
        let input = FeaturesInput::from_fields(&Fields(pairs), current).unwrap();
        let mut config = authenticator_json();
        input.apply(&mut config).unwrap();
        let features = parse_authenticator(config).feature_settings;
        for feature in [
            Feature::NumberMatching,
            Feature::DisplayAppInformation,
            Feature::DisplayLocationInformation,
        ] {
            let setting = features.setting(feature);
            assert_eq!(setting.state, FeatureState::Enabled, "{feature:?}");
            assert_eq!(setting.include_target, Target::AllUsers);
            assert_eq!(setting.exclude_target, None);
        }
        let report = features.setting(Feature::ReportSuspiciousActivity);
        assert_eq!(
            report.state,
            FeatureState::Default,
            "absent fields are kept"
        );
        assert_eq!(
            report.exclude_target,
            Some(Target::Group(GroupId::from_string("quiet")))
        );
    }

    #[test]
    fn disabling_number_matching_reaches_the_domain_which_refuses_it() {
        let mut policy = AuthenticationMethodsPolicy::default();
        let input = FeaturesInput::from_fields(
            &fields(&[("numberMatching.state", "disabled")]),
            FeaturesInput::from_features(&policy.authenticator.feature_settings),
        )
        .unwrap();
        assert_eq!(input.rows[0].state, "disabled", "kept to show again");
        let mut config = authenticator_json();
        input.apply(&mut config).unwrap();
        policy.authenticator = parse_authenticator(config);
        let error = policy.validate(&|_| true).unwrap_err().to_string();
        assert!(error.contains("number matching"), "{error}");
        let bad = FeaturesInput::from_fields(
            &fields(&[("displayAppInformation.state", "microsoftManaged")]),
            FeaturesInput::from_features(&AuthenticatorFeatures::default()),
        )
        .unwrap();
        let error = bad.apply(&mut authenticator_json()).unwrap_err();
        assert!(error.starts_with("displayAppInformation.state:"), "{error}");
    }

    #[test]
    fn the_unusual_sign_in_switch_saves_with_its_state_and_targets() {
        let input = FeaturesInput::from_fields(
            &fields(&[
                ("suppressAnomalousNotifications.state", "enabled"),
                ("suppressAnomalousNotifications.include", "all_users"),
                ("suppressAnomalousNotifications.exclude", "g1"),
            ]),
            FeaturesInput::from_features(&AuthenticatorFeatures::default()),
        )
        .unwrap();
        let mut config = authenticator_json();
        input.apply(&mut config).unwrap();
        let features = parse_authenticator(config).feature_settings;
        let setting = features.setting(Feature::SuppressAnomalousNotifications);
        assert_eq!(setting.state, FeatureState::Enabled);
        assert_eq!(setting.include_target, Target::AllUsers);
        assert_eq!(
            setting.exclude_target,
            Some(Target::Group(GroupId::from_string("g1")))
        );
        assert_eq!(
            features.display_app_information_required_state,
            AuthenticatorFeatures::default().display_app_information_required_state,
            "the other features keep their values"
        );
        let note = feature_note(Feature::SuppressAnomalousNotifications).unwrap();
        let hours = latchkey_domain::anomaly::RECENT_REFUSAL_SECONDS / 3600;
        assert!(note.contains(&format!("{hours} hours")), "{note}");
    }

    #[test]
    fn form_names_match_the_domain_serialisation() {
        let features = serde_json::to_value(AuthenticatorFeatures::default()).unwrap();
        for feature in Feature::ALL {
            assert!(features.get(feature_key(feature)).is_some(), "{feature:?}");
            assert_eq!(
                serde_json::to_value(feature).unwrap(),
                json!(feature_field(feature))
            );
        }
        for mode in [
            AuthenticationMode::Any,
            AuthenticationMode::Push,
            AuthenticationMode::Passwordless,
        ] {
            assert_eq!(parse_mode(mode_value(mode)), Some(mode));
        }
        for state in [
            FeatureState::Default,
            FeatureState::Enabled,
            FeatureState::Disabled,
        ] {
            assert_eq!(parse_feature_state(state_value(state)), Some(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                json!(state_value(state))
            );
        }
    }

    #[test]
    fn settings_must_be_a_json_object() {
        assert!(parse_settings("{\"state\": \"enabled\"}").is_ok());
        for bad in ["", "  ", "[1]", "{", "\"text\""] {
            assert!(
                parse_settings(bad)
                    .unwrap_err()
                    .starts_with("configuration:"),
                "{bad}"
            );
        }
    }

    fn group(id: &str, name: &str) -> Group {
        Group {
            id: GroupId::from_string(id),
            display_name: name.into(),
            description: String::new(),
            created_at: Timestamp(0),
        }
    }

    fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = start + tag[start..].find('"')?;
        Some(&tag[start..end])
    }

    /// What a browser would submit for the form posting to `action`, as it was rendered:
    /// hidden inputs, ticked checkboxes, and each select's selected (or first) option.
    fn submitted(html: &str, action: &str) -> Fields {
        let start = html
            .find(&format!("action=\"{action}\""))
            .unwrap_or_else(|| panic!("no form posts to {action}"));
        let form = &html[start..start + html[start..].find("</form>").unwrap()];
        let mut pairs = Vec::new();
        let mut rest = form;
        while let Some(open) = rest.find('<') {
            rest = &rest[open..];
            let tag = &rest[..=rest.find('>').unwrap()];
            if tag.starts_with("<input") {
                let kind = attribute(tag, "type").unwrap_or("text");
                let included = kind != "checkbox" || tag.contains(" checked");
                if let (Some(name), true) = (attribute(tag, "name"), included) {
                    pairs.push((
                        name.to_string(),
                        attribute(tag, "value").unwrap_or("").to_string(),
                    ));
                }
            } else if tag.starts_with("<select") {
                let name = attribute(tag, "name").unwrap().to_string();
                let body = &rest[..rest.find("</select>").unwrap()];
                let options: Vec<&str> = body.split("<option").skip(1).collect();
                let chosen = options
                    .iter()
                    .find(|o| o.contains(" selected>"))
                    .or(options.first())
                    .unwrap();
                pairs.push((name, attribute(chosen, "value").unwrap().to_string()));
            }
            rest = &rest[1..];
        }
        Fields(pairs)
    }

    fn policy_with_groups() -> (AuthenticationMethodsPolicy, Vec<Group>) {
        use latchkey_domain::policy::IncludeTarget;
        let groups = vec![
            group("g1", "Passwordless Pilot"),
            group("g2", "<Contractors>"),
        ];
        let mut policy = AuthenticationMethodsPolicy {
            version: 7,
            ..Default::default()
        };
        policy.authenticator.targeting = Targeting {
            state: MethodState::Enabled,
            include_targets: vec![
                IncludeTarget {
                    target: Target::Group(GroupId::from_string("g1")),
                    authentication_mode: Some(AuthenticationMode::Passwordless),
                },
                IncludeTarget {
                    target: Target::AllUsers,
                    authentication_mode: Some(AuthenticationMode::Push),
                },
            ],
            exclude_targets: vec![Target::Group(GroupId::from_string("g2"))],
        };
        let features = &mut policy.authenticator.feature_settings;
        features.display_location_information_required_state.state = FeatureState::Disabled;
        features
            .display_app_information_required_state
            .include_target = Target::Group(GroupId::from_string("g1"));
        features.report_suspicious_activity_state.exclude_target =
            Some(Target::Group(GroupId::from_string("g2")));
        features.suppress_anomalous_notifications_state.state = FeatureState::Enabled;
        features
            .suppress_anomalous_notifications_state
            .exclude_target = Some(Target::Group(GroupId::from_string("g1")));
        policy.fido2.targeting.exclude_targets = vec![Target::Group(GroupId::from_string("g2"))];
        (policy, groups)
    }

    fn authenticator_page(
        policy: &AuthenticationMethodsPolicy,
        groups: &[Group],
        configure: bool,
    ) -> String {
        AuthenticatorPage {
            frame: Frame::for_tests(),
            configure,
            version: policy.version,
            targeting: targeting_view(
                &TargetingInput::from_targeting(&policy.authenticator.targeting),
                groups,
            ),
            features: features_view(
                &FeaturesInput::from_features(&policy.authenticator.feature_settings),
                groups,
            ),
        }
        .render()
        .unwrap()
    }

    #[test]
    fn saving_the_authenticator_tabs_unchanged_changes_nothing() {
        let (policy, groups) = policy_with_groups();
        let html = authenticator_page(&policy, &groups, false);
        assert!(
            html.contains("&#60;Contractors&#62;") && !html.contains("<Contractors>"),
            "names are escaped"
        );
        assert!(!html.contains(" style="), "the CSP forbids inline styles");
        let form = submitted(&html, AUTHENTICATOR_PATH);
        assert_eq!(form.one("csrf").unwrap(), Some("token"));
        assert_eq!(form.one("version").unwrap(), Some("7"));
        check_version(&form, &policy).unwrap();
        let input = TargetingInput::from_fields(
            &form,
            TargetingInput::from_targeting(&policy.authenticator.targeting),
        )
        .unwrap();
        let mut config = serde_json::to_value(&policy.authenticator).unwrap();
        input.apply(&mut config, true).unwrap();
        assert_eq!(parse_authenticator(config), policy.authenticator);

        let html = authenticator_page(&policy, &groups, true);
        assert!(!html.contains(" style="));
        let form = submitted(&html, AUTHENTICATOR_CONFIGURE_PATH);
        for feature in Feature::ALL {
            assert!(form.has(&format!("{}.state", feature_field(feature))));
        }
        let input = FeaturesInput::from_fields(
            &form,
            FeaturesInput::from_features(&AuthenticatorFeatures::default()),
        )
        .unwrap();
        let mut config = serde_json::to_value(&policy.authenticator).unwrap();
        input.apply(&mut config).unwrap();
        assert_eq!(parse_authenticator(config), policy.authenticator);
        let mut stale = policy.clone();
        stale.version = 8;
        assert_eq!(
            check_version(&form, &stale).unwrap_err().status,
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn saving_another_method_unchanged_changes_nothing() {
        let (policy, groups) = policy_with_groups();
        let config = policy.configuration(MethodKind::Fido2);
        let html = MethodPage {
            frame: Frame::for_tests(),
            id: MethodKind::Fido2.id(),
            label: MethodKind::Fido2.label(),
            version: policy.version,
            targeting: targeting_view(&TargetingInput::from_targeting(config.targeting()), &groups),
            settings: serde_json::to_string_pretty(&config).unwrap(),
        }
        .render()
        .unwrap();
        assert!(!html.contains(" style="));
        assert!(html.contains("&#34;isSelfServiceRegistrationAllowed&#34;"));
        let form = submitted(&html, "/admin/policies/fido2");
        assert!(!form.has("include_mode"));
        let input =
            TargetingInput::from_fields(&form, TargetingInput::from_targeting(config.targeting()))
                .unwrap();
        let mut json = serde_json::to_value(&config).unwrap();
        input.apply(&mut json, false).unwrap();
        assert_eq!(
            MethodConfiguration::from_json(MethodKind::Fido2, json).unwrap(),
            config
        );
        assert!(html.contains("action=\"/admin/policies/fido2/settings\""));
        assert!(html.contains("action=\"/admin/policies/fido2/reset\""));
    }
}
