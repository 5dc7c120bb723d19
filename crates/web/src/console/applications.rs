//! The read-only pages: the overview and the list of applications (applications are
//! registered with the admin API or the CLI, not here).

use askama::Template;
use axum::extract::State;
use axum_extra::extract::cookie::CookieJar;
use latchkey_domain::application::Application;
use latchkey_domain::user::{Group, User};

use super::{Admin, Banner, ConsoleResult, Frame, Section};
use crate::AppState;

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

const OVERVIEW_LIST: usize = 50;

pub(super) async fn overview(State(state): State<AppState>, jar: CookieJar) -> ConsoleResult {
    let admin = Admin::signed_in(state, jar, "/admin").await?;
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
}

pub(super) async fn list(State(state): State<AppState>, jar: CookieJar) -> ConsoleResult {
    let admin = Admin::signed_in(state, jar, "/admin/applications").await?;
    let applications = admin.latchkey().applications.list_applications().await?;
    admin.page(Section::Applications, Banner::None, |frame| {
        ApplicationsPage {
            frame,
            applications,
        }
    })
}
