//! Administrator API tokens: the list with each token's state and a revoke button, and the
//! form that makes a new one and shows its secret once, on the page that answers the form.

use askama::Template;
use axum::extract::{Path, State};
use axum_extra::extract::cookie::CookieJar;
use latchkey_domain::admin_token::AdminTokenStatus;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::service::NewAdminToken;

use super::{
    Admin, Banner, ConsoleResult, Frame, NoticeParam, PathId, PostedForm, Refusable, Refused,
    Section, notice, redirect, url_id,
};
use crate::AppState;

const PATH: &str = "/admin/tokens";
/// The lifetimes the form offers, in days; empty means no expiry.
const LIFETIMES: [(&str, &str); 5] = [
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
    ("7", "7 days"),
    ("", "Never"),
];

struct TokenRow {
    id: String,
    name: String,
    active: bool,
    status: &'static str,
    created: String,
    created_by: String,
    expires: String,
    last_used: String,
}

struct Lifetime {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console_tokens.html")]
struct TokensPage {
    frame: Frame,
    rows: Vec<TokenRow>,
    name: String,
    lifetimes: Vec<Lifetime>,
    /// The secret of the token just made: on this page only.
    created: Option<(String, String)>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    jar: CookieJar,
    query: NoticeParam,
) -> ConsoleResult {
    let admin = Admin::signed_in(state, jar, PATH).await?;
    let banner = notice(query)?;
    render(admin, banner, String::new(), "30", None).await
}

async fn render(
    admin: Admin,
    banner: Banner,
    name: String,
    lifetime: &str,
    created: Option<(String, String)>,
) -> ConsoleResult {
    let now = admin.latchkey().now();
    let rows = admin
        .latchkey()
        .governance
        .list_admin_tokens()
        .await?
        .into_iter()
        .rev()
        .map(|t| {
            let status = t.status(now);
            TokenRow {
                id: t.id.to_string(),
                name: t.name.clone(),
                active: status == AdminTokenStatus::Active,
                status: match status {
                    AdminTokenStatus::Active => "Active",
                    AdminTokenStatus::Expired => "Expired",
                    AdminTokenStatus::Revoked => "Revoked",
                },
                created: t.created_at.to_rfc3339(),
                created_by: t.created_by.clone(),
                expires: t.expires_at.map(Timestamp::to_rfc3339).unwrap_or_default(),
                last_used: t
                    .last_used_at
                    .map(Timestamp::to_rfc3339)
                    .unwrap_or_default(),
            }
        })
        .collect();
    let lifetimes = LIFETIMES
        .iter()
        .map(|&(value, label)| Lifetime {
            value,
            label,
            selected: value == lifetime,
        })
        .collect();
    admin.page(Section::Tokens, banner, |frame| TokensPage {
        frame,
        rows,
        name,
        lifetimes,
        created,
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    jar: CookieJar,
    form: PostedForm,
) -> ConsoleResult {
    let (admin, fields) = Admin::form(state, jar, PATH, form).await?;
    let name = fields.text("name")?;
    let lifetime = fields.text("lifetime_days")?;
    let Some((value, _)) = LIFETIMES.iter().find(|(v, _)| *v == lifetime) else {
        let refused = Refused::bad("Expires: choose one of the offered lifetimes.");
        return render(admin, refused.into(), name, "30", None).await;
    };
    let now = admin.latchkey().now();
    let expires_date_time = value
        .parse::<i64>()
        .ok()
        .map(|days| now.plus_seconds(days * 86_400).to_rfc3339());
    let new = NewAdminToken {
        display_name: name.clone(),
        expires_date_time,
    };
    match admin
        .latchkey()
        .governance
        .create_admin_token(&admin.actor(), new)
        .await
        .refusable()?
    {
        Ok((token, secret)) => {
            let created = Some((token.name.clone(), secret.expose().to_string()));
            let banner = Banner::Notice("Created. Copy the token now: it is not shown again.");
            let mut response = render(admin, banner, String::new(), "30", created).await?;
            // The token is shown once: no cache may keep the page.
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(response)
        }
        Err(refused) => render(admin, refused.into(), name, value, None).await,
    }
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    jar: CookieJar,
    path: PathId,
    form: PostedForm,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, _) = Admin::form(state, jar, PATH, form).await?;
    let id = url_id(&id, "token")?;
    match admin
        .latchkey()
        .governance
        .revoke_admin_token(&admin.actor(), id)
        .await
        .refusable()?
    {
        Ok(_) => Ok(redirect(PATH, "revoked")),
        Err(refused) => render(admin, refused.into(), String::new(), "30", None).await,
    }
}
