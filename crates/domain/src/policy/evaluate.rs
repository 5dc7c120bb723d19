//! [`evaluate`]: may this user use this method, how, and with which notification features.
//! Exclusion wins over inclusion; a disabled method allows no one.

use serde::Serialize;

use super::*;

/// What evaluation knows about a user: their groups, with names for the reasons it gives.
#[derive(Debug, Clone, Default)]
pub struct UserGroups {
    pub groups: BTreeMap<GroupId, String>,
}

impl UserGroups {
    pub(crate) fn contains(&self, target: &Target) -> bool {
        match target {
            Target::AllUsers => true,
            Target::Group(id) => self.groups.contains_key(id),
        }
    }

    pub(crate) fn name(&self, target: &Target) -> String {
        match target {
            Target::AllUsers => "all users".into(),
            Target::Group(id) => format!(
                "group {}",
                self.groups
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            ),
        }
    }
}

/// A feature's effective state for one user, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveFeature {
    pub feature: Feature,
    pub enabled: bool,
    pub reason: String,
}

/// The answer of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub method: MethodKind,
    pub allowed: bool,
    /// Authenticator only: the union of the modes of every target that includes the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<AuthenticationMode>,
    /// A sentence an administrator can read, e.g. "excluded by group Contractors".
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<EffectiveFeature>,
}

