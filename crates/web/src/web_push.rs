//! Sending Web Push messages (RFC 8030) to authenticator devices, encrypted for the device
//! (RFC 8291) and signed with the server's VAPID key (RFC 8292), with `web-push-native`.
//!
//! [`PushingNotifier`] is the server's [`Notifier`]: it hands every event to the live channel
//! and, for each new request, pushes `{"type":"request","id":…}` to the device's subscription
//! in a background task. Nothing here ever blocks a sign-in: a push is best effort (the app
//! pulls what it missed), runs beside the request that caused it, is bounded in time and in
//! number, and gives up at the request's expiry.
//!
//! The endpoint is chosen by the device, so every send re-checks it: `https` only, no
//! redirects, no proxy, and (unless `allow_private_endpoints`) the name must resolve only to
//! public addresses, checked in the resolver the connection itself uses, so a name cannot pass
//! the check and then connect somewhere else. Never logged: keys, the endpoint's path (it
//! identifies the subscription), the payload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey_domain::Latchkey;
use latchkey_domain::ids::DeviceId;
use latchkey_domain::notify::Notifier;
use latchkey_domain::push::{PushSubscription, check_endpoint, endpoint_host, is_public};
use latchkey_protocol::push::PushMessage;
use latchkey_protocol::wire::DeviceEvent;
use tokio::sync::Semaphore;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder};

use crate::DeviceHub;

/// How the server sends Web Push (the `[web_push]` configuration).
#[derive(Debug, Clone)]
pub struct WebPushSettings {
    /// Lets endpoints name loopback, private and link-local addresses (tests, closed networks).
    pub allow_private_endpoints: bool,
    /// The most one attempt (connect, send, answer) may take.
    pub timeout: Duration,
    /// The VAPID `sub`: a `mailto:` address or the server's `https` URL.
    pub subject: String,
    /// PEM certificates trusted for push services beside the system's roots.
    pub root_certificates: Vec<Vec<u8>>,
}

/// Waits between attempts: a 429, a 5xx, a network error or a timeout is tried again after
/// 1, 2 and 4 seconds (four attempts in all), never past the request's expiry.
const BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Pushes in flight at once. A push service that never answers holds each for at most
/// `timeout` per attempt; beyond this many, new pushes are dropped (the devices pull instead)
/// rather than piling up tasks.
pub const MAX_PUSHES_IN_FLIGHT: usize = 64;

/// Sends pushes for one server: its VAPID key, its HTTP client, its limits.
pub struct WebPushSender {
    latchkey: Arc<Latchkey>,
    http: reqwest::Client,
    vapid: ES256KeyPair,
    vapid_public_key: String,
    settings: WebPushSettings,
    in_flight: Arc<Semaphore>,
}

