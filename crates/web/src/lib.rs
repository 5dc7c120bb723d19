//! Latchkey's HTTP edge: OpenID Connect endpoints, the sign-in pages, My Apps, the
//! security-info page, passkey ceremonies, the phone app (a PWA), the admin API and the operational endpoints.
//!
//! Handlers extract, call one domain function, and render. They make no decisions of their own:
//! anything that could be a rule belongs in `latchkey-domain`.

mod admin_api;
mod admin_api_wire;
mod admin_policy_api;
mod admin_risk_api;
mod admin_tokens_api;
pub mod auth_header;
mod authenticator_app;
mod campaign;
pub mod certificates;
mod console;
mod cookies;
pub mod cors;
mod device_api;
mod device_grant;
pub mod device_hub;
mod error;
mod extract;
mod known_browser;
mod metrics;
mod myapps;
mod oidc;
mod ops;
pub mod pages;
mod passkeys;
mod push_api;
mod revocation;
mod security_info;
mod signed_out;
mod state;
pub mod web_push;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use device_hub::DeviceHub;
pub use metrics::{ConnectionShed, ConnectionTimeout, Metrics};
pub use state::{AppParts, AppState};

/// Requests larger than this are refused with 413 before a handler sees them.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(oidc::routes())
        .merge(device_grant::routes())
        .merge(pages::routes())
        .merge(certificates::routes())
        .merge(campaign::routes())
        .merge(security_info::routes())
        .merge(passkeys::routes())
        .merge(authenticator_app::routes())
        .nest(
            latchkey_protocol::API_PREFIX,
            device_api::routes().merge(push_api::routes()),
        )
        .merge(console::routes())
        .merge(myapps::routes())
        .nest("/api/v1", admin_api::routes(state.clone()))
        .merge(ops::routes());
    layered(routes, state)
}

/// The certificate listener's site (docs/certificates.md): the certificate page and the style
/// sheet, under the same headers and limits as the main site.
pub fn certificate_router(state: AppState) -> Router {
    layered(certificates::host_routes().merge(ops::style_route()), state)
}

fn layered(routes: Router<AppState>, state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let metrics = state.metrics.clone();
    // Only when people reach us over https: a browser that saw it keeps using https for a
    // year, so a network attacker cannot downgrade a later visit to plain http.
    let hsts = state.secure_cookies.then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    routes
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::layer))
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req, next| metrics::count(metrics.clone(), req, next)))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(tower::util::option_layer(hsts))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            // The path only: query strings can carry codes and tokens.
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}
