//! The admin console: server-rendered pages where members of "Latchkey Administrators" manage
//! users, groups and the authentication methods policy, and read the sign-in and audit logs.
//!
//! Handlers here only translate: form fields into domain calls, domain answers into pages.
//! Every rule (who may use which method, what makes a configuration valid) lives in
//! `latchkey-domain`; this module must never decide one. Changes are made as the signed-in
//! administrator, so the audit log names them. Pages need no JavaScript, and because the
//! content security policy forbids inline styles, the sign-in chart is an SVG with sizes in
//! attributes.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use latchkey_domain::DomainError;
use latchkey_domain::StoreError;
use latchkey_domain::application::Application;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::PassRequest;
use latchkey_domain::demo::ADMINISTRATORS_GROUP;
use latchkey_domain::ids::UserId;
use latchkey_domain::log::{
    Actor, AuditCategory, AuditEvent, LogQuery, SignInRecord, StatusFilter,
};
use latchkey_domain::policy::{
    ALL_USERS, AuthenticationMethodsPolicy, AuthenticationMode, AuthenticatorFeatures, Feature,
    FeatureState, MethodKind, MethodState, Target, Targeting,
};
use latchkey_domain::service::{NewUser, UserPatch};
use latchkey_domain::user::{Group, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::cookies::{csrf_ok, csrf_token};
use crate::error::{PageError, render};
use crate::pages::{current_session, sign_in_redirect};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}", get(user_detail))
        .route("/admin/users/{id}/enabled", post(set_user_enabled))
        .route("/admin/users/{id}/groups", post(add_user_to_group))
        .route("/admin/users/{id}/pass", post(issue_pass))
        .route("/admin/groups", get(groups).post(create_group))
        .route("/admin/groups/{id}", get(group_detail))
        .route("/admin/groups/{id}/members", post(add_member))
        .route("/admin/groups/{id}/members/remove", post(remove_member))
        .route("/admin/applications", get(applications))
        .route("/admin/policies", get(policies))
        .route(
            AUTHENTICATOR_PATH,
            get(authenticator_targeting).post(save_authenticator_targeting),
        )
        .route(
            AUTHENTICATOR_CONFIGURE_PATH,
            get(authenticator_features).post(save_authenticator_features),
        )
        .route(
            "/admin/policies/{method}",
            get(method_page).post(save_method_targeting),
        )
        .route(
            "/admin/policies/{method}/settings",
            post(save_method_settings),
        )
        .route("/admin/policies/{method}/reset", post(reset_method))
        .route("/admin/logs/signins", get(sign_ins))
        .route("/admin/logs/signins/{id}", get(sign_in_detail))
        .route("/admin/logs/audit", get(audit))
}

const AUTHENTICATOR_PATH: &str = "/admin/policies/authenticator";
const AUTHENTICATOR_CONFIGURE_PATH: &str = "/admin/policies/authenticator/configure";

/// Rows the log tables show; the chart counts everything fetched.
const LOG_TABLE_ROWS: usize = 100;

// ----- access, errors and the page frame ------------------------------------------------

/// Why a console request ends early: the browser must sign in first, or an error page.
enum ConsoleError {
    SignIn(String),
    Page(PageError),
}

impl From<PageError> for ConsoleError {
    fn from(e: PageError) -> Self {
        ConsoleError::Page(e)
    }
}

impl From<DomainError> for ConsoleError {
    fn from(e: DomainError) -> Self {
        ConsoleError::Page(e.into())
    }
}

impl From<FormRejection> for ConsoleError {
    fn from(e: FormRejection) -> Self {
        ConsoleError::Page(e.into())
    }
}

impl From<QueryRejection> for ConsoleError {
    fn from(e: QueryRejection) -> Self {
        ConsoleError::Page(e.into())
    }
}

impl From<PathRejection> for ConsoleError {
    fn from(_: PathRejection) -> Self {
        ConsoleError::Page(not_found("page"))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::SignIn(path) => sign_in_redirect(&path).into_response(),
            ConsoleError::Page(e) => e.into_response(),
        }
    }
}

type ConsoleResult = Result<Response, ConsoleError>;

fn not_found(what: &str) -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        format!("That {what} does not exist. Go back to the list and pick another."),
    )
}

/// The signed-in administrator, or the reason this request may not use the console.
async fn administrator(
    state: &AppState,
    jar: &CookieJar,
    path: &str,
) -> Result<User, ConsoleError> {
    let Some((_, user)) = current_session(state, jar).await? else {
        return Err(ConsoleError::SignIn(path.to_string()));
    };
    if !state.latchkey.is_administrator(&user.id).await? {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "You can't use the admin console",
            format!(
                "{} is not a member of {ADMINISTRATORS_GROUP}. Ask an administrator to add you to that group.",
                user.upn
            ),
        )
        .into());
    }
    Ok(user)
}

fn actor(admin: &User) -> Actor {
    Actor::user(admin.upn.as_str())
}

/// A submitted form as name–value pairs, in order: table rows repeat their field names.
#[derive(Debug, Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
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
        let mut values = self
            .0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
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

