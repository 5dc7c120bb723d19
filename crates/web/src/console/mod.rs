//! The admin console: server-rendered pages where members of "Latchkey Administrators" manage
//! users, groups and the authentication methods policy, and read the sign-in and audit logs.
//!
//! Handlers only translate: form fields into domain calls, domain answers into pages. They must
//! never decide a rule; those live in `latchkey-domain`. Changes are made as the signed-in
//! administrator, so the audit log names them. Pages need no JavaScript and no inline styles,
//! which the content security policy forbids.

mod applications;
mod groups;
mod logs;
mod policies;
mod risk;
mod tokens;
mod users;

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use axum_extra::extract::cookie::CookieJar;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::log::Actor;
use latchkey_domain::service::ADMINISTRATORS_GROUP_NAME as ADMINISTRATORS_GROUP;
use latchkey_domain::session::Session;
use latchkey_domain::user::User;
use latchkey_domain::{DomainError, Latchkey, StoreError};
use serde::Deserialize;

use crate::AppState;
use crate::cookies::{CsrfScope, csrf_token, require_csrf};
use crate::error::{PageError, PageFailure, render};
use crate::extract::current_session;
use policies::{AUTHENTICATOR_CONFIGURE_PATH, AUTHENTICATOR_PATH};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(applications::overview))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{id}", get(users::detail))
        .route(
            "/admin/users/{id}/enabled",
            form_below(1, post(users::set_enabled)),
        )
        .route(
            "/admin/users/{id}/groups",
            form_below(1, post(users::add_to_group)),
        )
        .route(
            "/admin/users/{id}/certificateUserIds",
            form_below(1, post(users::set_certificate_user_ids)),
        )
        .route(
            "/admin/users/{id}/pass",
            form_below(1, post(users::issue_pass)),
        )
        .route("/admin/groups", get(groups::list).post(groups::create))
        .route("/admin/groups/{id}", get(groups::detail))
        .route(
            "/admin/groups/{id}/members",
            form_below(1, post(groups::change_membership::<false>)),
        )
        .route(
            "/admin/groups/{id}/members/remove",
            form_below(2, post(groups::change_membership::<true>)),
        )
        .route("/admin/applications", get(applications::list))
        .route(
            "/admin/applications/{id}/strength",
            form_below(2, post(applications::set_strength)),
        )
        .route("/admin/policies", get(policies::list))
        .route(
            policies::CAMPAIGN_PATH,
            get(policies::campaign_page).post(policies::save_campaign),
        )
        .route(
            AUTHENTICATOR_PATH,
            get(policies::authenticator::<false>).post(policies::save_authenticator::<false>),
        )
        .route(
            AUTHENTICATOR_CONFIGURE_PATH,
            get(policies::authenticator::<true>).post(policies::save_authenticator::<true>),
        )
        .route(
            "/admin/policies/{method}",
            get(policies::method_page).post(policies::save_method_targeting),
        )
        .route(
            "/admin/policies/{method}/settings",
            form_below(1, post(policies::save_method_settings)),
        )
        .route(
            "/admin/policies/{method}/reset",
            form_below(1, post(policies::reset_method)),
        )
        .route("/admin/logs/signins", get(logs::sign_ins))
        .route("/admin/logs/signins/{id}", get(logs::sign_in_detail))
        .route("/admin/logs/audit", get(logs::audit))
        .route("/admin/risky-users", get(risk::list))
        .route(
            "/admin/risky-users/dismiss",
            form_below(1, post(risk::dismiss)),
        )
        .route("/admin/tokens", get(tokens::list).post(tokens::create))
        .route(
            "/admin/tokens/{id}/revoke",
            form_below(2, post(tokens::revoke)),
        )
}

/// The id or name in a page's path.
type PathId = Result<Path<String>, PathRejection>;
/// The `?notice=` that a redirect after a change carries.
type NoticeParam = Result<Query<NoticeQuery>, QueryRejection>;

// ----- access and errors -------------------------------------------------------------------

impl From<PathRejection> for PageFailure {
    fn from(_: PathRejection) -> Self {
        PageFailure::Page(not_found("page"))
    }
}

