//! Groups: the list with the new-group form, and a group's page where members are added and
//! removed.

use askama::Template;
use axum::extract::Path;
use latchkey_domain::user::{Group, User};

use super::{
    Admin, AdminForm, Banner, ConsoleResult, Frame, NoticeParam, PageFailure, PathId, Refusable,
    Refused, Section, created, found, not_found, notice, redirect, url_id,
};

#[derive(Debug, Clone, Default, PartialEq)]
struct NewGroupInput {
    display_name: String,
    description: String,
}

#[derive(Template)]
#[template(path = "console_groups.html")]
struct GroupsPage {
    frame: Frame,
    groups: Vec<Group>,
    input: NewGroupInput,
}

pub(super) async fn list(admin: Admin, query: NoticeParam) -> ConsoleResult {
    let banner = notice(query)?;
    render_list(admin, banner, NewGroupInput::default()).await
}

async fn render_list(admin: Admin, banner: Banner, input: NewGroupInput) -> ConsoleResult {
    let groups = admin.latchkey().directory.list_groups().await?;
    admin.page(Section::Groups, banner, |frame| GroupsPage {
        frame,
        groups,
        input,
    })
}

pub(super) async fn create(AdminForm(admin, fields): AdminForm) -> ConsoleResult {
    let input = NewGroupInput {
        display_name: fields.text("display_name")?,
        description: fields.text("description")?,
    };
    let outcome = admin
        .latchkey()
        .directory
        .create_group(&admin.actor(), &input.display_name, &input.description)
        .await
        .refusable()?;
    created(outcome, group_path, |banner| {
        render_list(admin, banner, input)
    })
    .await
}

fn group_path(group: &Group) -> String {
    format!("/admin/groups/{}", group.id)
}

#[derive(Template)]
#[template(path = "console_group.html")]
struct GroupPage {
    frame: Frame,
    group: Group,
    members: Vec<User>,
    candidates: Vec<User>,
}

pub(super) async fn detail(admin: Admin, path: PathId, query: NoticeParam) -> ConsoleResult {
    let Path(id) = path?;
    let banner = notice(query)?;
    let group = group_by_id(&admin, &id).await?;
    render_group(admin, group, banner).await
}

/// A group named in a URL by its id (`find_group` would take a name too).
async fn group_by_id(admin: &Admin, id: &str) -> Result<Group, PageFailure> {
    let group = found(
        admin
            .latchkey()
            .directory
            .find_group(url_id(id, "group")?)
            .await,
        "group",
    )?;
    if group.id.as_str() != id {
        return Err(not_found("group").into());
    }
    Ok(group)
}

async fn render_group(admin: Admin, group: Group, banner: Banner) -> ConsoleResult {
    let members = admin.latchkey().directory.group_members(&group.id).await?;
    let candidates = admin
        .latchkey()
        .directory
        .list_users()
        .await?
        .into_iter()
        .filter(|u| !members.iter().any(|m| m.id == u.id))
        .collect();
    admin.page(Section::Groups, banner, |frame| GroupPage {
        frame,
        group,
        members,
        candidates,
    })
}

/// Adds the posted user to the group in the path; with `REMOVE`, takes them out.
pub(super) async fn change_membership<const REMOVE: bool>(
    path: PathId,
    AdminForm(admin, fields): AdminForm,
) -> ConsoleResult {
    let Path(id) = path?;
    let group = group_by_id(&admin, &id).await?;
    let key = fields.text("user")?;
    let changed = if key.is_empty() {
        Err(Refused::bad("user: choose a user."))
    } else {
        let change = async {
            let (latchkey, actor) = (admin.latchkey(), admin.actor());
            let user = latchkey.directory.find_user(&key).await?;
            if REMOVE {
                latchkey
                    .directory
                    .remove_group_member(&actor, &group.id, &user.id)
                    .await
            } else {
                latchkey
                    .directory
                    .add_group_member(&actor, &group.id, &user.id)
                    .await
            }
        };
        change.await.refusable()?
    };
    match changed {
        Ok(()) => {
            let key = if REMOVE { "removed" } else { "added" };
            Ok(redirect(&group_path(&group), key))
        }
        Err(refused) => render_group(admin, group, refused.into()).await,
    }
}
