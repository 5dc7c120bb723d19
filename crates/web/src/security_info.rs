//! The security-info page: the methods a signed-in user has, adding the authenticator app
//! (QR code, typed code, test notification) and removing a device.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use latchkey_domain::authenticator::ACTIVATION_LIFETIME_SECONDS;
use latchkey_domain::ids::{ActivationId, ApprovalId, DeviceId};
use latchkey_domain::service::{ActivationProgress, ConsentProgress};
use latchkey_domain::session::RegistrationFreshness;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::AppState;
use crate::cookies::{CsrfScope, csrf_token};
use crate::error::{PageError, PageFailure, render, render_uncached};
use crate::extract::{CsrfForm, ReturnTo, SignedIn, SignedInForm};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mysecurityinfo", get(security_info))
        .route(
            ADD_AUTHENTICATOR_PATH,
            get(after_fresh_sign_in).post(add_authenticator),
        )
        .route("/mysecurityinfo/authenticator/{id}", get(activation_page))
        .route(
            "/mysecurityinfo/authenticator/{id}/status",
            get(activation_status),
        )
        .route(
            "/mysecurityinfo/devices/{id}/remove",
            get(confirm_remove).post(remove),
        )
        .route(
            "/mysecurityinfo/devices/{id}/allow-phone-sign-in",
            post(allow_phone_sign_in_again),
        )
        .route(
            "/mysecurityinfo/devices/{id}/phone-sign-in-consent",
            post(request_phone_sign_in_consent),
        )
        .route(
            "/mysecurityinfo/phone-sign-in-consent/{id}",
            get(consent_page),
        )
        .route(
            "/mysecurityinfo/phone-sign-in-consent/{id}/status",
            get(consent_status),
        )
}

struct MethodRow {
    label: String,
    detail: Vec<Segment>,
    /// The detail as plain text, for the remove link's name.
    detail_text: String,
    added: Option<Segment>,
    device: Option<String>,
    /// Phone sign-in on the device was turned off after too many wrong PINs.
    locked: bool,
    /// The device has no phone sign-in: offer "Allow phone sign-in" (number matching).
    allowable: bool,
}

/// A piece of text, or (with `utc`) a time: the page shows it in UTC and its script in the
/// viewer's own time zone.
pub(crate) struct Segment {
    pub(crate) text: String,
    pub(crate) utc: Option<String>,
}

impl Segment {
    pub(crate) fn time(rfc3339: &str) -> Segment {
        Segment {
            text: readable_utc(rfc3339),
            utc: Some(rfc3339.to_string()),
        }
    }
}

/// `2026-12-01T18:49:11Z` as `1 Dec 2026, 18:49 UTC`; text that is not an RFC 3339 time is
/// kept as it is.
fn readable_utc(rfc3339: &str) -> String {
    let readable =
        format_description!("[day padding:none] [month repr:short] [year], [hour]:[minute] UTC");
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&readable).ok())
        .unwrap_or_else(|| rfc3339.to_string())
}

/// The UTC time at the start of `text`, as `Timestamp::to_rfc3339` writes them.
fn utc_time_at_start(text: &str) -> Option<&str> {
    let candidate = text.get(..UTC_TIME_LEN)?;
    (candidate.ends_with('Z') && OffsetDateTime::parse(candidate, &Rfc3339).is_ok())
        .then_some(candidate)
}

/// The length of `2026-12-01T18:49:11Z`.
const UTC_TIME_LEN: usize = 20;

/// Splits a method's detail ("valid until 2026-12-02T02:49:11Z (usable)") around its times.
fn segments(detail: &str) -> Vec<Segment> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = detail;
    while let Some(c) = rest.chars().next() {
        if let Some(time) = utc_time_at_start(rest) {
            if !text.is_empty() {
                parts.push(Segment {
                    text: std::mem::take(&mut text),
                    utc: None,
                });
            }
            parts.push(Segment::time(time));
            rest = &rest[time.len()..];
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        parts.push(Segment { text, utc: None });
    }
    parts
}