/// Makes a fresh VAPID key: the 32-byte private scalar and the public point, base64url.
fn new_vapid_key() -> (Vec<u8>, String) {
    let key = ES256KeyPair::generate();
    let public = base64url(&key.public_key().public_key().to_bytes_uncompressed());
    (key.to_bytes(), public)
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl WebPushSender {
    /// Loads the VAPID key (making and storing it at first start) and builds the client.
    pub async fn new(
        latchkey: Arc<Latchkey>,
        settings: WebPushSettings,
    ) -> Result<WebPushSender, String> {
        let stored = latchkey
            .push
            .vapid_key(new_vapid_key)
            .await
            .map_err(|e| format!("reading the VAPID key: {e}"))?;
        let vapid = ES256KeyPair::from_bytes(&stored.private_key)
            .map_err(|_| "the stored VAPID key cannot be read".to_string())?;
        let derived = base64url(&vapid.public_key().public_key().to_bytes_uncompressed());
        if derived != stored.public_key {
            return Err("the stored VAPID public key does not match its private key".into());
        }
        let mut certificates = Vec::new();
        for pem in &settings.root_certificates {
            certificates.push(
                reqwest::Certificate::from_pem(pem)
                    .map_err(|e| format!("a web_push root certificate: {e}"))?,
            );
        }
        let http = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .dns_resolver(Arc::new(PublicOnlyResolver {
                allow_private: settings.allow_private_endpoints,
            }))
            .tls_certs_merge(certificates)
            .build()
            .map_err(|e| format!("building the Web Push client: {e}"))?;
        Ok(WebPushSender {
            latchkey,
            http,
            vapid,
            vapid_public_key: stored.public_key,
            settings,
            in_flight: Arc::new(Semaphore::new(MAX_PUSHES_IN_FLIGHT)),
        })
    }

    /// The `applicationServerKey` devices subscribe with.
    pub fn vapid_public_key(&self) -> &str {
        &self.vapid_public_key
    }

    pub fn allows_private_endpoints(&self) -> bool {
        self.settings.allow_private_endpoints
    }

    /// Pushes the news of request `id` to `device` in the background, if it has a
    /// subscription. Returns at once.
    fn push_request(self: &Arc<Self>, device: DeviceId, id: String, expires_at: i64) {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(device = %device, "too many Web Push messages in flight; this one is dropped (the device pulls)");
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sender = self.clone();
        runtime.spawn(async move {
            sender.deliver(&device, &id, expires_at).await;
            drop(permit);
        });
    }

    /// Sends one request's push, trying again after a transient failure.
    async fn deliver(&self, device: &DeviceId, id: &str, expires_at: i64) {
        let Ok(message) = serde_json::to_vec(&PushMessage::Request { id: id.into() }) else {
            return;
        };
        for attempt in 0..=BACKOFF.len() {
            // Read each time: the device may have replaced or removed its subscription.
            let subscription = match self.latchkey.push.subscription(device).await {
                Ok(Some(subscription)) => subscription,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(device = %device, error = %e, "reading a push subscription failed");
                    return;
                }
            };
            let ttl = expires_at - self.latchkey.now().0;
            if ttl <= 0 {
                return;
            }
            let host = endpoint_host(&subscription.endpoint);
            let outcome = self.send_once(&subscription, &message, ttl).await;
            match outcome {
                Outcome::Delivered => {
                    tracing::debug!(device = %device, host = %host, attempt, "Web Push delivered");
                    return;
                }
                Outcome::Gone(status) => {
                    tracing::info!(device = %device, host = %host, status, "the push service no longer knows this subscription; removed");
                    if let Err(e) = self
                        .latchkey
                        .push
                        .forget_gone(device, &subscription.endpoint)
                        .await
                    {
                        tracing::warn!(device = %device, error = %e, "removing a gone push subscription failed");
                    }
                    return;
                }
                Outcome::Refused(why) => {
                    tracing::warn!(device = %device, host = %host, why, "Web Push not sent");
                    return;
                }
                Outcome::TryAgain(why) => {
                    tracing::info!(device = %device, host = %host, attempt, why, "Web Push failed; may try again");
                }
            }
            let Some(wait) = BACKOFF.get(attempt) else {
                break;
            };
            // Never past the request's expiry: a push after it would announce nothing.
            if self.latchkey.now().0 + wait.as_secs() as i64 >= expires_at {
                return;
            }
            tokio::time::sleep(*wait).await;
        }
        tracing::warn!(device = %device, "Web Push gave up after retries");
    }

    async fn send_once(
        &self,
        subscription: &PushSubscription,
        message: &[u8],
        ttl: i64,
    ) -> Outcome {
        // The device's endpoint, checked again as at subscription (the rules may have changed).
        let endpoint = match check_endpoint(
            &subscription.endpoint,
            self.settings.allow_private_endpoints,
        ) {
            Ok(url) => url,
            Err(refused) => return Outcome::Refused(refused.code),
        };
        let Ok(uri) = endpoint.as_str().parse::<axum::http::Uri>() else {
            return Outcome::Refused("bad_endpoint");
        };
        let Some(keys) = decode_keys(subscription) else {
            return Outcome::Refused("bad_subscription_keys");
        };
        let request = WebPushBuilder::new(uri, keys.0, keys.1)
            .with_valid_duration(Duration::from_secs(ttl.unsigned_abs()))
            .with_vapid(&self.vapid, &self.settings.subject)
            .build(message.to_vec());
        let Ok(mut request) = request else {
            return Outcome::Refused("encryption_failed");
        };
        request
            .headers_mut()
            .insert("urgency", axum::http::HeaderValue::from_static("high"));
        let Ok(request) = reqwest::Request::try_from(request) else {
            return Outcome::Refused("bad_request");
        };
        match tokio::time::timeout(self.settings.timeout, self.http.execute(request)).await {
            Err(_) => Outcome::TryAgain("timed out"),
            Ok(Err(e)) if e.is_connect() || e.is_timeout() || e.is_request() => {
                Outcome::TryAgain("network error")
            }
            Ok(Err(_)) => Outcome::TryAgain("network error"),
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => Outcome::Delivered,
                    404 | 410 => Outcome::Gone(status),
                    429 | 500..=599 => Outcome::TryAgain("the push service is busy or failing"),
                    _ => Outcome::Refused("the push service refused the message"),
                }
            }
        }
    }
}

