//! Risky users: who answered a notification with "No, it's not me", why, from where, and the
//! button that dismisses the risk.

use askama::Template;
use axum::extract::State;
use axum_extra::extract::cookie::CookieJar;

use super::{Admin, ConsoleResult, Frame, NoticeParam, PostedForm, Section, notice, redirect};
use crate::AppState;

struct RiskyRow {
    id: String,
    upn: String,
    name: String,
    at_risk: bool,
    state: &'static str,
    detail: String,
    updated: String,
    /// The latest detection: when, from where, which application and device.
    reported: Option<String>,
    address: String,
    place: String,
    app: String,
    device: String,
}

#[derive(Template)]
#[template(path = "console_risky_users.html")]
struct RiskyUsersPage {
    frame: Frame,
    rows: Vec<RiskyRow>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    jar: CookieJar,
    query: NoticeParam,
) -> ConsoleResult {
    let admin = Admin::signed_in(state, jar, "/admin/risky-users").await?;
    let banner = notice(query)?;
    let mut rows = Vec::new();
    for (risk, user) in admin.latchkey().governance.risky_users().await? {
        let (_, detections) = admin.latchkey().governance.user_risk(&user.id).await?;
        let latest = detections.first();
        rows.push(RiskyRow {
            id: user.id.to_string(),
            upn: user.upn.to_string(),
            name: user.display_name.clone(),
            at_risk: risk.is_at_risk(),
            state: if risk.is_at_risk() {
                "At risk"
            } else {
                "Dismissed"
            },
            detail: match risk.detail.as_str() {
                "userReportedSuspiciousActivity" => "Reported a sign-in as not theirs".into(),
                "adminDismissedAllRiskForUser" => "An administrator dismissed the risk".into(),
                other => other.to_string(),
            },
            updated: risk.last_updated.to_rfc3339(),
            reported: latest.map(|d| d.detected_date_time.to_rfc3339()),
            address: latest
                .and_then(|d| d.ip_address.clone())
                .unwrap_or_default(),
            place: latest
                .and_then(|d| d.location.as_ref())
                .and_then(|l| l.display())
                .unwrap_or_default(),
            app: latest
                .and_then(|d| d.app_display_name.clone())
                .unwrap_or_default(),
            device: latest
                .and_then(|d| d.device_name.clone())
                .unwrap_or_default(),
        });
    }
    admin.page(Section::RiskyUsers, banner, |frame| RiskyUsersPage {
        frame,
        rows,
    })
}

pub(super) async fn dismiss(
    State(state): State<AppState>,
    jar: CookieJar,
    form: PostedForm,
) -> ConsoleResult {
    let (admin, fields) = Admin::form(state, jar, "/admin/risky-users", form).await?;
    let user = fields.text("user")?;
    admin
        .latchkey()
        .governance
        .dismiss_risk(&admin.actor(), &[user])
        .await?;
    Ok(redirect("/admin/risky-users", "dismissed"))
}
