//! What every handler may use: the application state, built once in `main` and passed in.
//! No global state: everything a request needs is reached from here.

use std::sync::Arc;

use latchkey_domain::Latchkey;

use crate::metrics::Metrics;
use crate::{DeviceHub, known_browser};

/// Everything a handler may use, built once in `main` and passed in. Cloned for every request
/// (and by every layer a request passes), so a clone is one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppParts {
    pub latchkey: Arc<Latchkey>,
    /// The longest the number page's long-poll (`GET /login/status?wait=…`) is held: kept
    /// below the edge's idle timeout and the 30 s request timeout; 0 turns waiting off (every
    /// wait answers as a plain poll, and the page polls).
    pub sign_in_wait_seconds: u64,
    /// Which database the store is (`sqlite` or `postgresql`), for `/readyz`.
    pub database: &'static str,
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
    /// Sends Web Push to devices; `None` when `[web_push] enabled = false`.
    pub web_push: Option<Arc<crate::web_push::WebPushSender>>,
    /// Certificate-based sign-in's host; `None` when `[certificate]` has no `public_url`.
    pub certificate: Option<Arc<crate::certificates::CertificateHost>>,
}

impl AppParts {
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