type ConsoleResult = Result<Response, PageFailure>;

fn not_found(what: &str) -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        format!("That {what} does not exist. Go back to the list and pick another."),
    )
}

/// An id from a URL, checked for length before it reaches the domain.
fn url_id<'a>(id: &'a str, what: &str) -> Result<&'a str, PageFailure> {
    if id.is_empty() || id.len() > 128 {
        return Err(not_found(what).into());
    }
    Ok(id)
}

/// A lookup by an id from a URL: one the domain does not know is a not-found page.
fn found<T>(result: Result<T, DomainError>, what: &str) -> Result<T, PageFailure> {
    match result {
        Err(DomainError::NotFound(_) | DomainError::Store(StoreError::NotFound)) => {
            Err(not_found(what).into())
        }
        result => Ok(result?),
    }
}

/// A request from a signed-in administrator, which every console handler starts from. Without
/// a session, a sign-in that returns to the page; for someone else, a refusal.
struct Admin {
    state: AppState,
    /// The session the request came with: the console's forms are bound to it.
    session: Session,
    user: User,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = PageFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, PageFailure> {
        let page = parts.uri.path().to_string();
        Admin::signed_in(state, &CookieJar::from_headers(&parts.headers), page).await
    }
}

/// The administrator and their posted form, once its CSRF token is checked. Without a session,
/// a sign-in that returns to the page the form is on (see [`FormOn`]).
struct AdminForm(Admin, Fields);

impl FromRequest<AppState> for AdminForm {
    type Rejection = PageFailure;

    async fn from_request(request: Request, state: &AppState) -> Result<AdminForm, PageFailure> {
        let up = request.extensions().get::<FormOn>().map_or(0, |on| on.0);
        let page = page_above(request.uri().path(), up).to_string();
        let jar = CookieJar::from_headers(request.headers());
        let admin = Admin::signed_in(state, &jar, page).await?;
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, state).await?;
        let fields = Fields(pairs);
        require_csrf(
            state,
            CsrfScope::Session(&admin.session.id),
            fields.one("csrf")?.unwrap_or_default(),
        )?;
        Ok(AdminForm(admin, fields))
    }
}

/// How many path segments above a form's address its page is: `/admin/users/{id}/enabled` is
/// posted from `/admin/users/{id}`. Set on the routes of such forms; absent, the form posts
/// to its own page.
#[derive(Debug, Clone, Copy)]
struct FormOn(usize);

/// A form posted to an address below the page it is on (`up` segments).
fn form_below(up: usize, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(Extension(FormOn(up)))
}

/// `path` without its last `up` segments.
fn page_above(path: &str, up: usize) -> &str {
    (0..up).fold(path, |page, _| {
        page.rsplit_once('/').map_or(page, |(above, _)| above)
    })
}

impl Admin {
    /// The signed-in administrator; else a sign-in that returns to `page`, or a refusal.
    async fn signed_in(
        state: &AppState,
        jar: &CookieJar,
        page: String,
    ) -> Result<Admin, PageFailure> {
        let Some((session, user)) = current_session(state, jar).await? else {
            return Err(PageFailure::SignIn(page));
        };
        if state
            .latchkey
            .governance
            .administrator(&user.id)
            .await?
            .is_none()
        {
            // Named by the group bound to the role, which is what grants it.
            let group = match state.latchkey.governance.administrators_group().await? {
                Some(group) => group.display_name,
                None => ADMINISTRATORS_GROUP.to_string(),
            };
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "You can't use the admin console",
                format!(
                    "{} is not a member of {group}. Ask an administrator to add you to that group.",
                    user.upn
                ),
            )
            .into());
        }
        Ok(Admin {
            state: state.clone(),
            session,
            user,
        })
    }

    fn latchkey(&self) -> &Latchkey {
        &self.state.latchkey
    }

    /// Who the audit log names for a change made here.
    fn actor(&self) -> Actor {
        Actor::user(self.user.upn.as_str())
    }

    /// A console page in `section` with `banner` above its content; a refusal sets the status.
    fn page<T: Template>(
        self,
        section: Section,
        banner: Banner,
        content: impl FnOnce(Frame) -> T,
    ) -> ConsoleResult {
        let csrf = csrf_token(&self.state, CsrfScope::Session(&self.session.id));
        let (notice, error, status) = match banner {
            Banner::None => (None, None, StatusCode::OK),
            Banner::Notice(notice) => (Some(notice), None, StatusCode::OK),
            Banner::Refused(refused) => (None, Some(refused.message), refused.status),
        };
        let nav = NAV
            .iter()
            .map(|(s, href, label)| NavLink {
                href,
                label,
                current: *s == section,
            })
            .collect();
        let frame = Frame {
            upn: self.user.upn.to_string(),
            csrf,
            nav,
            notice,
            error,
        };
        let mut response = render(&content(frame));
        if response.status() == StatusCode::OK {
            *response.status_mut() = status;
        }
        Ok(response)
    }
}

