//! CORS for the endpoints a browser application (a single-page app, a public client) calls
//! from its own origin: discovery, the JWKS, the token endpoint, userinfo and revocation.
//!
//! An origin gets CORS headers only when it is the origin of a registered application's
//! redirect URI or one of its explicitly allowed origins; any other origin gets none, so the
//! browser keeps the response from its page. No `Access-Control-Allow-Credentials`: these
//! endpoints take bearer tokens and client credentials in the request, never cookies.
//!
//! Other routes opt in by adding their path to [`BROWSER_ENDPOINTS`] (the layer is installed
//! once, in `router`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The paths that answer browsers from applications' origins.
pub const BROWSER_ENDPOINTS: &[&str] = &[
    "/.well-known/openid-configuration",
    "/jwks",
    "/token",
    "/userinfo",
    "/revoke",
];

/// How long a browser may reuse a preflight's answer (seconds).
pub const PREFLIGHT_MAX_AGE_SECONDS: u32 = 600;

const ALLOWED_METHODS: &str = "GET, POST";
const ALLOWED_HEADERS: &str = "Authorization, Content-Type";
/// Lets a page read why `/userinfo` refused a token.
const EXPOSED_HEADERS: &str = "WWW-Authenticate";

/// The `Origin` a browser sent, when it is one (at most 512 bytes, visible ASCII).
pub fn request_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty() && o.len() <= 512)
}

/// The middleware: answers preflights and adds the CORS headers for known origins on
/// [`BROWSER_ENDPOINTS`]; passes every other request through untouched.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !BROWSER_ENDPOINTS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let origin = request_origin(request.headers()).map(str::to_owned);
    let known = match &origin {
        Some(origin) => match state.latchkey.applications.browser_origins().await {
            Ok(origins) => origins.is_known(origin),
            Err(e) => {
                tracing::warn!(error = %e, "reading applications' origins for CORS failed");
                false
            }
        },
        None => false,
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        if known {
            StatusCode::NO_CONTENT.into_response()
        } else {
            // An unknown origin learns nothing, and gets no permission.
            StatusCode::FORBIDDEN.into_response()
        }
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    // The answer depends on Origin (and discovery and the JWKS are publicly cacheable).
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(origin)) = (known, origin)
        && let Ok(value) = HeaderValue::from_str(&origin)
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(PREFLIGHT_MAX_AGE_SECONDS),
            );
        } else {
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
    response
}