#[derive(Template)]
#[template(path = "security_info.html")]
struct SecurityInfoPage<'a> {
    csrf: &'a str,
    name: &'a str,
    upn: &'a str,
    notice: Option<&'a str>,
    methods: Vec<MethodRow>,
    passkeys: Vec<crate::passkeys::PasskeyRow>,
    may_register_passkey: bool,
    /// The registration campaign stopped this session's sign-in: offer to go on (issue 16, D).
    campaign_pending: bool,
}

/// Where Add method posts; signing in again for it returns here.
const ADD_AUTHENTICATOR_PATH: &str = "/mysecurityinfo/authenticator";

#[derive(Deserialize)]
struct NoticeQuery {
    removed: Option<String>,
    allowed: Option<String>,
    added: Option<String>,
    renamed: Option<String>,
}

/// Add method's own address: signing in again for it comes back here.
struct AddAuthenticator;

impl ReturnTo for AddAuthenticator {
    const PATH: &'static str = ADD_AUTHENTICATOR_PATH;
}

async fn security_info(
    State(state): State<AppState>,
    signed_in: SignedIn,
    query: Result<Query<NoticeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query?;
    let notice = if query.allowed.is_some() {
        Some(
            "Phone sign-in can be turned on again for that device: run enable-phone-sign-in in the app soon, with a new PIN.",
        )
    } else if query.added.is_some() {
        Some("Your security key or passkey was added. You can sign in with it now.")
    } else if query.renamed.is_some() {
        Some("The method was renamed.")
    } else {
        query.removed.is_some().then_some("The method was removed.")
    };
    show_methods(state, signed_in, notice).await
}

/// Where signing in again for Add method lands: the same page, saying what to do next.
async fn after_fresh_sign_in(
    State(state): State<AppState>,
    signed_in: SignedIn<AddAuthenticator>,
) -> Result<Response, PageError> {
    let notice = "You signed in again. Choose Add method to continue.";
    show_methods(state, signed_in, Some(notice)).await
}

async fn show_methods<R>(
    state: AppState,
    SignedIn { session, user, .. }: SignedIn<R>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let methods = state
        .latchkey
        .devices
        .registered_methods(&user.id)
        .await?
        .into_iter()
        .map(|m| MethodRow {
            label: m.label,
            detail: segments(&m.detail),
            detail_text: m.detail,
            added: m.added_at.map(|at| Segment::time(&at.to_rfc3339())),
            device: m.device.map(|d| d.to_string()),
            locked: m.phone_sign_in_locked,
            allowable: m.phone_sign_in_allowable,
        })
        .collect();
    let passkeys = crate::passkeys::rows(&state, &user.id).await?;
    let may_register_passkey = state.latchkey.passkeys.may_register(&user).await?;
    let csrf = csrf_token(&state, CsrfScope::Session(&session.id));
    let campaign_pending = state.latchkey.campaign.pending(&session.id).await?;
    let page = SecurityInfoPage {
        csrf: &csrf,
        name: &user.display_name,
        upn: user.upn.as_str(),
        notice,
        methods,
        passkeys,
        may_register_passkey,
        campaign_pending,
    };
    Ok(render(&page))
}

/// Signed in recently, but with a password alone: a new sign-in with a pass or the app would
/// be needed, and redirecting would only loop.
fn stronger_sign_in_needed() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Sign in with a stronger method first",
        "To add a sign-in method, sign in with a Temporary Access Pass or your authenticator app within the last 10 minutes. Sign out, sign in again that way, then choose Add method. If you have neither, ask your administrator for a Temporary Access Pass.",
    )
}

#[derive(Template)]
#[template(path = "security_info_add.html")]
struct AddPage<'a> {
    id: &'a str,
    minutes: i64,
    svg: String,
    png: String,
    code: &'a str,
    server: &'a str,
    link: &'a str,
}