/// A submitted form as name–value pairs, in order: table rows repeat their field names.
#[derive(Debug, Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// A field that may appear at most once.
    fn one(&self, name: &str) -> Result<Option<&str>, PageError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(PageError::bad_request(format!(
                "The form sent the field {name} more than once. Reload the page and try again."
            )));
        }
        Ok(first)
    }

    /// A text field, trimmed; absent reads as empty.
    fn text(&self, name: &str) -> Result<String, PageError> {
        Ok(self.one(name)?.unwrap_or_default().trim().to_string())
    }

    /// A checkbox: absent is off.
    fn checkbox(&self, name: &str) -> Result<bool, PageError> {
        match self.one(name)? {
            None => Ok(false),
            Some("true" | "on") => Ok(true),
            Some(_) => Err(PageError::bad_request(format!(
                "{name}: send true for on, or leave the field out for off."
            ))),
        }
    }
}

/// A form's input could not be saved: the page shows why, above the input it kept.
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    message: String,
}

impl Refused {
    fn bad(message: impl Into<String>) -> Refused {
        Refused {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// Splits a domain answer: its refusals are shown on the page, failures of ours become an
/// error page.
trait Refusable<T> {
    fn refusable(self) -> Result<Result<T, Refused>, PageFailure>;
}

impl<T> Refusable<T> for Result<T, DomainError> {
    fn refusable(self) -> Result<Result<T, Refused>, PageFailure> {
        let e = match self {
            Ok(value) => return Ok(Ok(value)),
            Err(e) => e,
        };
        let status = match &e {
            DomainError::Invalid { .. } | DomainError::Rejected(_) => StatusCode::BAD_REQUEST,
            DomainError::NotFound(_) | DomainError::Store(StoreError::NotFound) => {
                StatusCode::NOT_FOUND
            }
            DomainError::Conflict(_) | DomainError::Store(StoreError::Conflict(_)) => {
                StatusCode::CONFLICT
            }
            DomainError::Store(StoreError::Backend(_))
            | DomainError::Internal(_)
            | DomainError::NotAssigned(_) => {
                return Err(e.into());
            }
        };
        Ok(Err(Refused {
            status,
            message: e.to_string(),
        }))
    }
}

// ----- the page frame ----------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Overview,
    Users,
    Groups,
    Applications,
    Policies,
    SignIns,
    Audit,
    RiskyUsers,
    Tokens,
}

const NAV: [(Section, &str, &str); 9] = [
    (Section::Overview, "/admin", "Overview"),
    (Section::Users, "/admin/users", "Users"),
    (Section::Groups, "/admin/groups", "Groups"),
    (Section::Applications, "/admin/applications", "Applications"),
    (
        Section::Policies,
        "/admin/policies",
        "Authentication methods",
    ),
    (Section::SignIns, "/admin/logs/signins", "Sign-in logs"),
    (Section::Audit, "/admin/logs/audit", "Audit log"),
    (Section::RiskyUsers, "/admin/risky-users", "Risky users"),
    (Section::Tokens, "/admin/tokens", "API tokens"),
];

struct NavLink {
    href: &'static str,
    label: &'static str,
    current: bool,
}

/// What every console page shows around its content.
struct Frame {
    upn: String,
    csrf: String,
    nav: Vec<NavLink>,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// What a page shows above its content: a notice after a change, or why a form was refused.
enum Banner {
    None,
    Notice(&'static str),
    Refused(Refused),
}

impl From<Refused> for Banner {
    fn from(refused: Refused) -> Self {
        Banner::Refused(refused)
    }
}

#[derive(Deserialize, Default)]
struct NoticeQuery {
    notice: Option<String>,
}

/// The banner a redirect after a change asked for.
fn notice(query: NoticeParam) -> Result<Banner, PageFailure> {
    let Query(query) = query?;
    Ok(notice_text(query.notice.as_deref()).map_or(Banner::None, Banner::Notice))
}

/// Notices are chosen by key, so a link cannot put words of its own on a console page.
fn notice_text(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "saved" => "Saved.",
        "reset" => "Saved. The documented default configuration is restored.",
        "created" => "Created.",
        "enabled" => "Saved. The account is enabled.",
        "disabled" => "Saved. The account is disabled; its sessions and tokens were revoked.",
        "added" => "Saved. The member was added.",
        "removed" => "Saved. The member was removed.",
        "revoked" => "Revoked. The token's next request is refused.",
        "dismissed" => {
            "Saved. The user's risk was dismissed; notifications reach their devices again."
        }
        _ => return None,
    })
}

/// After a change: to `path`, showing the notice `key`.
fn redirect(path: &str, key: &str) -> Response {
    Redirect::to(&format!("{path}?notice={key}")).into_response()
}

/// What a create form answers: the new object's page with the "created" notice, or the form
/// again with the refusal shown above it.
async fn created<T, F>(
    outcome: Result<T, Refused>,
    path: fn(&T) -> String,
    form_again: impl FnOnce(Banner) -> F,
) -> ConsoleResult
where
    F: Future<Output = ConsoleResult>,
{
    match outcome {
        Ok(new) => Ok(redirect(&path(&new), "created")),
        Err(refused) => form_again(refused.into()).await,
    }
}

/// An option of a `<select>`.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// Options with `selected` marked; a value no option has (a deleted group, say) is kept as an
/// extra option so that saving the form again does not silently change it.
fn choices(options: &[(String, String)], selected: &str) -> Vec<Choice> {
    let mut list: Vec<Choice> = options
        .iter()
        .map(|(value, label)| Choice {
            value: value.clone(),
            label: label.clone(),
            selected: value == selected,
        })
        .collect();
    if !selected.is_empty() && !list.iter().any(|c| c.selected) {
        list.push(Choice {
            value: selected.to_string(),
            label: format!("Unknown group {selected}"),
            selected: true,
        });
    }
    list
}

/// Options led by a blank one: "Any" in a filter, "None" for an optional target.
fn with_blank(
    label: &str,
    options: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    std::iter::once((String::new(), label.to_string()))
        .chain(options)
        .collect()
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

#[cfg(test)]
impl Frame {
    fn for_tests() -> Frame {
        Frame {
            upn: "admin@latchkey.test".into(),
            csrf: "token".into(),
            nav: vec![],
            notice: None,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_routes_fit_beside_the_other_pages() {
        // axum panics on overlapping routes when the router is built, not at compile time.
        let _ = crate::pages::routes()
            .merge(crate::oidc::routes())
            .merge(crate::myapps::routes())
            .merge(crate::ops::routes())
            .merge(routes());
    }

    #[test]
    fn choices_keep_a_value_that_is_no_longer_offered() {
        let options = vec![
            ("all_users".to_string(), "All users".to_string()),
            ("g1".to_string(), "Pilot".to_string()),
        ];
        let list = choices(&options, "g1");
        assert_eq!(list.iter().filter(|c| c.selected).count(), 1);
        let list = choices(&options, "gone");
        assert_eq!(list.len(), 3);
        assert!(list[2].selected);
        assert!(choices(&options, "").iter().all(|c| !c.selected));
        assert_eq!(notice_text(Some("saved")), Some("Saved."));
        assert_eq!(notice_text(Some("<script>")), None);
    }
}
