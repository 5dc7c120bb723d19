//! Liveness, readiness, metrics, the stylesheet and the pages' small scripts.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use latchkey_domain::secret::{constant_time_eq, sha256};

use crate::AppState;

const STYLESHEET: &str = include_str!("../static/style.css");
const WAIT_SCRIPT: &str = include_str!("../static/wait.js");
const TIME_SCRIPT: &str = include_str!("../static/time.js");
const PASSKEY_SCRIPT: &str = include_str!("../static/passkey.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/static/style.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    STYLESHEET,
                )
            }),
        )
        .route(
            "/static/wait.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    WAIT_SCRIPT,
                )
            }),
        )
        .route(
            "/static/passkey.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    PASSKEY_SCRIPT,
                )
            }),
        )
        .route(
            "/static/time.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    TIME_SCRIPT,
                )
            }),
        )
}

/// Ready when the database answers; the body names the database (`sqlite` or `postgresql`)
/// either way, so an operator can see which one an instance uses.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.latchkey.maintenance.ready().await {
        Ok(()) => (
            StatusCode::OK,
            format!("ready\ndatabase: {}\n", state.database),
        ),
        Err(e) => {
            tracing::warn!(error = %e, database = state.database, "store not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable\ndatabase: {}\n", state.database),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        let given = crate::auth_header::credentials(&headers, "Bearer").unwrap_or_default();
        // Hashed first so the comparison takes the same time whatever the lengths.
        if !constant_time_eq(
            &sha256(given.as_bytes()),
            &sha256(token.expose().as_bytes()),
        ) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            )
                .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