/// Checks the administrator, reads the form and its CSRF token.
async fn admin_form(
    state: &AppState,
    jar: &CookieJar,
    path: &str,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<(User, Fields), ConsoleError> {
    let admin = administrator(state, jar, path).await?;
    let Form(pairs) = form?;
    let fields = Fields(pairs);
    if !csrf_ok(state, jar, fields.one("csrf")?.unwrap_or_default()) {
        return Err(PageError::csrf().into());
    }
    Ok((admin, fields))
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

    /// The domain's refusal, to show on the page; failures of ours become an error page.
    fn from_domain(e: DomainError) -> Result<Refused, ConsoleError> {
        let status = match &e {
            DomainError::Invalid { .. } | DomainError::Rejected(_) => StatusCode::BAD_REQUEST,
            DomainError::NotFound(_) | DomainError::Store(StoreError::NotFound) => {
                StatusCode::NOT_FOUND
            }
            DomainError::Conflict(_) | DomainError::Store(StoreError::Conflict(_)) => {
                StatusCode::CONFLICT
            }
            DomainError::Store(StoreError::Backend(_)) | DomainError::Internal(_) => {
                return Err(e.into());
            }
        };
        Ok(Refused {
            status,
            message: e.to_string(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Overview,
    Users,
    Groups,
    Applications,
    Policies,
    SignIns,
    Audit,
}

const NAV: [(Section, &str, &str); 7] = [
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

fn frame(state: &AppState, jar: CookieJar, admin: &User, section: Section) -> (CookieJar, Frame) {
    let (jar, csrf) = csrf_token(state, jar);
    let nav = NAV
        .iter()
        .map(|(s, href, label)| NavLink {
            href,
            label,
            current: *s == section,
        })
        .collect();
    let frame = Frame {
        upn: admin.upn.to_string(),
        csrf,
        nav,
        notice: None,
        error: None,
    };
    (jar, frame)
}

impl Frame {
    fn with_notice(mut self, key: Option<&str>) -> Frame {
        self.notice = notice_text(key);
        self
    }

    fn with_refusal(mut self, refused: Option<&Refused>) -> Frame {
        self.error = refused.map(|r| r.message.clone());
        self
    }
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
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
struct NoticeQuery {
    notice: Option<String>,
}

fn page(jar: CookieJar, template: &impl Template, status: StatusCode) -> Response {
    let mut response = render(template);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    (jar, response).into_response()
}

fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
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

fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

// ----- overview ---------------------------------------------------------------------------

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

async fn overview(State(state): State<AppState>, jar: CookieJar) -> ConsoleResult {
    let admin = administrator(&state, &jar, "/admin").await?;
    let mut users = state.latchkey.list_users().await?;
    let mut groups = state.latchkey.list_groups().await?;
    let application_count = state.latchkey.list_applications().await?.len();
    let more_users = users.len().saturating_sub(OVERVIEW_LIST);
    let more_groups = groups.len().saturating_sub(OVERVIEW_LIST);
    users.truncate(OVERVIEW_LIST);
    groups.truncate(OVERVIEW_LIST);
    let (jar, frame) = frame(&state, jar, &admin, Section::Overview);
    let view = OverviewPage {
        frame,
        users,
        groups,
        application_count,
        more_users,
        more_groups,
    };
    Ok(page(jar, &view, StatusCode::OK))
}

// ----- users ------------------------------------------------------------------------------

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

async fn users(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    let admin = administrator(&state, &jar, "/admin/users").await?;
    let Query(query) = query?;
    let input = NewUserInput {
        account_enabled: true,
        ..Default::default()
    };
    render_users(&state, jar, &admin, query.notice.as_deref(), None, input).await
}

async fn render_users(
    state: &AppState,
    jar: CookieJar,
    admin: &User,
    notice: Option<&str>,
    refused: Option<Refused>,
    input: NewUserInput,
) -> ConsoleResult {
    let users = state.latchkey.list_users().await?;
    let (jar, frame) = frame(state, jar, admin, Section::Users);
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let view = UsersPage {
        frame: frame.with_notice(notice).with_refusal(refused.as_ref()),
        users,
        input,
    };
    Ok(page(jar, &view, status))
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

async fn create_user(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let (admin, fields) = admin_form(&state, &jar, "/admin/users", form).await?;
    let input = new_user_input(&fields)?;
    let new = NewUser {
        user_principal_name: input.user_principal_name.clone(),
        display_name: input.display_name.clone(),
        mail: (!input.mail.is_empty()).then(|| input.mail.clone()),
        account_enabled: input.account_enabled,
    };
    match state.latchkey.create_user(&actor(&admin), new).await {
        Ok(user) => Ok(see_other(&format!(
            "/admin/users/{}?notice=created",
            user.id
        ))),
        Err(e) => {
            let refused = Refused::from_domain(e)?;
            render_users(&state, jar, &admin, None, Some(refused), input).await
        }
    }
}

/// A user named in a URL; ids only, so every user has exactly one address.
async fn user_by_id(state: &AppState, id: &str) -> Result<User, ConsoleError> {
    if id.is_empty() || id.len() > 128 {
        return Err(not_found("user").into());
    }
    match state.latchkey.user(&UserId::from_string(id)).await {
        Ok(user) => Ok(user),
        Err(DomainError::NotFound(_) | DomainError::Store(StoreError::NotFound)) => {
            Err(not_found("user").into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn group_by_id(state: &AppState, id: &str) -> Result<Group, ConsoleError> {
    if id.is_empty() || id.len() > 128 {
        return Err(not_found("group").into());
    }
    match state.latchkey.find_group(id).await {
        Ok(group) if group.id.as_str() == id => Ok(group),
        Ok(_) | Err(DomainError::NotFound(_) | DomainError::Store(StoreError::NotFound)) => {
            Err(not_found("group").into())
        }
        Err(e) => Err(e.into()),
    }
}

struct MethodRow {
    label: &'static str,
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
}

async fn user_detail(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let admin = administrator(&state, &jar, &format!("/admin/users/{id}")).await?;
    let Query(query) = query?;
    let user = user_by_id(&state, &id).await?;
    let view = UserView {
        notice: query.notice.as_deref(),
        refused: None,
        pass: None,
    };
    render_user(&state, jar, &admin, user, view).await
}

/// What a user page shows besides the user: a notice, a refusal, the pass form's input.
struct UserView<'a> {
    notice: Option<&'a str>,
    refused: Option<Refused>,
    pass: Option<PassInput>,
}

async fn render_user(
    state: &AppState,
    jar: CookieJar,
    admin: &User,
    user: User,
    view: UserView<'_>,
) -> ConsoleResult {
    let mut member_of = Vec::new();
    let mut other_groups = Vec::new();
    for group in state.latchkey.list_groups().await? {
        let members = state.latchkey.group_members(&group.id).await?;
        if members.iter().any(|m| m.id == user.id) {
            member_of.push(group);
        } else {
            other_groups.push(group);
        }
    }
    let methods = state
        .latchkey
        .registered_methods(&user.id)
        .await?
        .into_iter()
        .map(|m| MethodRow {
            label: m.method.label(),
            detail: m.detail,
            added: if m.added_at.0 == 0 {
                String::new()
            } else {
                time(m.added_at)
            },
        })
        .collect();
    let evaluations = state
        .latchkey
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
    let rules = state.latchkey.policy().await?.temporary_access_pass.rules();
    let pass = view.pass.unwrap_or(PassInput {
        usable_once: rules.one_time_only,
        ..Default::default()
    });
    let (jar, frame) = frame(state, jar, admin, Section::Users);
    let status = view.refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let page_view = UserPage {
        frame: frame
            .with_notice(view.notice)
            .with_refusal(view.refused.as_ref()),
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
    };
    Ok(page(jar, &page_view, status))
}

async fn set_user_enabled(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, fields) = admin_form(&state, &jar, &format!("/admin/users/{id}"), form).await?;
    let user = user_by_id(&state, &id).await?;
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
    match state
        .latchkey
        .update_user(&actor(&admin), &user.id, patch)
        .await
    {
        Ok(user) => {
            let notice = if enabled { "enabled" } else { "disabled" };
            Ok(see_other(&format!(
                "/admin/users/{}?notice={notice}",
                user.id
            )))
        }
        Err(e) => {
            let view = UserView {
                notice: None,
                refused: Some(Refused::from_domain(e)?),
                pass: None,
            };
            render_user(&state, jar, &admin, user, view).await
        }
    }
}

async fn add_user_to_group(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, fields) = admin_form(&state, &jar, &format!("/admin/users/{id}"), form).await?;
    let user = user_by_id(&state, &id).await?;
    let group = fields.text("group")?;
    let outcome = if group.is_empty() {
        Err(Refused::bad("group: choose a group to add the user to."))
    } else {
        match state.latchkey.find_group(&group).await {
            Ok(group) => match state
                .latchkey
                .add_group_member(&actor(&admin), &group.id, &user.id)
                .await
            {
                Ok(()) => Ok(()),
                Err(e) => Err(Refused::from_domain(e)?),
            },
            Err(e) => Err(Refused::from_domain(e)?),
        }
    };
    match outcome {
        Ok(()) => Ok(see_other(&format!("/admin/users/{}?notice=added", user.id))),
        Err(refused) => {
            let view = UserView {
                notice: None,
                refused: Some(refused),
                pass: None,
            };
            render_user(&state, jar, &admin, user, view).await
        }
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
fn pass_request(input: &PassInput) -> Result<PassRequest, String> {
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
            parse_utc(value)
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

async fn issue_pass(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, fields) = admin_form(&state, &jar, &format!("/admin/users/{id}"), form).await?;
    let user = user_by_id(&state, &id).await?;
    let input = pass_input(&fields)?;
    let issued = match pass_request(&input) {
        Err(message) => Err(Refused::bad(message)),
        Ok(request) => match state
            .latchkey
            .issue_pass(&actor(&admin), &user.id, &request)
            .await
        {
            Ok(issued) => Ok(issued),
            Err(e) => Err(Refused::from_domain(e)?),
        },
    };
    match issued {
        Ok((pass, secret)) => {
            let (jar, frame) = frame(&state, jar, &admin, Section::Users);
            let view = PassPage {
                frame,
                user,
                secret: secret.expose().to_string(),
                starts: time(pass.starts_at),
                expires: time(pass.expires_at()),
                usable_once: pass.usable_once,
            };
            let mut response = page(jar, &view, StatusCode::OK);
            // The pass is shown once: no cache may keep the page.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(refused) => {
            let view = UserView {
                notice: None,
                refused: Some(refused),
                pass: Some(input),
            };
            render_user(&state, jar, &admin, user, view).await
        }
    }
}

// ----- groups -----------------------------------------------------------------------------

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

async fn groups(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    let admin = administrator(&state, &jar, "/admin/groups").await?;
    let Query(query) = query?;
    render_groups(
        &state,
        jar,
        &admin,
        query.notice.as_deref(),
        None,
        NewGroupInput::default(),
    )
    .await
}

async fn render_groups(
    state: &AppState,
    jar: CookieJar,
    admin: &User,
    notice: Option<&str>,
    refused: Option<Refused>,
    input: NewGroupInput,
) -> ConsoleResult {
    let groups = state.latchkey.list_groups().await?;
    let (jar, frame) = frame(state, jar, admin, Section::Groups);
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let view = GroupsPage {
        frame: frame.with_notice(notice).with_refusal(refused.as_ref()),
        groups,
        input,
    };
    Ok(page(jar, &view, status))
}

async fn create_group(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let (admin, fields) = admin_form(&state, &jar, "/admin/groups", form).await?;
    let input = NewGroupInput {
        display_name: fields.text("display_name")?,
        description: fields.text("description")?,
    };
    match state
        .latchkey
        .create_group(&actor(&admin), &input.display_name, &input.description)
        .await
    {
        Ok(group) => Ok(see_other(&format!(
            "/admin/groups/{}?notice=created",
            group.id
        ))),
        Err(e) => {
            let refused = Refused::from_domain(e)?;
            render_groups(&state, jar, &admin, None, Some(refused), input).await
        }
    }
}

#[derive(Template)]
#[template(path = "console_group.html")]
struct GroupPage {
    frame: Frame,
    group: Group,
    members: Vec<User>,
    candidates: Vec<User>,
}

async fn group_detail(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let admin = administrator(&state, &jar, &format!("/admin/groups/{id}")).await?;
    let Query(query) = query?;
    let group = group_by_id(&state, &id).await?;
    render_group(&state, jar, &admin, group, query.notice.as_deref(), None).await
}

async fn render_group(
    state: &AppState,
    jar: CookieJar,
    admin: &User,
    group: Group,
    notice: Option<&str>,
    refused: Option<Refused>,
) -> ConsoleResult {
    let members = state.latchkey.group_members(&group.id).await?;
    let candidates = state
        .latchkey
        .list_users()
        .await?
        .into_iter()
        .filter(|u| !members.iter().any(|m| m.id == u.id))
        .collect();
    let (jar, frame) = frame(state, jar, admin, Section::Groups);
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let view = GroupPage {
        frame: frame.with_notice(notice).with_refusal(refused.as_ref()),
        group,
        members,
        candidates,
    };
    Ok(page(jar, &view, status))
}

#[derive(Clone, Copy)]
enum Membership {
    Add,
    Remove,
}

async fn change_membership(
    state: AppState,
    jar: CookieJar,
    id: String,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
    change: Membership,
) -> ConsoleResult {
    let (admin, fields) = admin_form(&state, &jar, &format!("/admin/groups/{id}"), form).await?;
    let group = group_by_id(&state, &id).await?;
    let key = fields.text("user")?;
    let outcome = if key.is_empty() {
        Err(Refused::bad("user: choose a user."))
    } else {
        let result = match state.latchkey.find_user(&key).await {
            Ok(user) => match change {
                Membership::Add => {
                    state
                        .latchkey
                        .add_group_member(&actor(&admin), &group.id, &user.id)
                        .await
                }
                Membership::Remove => {
                    state
                        .latchkey
                        .remove_group_member(&actor(&admin), &group.id, &user.id)
                        .await
                }
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(Refused::from_domain(e)?),
        }
    };
    match outcome {
        Ok(()) => {
            let notice = match change {
                Membership::Add => "added",
                Membership::Remove => "removed",
            };
            Ok(see_other(&format!(
                "/admin/groups/{}?notice={notice}",
                group.id
            )))
        }
        Err(refused) => render_group(&state, jar, &admin, group, None, Some(refused)).await,
    }
}

async fn add_member(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    change_membership(state, jar, id, form, Membership::Add).await
}

async fn remove_member(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    change_membership(state, jar, id, form, Membership::Remove).await
}

// ----- applications -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console_applications.html")]
struct ApplicationsPage {
    frame: Frame,
    applications: Vec<Application>,
}

async fn applications(State(state): State<AppState>, jar: CookieJar) -> ConsoleResult {
    let admin = administrator(&state, &jar, "/admin/applications").await?;
    let applications = state.latchkey.list_applications().await?;
    let (jar, frame) = frame(&state, jar, &admin, Section::Applications);
    let view = ApplicationsPage {
        frame,
        applications,
    };
    Ok(page(jar, &view, StatusCode::OK))
}

// ----- authentication methods policy ------------------------------------------------------

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
}

fn group_names(groups: &[Group]) -> BTreeMap<String, String> {
    groups
        .iter()
        .map(|g| (g.id.to_string(), g.display_name.clone()))
        .collect()
}

fn target_name(target: &Target, names: &BTreeMap<String, String>) -> String {
    match target {
        Target::AllUsers => "All users".into(),
        Target::Group(id) => names
            .get(id.as_str())
            .cloned()
            .unwrap_or_else(|| format!("Unknown group {id}")),
    }
}

async fn policies(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    let admin = administrator(&state, &jar, "/admin/policies").await?;
    let Query(query) = query?;
    let policy = state.latchkey.policy().await?;
    let names = group_names(&state.latchkey.list_groups().await?);
    let rows = MethodKind::ALL
        .into_iter()
        .map(|kind| {
            let config = policy.configuration(kind);
            let targeting = config.targeting();
            PolicyRow {
                href: format!("/admin/policies/{}", kind.id()),
                label: kind.label(),
                enabled: targeting.state == MethodState::Enabled,
                target: targeting
                    .include_targets
                    .iter()
                    .map(|t| target_name(&t.target, &names))
                    .collect::<Vec<_>>()
                    .join(", "),
                excluded: targeting
                    .exclude_targets
                    .iter()
                    .map(|t| target_name(t, &names))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect();
    let (jar, frame) = frame(&state, jar, &admin, Section::Policies);
    let view = PoliciesPage {
        frame: frame.with_notice(query.notice.as_deref()),
        rows,
    };
    Ok(page(jar, &view, StatusCode::OK))
}

/// A target as a form value: `all_users` or a group id.
fn target_value(target: &Target) -> String {
    match target {
        Target::AllUsers => ALL_USERS.to_string(),
        Target::Group(id) => id.to_string(),
    }
}

/// A target as the policy's JSON has it.
fn target_json(value: &str) -> Value {
    json!({"targetType": "group", "id": value})
}

fn mode_value(mode: AuthenticationMode) -> &'static str {
    match mode {
        AuthenticationMode::Any => "any",
        AuthenticationMode::Push => "push",
        AuthenticationMode::Passwordless => "passwordless",
    }
}

fn parse_mode(value: &str) -> Option<AuthenticationMode> {
    match value {
        "any" => Some(AuthenticationMode::Any),
        "push" => Some(AuthenticationMode::Push),
        "passwordless" | "deviceBasedPush" => Some(AuthenticationMode::Passwordless),
        _ => None,
    }
}

fn state_value(state: FeatureState) -> &'static str {
    match state {
        FeatureState::Default => "default",
        FeatureState::Enabled => "enabled",
        FeatureState::Disabled => "disabled",
    }
}

fn parse_feature_state(value: &str) -> Option<FeatureState> {
    match value {
        "default" => Some(FeatureState::Default),
        "enabled" => Some(FeatureState::Enabled),
        "disabled" => Some(FeatureState::Disabled),
        _ => None,
    }
}

/// The prefix of a feature's form fields (`displayAppInformation.state`, …).
fn feature_field(feature: Feature) -> &'static str {
    match feature {
        Feature::NumberMatching => "numberMatching",
        Feature::DisplayAppInformation => "displayAppInformation",
        Feature::DisplayLocationInformation => "displayLocationInformation",
        Feature::ReportSuspiciousActivity => "reportSuspiciousActivity",
    }
}

/// The feature's key under `featureSettings` in the authenticator's configuration.
fn feature_key(feature: Feature) -> &'static str {
    match feature {
        Feature::NumberMatching => "numberMatchingRequiredState",
        Feature::DisplayAppInformation => "displayAppInformationRequiredState",
        Feature::DisplayLocationInformation => "displayLocationInformationRequiredState",
        Feature::ReportSuspiciousActivity => "reportSuspiciousActivityState",
    }
}

/// One include row of the "Enable and Target" form: a target (empty for none) and, for the
/// authenticator app, its authentication mode.
#[derive(Debug, Clone, PartialEq)]
struct IncludeRow {
    target: String,
    mode: String,
}

/// The "Enable and Target" form, as shown or as posted (kept as typed, to show it again).
#[derive(Debug, Clone, PartialEq)]
struct TargetingInput {
    enabled: bool,
    includes: Vec<IncludeRow>,
    excludes: Vec<String>,
}

impl TargetingInput {
    fn from_targeting(targeting: &Targeting) -> TargetingInput {
        TargetingInput {
            enabled: targeting.state == MethodState::Enabled,
            includes: targeting
                .include_targets
                .iter()
                .map(|t| IncludeRow {
                    target: target_value(&t.target),
                    mode: t.authentication_mode.map_or("any", mode_value).to_string(),
                })
                .collect(),
            excludes: targeting.exclude_targets.iter().map(target_value).collect(),
        }
    }

    /// The posted form over the current values. `enabled` is a checkbox (absent is off);
    /// include and exclude rows replace the current ones when the form has them at all.
    fn from_fields(fields: &Fields, current: TargetingInput) -> Result<TargetingInput, PageError> {
        let enabled = fields.checkbox("enabled")?;
        let includes = if fields.has("include_target") {
            let targets: Vec<&str> = fields.all("include_target").collect();
            let modes: Vec<&str> = fields.all("include_mode").collect();
            if !modes.is_empty() && modes.len() != targets.len() {
                return Err(PageError::bad_request(
                    "include_mode: send one mode for every include_target row.",
                ));
            }
            targets
                .iter()
                .enumerate()
                .map(|(i, target)| IncludeRow {
                    target: target.trim().to_string(),
                    mode: modes.get(i).map_or("any", |m| m.trim()).to_string(),
                })
                .collect()
        } else {
            current.includes
        };
        let excludes = if fields.has("exclude") {
            fields
                .all("exclude")
                .map(|v| v.trim().to_string())
                .collect()
        } else {
            current.excludes
        };
        Ok(TargetingInput {
            enabled,
            includes,
            excludes,
        })
    }

    /// Writes state, include and exclude targets into a method's configuration JSON. Rows
    /// without a target are left out; `with_modes` is true for the authenticator app only.
    fn apply(&self, config: &mut Value, with_modes: bool) -> Result<(), String> {
        let mut includes = Vec::new();
        for row in self.includes.iter().filter(|r| !r.target.is_empty()) {
            let mut target = target_json(&row.target);
            if with_modes {
                let mode = parse_mode(&row.mode).ok_or_else(|| {
                    format!(
                        "include_mode: {:?} is not an authentication mode; choose Any, Push or Passwordless.",
                        row.mode
                    )
                })?;
                target["authenticationMode"] =
                    serde_json::to_value(mode).map_err(|e| e.to_string())?;
            }
            includes.push(target);
        }
        if includes.is_empty() {
            return Err(
                "include_target: choose All users or at least one group to include.".into(),
            );
        }
        let mut excludes: Vec<&str> = Vec::new();
        for exclude in self.excludes.iter().filter(|e| !e.is_empty()) {
            if !excludes.contains(&exclude.as_str()) {
                excludes.push(exclude);
            }
        }
        let Some(object) = config.as_object_mut() else {
            return Err("configuration: must be a JSON object.".into());
        };
        object.insert(
            "state".into(),
            json!(if self.enabled { "enabled" } else { "disabled" }),
        );
        object.insert("includeTargets".into(), Value::Array(includes));
        object.insert(
            "excludeTargets".into(),
            Value::Array(excludes.into_iter().map(target_json).collect()),
        );
        Ok(())
    }
}

/// One feature row of the authenticator's "Configure" tab.
#[derive(Debug, Clone, PartialEq)]
struct FeatureInput {
    feature: Feature,
    state: String,
    include: String,
    /// Empty for no exclusion.
    exclude: String,
}

#[derive(Debug, Clone, PartialEq)]
struct FeaturesInput {
    rows: Vec<FeatureInput>,
}

impl FeaturesInput {
    fn from_features(features: &AuthenticatorFeatures) -> FeaturesInput {
        FeaturesInput {
            rows: Feature::ALL
                .into_iter()
                .map(|feature| {
                    let setting = features.setting(feature);
                    FeatureInput {
                        feature,
                        state: state_value(setting.state).to_string(),
                        include: target_value(&setting.include_target),
                        exclude: setting
                            .exclude_target
                            .as_ref()
                            .map(target_value)
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }

    /// The posted form over the current values: a feature's fields that are absent keep
    /// their current values.
    fn from_fields(fields: &Fields, current: FeaturesInput) -> Result<FeaturesInput, PageError> {
        let mut rows = Vec::with_capacity(current.rows.len());
        for row in current.rows {
            let prefix = feature_field(row.feature);
            let value = |suffix: &str, now: String| -> Result<String, PageError> {
                Ok(fields
                    .one(&format!("{prefix}.{suffix}"))?
                    .map_or(now, |v| v.trim().to_string()))
            };
            rows.push(FeatureInput {
                feature: row.feature,
                state: value("state", row.state)?,
                include: value("include", row.include)?,
                exclude: value("exclude", row.exclude)?,
            });
        }
        Ok(FeaturesInput { rows })
    }

    /// Writes every feature into the authenticator configuration's `featureSettings`.
    fn apply(&self, config: &mut Value) -> Result<(), String> {
        let Some(settings) = config
            .get_mut("featureSettings")
            .and_then(Value::as_object_mut)
        else {
            return Err("featureSettings: missing from the configuration.".into());
        };
        for row in &self.rows {
            let field = feature_field(row.feature);
            let state = parse_feature_state(&row.state)
                .ok_or_else(|| format!("{field}.state: choose Default, Enabled or Disabled."))?;
            if row.include.is_empty() {
                return Err(format!(
                    "{field}.include: choose All users or a group to include."
                ));
            }
            let mut setting = json!({
                "state": serde_json::to_value(state).map_err(|e| e.to_string())?,
                "includeTarget": target_json(&row.include),
            });
            if !row.exclude.is_empty() {
                setting["excludeTarget"] = target_json(&row.exclude);
            }
            settings.insert(feature_key(row.feature).into(), setting);
        }
        Ok(())
    }
}

/// The options of a target select: All users and every group, optionally led by "none".
fn target_options(groups: &[Group], none: Option<&str>) -> Vec<(String, String)> {
    let mut options = Vec::with_capacity(groups.len() + 2);
    if let Some(label) = none {
        options.push((String::new(), label.to_string()));
    }
    options.push((ALL_USERS.to_string(), "All users".to_string()));
    options.extend(
        groups
            .iter()
            .map(|g| (g.id.to_string(), g.display_name.clone())),
    );
    options
}

fn group_options(groups: &[Group], none: &str) -> Vec<(String, String)> {
    let mut options = vec![(String::new(), none.to_string())];
    options.extend(
        groups
            .iter()
            .map(|g| (g.id.to_string(), g.display_name.clone())),
    );
    options
}

struct IncludeRowView {
    targets: Vec<Choice>,
    modes: Vec<Choice>,
}

/// The "Enable and Target" rows ready to show: the rows given plus an empty one to add with.
struct TargetingView {
    enabled: bool,
    includes: Vec<IncludeRowView>,
    excludes: Vec<Vec<Choice>>,
}

fn targeting_view(input: &TargetingInput, groups: &[Group]) -> TargetingView {
    let targets = target_options(groups, Some("None (remove this row)"));
    let modes: Vec<(String, String)> = [
        AuthenticationMode::Any,
        AuthenticationMode::Push,
        AuthenticationMode::Passwordless,
    ]
    .into_iter()
    .map(|m| (mode_value(m).to_string(), m.label().to_string()))
    .collect();
    let blank = IncludeRow {
        target: String::new(),
        mode: "any".into(),
    };
    let includes = input
        .includes
        .iter()
        .filter(|r| !r.target.is_empty())
        .chain(std::iter::once(&blank))
        .map(|row| IncludeRowView {
            targets: choices(&targets, &row.target),
            modes: choices(&modes, &row.mode),
        })
        .collect();
    let exclude_options = group_options(groups, "None");
    let excludes = input
        .excludes
        .iter()
        .filter(|e| !e.is_empty())
        .map(String::as_str)
        .chain(std::iter::once(""))
        .map(|e| choices(&exclude_options, e))
        .collect();
    TargetingView {
        enabled: input.enabled,
        includes,
        excludes,
    }
}

struct FeatureRowView {
    field: &'static str,
    label: &'static str,
    states: Vec<Choice>,
    includes: Vec<Choice>,
    excludes: Vec<Choice>,
    always_on: bool,
}

fn features_view(input: &FeaturesInput, groups: &[Group]) -> Vec<FeatureRowView> {
    let states: Vec<(String, String)> = [
        (FeatureState::Default, "Default"),
        (FeatureState::Enabled, "Enabled"),
        (FeatureState::Disabled, "Disabled"),
    ]
    .into_iter()
    .map(|(s, label)| (state_value(s).to_string(), label.to_string()))
    .collect();
    let includes = target_options(groups, None);
    let excludes = group_options(groups, "None");
    input
        .rows
        .iter()
        .map(|row| FeatureRowView {
            field: feature_field(row.feature),
            label: row.feature.label(),
            states: choices(&states, &row.state),
            includes: choices(&includes, &row.include),
            excludes: choices(&excludes, &row.exclude),
            always_on: row.feature == Feature::NumberMatching,
        })
        .collect()
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

/// What an authenticator page shows: the given (posted) inputs, or the policy's values.
struct AuthenticatorView<'a> {
    configure: bool,
    notice: Option<&'a str>,
    refused: Option<Refused>,
    targeting: Option<TargetingInput>,
    features: Option<FeaturesInput>,
}

async fn render_authenticator(
    state: &AppState,
    jar: CookieJar,
    admin: &User,
    policy: &AuthenticationMethodsPolicy,
    view: AuthenticatorView<'_>,
) -> ConsoleResult {
    let groups = state.latchkey.list_groups().await?;
    let targeting = view
        .targeting
        .unwrap_or_else(|| TargetingInput::from_targeting(&policy.authenticator.targeting));
    let features = view
        .features
        .unwrap_or_else(|| FeaturesInput::from_features(&policy.authenticator.feature_settings));
    let (jar, frame) = frame(state, jar, admin, Section::Policies);
    let status = view.refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let page_view = AuthenticatorPage {
        frame: frame
            .with_notice(view.notice)
            .with_refusal(view.refused.as_ref()),
        configure: view.configure,
        version: policy.version,
        targeting: targeting_view(&targeting, &groups),
        features: features_view(&features, &groups),
    };
    Ok(page(jar, &page_view, status))
}

async fn authenticator_targeting(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    authenticator_tab(state, jar, query, false).await
}

async fn authenticator_features(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    authenticator_tab(state, jar, query, true).await
}

async fn authenticator_tab(
    state: AppState,
    jar: CookieJar,
    query: Result<Query<NoticeQuery>, QueryRejection>,
    configure: bool,
) -> ConsoleResult {
    let path = if configure {
        AUTHENTICATOR_CONFIGURE_PATH
    } else {
        AUTHENTICATOR_PATH
    };
    let admin = administrator(&state, &jar, path).await?;
    let Query(query) = query?;
    let policy = state.latchkey.policy().await?;
    let view = AuthenticatorView {
        configure,
        notice: query.notice.as_deref(),
        refused: None,
        targeting: None,
        features: None,
    };
    render_authenticator(&state, jar, &admin, &policy, view).await
}

/// Refuses a form made from an older policy than the one in force: saving it would quietly
/// undo someone else's change.
fn check_version(fields: &Fields, policy: &AuthenticationMethodsPolicy) -> Result<(), Refused> {
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

/// Saves a configuration built from a form; `None` when saved, else why it was refused.
async fn save_configuration(
    state: &AppState,
    admin: &User,
    kind: MethodKind,
    configuration: Result<Value, Refused>,
) -> Result<Option<Refused>, ConsoleError> {
    let configuration = match configuration {
        Ok(configuration) => configuration,
        Err(refused) => return Ok(Some(refused)),
    };
    match state
        .latchkey
        .set_method_configuration(&actor(admin), kind, configuration)
        .await
    {
        Ok(_) => Ok(None),
        Err(e) => Ok(Some(Refused::from_domain(e)?)),
    }
}

fn current_json(policy: &AuthenticationMethodsPolicy, kind: MethodKind) -> Result<Value, Refused> {
    serde_json::to_value(policy.configuration(kind)).map_err(|e| Refused {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("The current configuration could not be read: {e}"),
    })
}

async fn save_authenticator_targeting(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let (admin, fields) = admin_form(&state, &jar, AUTHENTICATOR_PATH, form).await?;
    let policy = state.latchkey.policy().await?;
    let current = TargetingInput::from_targeting(&policy.authenticator.targeting);
    let input = TargetingInput::from_fields(&fields, current)?;
    let configuration = check_version(&fields, &policy)
        .and_then(|()| current_json(&policy, MethodKind::MicrosoftAuthenticator))
        .and_then(|mut config| {
            input
                .apply(&mut config, true)
                .map(|()| config)
                .map_err(Refused::bad)
        });
    let refused = save_configuration(
        &state,
        &admin,
        MethodKind::MicrosoftAuthenticator,
        configuration,
    )
    .await?;
    match refused {
        None => Ok(see_other(&format!("{AUTHENTICATOR_PATH}?notice=saved"))),
        Some(refused) => {
            let view = AuthenticatorView {
                configure: false,
                notice: None,
                refused: Some(refused),
                targeting: Some(input),
                features: None,
            };
            render_authenticator(&state, jar, &admin, &policy, view).await
        }
    }
}

async fn save_authenticator_features(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let (admin, fields) = admin_form(&state, &jar, AUTHENTICATOR_CONFIGURE_PATH, form).await?;
    let policy = state.latchkey.policy().await?;
    let current = FeaturesInput::from_features(&policy.authenticator.feature_settings);
    let input = FeaturesInput::from_fields(&fields, current)?;
    let configuration = check_version(&fields, &policy)
        .and_then(|()| current_json(&policy, MethodKind::MicrosoftAuthenticator))
        .and_then(|mut config| {
            input
                .apply(&mut config)
                .map(|()| config)
                .map_err(Refused::bad)
        });
    let refused = save_configuration(
        &state,
        &admin,
        MethodKind::MicrosoftAuthenticator,
        configuration,
    )
    .await?;
    match refused {
        None => Ok(see_other(&format!(
            "{AUTHENTICATOR_CONFIGURE_PATH}?notice=saved"
        ))),
        Some(refused) => {
            let view = AuthenticatorView {
                configure: true,
                notice: None,
                refused: Some(refused),
                targeting: None,
                features: Some(input),
            };
            render_authenticator(&state, jar, &admin, &policy, view).await
        }
    }
}

/// A method named in a URL, by its exact id.
fn method_by_id(id: &str) -> Result<MethodKind, ConsoleError> {
    MethodKind::ALL
        .into_iter()
        .find(|m| m.id() == id)
        .ok_or_else(|| not_found("authentication method").into())
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

/// What another method's page shows: the given (posted) inputs, or the policy's values.
struct MethodView<'a> {
    notice: Option<&'a str>,
    refused: Option<Refused>,
    targeting: Option<TargetingInput>,
    settings: Option<String>,
}

async fn render_method(
    state: &AppState,
    jar: CookieJar,
    admin: &User,
    kind: MethodKind,
    policy: &AuthenticationMethodsPolicy,
    view: MethodView<'_>,
) -> ConsoleResult {
    let groups = state.latchkey.list_groups().await?;
    let config = policy.configuration(kind);
    let targeting = view
        .targeting
        .unwrap_or_else(|| TargetingInput::from_targeting(config.targeting()));
    let settings = match view.settings {
        Some(settings) => settings,
        None => serde_json::to_string_pretty(&config)
            .map_err(|e| PageError::from(DomainError::Internal(e.to_string())))?,
    };
    let (jar, frame) = frame(state, jar, admin, Section::Policies);
    let status = view.refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let page_view = MethodPage {
        frame: frame
            .with_notice(view.notice)
            .with_refusal(view.refused.as_ref()),
        id: kind.id(),
        label: kind.label(),
        version: policy.version,
        targeting: targeting_view(&targeting, &groups),
        settings,
    };
    Ok(page(jar, &page_view, status))
}

async fn method_page(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let admin = administrator(&state, &jar, &format!("/admin/policies/{id}")).await?;
    let Query(query) = query?;
    let kind = method_by_id(&id)?;
    if kind == MethodKind::MicrosoftAuthenticator {
        return Ok(see_other(AUTHENTICATOR_PATH));
    }
    let policy = state.latchkey.policy().await?;
    let view = MethodView {
        notice: query.notice.as_deref(),
        refused: None,
        targeting: None,
        settings: None,
    };
    render_method(&state, jar, &admin, kind, &policy, view).await
}

/// The methods other than the authenticator app, whose page is the simple one.
fn simple_method(id: &str) -> Result<MethodKind, ConsoleError> {
    match method_by_id(id)? {
        MethodKind::MicrosoftAuthenticator => Err(not_found("page").into()),
        kind => Ok(kind),
    }
}

async fn save_method_targeting(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, fields) = admin_form(&state, &jar, &format!("/admin/policies/{id}"), form).await?;
    let kind = simple_method(&id)?;
    let policy = state.latchkey.policy().await?;
    let current = TargetingInput::from_targeting(policy.configuration(kind).targeting());
    let input = TargetingInput::from_fields(&fields, current)?;
    let configuration = check_version(&fields, &policy)
        .and_then(|()| current_json(&policy, kind))
        .and_then(|mut config| {
            input
                .apply(&mut config, false)
                .map(|()| config)
                .map_err(Refused::bad)
        });
    match save_configuration(&state, &admin, kind, configuration).await? {
        None => Ok(see_other(&format!(
            "/admin/policies/{}?notice=saved",
            kind.id()
        ))),
        Some(refused) => {
            let view = MethodView {
                notice: None,
                refused: Some(refused),
                targeting: Some(input),
                settings: None,
            };
            render_method(&state, jar, &admin, kind, &policy, view).await
        }
    }
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

async fn save_method_settings(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, fields) = admin_form(&state, &jar, &format!("/admin/policies/{id}"), form).await?;
    let kind = simple_method(&id)?;
    let policy = state.latchkey.policy().await?;
    let text = fields.one("configuration")?.unwrap_or_default().to_string();
    let configuration =
        check_version(&fields, &policy).and_then(|()| parse_settings(&text).map_err(Refused::bad));
    match save_configuration(&state, &admin, kind, configuration).await? {
        None => Ok(see_other(&format!(
            "/admin/policies/{}?notice=saved",
            kind.id()
        ))),
        Some(refused) => {
            let view = MethodView {
                notice: None,
                refused: Some(refused),
                targeting: None,
                settings: Some(text),
            };
            render_method(&state, jar, &admin, kind, &policy, view).await
        }
    }
}

async fn reset_method(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let (admin, _) = admin_form(&state, &jar, &format!("/admin/policies/{id}"), form).await?;
    let kind = method_by_id(&id)?;
    let back = if kind == MethodKind::MicrosoftAuthenticator {
        AUTHENTICATOR_PATH.to_string()
    } else {
        format!("/admin/policies/{}", kind.id())
    };
    match state
        .latchkey
        .reset_method_configuration(&actor(&admin), kind)
        .await
    {
        Ok(_) => Ok(see_other(&format!("{back}?notice=reset"))),
        Err(e) => {
            let refused = Refused::from_domain(e)?;
            let policy = state.latchkey.policy().await?;
            if kind == MethodKind::MicrosoftAuthenticator {
                let view = AuthenticatorView {
                    configure: false,
                    notice: None,
                    refused: Some(refused),
                    targeting: None,
                    features: None,
                };
                render_authenticator(&state, jar, &admin, &policy, view).await
            } else {
                let view = MethodView {
                    notice: None,
                    refused: Some(refused),
                    targeting: None,
                    settings: None,
                };
                render_method(&state, jar, &admin, kind, &policy, view).await
            }
        }
    }
}

// ----- logs -------------------------------------------------------------------------------

/// The longest span a relative time may reach back.
const MAX_SPAN_SECONDS: i64 = 400 * 86_400;

/// A time span back from `now`, as people type it in filters: `15m`, `1h`, `24h`, `7d`.
fn parse_since(field: &str, input: &str, now: Timestamp) -> Result<Timestamp, String> {
    let problem = || {
        format!("{field}: enter a time span such as 15m, 1h, 24h or 7d (minutes, hours or days).")
    };
    let value = input.trim();
    let Some(unit) = value.chars().last() else {
        return Err(problem());
    };
    let count = &value[..value.len() - unit.len_utf8()];
    let unit_seconds = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(problem()),
    };
    if count.is_empty() || count.len() > 6 || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem());
    }
    let count: i64 = count.parse().map_err(|_| problem())?;
    let seconds = count * unit_seconds;
    if count == 0 || seconds > MAX_SPAN_SECONDS {
        return Err(format!(
            "{field}: choose a span between 1m and {}d.",
            MAX_SPAN_SECONDS / 86_400
        ));
    }
    Ok(now.plus_seconds(-seconds))
}

/// A time in UTC as `2026-11-29T09:00:00Z` (seconds optional) or a bare date.
fn parse_utc(input: &str) -> Option<Timestamp> {
    let value = input.trim();
    let (date, clock) = match value.split_once('T') {
        Some((date, clock)) => (date, clock.strip_suffix('Z')?),
        None => (value, "00:00"),
    };
    let mut date_parts = date.split('-');
    let (y, m, d) = (
        date_parts.next()?.parse::<i64>().ok()?,
        date_parts.next()?.parse::<u32>().ok()?,
        date_parts.next()?.parse::<u32>().ok()?,
    );
    if date_parts.next().is_some() {
        return None;
    }
    let mut clock_parts = clock.split(':');
    let h = clock_parts.next()?.parse::<i64>().ok()?;
    let min = clock_parts.next()?.parse::<i64>().ok()?;
    let sec = match clock_parts.next() {
        Some(s) => s.parse::<i64>().ok()?,
        None => 0,
    };
    if clock_parts.next().is_some() {
        return None;
    }
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&y)
        || !(1..=days_in_month).contains(&d)
        || !(0..24).contains(&h)
        || !(0..60).contains(&min)
        || !(0..60).contains(&sec)
    {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * i64::from(m) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(Timestamp(days * 86_400 + h * 3600 + min * 60 + sec))
}

fn optional(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[derive(Deserialize, Default, Debug, Clone)]
struct SignInFilter {
    since: Option<String>,
    user: Option<String>,
    app: Option<String>,
    status: Option<String>,
    method: Option<String>,
}

const DEFAULT_SIGN_IN_SPAN: &str = "24h";
const DEFAULT_AUDIT_SPAN: &str = "7d";

/// The filter as a log query and the start of its window. Blank `since` means the default.
fn sign_in_query(filter: &SignInFilter, now: Timestamp) -> Result<(LogQuery, Timestamp), String> {
    let since_text = optional(filter.since.as_ref()).unwrap_or(DEFAULT_SIGN_IN_SPAN.into());
    let since = parse_since("since", &since_text, now)?;
    let status = match optional(filter.status.as_ref()).as_deref() {
        None => None,
        Some("success") => Some(StatusFilter::Success),
        Some("failure") => Some(StatusFilter::Failure),
        Some(_) => return Err("status: choose success or failure, or leave it empty.".into()),
    };
    let method = optional(filter.method.as_ref());
    if let Some(method) = &method
        && !MethodKind::ALL.iter().any(|m| m.id() == method)
    {
        return Err(format!(
            "method: choose one of {}, or leave it empty.",
            MethodKind::ALL.map(MethodKind::id).join(", ")
        ));
    }
    let query = LogQuery {
        since: Some(since),
        until: None,
        user: optional(filter.user.as_ref()),
        app: optional(filter.app.as_ref()),
        status,
        method,
        category: None,
        limit: LogQuery::MAX_LIMIT,
        skip: 0,
    };
    Ok((query, since))
}

/// Success and failure counts of one slice of the chart's window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bucket {
    start: Timestamp,
    succeeded: u32,
    failed: u32,
}

/// Splits `[start, end]` into `count` equal slices and counts sign-ins in each by result.
/// Sign-ins outside the window are left out.
fn bucket_sign_ins(
    sign_ins: impl IntoIterator<Item = (Timestamp, bool)>,
    start: Timestamp,
    end: Timestamp,
    count: usize,
) -> Vec<Bucket> {
    let count = count.max(1);
    let span = (end.0 - start.0).max(1);
    let width = (span + count as i64 - 1) / count as i64;
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start: start.plus_seconds(width * i as i64),
            succeeded: 0,
            failed: 0,
        })
        .collect();
    for (at, succeeded) in sign_ins {
        if at < start || at > end {
            continue;
        }
        let index = (((at.0 - start.0) / width) as usize).min(count - 1);
        let bucket = &mut buckets[index];
        if succeeded {
            bucket.succeeded += 1;
        } else {
            bucket.failed += 1;
        }
    }
    buckets
}

const CHART_BUCKETS: usize = 24;
const CHART_HEIGHT: u32 = 100;
const CHART_SLOT: u32 = 20;

/// One stacked bar of the chart, in SVG user units: successes at the bottom, failures on top.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bar {
    x: u32,
    width: u32,
    ok_y: u32,
    ok_height: u32,
    failed_y: u32,
    failed_height: u32,
    title: String,
}

struct Chart {
    width: u32,
    height: u32,
    bars: Vec<Bar>,
    start: String,
    end: String,
    succeeded: u32,
    failed: u32,
    description: String,
}

fn scale(value: u32, max: u32) -> u32 {
    if max == 0 {
        0
    } else {
        ((u64::from(value) * u64::from(CHART_HEIGHT) + u64::from(max) / 2) / u64::from(max)) as u32
    }
}

fn chart_bars(buckets: &[Bucket]) -> Vec<Bar> {
    let max = buckets
        .iter()
        .map(|b| b.succeeded + b.failed)
        .max()
        .unwrap_or(0);
    buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let total_height = scale(b.succeeded + b.failed, max);
            let failed_height = scale(b.failed, max).min(total_height);
            let ok_height = total_height - failed_height;
            let ok_y = CHART_HEIGHT - ok_height;
            Bar {
                x: i as u32 * CHART_SLOT + 2,
                width: CHART_SLOT - 4,
                ok_y,
                ok_height,
                failed_y: ok_y - failed_height,
                failed_height,
                title: format!(
                    "From {}: {} succeeded, {} failed",
                    time(b.start),
                    b.succeeded,
                    b.failed
                ),
            }
        })
        .collect()
}

fn chart(records: &[SignInRecord], start: Timestamp, end: Timestamp) -> Chart {
    let buckets = bucket_sign_ins(
        records.iter().map(|r| (r.created_date_time, r.succeeded())),
        start,
        end,
        CHART_BUCKETS,
    );
    let succeeded = buckets.iter().map(|b| b.succeeded).sum();
    let failed = buckets.iter().map(|b| b.failed).sum();
    Chart {
        width: CHART_BUCKETS as u32 * CHART_SLOT,
        height: CHART_HEIGHT,
        bars: chart_bars(&buckets),
        start: time(start),
        end: time(end),
        succeeded,
        failed,
        description: format!(
            "Sign-ins from {} to {} in {CHART_BUCKETS} slices: {succeeded} succeeded, {failed} failed.",
            time(start),
            time(end)
        ),
    }
}

fn method_label(id: &str) -> String {
    MethodKind::ALL
        .into_iter()
        .find(|m| m.id() == id)
        .map_or_else(|| id.to_string(), |m| m.label().to_string())
}

struct SignInRow {
    href: String,
    time: String,
    user: String,
    application: String,
    ip: String,
    location: String,
    method: String,
    succeeded: bool,
    result: String,
}

fn result_text(record: &SignInRecord) -> String {
    if record.succeeded() {
        "Success".into()
    } else {
        format!(
            "Failure {}: {}",
            record.status.error_code,
            record.status.failure_reason.as_deref().unwrap_or("")
        )
    }
}

fn sign_in_row(record: &SignInRecord) -> SignInRow {
    SignInRow {
        href: format!("/admin/logs/signins/{}", record.id),
        time: time(record.created_date_time),
        user: record.user_principal_name.clone(),
        application: record
            .app_display_name
            .clone()
            .or_else(|| record.app_id.as_ref().map(ToString::to_string))
            .unwrap_or_default(),
        ip: record.ip_address.clone().unwrap_or_default(),
        location: record
            .location
            .as_ref()
            .and_then(|l| l.display())
            .unwrap_or_default(),
        method: method_label(&record.authentication_method),
        succeeded: record.succeeded(),
        result: result_text(record),
    }
}

#[derive(Template)]
#[template(path = "console_signins.html")]
struct SignInsPage {
    frame: Frame,
    since: String,
    user: String,
    app: String,
    statuses: Vec<Choice>,
    methods: Vec<Choice>,
    rows: Vec<SignInRow>,
    total: usize,
    capped: bool,
    chart: Option<Chart>,
}

async fn sign_ins(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<SignInFilter>, QueryRejection>,
) -> ConsoleResult {
    let admin = administrator(&state, &jar, "/admin/logs/signins").await?;
    let Query(filter) = query?;
    let now = state.latchkey.now();
    let (refused, records, chart_view) = match sign_in_query(&filter, now) {
        Err(message) => (Some(Refused::bad(message)), Vec::new(), None),
        Ok((query, since)) => match state.latchkey.sign_in_log(query).await {
            Ok(records) => {
                let chart_view = chart(&records, since, now);
                (None, records, Some(chart_view))
            }
            Err(e) => (Some(Refused::from_domain(e)?), Vec::new(), None),
        },
    };
    let status_options = [
        (String::new(), "Any".to_string()),
        ("success".to_string(), "Success".to_string()),
        ("failure".to_string(), "Failure".to_string()),
    ];
    let mut method_options = vec![(String::new(), "Any".to_string())];
    method_options.extend(
        MethodKind::ALL
            .into_iter()
            .map(|m| (m.id().to_string(), m.label().to_string())),
    );
    let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_string();
    let (jar, frame) = frame(&state, jar, &admin, Section::SignIns);
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let view = SignInsPage {
        frame: frame.with_refusal(refused.as_ref()),
        since: optional(filter.since.as_ref()).unwrap_or(DEFAULT_SIGN_IN_SPAN.into()),
        user: text(&filter.user),
        app: text(&filter.app),
        statuses: choices(&status_options, &text(&filter.status)),
        methods: choices(&method_options, &text(&filter.method)),
        rows: records
            .iter()
            .take(LOG_TABLE_ROWS)
            .map(sign_in_row)
            .collect(),
        total: records.len(),
        capped: records.len() >= LogQuery::MAX_LIMIT as usize,
        chart: chart_view,
    };
    Ok(page(jar, &view, status))
}

struct StepRow {
    time: String,
    method: String,
    detail: String,
    result: String,
    succeeded: bool,
}

#[derive(Template)]
#[template(path = "console_signin.html")]
struct SignInPage {
    frame: Frame,
    row: SignInRow,
    id: String,
    user_href: Option<String>,
    user_display_name: String,
    app_id: String,
    coordinates: String,
    error_code: u32,
    steps: Vec<StepRow>,
}

async fn sign_in_detail(
    State(state): State<AppState>,
    jar: CookieJar,
    path: Result<Path<String>, PathRejection>,
) -> ConsoleResult {
    let Path(id) = path?;
    let admin = administrator(&state, &jar, &format!("/admin/logs/signins/{id}")).await?;
    if id.is_empty() || id.len() > 128 {
        return Err(not_found("sign-in").into());
    }
    let query = LogQuery {
        limit: LogQuery::MAX_LIMIT,
        ..Default::default()
    };
    let record = state
        .latchkey
        .sign_in_log(query)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| not_found("sign-in"))?;
    let coordinates = match record.location.as_ref().map(|l| (l.latitude, l.longitude)) {
        Some((Some(lat), Some(lon))) => format!("{lat:.4}, {lon:.4}"),
        _ => String::new(),
    };
    let steps = record
        .authentication_details
        .iter()
        .map(|s| StepRow {
            time: s.authentication_step_date_time.clone(),
            method: method_label(&s.authentication_method),
            detail: s.authentication_method_detail.clone().unwrap_or_default(),
            result: s.authentication_step_result_detail.clone(),
            succeeded: s.succeeded,
        })
        .collect();
    let (jar, frame) = frame(&state, jar, &admin, Section::SignIns);
    let view = SignInPage {
        frame,
        row: sign_in_row(&record),
        id: record.id.clone(),
        user_href: record.user_id.as_ref().map(|u| format!("/admin/users/{u}")),
        user_display_name: record.user_display_name.clone().unwrap_or_default(),
        app_id: record
            .app_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        coordinates,
        error_code: record.status.error_code,
        steps,
    };
    Ok(page(jar, &view, StatusCode::OK))
}

#[derive(Deserialize, Default, Debug, Clone)]
struct AuditFilter {
    since: Option<String>,
    user: Option<String>,
    category: Option<String>,
}

const AUDIT_CATEGORIES: [AuditCategory; 5] = [
    AuditCategory::UserManagement,
    AuditCategory::GroupManagement,
    AuditCategory::ApplicationManagement,
    AuditCategory::Policy,
    AuditCategory::KeyManagement,
];

fn audit_query(filter: &AuditFilter, now: Timestamp) -> Result<LogQuery, String> {
    let since_text = optional(filter.since.as_ref()).unwrap_or(DEFAULT_AUDIT_SPAN.into());
    let since = parse_since("since", &since_text, now)?;
    let category = optional(filter.category.as_ref());
    if let Some(category) = &category
        && !AUDIT_CATEGORIES.iter().any(|c| c.as_str() == category)
    {
        return Err(format!(
            "category: choose one of {}, or leave it empty.",
            AUDIT_CATEGORIES.map(AuditCategory::as_str).join(", ")
        ));
    }
    Ok(LogQuery {
        since: Some(since),
        user: optional(filter.user.as_ref()),
        category,
        limit: LOG_TABLE_ROWS as u32,
        ..Default::default()
    })
}

struct AuditRow {
    time: String,
    actor: String,
    category: &'static str,
    activity: String,
    target: String,
    before: Option<String>,
    after: Option<String>,
}

fn pretty(value: Option<&Value>) -> Option<String> {
    value.and_then(|v| serde_json::to_string_pretty(v).ok())
}

fn audit_row(event: &AuditEvent) -> AuditRow {
    AuditRow {
        time: time(event.activity_date_time),
        actor: event.actor.0.clone(),
        category: event.category.as_str(),
        activity: event.activity.clone(),
        target: event.target.clone(),
        before: pretty(event.before.as_ref()),
        after: pretty(event.after.as_ref()),
    }
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct AuditPage {
    frame: Frame,
    since: String,
    user: String,
    categories: Vec<Choice>,
    rows: Vec<AuditRow>,
}

async fn audit(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<AuditFilter>, QueryRejection>,
) -> ConsoleResult {
    let admin = administrator(&state, &jar, "/admin/logs/audit").await?;
    let Query(filter) = query?;
    let (refused, events) = match audit_query(&filter, state.latchkey.now()) {
        Err(message) => (Some(Refused::bad(message)), Vec::new()),
        Ok(query) => match state.latchkey.audit_log(query).await {
            Ok(events) => (None, events),
            Err(e) => (Some(Refused::from_domain(e)?), Vec::new()),
        },
    };
    let mut category_options = vec![(String::new(), "Any".to_string())];
    category_options.extend(
        AUDIT_CATEGORIES
            .iter()
            .map(|c| (c.as_str().to_string(), c.as_str().to_string())),
    );
    let (jar, frame) = frame(&state, jar, &admin, Section::Audit);
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let view = AuditPage {
        frame: frame.with_refusal(refused.as_ref()),
        since: optional(filter.since.as_ref()).unwrap_or(DEFAULT_AUDIT_SPAN.into()),
        user: optional(filter.user.as_ref()).unwrap_or_default(),
        categories: choices(
            &category_options,
            &optional(filter.category.as_ref()).unwrap_or_default(),
        ),
        rows: events.iter().map(audit_row).collect(),
    };
    Ok(page(jar, &view, status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_domain::ids::GroupId;
    use latchkey_domain::policy::{MethodConfiguration, default_config};

    const NOW: Timestamp = Timestamp(1_795_910_400);

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn authenticator_json() -> Value {
        serde_json::to_value(AuthenticationMethodsPolicy::default().authenticator).unwrap()
    }

    fn parse_authenticator(value: Value) -> latchkey_domain::policy::AuthenticatorConfig {
        match MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, value).unwrap() {
            MethodConfiguration::Authenticator(config) => config,
            other => panic!("not the authenticator: {other:?}"),
        }
    }

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(parse_since("since", "15m", NOW), Ok(NOW.plus_seconds(-900)));
        assert_eq!(parse_since("since", "1h", NOW), Ok(NOW.plus_seconds(-3600)));
        assert_eq!(
            parse_since("since", " 24h ", NOW),
            Ok(NOW.plus_seconds(-86_400))
        );
        assert_eq!(
            parse_since("since", "7d", NOW),
            Ok(NOW.plus_seconds(-7 * 86_400))
        );
        for bad in [
            "", "h", "1", "-1h", "1.5h", "1y", "0h", "1000d", "9999999m", "1hh", "１h", "1 h",
            "1€", "€",
        ] {
            let error = parse_since("since", bad, NOW).unwrap_err();
            assert!(error.starts_with("since:"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn utc_times_parse_and_nonsense_is_refused() {
        assert_eq!(parse_utc("2026-11-29T00:00:00Z"), Some(NOW));
        assert_eq!(parse_utc("2026-11-29"), Some(NOW));
        assert_eq!(parse_utc("2026-11-29T01:30Z"), Some(NOW.plus_seconds(5400)));
        assert_eq!(parse_utc("2024-02-29"), Some(Timestamp(1_709_164_800)));
        for bad in [
            "",
            "tomorrow",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-11-29T25:00:00Z",
            "2026-11-29T10:00:00",
            "2026-11-29T10:00:00+01:00",
            "2026-11-29-01",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
        let round_trip = Timestamp(1_800_000_123);
        assert_eq!(parse_utc(&round_trip.to_rfc3339()), Some(round_trip));
    }

    #[test]
    fn sign_in_filters_become_a_query_or_a_message_naming_the_field() {
        let filter = SignInFilter {
            since: Some("1h".into()),
            user: Some(" bobby@latchkey.test ".into()),
            app: Some("".into()),
            status: Some("failure".into()),
            method: Some("temporaryAccessPass".into()),
        };
        let (query, since) = sign_in_query(&filter, NOW).unwrap();
        assert_eq!(since, NOW.plus_seconds(-3600));
        assert_eq!(query.since, Some(since));
        assert_eq!(query.user.as_deref(), Some("bobby@latchkey.test"));
        assert_eq!(query.app, None);
        assert_eq!(query.status, Some(StatusFilter::Failure));
        let (default, since) = sign_in_query(&SignInFilter::default(), NOW).unwrap();
        assert_eq!(since, NOW.plus_seconds(-86_400));
        assert_eq!(default.status, None);
        for (bad, field) in [
            (
                SignInFilter {
                    since: Some("yesterday".into()),
                    ..Default::default()
                },
                "since:",
            ),
            (
                SignInFilter {
                    status: Some("maybe".into()),
                    ..Default::default()
                },
                "status:",
            ),
            (
                SignInFilter {
                    method: Some("sms".into()),
                    ..Default::default()
                },
                "method:",
            ),
        ] {
            assert!(sign_in_query(&bad, NOW).unwrap_err().starts_with(field));
        }
        let audit = AuditFilter {
            category: Some("Gossip".into()),
            ..Default::default()
        };
        assert!(
            audit_query(&audit, NOW)
                .unwrap_err()
                .starts_with("category:")
        );
        let audit = AuditFilter {
            category: Some("Policy".into()),
            ..Default::default()
        };
        assert_eq!(
            audit_query(&audit, NOW).unwrap().category.as_deref(),
            Some("Policy")
        );
    }

    #[test]
    fn sign_ins_are_counted_into_equal_slices_by_result() {
        let start = NOW.plus_seconds(-24 * 3600);
        let at = |hours_ago: i64, minutes: i64| NOW.plus_seconds(-hours_ago * 3600 + minutes * 60);
        let points = vec![
            (at(24, 0), true),   // the very start: first slice
            (at(24, 30), false), // first slice
            (at(2, 10), true),   // the slice before the last
            (at(0, 0), false),   // the very end: last slice
            (at(25, 0), true),   // before the window
            (at(-1, 0), true),   // after it
        ];
        let buckets = bucket_sign_ins(points, start, NOW, 24);
        assert_eq!(buckets.len(), 24);
        assert_eq!(buckets[0].start, start);
        assert_eq!(buckets[1].start, start.plus_seconds(3600));
        assert_eq!((buckets[0].succeeded, buckets[0].failed), (1, 1));
        assert_eq!((buckets[22].succeeded, buckets[22].failed), (1, 0));
        assert_eq!((buckets[23].succeeded, buckets[23].failed), (0, 1));
        let counted: u32 = buckets.iter().map(|b| b.succeeded + b.failed).sum();
        assert_eq!(counted, 4);
        // A window shorter than the number of slices still works.
        let tiny = bucket_sign_ins([(NOW, true)], NOW.plus_seconds(-5), NOW, 24);
        assert_eq!(tiny.iter().map(|b| b.succeeded).sum::<u32>(), 1);
    }

    #[test]
    fn bars_stack_failures_on_successes_within_the_chart() {
        let bucket = |succeeded, failed| Bucket {
            start: NOW,
            succeeded,
            failed,
        };
        let bars = chart_bars(&[bucket(3, 1), bucket(0, 0), bucket(1, 1)]);
        assert_eq!(bars[0].ok_height + bars[0].failed_height, CHART_HEIGHT);
        assert_eq!(bars[0].failed_height, 25);
        assert_eq!(bars[0].ok_y, CHART_HEIGHT - bars[0].ok_height);
        assert_eq!(bars[0].failed_y + bars[0].failed_height, bars[0].ok_y);
        assert_eq!((bars[1].ok_height, bars[1].failed_height), (0, 0));
        assert_eq!(bars[2].ok_height + bars[2].failed_height, 50);
        assert!(bars[1].x > bars[0].x);
        assert!(chart_bars(&[bucket(0, 0)])[0].ok_height == 0);
    }

    #[test]
    fn lab_step_one_enables_the_authenticator_for_all_users_in_any_mode() {
        let mut current = AuthenticationMethodsPolicy::default();
        current.authenticator.targeting.state = MethodState::Disabled;
        let form = fields(&[
            ("csrf", "x"),
            ("enabled", "true"),
            ("include_target", "all_users"),
            ("include_mode", "any"),
            ("include_target", ""),
            ("include_mode", "push"),
            ("exclude", ""),
        ]);
        let input = TargetingInput::from_fields(
            &form,
            TargetingInput::from_targeting(&current.authenticator.targeting),
        )
        .unwrap();
        let mut config = serde_json::to_value(&current.authenticator).unwrap();
        input.apply(&mut config, true).unwrap();
        let config = parse_authenticator(config);
        assert_eq!(config.targeting.state, MethodState::Enabled);
        assert_eq!(config.targeting.include_targets.len(), 1);
        assert_eq!(config.targeting.include_targets[0].target, Target::AllUsers);
        assert_eq!(
            config.targeting.include_targets[0].authentication_mode,
            Some(AuthenticationMode::Any)
        );
        assert!(config.targeting.exclude_targets.is_empty());
        assert_eq!(
            config.feature_settings,
            current.authenticator.feature_settings
        );
    }

    #[test]
    fn targeting_form_maps_groups_modes_and_exclusions() {
        let current = TargetingInput::from_targeting(
            &AuthenticationMethodsPolicy::default()
                .authenticator
                .targeting,
        );
        let form = fields(&[
            ("include_target", "pilot"),
            ("include_mode", "passwordless"),
            ("include_target", "all_users"),
            ("include_mode", "push"),
            ("exclude", "contractors"),
            ("exclude", "contractors"),
            ("exclude", ""),
        ]);
        let input = TargetingInput::from_fields(&form, current.clone()).unwrap();
        assert!(!input.enabled, "an unticked checkbox is off");
        let mut config = authenticator_json();
        input.apply(&mut config, true).unwrap();
        let config = parse_authenticator(config);
        assert_eq!(config.targeting.state, MethodState::Disabled);
        assert_eq!(
            config.targeting.include_targets[0].target,
            Target::Group(GroupId::from_string("pilot"))
        );
        assert_eq!(
            config.targeting.include_targets[0].authentication_mode,
            Some(AuthenticationMode::Passwordless)
        );
        assert_eq!(
            config.targeting.include_targets[1].authentication_mode,
            Some(AuthenticationMode::Push)
        );
        assert_eq!(
            config.targeting.exclude_targets,
            vec![Target::Group(GroupId::from_string("contractors"))]
        );
        // Without include or exclude fields the current rows stay.
        let kept =
            TargetingInput::from_fields(&fields(&[("enabled", "true")]), current.clone()).unwrap();
        assert_eq!(kept.includes, current.includes);
        assert!(kept.enabled);
        // Nonsense is refused naming the field, and the input is kept to show again.
        let bad_mode = TargetingInput::from_fields(
            &fields(&[("include_target", "all_users"), ("include_mode", "sms")]),
            current.clone(),
        )
        .unwrap();
        assert_eq!(bad_mode.includes[0].mode, "sms");
        let error = bad_mode.apply(&mut authenticator_json(), true).unwrap_err();
        assert!(error.starts_with("include_mode:"), "{error}");
        let nobody =
            TargetingInput::from_fields(&fields(&[("include_target", "")]), current.clone())
                .unwrap();
        let error = nobody.apply(&mut authenticator_json(), true).unwrap_err();
        assert!(error.starts_with("include_target:"), "{error}");
        assert!(
            TargetingInput::from_fields(
                &fields(&[
                    ("include_target", "all_users"),
                    ("include_target", "pilot"),
                    ("include_mode", "any"),
                ]),
                current.clone(),
            )
            .is_err(),
            "rows that do not pair up"
        );
        assert!(
            TargetingInput::from_fields(&fields(&[("enabled", "yes please")]), current).is_err()
        );
    }

    #[test]
    fn other_methods_get_targets_without_modes() {
        let default = default_config(MethodKind::Fido2);
        let mut config = serde_json::to_value(&default).unwrap();
        let input = TargetingInput::from_fields(
            &fields(&[
                ("enabled", "true"),
                ("include_target", "all_users"),
                ("include_mode", "any"),
            ]),
            TargetingInput::from_targeting(default.targeting()),
        )
        .unwrap();
        input.apply(&mut config, false).unwrap();
        let parsed = MethodConfiguration::from_json(MethodKind::Fido2, config).unwrap();
        assert_eq!(parsed.targeting().state, MethodState::Enabled);
        assert_eq!(
            parsed.targeting().include_targets[0].authentication_mode,
            None
        );
    }

    #[test]
    fn lab_step_four_enables_the_three_features_for_all_users() {
        let policy = AuthenticationMethodsPolicy::default();
        let current = FeaturesInput::from_features(&policy.authenticator.feature_settings);
        let mut pairs = Vec::new();
        for feature in [
            Feature::NumberMatching,
            Feature::DisplayAppInformation,
            Feature::DisplayLocationInformation,
        ] {
            let field = feature_field(feature);
            pairs.push((format!("{field}.state"), "enabled".to_string()));
            pairs.push((format!("{field}.include"), "all_users".to_string()));
            pairs.push((format!("{field}.exclude"), String::new()));
        }
        pairs.push(("reportSuspiciousActivity.exclude".into(), "quiet".into()));
        let input = FeaturesInput::from_fields(&Fields(pairs), current).unwrap();
        let mut config = authenticator_json();
        input.apply(&mut config).unwrap();
        let features = parse_authenticator(config).feature_settings;
        for feature in [
            Feature::NumberMatching,
            Feature::DisplayAppInformation,
            Feature::DisplayLocationInformation,
        ] {
            let setting = features.setting(feature);
            assert_eq!(setting.state, FeatureState::Enabled, "{feature:?}");
            assert_eq!(setting.include_target, Target::AllUsers);
            assert_eq!(setting.exclude_target, None);
        }
        let report = features.setting(Feature::ReportSuspiciousActivity);
        assert_eq!(
            report.state,
            FeatureState::Default,
            "absent fields are kept"
        );
        assert_eq!(
            report.exclude_target,
            Some(Target::Group(GroupId::from_string("quiet")))
        );
    }

    #[test]
    fn disabling_number_matching_reaches_the_domain_which_refuses_it() {
        let mut policy = AuthenticationMethodsPolicy::default();
        let input = FeaturesInput::from_fields(
            &fields(&[("numberMatching.state", "disabled")]),
            FeaturesInput::from_features(&policy.authenticator.feature_settings),
        )
        .unwrap();
        assert_eq!(input.rows[0].state, "disabled", "kept to show again");
        let mut config = authenticator_json();
        input.apply(&mut config).unwrap();
        policy.authenticator = parse_authenticator(config);
        let error = policy.validate(&|_| true).unwrap_err().to_string();
        assert!(error.contains("number matching"), "{error}");
        let bad = FeaturesInput::from_fields(
            &fields(&[("displayAppInformation.state", "microsoftManaged")]),
            FeaturesInput::from_features(&AuthenticatorFeatures::default()),
        )
        .unwrap();
        let error = bad.apply(&mut authenticator_json()).unwrap_err();
        assert!(error.starts_with("displayAppInformation.state:"), "{error}");
    }

    #[test]
    fn form_names_match_the_domain_serialisation() {
        let features = serde_json::to_value(AuthenticatorFeatures::default()).unwrap();
        for feature in Feature::ALL {
            assert!(features.get(feature_key(feature)).is_some(), "{feature:?}");
            assert_eq!(
                serde_json::to_value(feature).unwrap(),
                json!(feature_field(feature))
            );
        }
        for mode in [
            AuthenticationMode::Any,
            AuthenticationMode::Push,
            AuthenticationMode::Passwordless,
        ] {
            assert_eq!(parse_mode(mode_value(mode)), Some(mode));
        }
        for state in [
            FeatureState::Default,
            FeatureState::Enabled,
            FeatureState::Disabled,
        ] {
            assert_eq!(parse_feature_state(state_value(state)), Some(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                json!(state_value(state))
            );
        }
    }

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

    #[test]
    fn pass_form_leaves_unset_values_to_the_policy() {
        let request = pass_request(&PassInput::default()).unwrap();
        assert_eq!(request.lifetime_in_minutes, None);
        assert_eq!(request.is_usable_once, None);
        assert_eq!(request.start_date_time, None);
        let request = pass_request(&PassInput {
            lifetime_minutes: "120".into(),
            usable_once: true,
            start: "2026-11-29T00:00:00Z".into(),
        })
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
            assert!(pass_request(&input).unwrap_err().starts_with(field));
        }
    }

    fn test_frame() -> Frame {
        Frame {
            upn: "admin@latchkey.test".into(),
            csrf: "token".into(),
            nav: vec![],
            notice: None,
            error: None,
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
        policy.fido2.targeting.exclude_targets = vec![Target::Group(GroupId::from_string("g2"))];
        (policy, groups)
    }

    fn authenticator_page(
        policy: &AuthenticationMethodsPolicy,
        groups: &[Group],
        configure: bool,
    ) -> String {
        AuthenticatorPage {
            frame: test_frame(),
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
            frame: test_frame(),
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

    #[test]
    fn the_sign_in_chart_is_svg_and_locations_carry_the_attribution() {
        let record = SignInRecord {
            id: "r1".into(),
            created_date_time: NOW.plus_seconds(-600),
            user_id: None,
            user_principal_name: "bobby@latchkey.test".into(),
            user_display_name: None,
            app_id: None,
            app_display_name: Some("My Apps".into()),
            ip_address: Some("203.0.113.9".into()),
            location: None,
            authentication_method: "temporaryAccessPass".into(),
            status: latchkey_domain::log::SignInStatus {
                error_code: 50126,
                failure_reason: Some("Invalid user name, pass or password.".into()),
            },
            authentication_details: vec![],
        };
        let records = vec![record];
        let html = SignInsPage {
            frame: test_frame(),
            since: "24h".into(),
            user: String::new(),
            app: String::new(),
            statuses: vec![],
            methods: vec![],
            rows: records.iter().map(sign_in_row).collect(),
            total: 1,
            capped: false,
            chart: Some(chart(&records, NOW.plus_seconds(-86_400), NOW)),
        }
        .render()
        .unwrap();
        assert!(!html.contains(" style="));
        assert!(html.contains("<svg") && html.contains("<rect class=\"failed\""));
        assert!(html.contains("<a href='https://db-ip.com'>IP Geolocation by DB-IP</a>"));
        assert!(html.contains("href=\"/admin/logs/signins/r1\""));
        assert!(html.contains("Failure 50126"));
    }

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
