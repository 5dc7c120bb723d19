//! The phone app: an installable web app (PWA) at `/authenticator/app/` that is an
//! authenticator speaking `/authenticator/v1` from the browser (see `docs/phone-app.md`).
//!
//! Everything here is static: the shell, its script, the service worker, the manifest and the
//! icons are compiled in and served as they are. The app keeps its accounts and keys in the
//! browser (IndexedDB) and talks to the device API like any other authenticator; this module
//! never sees a key or a request, and must not grow handlers that do.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;

/// Where the app lives; its service worker's scope.
pub const APP_SCOPE: &str = "/authenticator/app/";

const SHELL: &str = include_str!("../static/app/index.html");
const SCRIPT: &str = include_str!("../static/app/app.js");
const CORE: &str = include_str!("../static/app/core.js");
const STYLESHEET: &str = include_str!("../static/app/app.css");
const SERVICE_WORKER: &str = include_str!("../static/app/sw.js");
const MANIFEST: &str = include_str!("../static/app/manifest.webmanifest");
const ICON_192: &[u8] = include_bytes!("../static/app/icon-192.png");
const ICON_512: &[u8] = include_bytes!("../static/app/icon-512.png");

/// The pages' policy plus what an installable app needs: its manifest and its service worker,
/// both from this origin. Still no inline script or style, and nothing from elsewhere.
const APP_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; manifest-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        // The scope ends with a slash, so the page without it would not be the app's.
        .route(
            "/authenticator/app",
            get(|| async { Redirect::permanent(APP_SCOPE) }),
        )
        .route("/authenticator/app/", get(shell))
        .route("/authenticator/app/activate", get(shell))
        .route(
            "/authenticator/app/manifest.webmanifest",
            get(|| async { asset("application/manifest+json", MANIFEST) }),
        )
        .route("/authenticator/app/sw.js", get(service_worker))
        .route(
            "/authenticator/app/static/app.js",
            get(|| async { asset("text/javascript", SCRIPT) }),
        )
        .route(
            "/authenticator/app/static/core.js",
            get(|| async { asset("text/javascript", CORE) }),
        )
        .route(
            "/authenticator/app/static/app.css",
            get(|| async { asset("text/css", STYLESHEET) }),
        )
        .route(
            "/authenticator/app/static/icon-192.png",
            get(|| async { asset("image/png", ICON_192) }),
        )
        .route(
            "/authenticator/app/static/icon-512.png",
            get(|| async { asset("image/png", ICON_512) }),
        )
}

/// A compiled-in file. `no-cache`: the browser may keep it but asks each time whether it
/// changed, so a new server version reaches the app at once (the service worker keeps its
/// own copy for offline use).
fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        app_csp(),
        body,
    )
        .into_response()
}

fn app_csp() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(APP_CSP),
    )]
}

async fn shell() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        app_csp(),
        SHELL,
    )
        .into_response()
}

async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript"),
            // Browsers check the worker for updates themselves; never serve it stale.
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                APP_SCOPE,
            ),
        ],
        app_csp(),
        SERVICE_WORKER,
    )
        .into_response()
}
