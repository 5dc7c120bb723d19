//! Users: the list with the new-user form, and a user's page (groups, registered methods,
//! effective policy) from which an administrator enables or disables the account, adds it to
//! a group or issues a Temporary Access Pass.

use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use latchkey_domain::clock::{Timestamp, parse_time};
use latchkey_domain::credential::PassRequest;
use latchkey_domain::ids::UserId;
use latchkey_domain::policy::AuthenticationMode;
use latchkey_domain::service::{NewUser, UserPatch};
use latchkey_domain::user::{Group, User};

use super::{
    Admin, AdminForm, Banner, ConsoleResult, Fields, Frame, NoticeParam, PageFailure, PathId,
    Refusable, Refused, Section, created, found, notice, redirect, time, url_id,
};
use crate::error::PageError;

#[derive(Debug, Clone, Default, PartialEq)]
struct NewUserInput {
    user_principal_name: String,
    display_name: String,
    mail: String,
    account_enabled: bool,
}

#[derive(Template)]
#[template(path = "console_users.html")]
struct UsersPage {
    frame: Frame,
    users: Vec<User>,
    input: NewUserInput,
}

pub(super) async fn list(admin: Admin, query: NoticeParam) -> ConsoleResult {
    let banner = notice(query)?;
    let input = NewUserInput {
        account_enabled: true,
        ..Default::default()
    };
    render_list(admin, banner, input).await
}

async fn render_list(admin: Admin, banner: Banner, input: NewUserInput) -> ConsoleResult {
    let users = admin.latchkey().directory.list_users().await?;
    admin.page(Section::Users, banner, |frame| UsersPage {
        frame,
        users,
        input,
    })
}

/// `account_enabled` is a select, so a form without it means the default: enabled.
fn new_user_input(fields: &Fields) -> Result<NewUserInput, PageError> {
    let account_enabled = match fields.one("account_enabled")? {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => {
            return Err(PageError::bad_request(
                "account_enabled: choose true or false.",
            ));
        }
    };
    Ok(NewUserInput {
        user_principal_name: fields.text("user_principal_name")?,
        display_name: fields.text("display_name")?,
        mail: fields.text("mail")?,
        account_enabled,
    })
}

pub(super) async fn create(AdminForm(admin, fields): AdminForm) -> ConsoleResult {
    let input = new_user_input(&fields)?;
    let new = NewUser {
        user_principal_name: input.user_principal_name.clone(),
        display_name: input.display_name.clone(),
        mail: (!input.mail.is_empty()).then(|| input.mail.clone()),
        account_enabled: input.account_enabled,
    };
    let outcome = admin
        .latchkey()
        .directory
        .create_user(&admin.actor(), new)
        .await
        .refusable()?;
    created(outcome, user_path, |banner| {
        render_list(admin, banner, input)
    })
    .await
}

fn user_path(user: &User) -> String {
    format!("/admin/users/{}", user.id)
}

struct MethodRow {
    label: String,
    detail: String,
    added: String,
}

struct FeatureStateRow {
    label: &'static str,
    enabled: bool,
    reason: String,
}

