//! The registration campaign's console page (Entra: Authentication methods › Registration
//! campaign): state, snoozes, who is nudged and who is not. Saved through the domain, which
//! validates it with the whole policy and audits it.

use askama::Template;
use latchkey_domain::policy::{
    AuthenticationMethodsPolicy, FeatureState, RegistrationCampaign, Target,
};
use serde_json::{Value, json};

use super::super::{
    Admin, AdminForm, Banner, Choice, ConsoleResult, Fields, Frame, NoticeParam, Refusable,
    Refused, Section, choices, notice, redirect, with_blank,
};
use super::check_version;
use super::form::{group_options, target_options, target_value};

pub(in crate::console) const CAMPAIGN_PATH: &str = "/admin/policies/registration-campaign";

#[derive(Template)]
#[template(path = "console_campaign.html")]
struct CampaignPage {
    frame: Frame,
    version: u64,
    states: Vec<Choice>,
    snooze_days: String,
    limited: bool,
    include: Vec<Choice>,
    excludes: Vec<Vec<Choice>>,
}

/// What the form holds: the policy's values, or what was posted (kept on a refusal).
struct CampaignInput {
    state: String,
    snooze_days: String,
    limited: bool,
    include: String,
    excludes: Vec<String>,
}

impl CampaignInput {
    fn from_campaign(c: &RegistrationCampaign) -> CampaignInput {
        CampaignInput {
            state: super::form::form_value(c.state),
            snooze_days: c.snooze_duration_in_days.to_string(),
            limited: c.enforce_registration_after_allowed_snoozes,
            include: c
                .include_targets
                .first()
                .map(|t| target_value(&t.target))
                .unwrap_or_default(),
            excludes: c.exclude_targets.iter().map(target_value).collect(),
        }
    }

    fn from_fields(fields: &Fields) -> Result<CampaignInput, Refused> {
        let one = |name: &str| {
            fields
                .one(name)
                .map_err(|e| Refused::bad(e.message))
                .map(|v| v.unwrap_or_default().trim().to_string())
        };
        Ok(CampaignInput {
            state: one("state")?,
            snooze_days: one("snooze_days")?,
            limited: fields
                .checkbox("limited")
                .map_err(|e| Refused::bad(e.message))?,
            include: one("include_target")?,
            excludes: fields
                .all("exclude")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    /// The campaign's JSON, for the domain to parse and validate.
    fn json(&self) -> Result<Value, Refused> {
        let days: u32 = self.snooze_days.parse().map_err(|_| {
            Refused::bad("snoozeDurationInDays: enter a whole number of days from 0 to 14.")
        })?;
        let include = if self.include.is_empty() {
            vec![]
        } else {
            vec![json!({"targetType": "group", "id": self.include,
                        "targetedAuthenticationMethod": "microsoftAuthenticator"})]
        };
        let excludes: Vec<Value> = self
            .excludes
            .iter()
            .map(|id| json!({"targetType": "group", "id": id}))
            .collect();
        Ok(json!({
            "state": self.state,
            "snoozeDurationInDays": days,
            "enforceRegistrationAfterAllowedSnoozes": self.limited,
            "includeTargets": include,
            "excludeTargets": excludes,
        }))
    }
}

async fn render(
    admin: Admin,
    policy: &AuthenticationMethodsPolicy,
    banner: Banner,
    input: Option<CampaignInput>,
) -> ConsoleResult {
    let groups = admin.latchkey().directory.list_groups().await?;
    let input = input.unwrap_or_else(|| {
        CampaignInput::from_campaign(
            &policy
                .registration_enforcement
                .authentication_methods_registration_campaign,
        )
    });
    let states: Vec<(String, String)> = [
        (FeatureState::Default, "Default (off)"),
        (FeatureState::Enabled, "Enabled"),
        (FeatureState::Disabled, "Disabled"),
    ]
    .into_iter()
    .map(|(s, label)| (super::form::form_value(s), label.to_string()))
    .collect();
    let exclude_options = with_blank("None", group_options(&groups));
    let mut excludes: Vec<Vec<Choice>> = input
        .excludes
        .iter()
        .map(|id| choices(&exclude_options, id))
        .collect();
    excludes.push(choices(&exclude_options, ""));
    admin.page(Section::Policies, banner, |frame| CampaignPage {
        frame,
        version: policy.version,
        states: choices(&states, &input.state),
        snooze_days: input.snooze_days.clone(),
        limited: input.limited,
        include: choices(&with_blank("None", target_options(&groups)), &input.include),
        excludes,
    })
}

pub(in crate::console) async fn page(admin: Admin, query: NoticeParam) -> ConsoleResult {
    let banner = notice(query)?;
    let policy = admin.latchkey().governance.policy().await?;
    render(admin, &policy, banner, None).await
}

pub(in crate::console) async fn save(AdminForm(admin, fields): AdminForm) -> ConsoleResult {
    let policy = admin.latchkey().governance.policy().await?;
    if fields.has("reset") {
        let reset = admin
            .latchkey()
            .governance
            .reset_registration_campaign(&admin.actor())
            .await;
        return match reset.refusable()? {
            Ok(_) => Ok(redirect(CAMPAIGN_PATH, "reset")),
            Err(refused) => render(admin, &policy, refused.into(), None).await,
        };
    }
    let input = match CampaignInput::from_fields(&fields) {
        Ok(input) => input,
        Err(refused) => return render(admin, &policy, refused.into(), None).await,
    };
    let outcome = match check_version(&fields, &policy).and_then(|()| input.json()) {
        Ok(json) => admin
            .latchkey()
            .governance
            .set_registration_campaign(&admin.actor(), json, Some(policy.version))
            .await
            .refusable()?,
        Err(refused) => Err(refused),
    };
    match outcome {
        Ok(_) => Ok(redirect(CAMPAIGN_PATH, "saved")),
        Err(refused) => render(admin, &policy, refused.into(), Some(input)).await,
    }
}

/// The campaign's row on the policies page.
pub(super) fn summary(
    policy: &AuthenticationMethodsPolicy,
    names: &std::collections::BTreeMap<String, String>,
) -> (bool, String, String) {
    let c = &policy
        .registration_enforcement
        .authentication_methods_registration_campaign;
    let name = |t: &Target| match t {
        Target::AllUsers => "All users".to_string(),
        Target::Group(id) => names
            .get(id.as_str())
            .cloned()
            .unwrap_or_else(|| format!("Unknown group {id}")),
    };
    (
        c.is_on(),
        c.include_targets
            .iter()
            .map(|t| name(&t.target))
            .collect::<Vec<_>>()
            .join(", "),
        c.exclude_targets
            .iter()
            .map(name)
            .collect::<Vec<_>>()
            .join(", "),
    )
}
