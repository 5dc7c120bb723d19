//! The overview and the list of applications (applications are registered with the admin API
//! or the CLI; here an administrator chooses the authentication strength each requires).

use askama::Template;
use axum::extract::Path;
use latchkey_domain::application::Application;
use latchkey_domain::ids::ClientId;
use latchkey_domain::strength::AuthStrength;
use latchkey_domain::user::{Group, User};

use super::{
    Admin, AdminForm, Banner, ConsoleResult, Frame, NoticeParam, PathId, Refusable, Section,
    notice, redirect, url_id,
};

#[derive(Template)]
#[template(path = "console_overview.html")]
struct OverviewPage {
    frame: Frame,
    users: Vec<User>,
    groups: Vec<Group>,
    application_count: usize,
    more_users: usize,
    more_groups: usize,
}

impl OverviewPage {
    /// "1 user", "3 users": the tiles' counts.
    fn count(n: usize, one: &str, many: &str) -> String {
        format!("{n} {}", if n == 1 { one } else { many })
    }

    fn users_text(&self) -> String {
        Self::count(self.users.len() + self.more_users, "user", "users")
    }

    fn groups_text(&self) -> String {
        Self::count(self.groups.len() + self.more_groups, "group", "groups")
    }

    fn applications_text(&self) -> String {
        Self::count(self.application_count, "application", "applications")
    }
}

const OVERVIEW_LIST: usize = 50;

pub(super) async fn overview(admin: Admin) -> ConsoleResult {
    let mut users = admin.latchkey().directory.list_users().await?;
    let mut groups = admin.latchkey().directory.list_groups().await?;
    let application_count = admin
        .latchkey()
        .applications
        .list_applications()
        .await?
        .len();
    let more_users = users.len().saturating_sub(OVERVIEW_LIST);
    let more_groups = groups.len().saturating_sub(OVERVIEW_LIST);
    users.truncate(OVERVIEW_LIST);
    groups.truncate(OVERVIEW_LIST);
    admin.page(Section::Overview, Banner::None, |frame| OverviewPage {
        frame,
        users,
        groups,
        application_count,
        more_users,
        more_groups,
    })
}

#[derive(Template)]
#[template(path = "console_applications.html")]
struct ApplicationsPage {
    frame: Frame,
    applications: Vec<Application>,
    strengths: [AuthStrength; 3],
}

impl ApplicationsPage {
    fn requires(&self, app: &Application, strength: &AuthStrength) -> bool {
        app.required_strength == Some(*strength)
    }
}

pub(super) async fn list(admin: Admin, query: NoticeParam) -> ConsoleResult {
    let banner = notice(query)?;
    render_list(admin, banner).await
}

async fn render_list(admin: Admin, banner: Banner) -> ConsoleResult {
    let applications = admin.latchkey().applications.list_applications().await?;
    admin.page(Section::Applications, banner, |frame| ApplicationsPage {
        frame,
        applications,
        strengths: AuthStrength::ALL,
    })
}

/// `POST /admin/applications/{id}/strength`: the strength the application requires, by id
/// (`mfa`, `passwordlessMfa`, `phishingResistantMfa`), or empty for none.
pub(super) async fn set_strength(
    path: PathId,
    AdminForm(admin, fields): AdminForm,
) -> ConsoleResult {
    let Path(id) = path?;
    let id = url_id(&id, "application")?;
    let strength = fields.one("strength")?.filter(|s| !s.is_empty());
    match admin
        .latchkey()
        .applications
        .set_required_strength(&admin.actor(), &ClientId::from_string(id), strength)
        .await
        .refusable()?
    {
        Ok(_) => Ok(redirect("/admin/applications", "saved")),
        Err(refused) => render_list(admin, refused.into()).await,
    }
}