/// Renders the link as an SVG (shown) and a PNG (to save, or to scan from a file).
fn qr_images(link: &str) -> Result<(String, String), PageError> {
    let code = qrcode::QrCode::new(link.as_bytes())
        .map_err(|_| PageError::bad_request("The activation link is too long for a QR code."))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(224, 224)
        .build();
    // The renderer writes an XML declaration, which has no place inside HTML.
    let svg = match svg.find("<svg") {
        Some(start) => svg[start..].to_string(),
        None => svg,
    };
    let picture = code
        .render::<image::Luma<u8>>()
        .module_dimensions(8, 8)
        .build();
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(picture)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|_| PageError::bad_request("The QR code could not be drawn."))?;
    Ok((svg, base64::engine::general_purpose::STANDARD.encode(png)))
}

/// Adding a method needs a recent, strong sign-in. Without one the answer is a new sign-in
/// that comes back to `return_to` (like OIDC prompt=login), or a page saying which sign-in is
/// needed.
pub(crate) fn freshly_signed_in(
    state: &AppState,
    session: &latchkey_domain::session::Session,
    return_to: &str,
) -> Result<(), PageFailure> {
    match session.registration_freshness(state.latchkey.now()) {
        RegistrationFreshness::Fresh => Ok(()),
        RegistrationFreshness::SignInAgain => Err(PageFailure::SignIn(return_to.to_string())),
        RegistrationFreshness::StrongerMethodNeeded => Err(stronger_sign_in_needed().into()),
    }
}

async fn add_authenticator(
    State(state): State<AppState>,
    SignedInForm { session, user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageFailure> {
    freshly_signed_in(&state, &session, ADD_AUTHENTICATOR_PATH)?;
    let (activation, link) = state.latchkey.devices.start_activation(&user.id).await?;
    let uri = link.to_uri();
    let (svg, png) = qr_images(&uri)?;
    let page = AddPage {
        id: activation.id.as_str(),
        minutes: ACTIVATION_LIFETIME_SECONDS / 60,
        svg,
        png,
        code: &link.code,
        server: &link.server,
        link: &uri,
    };
    // The code is a secret: keep the page out of caches and history where we can.
    Ok(render_uncached(&page))
}

#[derive(Template)]
#[template(path = "security_info_progress.html")]
struct ProgressPage<'a> {
    id: &'a str,
    heading: &'a str,
    waiting: bool,
    /// The test notification failed or expired: the message is a problem, not news.
    failed: bool,
    stage: Stage,
    number: Option<u8>,
    device: &'a str,
    message: &'a str,
}

fn activation_id(raw: &str) -> Result<ActivationId, PageError> {
    if raw.is_empty() || raw.len() > 64 {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "That activation does not exist.",
        ));
    }
    Ok(ActivationId::from_string(raw))
}

async fn activation_page(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = activation_id(&id)?;
    let progress = state
        .latchkey
        .devices
        .activation_progress(&user.id, &id)
        .await?;
    let (heading, waiting, number, device, message) = match &progress {
        ActivationProgress::WaitingForDevice { .. } => (
            "Waiting for your authenticator app",
            true,
            None,
            "",
            "Scan the QR code or enter the code in the app. This page moves on by itself."
                .to_string(),
        ),
        ActivationProgress::WaitingForTest {
            number,
            device_name,
        } => (
            "Let's try it out",
            true,
            Some(*number),
            device_name.as_str(),
            String::new(),
        ),
        ActivationProgress::Registered { device_name } => (
            "Authenticator app registered",
            false,
            None,
            device_name.as_str(),
            format!(
                "Notification approved. You can now use the authenticator app on {device_name}. To sign in without a password, choose Enable phone sign-in in the app."
            ),
        ),
        ActivationProgress::Failed { message } => (
            "The authenticator app was not added",
            false,
            None,
            "",
            message.clone(),
        ),
    };
    let page = ProgressPage {
        id: id.as_str(),
        heading,
        waiting,
        failed: matches!(progress, ActivationProgress::Failed { .. }),
        stage: Stage::of(&progress),
        number,
        device,
        message: &message,
    };
    Ok(render_uncached(&page))
}