/// May this user use this method, in which mode, with which features? Exclusion wins over
/// inclusion; a disabled method allows no one.
pub fn evaluate(
    policy: &AuthenticationMethodsPolicy,
    method: MethodKind,
    user: &UserGroups,
) -> Evaluation {
    let config = policy.configuration(method);
    let targeting = config.targeting();
    let denied = |reason: String| Evaluation {
        method,
        allowed: false,
        mode: None,
        reason,
        features: vec![],
    };
    if targeting.state == MethodState::Disabled {
        return denied(format!("{} is disabled", method.label()));
    }
    if let Some(exclude) = targeting.exclude_targets.iter().find(|t| user.contains(t)) {
        return denied(format!("excluded by {}", user.name(exclude)));
    }
    let including: Vec<&IncludeTarget> = targeting
        .include_targets
        .iter()
        .filter(|t| user.contains(&t.target))
        .collect();
    let Some(first) = including.first() else {
        return denied("not in any target of this method".into());
    };
    let mode = including
        .iter()
        .filter_map(|t| t.authentication_mode)
        .reduce(AuthenticationMode::union);
    let reason = format!(
        "included by {}",
        including
            .iter()
            .map(|t| user.name(&t.target))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = first;
    let features = if method == MethodKind::MicrosoftAuthenticator {
        Feature::ALL
            .into_iter()
            .map(|f| effective_feature(policy.authenticator.feature_settings.setting(f), f, user))
            .collect()
    } else {
        vec![]
    };
    Evaluation {
        method,
        allowed: true,
        mode,
        reason,
        features,
    }
}

fn effective_feature(
    setting: &FeatureSetting,
    feature: Feature,
    user: &UserGroups,
) -> EffectiveFeature {
    let (enabled, why) = if feature == Feature::NumberMatching {
        (true, "always on".to_string())
    } else if setting
        .exclude_target
        .as_ref()
        .is_some_and(|t| user.contains(t))
    {
        (
            false,
            format!(
                "excluded by {}",
                user.name(setting.exclude_target.as_ref().expect("checked"))
            ),
        )
    } else if !user.contains(&setting.include_target) {
        (
            false,
            format!("only for {}", user.name(&setting.include_target)),
        )
    } else {
        match setting.state {
            FeatureState::Enabled => (
                true,
                format!("enabled for {}", user.name(&setting.include_target)),
            ),
            FeatureState::Disabled => (false, "disabled".to_string()),
            FeatureState::Default => (
                feature.built_in_default(),
                format!(
                    "default ({})",
                    if feature.built_in_default() {
                        "on"
                    } else {
                        "off"
                    }
                ),
            ),
        }
    };
    EffectiveFeature {
        feature,
        enabled,
        reason: why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_targets::{group, include};
    use serde_json::json;

    fn member_of(ids: &[&str]) -> UserGroups {
        UserGroups {
            groups: ids
                .iter()
                .map(|id| (group(id), format!("G-{id}")))
                .collect(),
        }
    }

    fn authenticator(targeting: Targeting) -> AuthenticationMethodsPolicy {
        let mut policy = AuthenticationMethodsPolicy::default();
        policy.authenticator.targeting = targeting;
        policy
    }

    #[test]
    fn evaluation_over_targets_exclusions_and_modes() {
        use AuthenticationMode::*;
        let pilot = Target::Group(group("pilot"));
        let contractors = Target::Group(group("contractors"));
        // Two include targets of different modes: the pilot's mode and everyone else's.
        let pilot_passwordless_others_push = || Targeting {
            state: MethodState::Enabled,
            include_targets: vec![
                include(pilot.clone(), Passwordless),
                include(Target::AllUsers, Push),
            ],
            exclude_targets: vec![],
        };
        // (case, targeting, the user's groups, allowed, mode, words in the reason)
        type Case<'a> = (
            &'a str,
            Targeting,
            &'a [&'a str],
            bool,
            Option<AuthenticationMode>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "all users, any",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(Target::AllUsers, Any)],
                    exclude_targets: vec![],
                },
                &[],
                true,
                Some(Any),
                "included by all users",
            ),
            (
                "disabled",
                Targeting {
                    state: MethodState::Disabled,
                    include_targets: vec![include(Target::AllUsers, Any)],
                    exclude_targets: vec![],
                },
                &[],
                false,
                None,
                "disabled",
            ),
            (
                "group member",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(pilot.clone(), Passwordless)],
                    exclude_targets: vec![],
                },
                &["pilot"],
                true,
                Some(Passwordless),
                "G-pilot",
            ),
            (
                "not a member",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(pilot.clone(), Passwordless)],
                    exclude_targets: vec![],
                },
                &["other"],
                false,
                None,
                "not in any target",
            ),
            (
                "exclusion wins",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(Target::AllUsers, Any)],
                    exclude_targets: vec![contractors.clone()],
                },
                &["contractors"],
                false,
                None,
                "excluded by group G-contractors",
            ),
            (
                "exclusion wins over group",
                Targeting {
                    state: MethodState::Enabled,
                    include_targets: vec![include(pilot.clone(), Any)],
                    exclude_targets: vec![contractors.clone()],
                },
                &["pilot", "contractors"],
                false,
                None,
                "excluded",
            ),
            (
                "push and passwordless make any",
                pilot_passwordless_others_push(),
                &["pilot"],
                true,
                Some(Any),
                "included by",
            ),
            (
                "push only",
                pilot_passwordless_others_push(),
                &[],
                true,
                Some(Push),
                "all users",
            ),
        ];
        for (name, targeting, groups, allowed, mode, reason) in cases {
            let result = evaluate(
                &authenticator(targeting),
                MethodKind::MicrosoftAuthenticator,
                &member_of(groups),
            );
            assert_eq!(result.allowed, allowed, "{name}");
            assert_eq!(result.mode, mode, "{name}");
            assert!(result.reason.contains(reason), "{name}: {}", result.reason);
        }
    }

    #[test]
    fn feature_states_resolve_with_include_and_exclude_targets() {
        let mut policy = AuthenticationMethodsPolicy::default();
        let features = &mut policy.authenticator.feature_settings;
        features.display_app_information_required_state = FeatureSetting {
            state: FeatureState::Enabled,
            include_target: Target::AllUsers,
            exclude_target: Some(Target::Group(group("quiet"))),
        };
        features.display_location_information_required_state = FeatureSetting {
            state: FeatureState::Disabled,
            include_target: Target::AllUsers,
            exclude_target: None,
        };
        features.report_suspicious_activity_state = FeatureSetting {
            state: FeatureState::Enabled,
            include_target: Target::Group(group("pilot")),
            exclude_target: None,
        };
        let state = |groups: &[&str], feature: Feature| {
            let evaluation = evaluate(
                &policy,
                MethodKind::MicrosoftAuthenticator,
                &member_of(groups),
            );
            evaluation
                .features
                .iter()
                .find(|f| f.feature == feature)
                .unwrap()
                .enabled
        };
        assert!(
            state(&[], Feature::NumberMatching),
            "number matching is always on"
        );
        assert!(state(&[], Feature::DisplayAppInformation));
        assert!(
            !state(&["quiet"], Feature::DisplayAppInformation),
            "feature exclusion wins"
        );
        assert!(!state(&[], Feature::DisplayLocationInformation));
        assert!(state(&["pilot"], Feature::ReportSuspiciousActivity));
        assert!(
            !state(&[], Feature::ReportSuspiciousActivity),
            "only the included group"
        );
        let defaults = AuthenticationMethodsPolicy::default();
        let evaluation = evaluate(
            &defaults,
            MethodKind::MicrosoftAuthenticator,
            &member_of(&[]),
        );
        for feature in &evaluation.features {
            let held_back = feature.feature == Feature::SuppressAnomalousNotifications;
            assert_eq!(
                feature.enabled, !held_back,
                "Latchkey's defaults show everything and hold nothing back: {feature:?}"
            );
        }
        let suppress = evaluation
            .features
            .iter()
            .find(|f| f.feature == Feature::SuppressAnomalousNotifications)
            .unwrap();
        assert_eq!(suppress.reason, "default (off)");
    }

    #[test]
    fn suppressing_unusual_notifications_is_opt_in_and_targetable() {
        let mut policy = AuthenticationMethodsPolicy::default();
        policy
            .authenticator
            .feature_settings
            .suppress_anomalous_notifications_state = FeatureSetting {
            state: FeatureState::Enabled,
            include_target: Target::AllUsers,
            exclude_target: Some(Target::Group(group("travellers"))),
        };
        let on = |groups: &[&str]| {
            evaluate(
                &policy,
                MethodKind::MicrosoftAuthenticator,
                &member_of(groups),
            )
            .features
            .iter()
            .any(|f| f.feature == Feature::SuppressAnomalousNotifications && f.enabled)
        };
        assert!(on(&[]));
        assert!(!on(&["travellers"]), "the exclusion wins");
    }

    #[test]
    fn a_policy_saved_before_the_suppression_switch_existed_still_loads() {
        let mut stored = serde_json::to_value(AuthenticationMethodsPolicy::default()).unwrap();
        stored["authenticator"]["featureSettings"]
            .as_object_mut()
            .unwrap()
            .remove("suppressAnomalousNotificationsState");
        let loaded: AuthenticationMethodsPolicy = serde_json::from_value(stored).unwrap();
        assert_eq!(loaded, AuthenticationMethodsPolicy::default());
        let mut api = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        api["featureSettings"]
            .as_object_mut()
            .unwrap()
            .remove("suppressAnomalousNotificationsState");
        MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, api).unwrap();
    }

    #[test]
    fn a_malformed_suppression_setting_is_refused_by_name() {
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        json["featureSettings"]["suppressAnomalousNotificationsState"]["state"] =
            json!("sometimes");
        let error = MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, json)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("featureSettings.suppressAnomalousNotificationsState"),
            "{error}"
        );
        assert!(error.contains("sometimes"), "{error}");
    }

    #[test]
    fn other_methods_follow_their_own_targets() {
        let policy = AuthenticationMethodsPolicy::default();
        let user = member_of(&[]);
        assert!(evaluate(&policy, MethodKind::TemporaryAccessPass, &user).allowed);
        assert!(evaluate(&policy, MethodKind::Password, &user).allowed);
        assert!(!evaluate(&policy, MethodKind::Fido2, &user).allowed);
        assert!(!evaluate(&policy, MethodKind::X509Certificate, &user).allowed);
    }
}