struct EvaluationRow {
    method: &'static str,
    allowed: bool,
    mode: &'static str,
    reason: String,
    features: Vec<FeatureStateRow>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct PassInput {
    lifetime_minutes: String,
    usable_once: bool,
    start: String,
}

#[derive(Template)]
#[template(path = "console_user.html")]
struct UserPage {
    frame: Frame,
    user: User,
    member_of: Vec<Group>,
    other_groups: Vec<Group>,
    methods: Vec<MethodRow>,
    evaluations: Vec<EvaluationRow>,
    pass: PassInput,
    pass_default_minutes: u32,
    pass_min_minutes: u32,
    pass_max_minutes: u32,
    pass_one_time_only: bool,
    /// The certificate user ids, one a line (as the form edits them).
    certificate_user_ids: String,
}

pub(super) async fn detail(admin: Admin, path: PathId, query: NoticeParam) -> ConsoleResult {
    let Path(id) = path?;
    let banner = notice(query)?;
    let user = user_by_id(&admin, &id).await?;
    render_user(admin, user, banner, None).await
}

/// A user named in a URL; ids only, so every user has exactly one address.
async fn user_by_id(admin: &Admin, id: &str) -> Result<User, PageFailure> {
    let id = UserId::from_string(url_id(id, "user")?);
    found(admin.latchkey().directory.user(&id).await, "user")
}

/// The administrator, their form posted from the page of the user in the path, and the user.
async fn user_form(
    AdminForm(admin, fields): AdminForm,
    path: PathId,
) -> Result<(Admin, Fields, User), PageFailure> {
    let Path(id) = path?;
    let user = user_by_id(&admin, &id).await?;
    Ok((admin, fields, user))
}

/// A user's page; `pass` is the pass form's input to show again.
async fn render_user(
    admin: Admin,
    user: User,
    banner: Banner,
    pass: Option<PassInput>,
) -> ConsoleResult {
    let latchkey = admin.latchkey();
    let group_ids = latchkey.directory.groups_of_user(&user.id).await?;
    let (member_of, other_groups) = latchkey
        .directory
        .list_groups()
        .await?
        .into_iter()
        .partition(|g| group_ids.contains(&g.id));
    let methods = latchkey
        .devices
        .registered_methods(&user.id)
        .await?
        .into_iter()
        .map(|m| MethodRow {
            label: m.label,
            detail: m.detail,
            added: m.added_at.map(time).unwrap_or_default(),
        })
        .collect();
    let evaluations = latchkey
        .governance
        .effective_policy(&user.id)
        .await?
        .into_iter()
        .map(|e| EvaluationRow {
            method: e.method.label(),
            allowed: e.allowed,
            mode: e.mode.map_or("", AuthenticationMode::label),
            reason: e.reason,
            features: e
                .features
                .into_iter()
                .map(|f| FeatureStateRow {
                    label: f.feature.label(),
                    enabled: f.enabled,
                    reason: f.reason,
                })
                .collect(),
        })
        .collect();
    let rules = latchkey
        .governance
        .policy()
        .await?
        .temporary_access_pass
        .rules();
    let certificate_user_ids = latchkey
        .directory
        .certificate_user_ids(&user.id)
        .await?
        .join("\n");
    let pass = pass.unwrap_or(PassInput {
        usable_once: rules.one_time_only,
        ..Default::default()
    });
    admin.page(Section::Users, banner, |frame| UserPage {
        frame,
        user,
        member_of,
        other_groups,
        methods,
        evaluations,
        pass,
        pass_default_minutes: rules.default_lifetime_minutes,
        pass_min_minutes: rules.min_lifetime_minutes,
        pass_max_minutes: rules.max_lifetime_minutes,
        pass_one_time_only: rules.one_time_only,
        certificate_user_ids,
    })
}

/// Replaces the user's certificate user ids with the form's, one a line.
pub(super) async fn set_certificate_user_ids(path: PathId, form: AdminForm) -> ConsoleResult {
    let (admin, fields, user) = user_form(form, path).await?;
    let values: Vec<String> = fields
        .text("certificate_user_ids")?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    match admin
        .latchkey()
        .directory
        .set_certificate_user_ids(&admin.actor(), &user.id, &values)
        .await
        .refusable()?
    {
        Ok(_) => Ok(redirect(&user_path(&user), "saved")),
        Err(refused) => render_user(admin, user, refused.into(), None).await,
    }
}

pub(super) async fn set_enabled(path: PathId, form: AdminForm) -> ConsoleResult {
    let (admin, fields, user) = user_form(form, path).await?;
    let enabled = match fields.one("enabled")? {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(PageError::bad_request("enabled: send true or false.").into());
        }
    };
    let patch = UserPatch {
        account_enabled: Some(enabled),
        ..Default::default()
    };
    match admin
        .latchkey()
        .directory
        .update_user(&admin.actor(), &user.id, patch)
        .await
        .refusable()?
    {
        Ok(user) => {
            let key = if enabled { "enabled" } else { "disabled" };
            Ok(redirect(&user_path(&user), key))
        }
        Err(refused) => render_user(admin, user, refused.into(), None).await,
    }
}