/// Where an activation stands, as the progress page and its status poll name it (`?while=`,
/// `"stage"`). The serde names are those strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Stage {
    Device,
    Test,
    Done,
}

impl Stage {
    fn of(progress: &ActivationProgress) -> Stage {
        match progress {
            ActivationProgress::WaitingForDevice { .. } => Stage::Device,
            ActivationProgress::WaitingForTest { .. } => Stage::Test,
            ActivationProgress::Registered { .. } | ActivationProgress::Failed { .. } => {
                Stage::Done
            }
        }
    }

    fn as_str(self) -> &'static str {
        latchkey_domain::names::serde_name(&self)
    }
}

latchkey_domain::display_as_serde_name!(Stage);

#[derive(Deserialize)]
struct StatusQuery {
    #[serde(rename = "while")]
    stage: Option<String>,
}

/// `{"pending": true}` while the activation is still at the stage the page shows.
async fn activation_status(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    Path(id): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, PageError> {
    let Some(SignedIn { user, .. }) = signed_in else {
        return Err(PageError::new(
            StatusCode::UNAUTHORIZED,
            "Sign in again",
            "Your session ended.",
        ));
    };
    let progress = state
        .latchkey
        .devices
        .activation_progress(&user.id, &activation_id(&id)?)
        .await?;
    let stage = Stage::of(&progress);
    // An unknown `while` is simply not the current stage, so it stays a string here.
    let pending = query.stage.as_deref() == Some(stage.as_str());
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "pending": pending, "stage": stage })),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "security_info_remove.html")]
struct RemovePage<'a> {
    csrf: &'a str,
    id: &'a str,
    label: &'a str,
    device: &'a str,
}

