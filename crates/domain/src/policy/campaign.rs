//! The registration campaign, as Entra's `registrationEnforcement.
//! authenticationMethodsRegistrationCampaign`: after a sign-in by pass or password, nudge the
//! users it targets who have no authenticator app yet to set one up, letting them snooze it a
//! limited (or unlimited) number of times for a number of days.

use serde::{Deserialize, Serialize};

use super::evaluate::UserGroups;
use super::{FeatureState, Target};
use crate::error::DomainError;
use crate::ids::GroupId;

/// Snoozes a user gets when `enforceRegistrationAfterAllowedSnoozes` is on (Entra's number).
pub const ALLOWED_SNOOZES: u32 = 3;
/// `snoozeDurationInDays` ranges over 0–14 (0: the nudge comes back at every sign-in).
pub const MAX_SNOOZE_DAYS: u32 = 14;
pub const MAX_TARGETS: usize = 50;

/// The method a campaign target nudges to; Entra's only value is the authenticator app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum TargetedMethod {
    #[default]
    MicrosoftAuthenticator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignIncludeTarget {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default)]
    pub targeted_authentication_method: TargetedMethod,
}

/// Graph's `authenticationMethodsRegistrationCampaign`. `state` `default` means **disabled** in
/// Latchkey (in Entra, "Microsoft managed", which nudges SMS and voice users: Latchkey has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrationCampaign {
    pub state: FeatureState,
    pub snooze_duration_in_days: u32,
    /// On: at most [`ALLOWED_SNOOZES`] "Not now"s, then the nudge can no longer be skipped.
    /// Off: "Not now" is always offered.
    pub enforce_registration_after_allowed_snoozes: bool,
    pub include_targets: Vec<CampaignIncludeTarget>,
    #[serde(default)]
    pub exclude_targets: Vec<Target>,
}

impl Default for RegistrationCampaign {
    /// Entra's defaults except the state: off, 1 day, limited snoozes, all users once on.
    fn default() -> Self {
        RegistrationCampaign {
            state: FeatureState::Default,
            snooze_duration_in_days: 1,
            enforce_registration_after_allowed_snoozes: true,
            include_targets: vec![CampaignIncludeTarget {
                target: Target::AllUsers,
                targeted_authentication_method: TargetedMethod::MicrosoftAuthenticator,
            }],
            exclude_targets: vec![],
        }
    }
}

/// Graph's `registrationEnforcement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrationEnforcement {
    #[serde(default)]
    pub authentication_methods_registration_campaign: RegistrationCampaign,
}

/// Whether the campaign targets one user, and why (for the audit and the console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignTargeting {
    pub targeted: bool,
    pub reason: String,
}

impl RegistrationCampaign {
    pub fn is_on(&self) -> bool {
        self.state == FeatureState::Enabled
    }

    /// How many "Not now"s a user gets: `None` for unlimited.
    pub fn allowed_snoozes(&self) -> Option<u32> {
        self.enforce_registration_after_allowed_snoozes
            .then_some(ALLOWED_SNOOZES)
    }

    /// Exclusion wins; off (or `default`) targets no one.
    pub fn targets(&self, user: &UserGroups) -> CampaignTargeting {
        let no = |reason: String| CampaignTargeting {
            targeted: false,
            reason,
        };
        if !self.is_on() {
            return no("the registration campaign is off".into());
        }
        if let Some(t) = self.exclude_targets.iter().find(|t| user.contains(t)) {
            return no(format!("excluded by {}", user.name(t)));
        }
        match self
            .include_targets
            .iter()
            .find(|t| user.contains(&t.target))
        {
            Some(t) => CampaignTargeting {
                targeted: true,
                reason: format!("included by {}", user.name(&t.target)),
            },
            None => no("not in any target of the campaign".into()),
        }
    }