pub(super) async fn add_to_group(path: PathId, form: AdminForm) -> ConsoleResult {
    let (admin, fields, user) = user_form(form, path).await?;
    let group = fields.text("group")?;
    let added = if group.is_empty() {
        Err(Refused::bad("group: choose a group to add the user to."))
    } else {
        let add = async {
            let group = admin.latchkey().directory.find_group(&group).await?;
            admin
                .latchkey()
                .directory
                .add_group_member(&admin.actor(), &group.id, &user.id)
                .await
        };
        add.await.refusable()?
    };
    match added {
        Ok(()) => Ok(redirect(&user_path(&user), "added")),
        Err(refused) => render_user(admin, user, refused.into(), None).await,
    }
}

fn pass_input(fields: &Fields) -> Result<PassInput, PageError> {
    Ok(PassInput {
        lifetime_minutes: fields.text("lifetime_minutes")?,
        usable_once: fields.checkbox("usable_once")?,
        start: fields.text("start")?,
    })
}

/// The pass request a form asks for. An unticked "one use only" leaves the choice to the
/// policy, so a policy of one-time passes is never argued with by a checkbox.
fn pass_request(input: &PassInput, now: Timestamp) -> Result<PassRequest, String> {
    let lifetime_in_minutes = match input.lifetime_minutes.as_str() {
        "" => None,
        value => Some(value.parse::<u32>().map_err(|_| {
            "lifetime_minutes: enter a whole number of minutes, or leave it empty for the default."
                .to_string()
        })?),
    };
    let start_date_time = match input.start.as_str() {
        "" => None,
        value => Some(
            parse_time(value, now)
                .ok_or_else(|| {
                    "start: enter a time in UTC such as 2026-11-29T09:00:00Z, or leave it empty to start now."
                        .to_string()
                })?
                .0,
        ),
    };
    Ok(PassRequest {
        start_date_time,
        lifetime_in_minutes,
        is_usable_once: input.usable_once.then_some(true),
        length: None,
    })
}

#[derive(Template)]
#[template(path = "console_pass.html")]
struct PassPage {
    frame: Frame,
    user: User,
    secret: String,
    starts: String,
    expires: String,
    usable_once: bool,
}

pub(super) async fn issue_pass(path: PathId, form: AdminForm) -> ConsoleResult {
    let (admin, fields, user) = user_form(form, path).await?;
    let input = pass_input(&fields)?;
    let issued = match pass_request(&input, admin.latchkey().now()) {
        Ok(request) => admin
            .latchkey()
            .directory
            .issue_pass(&admin.actor(), &user.id, &request)
            .await
            .refusable()?,
        Err(message) => Err(Refused::bad(message)),
    };
    let (pass, secret) = match issued {
        Ok(issued) => issued,
        Err(refused) => return render_user(admin, user, refused.into(), Some(input)).await,
    };
    let mut response = admin.page(Section::Users, Banner::None, |frame| PassPage {
        frame,
        user,
        secret: secret.expose().to_string(),
        starts: time(pass.starts_at),
        expires: time(pass.expires_at()),
        usable_once: pass.usable_once,
    })?;
    // The pass is shown once: no cache may keep the page.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_795_910_400);

    #[test]
    fn pass_form_leaves_unset_values_to_the_policy() {
        let request = pass_request(&PassInput::default(), NOW).unwrap();
        assert_eq!(request.lifetime_in_minutes, None);
        assert_eq!(request.is_usable_once, None);
        assert_eq!(request.start_date_time, None);
        let request = pass_request(
            &PassInput {
                lifetime_minutes: "120".into(),
                usable_once: true,
                start: "2026-11-29T00:00:00Z".into(),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(request.lifetime_in_minutes, Some(120));
        assert_eq!(request.is_usable_once, Some(true));
        assert_eq!(request.start_date_time, Some(NOW.0));
        for (input, field) in [
            (
                PassInput {
                    lifetime_minutes: "an hour".into(),
                    ..Default::default()
                },
                "lifetime_minutes:",
            ),
            (
                PassInput {
                    start: "soon".into(),
                    ..Default::default()
                },
                "start:",
            ),
        ] {
            assert!(pass_request(&input, NOW).unwrap_err().starts_with(field));
        }
    }
}
