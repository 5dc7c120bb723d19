//! The policy forms as people fill them in: targets, modes and feature states as form values,
//! read over the current configuration and written into its JSON (which the domain then
//! validates), and the rows the pages show.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use latchkey_domain::policy::{
    ALL_USERS, AuthenticationMode, AuthenticatorFeatures, Feature, FeatureState, MethodState,
    Target, Targeting,
};
use latchkey_domain::user::Group;

use super::super::{Choice, Fields, choices, with_blank};
use crate::error::PageError;

/// A target as a form value: `all_users` or a group id.
pub(super) fn target_value(target: &Target) -> String {
    match target {
        Target::AllUsers => ALL_USERS.to_string(),
        Target::Group(id) => id.to_string(),
    }
}

/// A target as the policy's JSON has it.
pub(super) fn target_json(value: &str) -> Value {
    json!({"targetType": "group", "id": value})
}

/// An enum's name in forms: its serde name, the one it has in the policy's JSON too.
pub(super) fn form_value<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The enum a form value names, by its serde name.
pub(super) fn parse_form_value<T: DeserializeOwned>(value: &str) -> Option<T> {
    serde_json::from_value(Value::String(value.to_string())).ok()
}

/// The prefix of a feature's form fields (`displayAppInformation.state`, …).
pub(super) fn feature_field(feature: Feature) -> String {
    form_value(feature)
}

/// The feature's key under `featureSettings` in the authenticator's configuration.
pub(super) fn feature_key(feature: Feature) -> &'static str {
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
pub(super) struct IncludeRow {
    pub(super) target: String,
    pub(super) mode: String,
}

/// The "Enable and Target" form, as shown or as posted (kept as typed, to show it again).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TargetingInput {
    pub(super) enabled: bool,
    pub(super) includes: Vec<IncludeRow>,
    pub(super) excludes: Vec<String>,
}

impl TargetingInput {
    pub(super) fn from_targeting(targeting: &Targeting) -> TargetingInput {
        TargetingInput {
            enabled: targeting.state == MethodState::Enabled,
            includes: targeting
                .include_targets
                .iter()
                .map(|t| IncludeRow {
                    target: target_value(&t.target),
                    mode: form_value(t.authentication_mode.unwrap_or(AuthenticationMode::Any)),
                })
                .collect(),
            excludes: targeting.exclude_targets.iter().map(target_value).collect(),
        }
    }

    /// The posted form over the current values. `enabled` is a checkbox (absent is off);
    /// include and exclude rows replace the current ones when the form has them at all.
    pub(super) fn from_fields(
        fields: &Fields,
        current: TargetingInput,
    ) -> Result<TargetingInput, PageError> {
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
    pub(super) fn apply(&self, config: &mut Value, with_modes: bool) -> Result<(), String> {
        let mut includes = Vec::new();
        for row in self.includes.iter().filter(|r| !r.target.is_empty()) {
            let mut target = target_json(&row.target);
            if with_modes {
                let mode = parse_form_value::<AuthenticationMode>(&row.mode).ok_or_else(|| {
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
pub(super) struct FeatureInput {
    pub(super) feature: Feature,
    pub(super) state: String,
    pub(super) include: String,
    /// Empty for no exclusion.
    pub(super) exclude: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct FeaturesInput {
    pub(super) rows: Vec<FeatureInput>,
}

impl FeaturesInput {
    pub(super) fn from_features(features: &AuthenticatorFeatures) -> FeaturesInput {
        FeaturesInput {
            rows: Feature::ALL
                .into_iter()
                .map(|feature| {
                    let setting = features.setting(feature);
                    FeatureInput {
                        feature,
                        state: form_value(setting.state),
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
    pub(super) fn from_fields(
        fields: &Fields,
        current: FeaturesInput,
    ) -> Result<FeaturesInput, PageError> {
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
    pub(super) fn apply(&self, config: &mut Value) -> Result<(), String> {
        let Some(settings) = config
            .get_mut("featureSettings")
            .and_then(Value::as_object_mut)
        else {
            return Err("featureSettings: missing from the configuration.".into());
        };
        for row in &self.rows {
            let field = feature_field(row.feature);
            let state = parse_form_value::<FeatureState>(&row.state)
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
pub(super) fn group_options(groups: &[Group]) -> Vec<(String, String)> {
    groups
        .iter()
        .map(|g| (g.id.to_string(), g.display_name.clone()))
        .collect()
}

/// The options of a target select: All users, then every group.
pub(super) fn target_options(groups: &[Group]) -> Vec<(String, String)> {
    let mut options = vec![(ALL_USERS.to_string(), "All users".to_string())];
    options.extend(group_options(groups));
    options
}

pub(super) struct IncludeRowView {
    pub(super) targets: Vec<Choice>,
    pub(super) modes: Vec<Choice>,
}

/// The "Enable and Target" rows ready to show: the rows given plus an empty one to add with.
pub(super) struct TargetingView {
    pub(super) enabled: bool,
    pub(super) includes: Vec<IncludeRowView>,
    pub(super) excludes: Vec<Vec<Choice>>,
}

pub(super) fn targeting_view(input: &TargetingInput, groups: &[Group]) -> TargetingView {
    let targets = with_blank("None (remove this row)", target_options(groups));
    let modes: Vec<(String, String)> = [
        AuthenticationMode::Any,
        AuthenticationMode::Push,
        AuthenticationMode::Passwordless,
    ]
    .into_iter()
    .map(|m| (form_value(m), m.label().to_string()))
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

pub(super) struct FeatureRowView {
    pub(super) field: String,
    pub(super) label: &'static str,
    pub(super) states: Vec<Choice>,
    pub(super) includes: Vec<Choice>,
    pub(super) excludes: Vec<Choice>,
    /// A sentence under the label, for features whose effect the label cannot say.
    pub(super) note: Option<&'static str>,
}

/// What an administrator should know about a feature before changing it.
pub(super) fn feature_note(feature: Feature) -> Option<&'static str> {
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

pub(super) fn features_view(input: &FeaturesInput, groups: &[Group]) -> Vec<FeatureRowView> {
    let states: Vec<(String, String)> = [
        (FeatureState::Default, "Default"),
        (FeatureState::Enabled, "Enabled"),
        (FeatureState::Disabled, "Disabled"),
    ]
    .into_iter()
    .map(|(s, label)| (form_value(s), label.to_string()))
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use latchkey_domain::ids::GroupId;
    use latchkey_domain::policy::{
        AuthenticationMethodsPolicy, MethodConfiguration, MethodKind, default_config,
    };

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

    pub(in crate::console::policies) fn parse_authenticator(
        value: Value,
    ) -> latchkey_domain::policy::AuthenticatorConfig {
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
            let value = form_value(mode);
            assert_eq!(parse_form_value::<AuthenticationMode>(&value), Some(mode));
            // The serde name, not a second vocabulary that only an alias would read.
            assert_eq!(serde_json::to_value(mode).unwrap(), json!(value));
        }
        for state in [
            FeatureState::Default,
            FeatureState::Enabled,
            FeatureState::Disabled,
        ] {
            assert_eq!(
                parse_form_value::<FeatureState>(&form_value(state)),
                Some(state)
            );
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                json!(form_value(state))
            );
        }
    }
}
