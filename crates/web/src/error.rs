//! How failures reach people and programs: pages say what happened and what to try; APIs
//! return a stable error code; details go to the log, never secrets.

use askama::Template;
use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_domain::DomainError;
use serde_json::json;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    next_href: &'a str,
    next_label: &'a str,
}

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        PageError {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "We couldn't handle that request",
            message,
        )
    }

    pub fn csrf() -> Self {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Your form expired",
            "This form was not sent from this site, or the page was open too long. Go back, reload the page and try again.",
        )
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Store(_) | DomainError::Internal(_) => {
                tracing::error!(error = %e, "request failed");
                PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Try again in a moment.",
                )
            }
            DomainError::NotFound(what) => PageError::new(
                StatusCode::NOT_FOUND,
                "Not found",
                format!("That {what} does not exist."),
            ),
            DomainError::NotAssigned(message) => PageError::new(
                StatusCode::FORBIDDEN,
                "You haven't been assigned to this application",
                message,
            ),
            other => PageError::bad_request(other.to_string()),
        }
    }
}

impl From<FormRejection> for PageError {
    fn from(e: FormRejection) -> Self {
        PageError::new(
            e.status(),
            "We couldn't read that form",
            "The form was incomplete or not in the expected format. Go back, reload the page and try again.",
        )
    }
}

impl From<QueryRejection> for PageError {
    fn from(_: QueryRejection) -> Self {
        PageError::bad_request(
            "The address has parameters we can't read. Check the link you followed.",
        )
    }
}

/// Renders a page that must not be cached: it shows a one-time secret or a state that changes
/// while the person waits.
pub fn render_uncached(template: &impl Template) -> Response {
    uncached(render(template))
}

/// `response` marked never to be stored (`Cache-Control: no-store`).
pub fn uncached(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response()
        }
    }
}

/// An error page whose way on is `next_href` (the certificate host's pages lead back to the
/// main host's sign-in).
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    next_href: &str,
    next_label: &str,
) -> Response {
    let mut response = render(&ErrorPage {
        title,
        message,
        next_href,
        next_label,
    });
    *response.status_mut() = status;
    response
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: &self.title,
            message: &self.message,
            next_href: "/myapps",
            next_label: "Go to My Apps",
        };
        let mut response = render(&page);
        *response.status_mut() = self.status;
        response
    }
}

/// Why a page request ends early: the browser must sign in first (and come back to the path),
/// or an error page. The rejection of the pages' extractors (see `extract`).
#[derive(Debug)]
pub enum PageFailure {
    SignIn(String),
    Page(PageError),
}

impl From<PageError> for PageFailure {
    fn from(e: PageError) -> Self {
        PageFailure::Page(e)
    }
}

impl From<DomainError> for PageFailure {
    fn from(e: DomainError) -> Self {
        PageFailure::Page(e.into())
    }
}

impl From<FormRejection> for PageFailure {
    fn from(e: FormRejection) -> Self {
        PageFailure::Page(e.into())
    }
}

impl From<QueryRejection> for PageFailure {
    fn from(e: QueryRejection) -> Self {
        PageFailure::Page(e.into())
    }
}

impl IntoResponse for PageFailure {
    fn into_response(self) -> Response {
        match self {
            PageFailure::SignIn(path) => sign_in_redirect(&path).into_response(),
            PageFailure::Page(e) => e.into_response(),
        }
    }
}

/// An error from the admin API: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = match &e {
            DomainError::Invalid { .. } => StatusCode::BAD_REQUEST,
            DomainError::NotFound(_)
            | DomainError::Store(latchkey_domain::StoreError::NotFound) => StatusCode::NOT_FOUND,
            DomainError::Conflict(_)
            | DomainError::Store(latchkey_domain::StoreError::Conflict(_)) => StatusCode::CONFLICT,
            DomainError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            DomainError::NotAssigned(_) => StatusCode::FORBIDDEN,
            DomainError::Store(_) | DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "admin API request failed");
            "internal error; see the server log".to_string()
        } else {
            e.to_string()
        };
        ApiError {
            status,
            code: e.code(),
            message,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let (status, code) = match &e {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::BytesRejection(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            _ => (StatusCode::BAD_REQUEST, "invalid_json"),
        };
        ApiError::new(status, code, e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

/// JSON bodies for the admin API, with rejections mapped to `ApiError`.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// What a path nothing answers gets: the admin API and the authenticator API keep their own
/// JSON errors; everything else (a browser) a page in the product's layout with a way home.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Nothing answers at this path; the API is described at /api/v1/openapi.json.",
        )
        .into_response();
    }
    let device_api = latchkey_protocol::API_PREFIX;
    if path == device_api || path.starts_with(&format!("{device_api}/")) {
        return (
            StatusCode::NOT_FOUND,
            Json(latchkey_protocol::wire::ApiError {
                error: "not_found".into(),
                message: "Nothing answers at this path.".into(),
            }),
        )
            .into_response();
    }
    PageError::new(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. The link may be mistyped or out of date.",
    )
    .into_response()
}

/// Sends the browser to sign in, returning to `path` afterwards.
pub fn sign_in_redirect(path: &str) -> Redirect {
    let mut url = url::Url::parse("http://x/login").expect("static URL");
    url.query_pairs_mut().append_pair("return_to", path);
    Redirect::to(&format!("/login?{}", url.query().unwrap_or_default()))
}
