//! Web Push (RFC 8030, with RFC 8291 message encryption and RFC 8292 VAPID): the bodies of the
//! signed push endpoints and the one message the server pushes. Documented in
//! `docs/authenticator-protocol.md` ("Web Push") and `docs/web-push.md`.

use serde::{Deserialize, Serialize};

/// The longest push endpoint URL a device may register. Real push services' endpoints are a
/// few hundred characters.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// The `p256dh` key: an uncompressed P-256 point, 65 bytes.
pub const P256DH_LEN: usize = 65;
/// The `auth` secret: 16 bytes (RFC 8291 §3.2).
pub const AUTH_SECRET_LEN: usize = 16;

/// `GET /push`: what `pushManager.subscribe` needs, and whether this device has a
/// subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushStatus {
    /// The server's VAPID public key (the `applicationServerKey`): an uncompressed P-256
    /// point, base64url, 87 characters.
    pub vapid_public_key: String,
    pub subscribed: bool,
}

/// `PUT /push-subscription`: the browser's `PushSubscription.toJSON()`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PushSubscriptionBody {
    pub endpoint: String,
    /// When the push service will end the subscription (milliseconds since the epoch), if it
    /// says; browsers send `null`. Read and not kept: a dead subscription answers 404 or 410.
    #[serde(rename = "expirationTime", default)]
    pub expiration_time: Option<serde_json::Number>,
    pub keys: PushSubscriptionKeys,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PushSubscriptionKeys {
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    pub auth: String,
}

/// The plaintext of every push: only a request id. The app fetches the request itself over
/// the signed `GET /requests`, so a push service learns nothing, and a push that arrives late
/// or twice changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PushMessage {
    Request { id: String },
}
