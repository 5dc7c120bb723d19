//! `latchkey admin policy campaign …`: the registration campaign (Graph's
//! `registrationEnforcement.authenticationMethodsRegistrationCampaign`, docs/policy.md).

use clap::{Args, Subcommand, ValueEnum};
use latchkey_api::{Client, Group, RegistrationEnforcement};
use serde_json::{Map, Value, json};

use super::Failure;
use super::output::{print_json, print_table};
use super::policy::{group_id, target_id};

#[derive(Subcommand)]
pub(super) enum CampaignAction {
    /// The campaign's settings.
    Show,
    /// Change the campaign (a JSON merge patch of the options given).
    Set(CampaignOptions),
    /// Put the campaign back to its default (off).
    Reset,
}

#[derive(Args)]
pub(super) struct CampaignOptions {
    /// enabled, disabled or default (off).
    #[arg(long, value_enum)]
    state: Option<CampaignState>,
    /// Days before a snoozed nudge comes back (0 to 14; 0: at the next sign-in).
    #[arg(long, value_name = "DAYS")]
    snooze_days: Option<u32>,
    /// limited: 3 "Not now"s, then it can no longer be skipped; unlimited: always skippable.
    #[arg(long, value_enum)]
    snoozes: Option<SnoozeLimit>,
    /// Who is nudged: `all` or a group's id or display name (repeat for several groups).
    #[arg(long)]
    target: Vec<String>,
    /// A group never nudged, by id or display name (repeat for several); replaces the list.
    #[arg(long)]
    exclude: Vec<String>,
    /// Remove every exclusion.
    #[arg(long, conflicts_with = "exclude")]
    no_exclusions: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CampaignState {
    Enabled,
    Disabled,
    Default,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SnoozeLimit {
    Limited,
    Unlimited,
}

/// The merge patch for the options; `groups` turns display names into ids.
pub(super) fn campaign_patch(
    options: &CampaignOptions,
    groups: &[Group],
) -> Result<Value, Failure> {
    let mut campaign = Map::new();
    if let Some(state) = options.state {
        let state = match state {
            CampaignState::Enabled => "enabled",
            CampaignState::Disabled => "disabled",
            CampaignState::Default => "default",
        };
        campaign.insert("state".into(), json!(state));
    }
    if let Some(days) = options.snooze_days {
        campaign.insert("snoozeDurationInDays".into(), json!(days));
    }
    if let Some(limit) = options.snoozes {
        campaign.insert(
            "enforceRegistrationAfterAllowedSnoozes".into(),
            json!(matches!(limit, SnoozeLimit::Limited)),
        );
    }
    if !options.target.is_empty() {
        let targets = options
            .target
            .iter()
            .map(|t| {
                let id = target_id(groups, t)?;
                Ok(json!({"id": id, "targetType": "group",
                          "targetedAuthenticationMethod": "microsoftAuthenticator"}))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        campaign.insert("includeTargets".into(), Value::Array(targets));
    }
    if options.no_exclusions {
        campaign.insert("excludeTargets".into(), json!([]));
    } else if !options.exclude.is_empty() {
        let targets = options
            .exclude
            .iter()
            .map(|t| Ok(json!({"id": group_id(groups, t)?, "targetType": "group"})))
            .collect::<Result<Vec<_>, Failure>>()?;
        campaign.insert("excludeTargets".into(), Value::Array(targets));
    }
    if campaign.is_empty() {
        return Err(Failure::Usage(
            "nothing to change: give --state, --snooze-days, --snoozes, --target or --exclude"
                .into(),
        ));
    }
    Ok(json!({"authenticationMethodsRegistrationCampaign": campaign}))
}

fn show(enforcement: &RegistrationEnforcement, groups: &[Group], as_json: bool) {
    if as_json {
        print_json(enforcement);
        return;
    }
    let c = &enforcement.authentication_methods_registration_campaign;
    let name = |id: &str| {
        if id == "all_users" {
            "all users".to_string()
        } else {
            groups
                .iter()
                .find(|g| g.id == id)
                .map_or_else(|| id.to_string(), |g| g.display_name.clone())
        }
    };
    let state = serde_json::to_value(c.state).unwrap_or_default();
    let row = json!({
        "state": state.as_str().unwrap_or_default(),
        "snooze days": c.snooze_duration_in_days,
        "snoozes": if c.enforce_registration_after_allowed_snoozes { "3, then required" } else { "unlimited" },
        "include": c.include_targets.iter().map(|t| name(&t.id)).collect::<Vec<_>>().join(", "),
        "exclude": c.exclude_targets.iter().map(|t| name(&t.id)).collect::<Vec<_>>().join(", "),
    });
    print_table(
        &[row],
        &["state", "snooze days", "snoozes", "include", "exclude"],
    );
}

pub(super) async fn command(
    client: &Client,
    action: CampaignAction,
    as_json: bool,
) -> Result<(), Failure> {
    let groups = || async { client.list_groups().await.unwrap_or_default() };
    match action {
        CampaignAction::Show => {
            let enforcement = client.registration_enforcement().await?;
            show(&enforcement, &groups().await, as_json);
        }
        CampaignAction::Set(options) => {
            let named = !options.target.is_empty() || !options.exclude.is_empty();
            let groups = if named {
                client.list_groups().await?
            } else {
                vec![]
            };
            let patch = campaign_patch(&options, &groups)?;
            let enforcement = client.patch_registration_enforcement(&patch).await?;
            show(&enforcement, &groups, as_json);
        }
        CampaignAction::Reset => {
            let enforcement = client.reset_registration_enforcement().await?;
            show(&enforcement, &groups().await, as_json);
        }
    }
    Ok(())
}
