//! Latchkey's HTTP edge: OpenID Connect endpoints, the sign-in pages, My Apps, the
//! security-info page, the admin API and the operational endpoints.
//!
//! Handlers extract, call one domain function, and render. They make no decisions of their own:
//! anything that could be a rule belongs in `latchkey-domain`.

mod admin_api;
mod admin_api_wire;
mod admin_policy_api;
mod admin_risk_api;
mod admin_tokens_api;
pub mod auth_header;
mod console;
mod cookies;
mod device_api;
pub mod device_hub;
mod error;
mod known_browser;
mod metrics;
mod myapps;
mod oidc;
mod ops;
mod pages;
mod security_info;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use latchkey_domain::Latchkey;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use device_hub::DeviceHub;
pub use metrics::{ConnectionShed, ConnectionTimeout, Metrics};

/// Requests larger than this are refused with 413 before a handler sees them.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler may use, built once in `main` and passed in.
#[derive(Clone)]
pub struct AppState {
    pub latchkey: Arc<Latchkey>,
    /// The stored secret from which the pages' keys are derived, one per purpose with its own
    /// HKDF label (CSRF tokens, My Apps' cookies): see `cookies`. Never used as a key itself.
    pub cookie_key: Arc<Vec<u8>>,
    /// MACs the known-browser cookie (smart lockout), and nothing else.
    pub known_browser_key: Arc<Vec<u8>>,
    /// Cookies carry `Secure` when the server is reached over TLS.
    pub secure_cookies: bool,
    /// Where My Apps reaches the token and JWKS endpoints over HTTP, like any application.
    pub internal_base_url: String,
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    /// Places a client address on the map, for sign-in logs and notifications.
    pub geoip: Arc<dyn latchkey_domain::location::GeoIp>,
    /// Proxies whose X-Forwarded-For header is believed.
    pub trusted_proxies: Arc<latchkey_domain::location::TrustedProxies>,
    /// The authenticators connected to this instance's live channel.
    pub devices: Arc<DeviceHub>,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<Arc<latchkey_domain::secret::Secret>>,
}

impl AppState {
    pub fn issuer(&self) -> &str {
        &self.latchkey.settings().issuer
    }

    /// Where a request comes from: its client address (through trusted proxies only) and the
    /// place GeoIP puts it.
    pub fn sign_in_context(
        &self,
        peer: std::net::SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> latchkey_domain::log::SignInContext {
        // Lossy, so a client's junk byte cannot make the proxy's own entry unreadable.
        let owned: Vec<String> = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let forwarded: Vec<&str> = owned.iter().map(String::as_str).collect();
        let ip = latchkey_domain::location::client_ip(peer.ip(), &forwarded, &self.trusted_proxies);
        latchkey_domain::log::SignInContext {
            ip_address: Some(ip),
            location: self.geoip.locate(ip),
            browser: known_browser::from_headers(self, headers),
        }
    }
}

pub fn router(state: AppState) -> Router {
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
    Router::new()
        .merge(oidc::routes())
        .merge(pages::routes())
        .merge(security_info::routes())
        .nest(latchkey_protocol::API_PREFIX, device_api::routes())
        .merge(console::routes())
        .merge(myapps::routes())
        .nest("/api/v1", admin_api::routes(state.clone()))
        .merge(ops::routes())
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