    pub fn validate(&self, group_exists: &dyn Fn(&GroupId) -> bool) -> Result<(), DomainError> {
        if self.snooze_duration_in_days > MAX_SNOOZE_DAYS {
            return Err(DomainError::invalid(
                "registrationCampaign.snoozeDurationInDays",
                format!("must be 0 to {MAX_SNOOZE_DAYS} days"),
            ));
        }
        if self.include_targets.len() > MAX_TARGETS || self.exclude_targets.len() > MAX_TARGETS {
            return Err(DomainError::invalid(
                "registrationCampaign.includeTargets",
                format!("at most {MAX_TARGETS} targets"),
            ));
        }
        for target in &self.include_targets {
            if let Target::Group(id) = &target.target
                && !group_exists(id)
            {
                return Err(DomainError::invalid(
                    "registrationCampaign.includeTargets",
                    format!("group {id} does not exist"),
                ));
            }
        }
        for target in &self.exclude_targets {
            match target {
                Target::AllUsers => {
                    return Err(DomainError::invalid(
                        "registrationCampaign.excludeTargets",
                        "cannot exclude all users; turn the campaign off instead",
                    ));
                }
                Target::Group(id) if !group_exists(id) => {
                    return Err(DomainError::invalid(
                        "registrationCampaign.excludeTargets",
                        format!("group {id} does not exist"),
                    ));
                }
                Target::Group(_) => {}
            }
        }
        Ok(())
    }

    /// Parses the campaign from JSON with the field at fault named, refusing unknown fields.
    pub fn from_json(value: serde_json::Value) -> Result<RegistrationCampaign, DomainError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            DomainError::invalid(
                "registrationCampaign",
                format!("{path}: {}", e.into_inner()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(ids: &[&str]) -> UserGroups {
        let mut g = UserGroups::default();
        for id in ids {
            g.groups.insert(GroupId::from_string(*id), format!("G{id}"));
        }
        g
    }

    #[test]
    fn the_default_campaign_is_off_and_entra_shaped() {
        let c = RegistrationCampaign::default();
        assert!(!c.targets(&groups(&[])).targeted);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["state"], "default");
        assert_eq!(json["snoozeDurationInDays"], 1);
        assert_eq!(json["enforceRegistrationAfterAllowedSnoozes"], true);
        assert_eq!(json["includeTargets"][0]["id"], "all_users");
        assert_eq!(
            json["includeTargets"][0]["targetedAuthenticationMethod"],
            "microsoftAuthenticator"
        );
        assert_eq!(c.allowed_snoozes(), Some(3));
    }

    #[test]
    fn exclusion_wins_over_inclusion() {
        let c = RegistrationCampaign {
            state: FeatureState::Enabled,
            exclude_targets: vec![Target::Group(GroupId::from_string("x"))],
            ..Default::default()
        };
        assert!(c.targets(&groups(&[])).targeted);
        let out = c.targets(&groups(&["x"]));
        assert!(!out.targeted);
        assert_eq!(out.reason, "excluded by group Gx");
    }

    #[test]
    fn out_of_range_snoozes_unknown_fields_and_excluding_everyone_are_refused() {
        let exists = |_: &GroupId| true;
        let c = RegistrationCampaign {
            snooze_duration_in_days: 15,
            ..Default::default()
        };
        assert!(
            c.validate(&exists)
                .unwrap_err()
                .to_string()
                .contains("snoozeDurationInDays")
        );
        let c = RegistrationCampaign {
            exclude_targets: vec![Target::AllUsers],
            ..Default::default()
        };
        assert!(c.validate(&exists).is_err());
        let e = RegistrationCampaign::from_json(serde_json::json!({
            "state": "enabled", "snoozeDurationInDays": 1,
            "enforceRegistrationAfterAllowedSnoozes": true, "includeTargets": [], "colour": 1
        }))
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = RegistrationCampaign::from_json(serde_json::json!({
            "state": "enabled", "snoozeDurationInDays": -1,
            "enforceRegistrationAfterAllowedSnoozes": true, "includeTargets": []
        }))
        .unwrap_err();
        assert!(e.to_string().contains("snoozeDurationInDays"), "{e}");
    }
}