async fn confirm_remove(
    State(state): State<AppState>,
    SignedIn { session, user, .. }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let method = state
        .latchkey
        .devices
        .registered_methods(&user.id)
        .await?
        .into_iter()
        .find(|m| m.device.as_ref().is_some_and(|d| d.as_str() == id))
        .ok_or_else(|| {
            PageError::new(
                StatusCode::NOT_FOUND,
                "Not found",
                "That method is not registered to your account.",
            )
        })?;
    let csrf = csrf_token(&state, CsrfScope::Session(&session.id));
    let page = RemovePage {
        csrf: &csrf,
        id: &id,
        label: &method.label,
        device: &method.detail,
    };
    Ok(render(&page))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedInForm { user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageError> {
    if id.is_empty() || id.len() > 64 {
        return Err(PageError::bad_request("That is not a method id."));
    }
    state
        .latchkey
        .devices
        .remove_device(&user.id, &DeviceId::from_string(id))
        .await?;
    Ok(Redirect::to("/mysecurityinfo?removed=1").into_response())
}

/// After phone sign-in on a device was turned off for wrong PINs, the person (signed in
/// another way) allows the device to turn it on again, within the enable window.
async fn allow_phone_sign_in_again(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedInForm { session, user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageFailure> {
    // Turning a method back on is adding it again: the same fresh, strong sign-in.
    freshly_signed_in(&state, &session, "/mysecurityinfo")?;
    if id.is_empty() || id.len() > 64 {
        return Err(PageError::bad_request("That is not a method id.").into());
    }
    if !state
        .latchkey
        .devices
        .allow_phone_sign_in_again(&user.id, &DeviceId::from_string(id))
        .await?
    {
        return Err(PageError::bad_request(
            "Phone sign-in on that device is not turned off for wrong PINs.",
        )
        .into());
    }
    Ok(Redirect::to("/mysecurityinfo?allowed=1").into_response())
}

/// "Allow phone sign-in" for a device registered without it: sends the device a
/// number-matching request and shows the number. CSRF-checked, and (like adding a method) a
/// fresh, strong sign-in: else a stolen session and a copy of the device files together could
/// turn phone sign-in on with a PIN of the thief's.
async fn request_phone_sign_in_consent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedInForm { session, user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageFailure> {
    freshly_signed_in(&state, &session, "/mysecurityinfo")?;
    if id.is_empty() || id.len() > 64 {
        return Err(PageError::bad_request("That is not a method id.").into());
    }
    let request = state
        .latchkey
        .devices
        .request_phone_sign_in_consent(&user.id, &DeviceId::from_string(id))
        .await?;
    Ok(Redirect::to(&format!("/mysecurityinfo/phone-sign-in-consent/{request}")).into_response())
}

#[derive(Template)]
#[template(path = "security_info_consent.html")]
struct ConsentPage<'a> {
    id: &'a str,
    heading: &'a str,
    number: Option<u8>,
    device: &'a str,
    failed: bool,
    message: &'a str,
}

fn consent_request_id(raw: &str) -> Result<ApprovalId, PageError> {
    if raw.is_empty() || raw.len() > 64 {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "That request does not exist.",
        ));
    }
    Ok(ApprovalId::from_string(raw))
}

async fn consent_page(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = consent_request_id(&id)?;
    let progress = state
        .latchkey
        .devices
        .phone_sign_in_consent_progress(&user.id, &id)
        .await?;
    let (heading, number, device, message) = match &progress {
        ConsentProgress::Waiting {
            number,
            device_name,
        } => (
            "Allow phone sign-in",
            Some(*number),
            device_name.as_str(),
            String::new(),
        ),
        ConsentProgress::Allowed {
            device_name,
            minutes,
        } => (
            "Phone sign-in allowed",
            None,
            device_name.as_str(),
            format!(
                "Within {minutes} minute{}, choose Enable phone sign-in in the app on {device_name} (in the terminal app: enable-phone-sign-in).",
                if *minutes == 1 { "" } else { "s" }
            ),
        ),
        ConsentProgress::Failed { message } => {
            ("Phone sign-in was not allowed", None, "", message.clone())
        }
    };
    let page = ConsentPage {
        id: id.as_str(),
        heading,
        number,
        device,
        failed: matches!(progress, ConsentProgress::Failed { .. }),
        message: &message,
    };
    Ok(render_uncached(&page))
}

/// `{"pending": true}` while the device has not answered.
async fn consent_status(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(SignedIn { user, .. }) = signed_in else {
        return Err(PageError::new(
            StatusCode::UNAUTHORIZED,
            "Sign in again",
            "Your session ended.",
        ));
    };
    let progress = state
        .latchkey
        .devices
        .phone_sign_in_consent_progress(&user.id, &consent_request_id(&id)?)
        .await?;
    let pending = matches!(progress, ConsentProgress::Waiting { .. });
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "pending": pending })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_a_detail_become_time_segments_with_readable_utc_text() {
        let parts = segments("valid until 2026-12-02T02:49:11Z (usable)");
        let shown: Vec<(&str, Option<&str>)> = parts
            .iter()
            .map(|p| (p.text.as_str(), p.utc.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("valid until ", None),
                ("2 Dec 2026, 02:49 UTC", Some("2026-12-02T02:49:11Z")),
                (" (usable)", None),
            ]
        );
        let plain = segments("Bobby\u{2019}s phone 2026");
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].text, "Bobby\u{2019}s phone 2026");
        assert!(segments("").is_empty());
    }

    #[test]
    fn readable_utc_keeps_what_it_cannot_read() {
        assert_eq!(
            readable_utc("2026-01-09T07:05:00Z"),
            "9 Jan 2026, 07:05 UTC"
        );
        assert_eq!(readable_utc("2026-13-09T07:05:00Z"), "2026-13-09T07:05:00Z");
    }
}
