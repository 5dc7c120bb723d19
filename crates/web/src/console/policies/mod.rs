//! The authentication methods policy: the list of methods, the authenticator app's two tabs
//! ("Enable and Target", "Configure") and the page of every other method. Forms are written
//! into the method's configuration JSON and saved whole, so the domain validates them.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use latchkey_domain::DomainError;
use latchkey_domain::policy::{AuthenticationMethodsPolicy, MethodKind, MethodState, Target};
use serde_json::Value;

use super::{
    Admin, AdminForm, Banner, ConsoleResult, Fields, Frame, NoticeParam, PageFailure, PathId,
    Refusable, Refused, Section, not_found, notice, redirect,
};
use crate::error::PageError;

mod campaign;
mod form;

pub(super) use campaign::{CAMPAIGN_PATH, page as campaign_page, save as save_campaign};

use form::*;

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
    /// The registration campaign: on, included, excluded.
    campaign: (bool, String, String),
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

pub(super) async fn list(admin: Admin, query: NoticeParam) -> ConsoleResult {
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
    let campaign = campaign::summary(&policy, &names);
    admin.page(Section::Policies, banner, |frame| PoliciesPage {
        frame,
        rows,
        campaign,
    })
}

fn method_path(kind: MethodKind) -> String {
    format!("/admin/policies/{}", kind.id())
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
    admin: Admin,
    query: NoticeParam,
) -> ConsoleResult {
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
pub(super) fn check_version(
    fields: &Fields,
    policy: &AuthenticationMethodsPolicy,
) -> Result<(), Refused> {
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
) -> Result<Option<Refused>, PageFailure> {
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
    AdminForm(admin, fields): AdminForm,
) -> ConsoleResult {
    let path = authenticator_path(CONFIGURE);
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
fn method_by_id(id: &str) -> Result<MethodKind, PageFailure> {
    MethodKind::ALL
        .into_iter()
        .find(|m| m.id() == id)
        .ok_or_else(|| not_found("authentication method").into())
}

/// The methods other than the authenticator app, whose page is the simple one.
fn simple_method(id: &str) -> Result<MethodKind, PageFailure> {
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

pub(super) async fn method_page(admin: Admin, path: PathId, query: NoticeParam) -> ConsoleResult {
    let Path(id) = path?;
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
    AdminForm(admin, fields): AdminForm,
    path: PathId,
) -> Result<(Admin, Fields, MethodKind, AuthenticationMethodsPolicy), PageFailure> {
    let Path(id) = path?;
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

pub(super) async fn save_method_targeting(path: PathId, form: AdminForm) -> ConsoleResult {
    let (admin, fields, kind, policy) = method_form(form, path).await?;
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

pub(super) async fn save_method_settings(path: PathId, form: AdminForm) -> ConsoleResult {
    let (admin, fields, kind, policy) = method_form(form, path).await?;
    let text = fields.one("configuration")?.unwrap_or_default().to_string();
    let replace = |config: &mut Value| parse_settings(&text).map(|value| *config = value);
    let refused = save(&admin, &fields, &policy, kind, replace).await?;
    let posted = MethodInput {
        targeting: None,
        settings: Some(text),
    };
    after_save(admin, kind, &policy, refused, posted).await
}

pub(super) async fn reset_method(path: PathId, AdminForm(admin, _): AdminForm) -> ConsoleResult {
    let Path(id) = path?;
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
    use latchkey_domain::policy::{
        AuthenticationMode, AuthenticatorFeatures, Feature, FeatureState, MethodConfiguration,
        Targeting,
    };
    use latchkey_domain::user::Group;

    use super::form::tests::parse_authenticator;

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