enum Outcome {
    Delivered,
    /// 404 or 410: the subscription has expired or was removed.
    Gone(u16),
    /// Will not succeed by trying again.
    Refused(&'static str),
    TryAgain(&'static str),
}

fn decode_keys(
    subscription: &PushSubscription,
) -> Option<(web_push_native::p256::PublicKey, Auth)> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let p256dh = engine.decode(&subscription.p256dh).ok()?;
    let auth = engine.decode(&subscription.auth).ok()?;
    if auth.len() != latchkey_protocol::push::AUTH_SECRET_LEN {
        return None;
    }
    let public = web_push_native::p256::PublicKey::from_sec1_bytes(&p256dh).ok()?;
    Some((public, Auth::clone_from_slice(&auth)))
}

/// Whether `p256dh` (decoded) is a point on the P-256 curve, as RFC 8291 needs.
pub fn is_p256_point(p256dh: &[u8]) -> bool {
    web_push_native::p256::PublicKey::from_sec1_bytes(p256dh).is_ok()
}

/// Resolves names to addresses the server may send to: with `allow_private` false, a name
/// with any loopback, private, link-local or otherwise non-public address is refused whole.
/// Used both when a device subscribes and by the connection of every send (so DNS cannot
/// answer one way for the check and another for the connection).
struct PublicOnlyResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = resolve_public(&host, allow_private).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a name cannot be sent to.
#[derive(Debug)]
pub struct AddressRefused {
    /// `bad_endpoint` (does not resolve) or `private_endpoint`.
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AddressRefused {}

fn does_not_resolve(host: &str) -> AddressRefused {
    AddressRefused {
        code: "bad_endpoint",
        message: format!("{host} does not resolve"),
    }
}

/// The addresses of `host`, refused whole if any is not public (unless `allow_private`).
pub async fn resolve_public(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, AddressRefused> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| does_not_resolve(host))?
        .collect();
    if addresses.is_empty() {
        return Err(does_not_resolve(host));
    }
    if !allow_private && addresses.iter().any(|a| !is_public(a.ip())) {
        return Err(AddressRefused {
            code: "private_endpoint",
            message: format!(
                "{host} resolves to a loopback, private or link-local address; the server sends only to public push services"
            ),
        });
    }
    Ok(addresses)
}

/// The server's [`Notifier`]: the live channel for connected devices, and Web Push for every
/// new request.
pub struct PushingNotifier {
    pub hub: Arc<DeviceHub>,
    pub sender: Arc<WebPushSender>,
}

impl Notifier for PushingNotifier {
    fn notify(&self, device: &DeviceId, event: &DeviceEvent) {
        self.hub.notify(device, event);
        if let DeviceEvent::Request { request } = event {
            self.sender
                .push_request(device.clone(), request.id.clone(), request.expires_at);
        }
    }

    fn forget(&self, device: &DeviceId) {
        self.hub.forget(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_8291_example_subscription_keys_are_accepted() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // RFC 8291, Appendix A (also the example in docs/authenticator-protocol.md).
        let p256dh = engine
            .decode("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
            .unwrap();
        assert_eq!(p256dh.len(), 65);
        assert!(is_p256_point(&p256dh));
        let mut off_curve = p256dh.clone();
        off_curve[64] ^= 1;
        assert!(!is_p256_point(&off_curve));
        assert_eq!(engine.decode("BTBZMqHH6r4Tts7J_aSIgg").unwrap().len(), 16);
    }

    #[test]
    fn a_fresh_vapid_key_reads_back_with_the_same_public_key() {
        let (private, public) = new_vapid_key();
        assert_eq!(private.len(), 32);
        assert_eq!(public.len(), 87);
        let key = ES256KeyPair::from_bytes(&private).unwrap();
        assert_eq!(
            base64url(&key.public_key().public_key().to_bytes_uncompressed()),
            public
        );
    }
}
