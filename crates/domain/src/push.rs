//! Web Push: the server's VAPID key and each device's push subscription, and the rules a
//! subscription must meet before the server will ever send to it.
//!
//! A subscription names a URL the server will later POST to. A device chooses that URL, so
//! without rules a device (or a copy of its key) could make the server send requests into the
//! operator's own network. The rules here are the ones that need no network: `https` only, no
//! credentials in the URL, no loopback, private, link-local or otherwise special address as the
//! host. The web edge adds what needs DNS (the name's addresses, checked again at every send).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_protocol::push::{
    AUTH_SECRET_LEN, MAX_ENDPOINT_LEN, P256DH_LEN, PushSubscriptionBody,
};

use crate::clock::Timestamp;
use crate::ids::DeviceId;

/// The server's VAPID (RFC 8292) key pair: made once, at first start, and kept in the store
/// so that every instance and every restart signs with the same key (a subscription is bound
/// to the key it was made for).
#[derive(Clone, PartialEq, Eq)]
pub struct VapidKey {
    /// The P-256 private scalar, 32 bytes big-endian. Never logged.
    pub private_key: Vec<u8>,
    /// The uncompressed public point, base64url (87 characters): the browsers'
    /// `applicationServerKey`.
    pub public_key: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// One device's push subscription: where its push service accepts messages for it, and the
/// keys that encrypt them for the device alone (RFC 8291).
#[derive(Clone, PartialEq, Eq)]
pub struct PushSubscription {
    pub device_id: DeviceId,
    /// The push service's URL for this device: a capability, never logged whole.
    pub endpoint: String,
    /// The browser's P-256 public key, base64url of 65 bytes.
    pub p256dh: String,
    /// The browser's authentication secret, base64url of 16 bytes.
    pub auth: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for PushSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSubscription")
            .field("device_id", &self.device_id)
            .field("endpoint_host", &endpoint_host(&self.endpoint))
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The host of an endpoint, for logs: the path and query of a push endpoint identify the
/// subscription and stay out of logs.
pub fn endpoint_host(endpoint: &str) -> String {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Why a subscription was refused: a stable code and a sentence for the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRefused {
    pub code: &'static str,
    pub message: String,
}

fn refused(code: &'static str, message: impl Into<String>) -> SubscriptionRefused {
    SubscriptionRefused {
        code,
        message: message.into(),
    }
}

/// A subscription that passed the rules that need no network, with its keys decoded.
#[derive(Debug, Clone)]
pub struct CheckedSubscription {
    pub endpoint: url::Url,
    pub p256dh: [u8; P256DH_LEN],
    pub auth: [u8; AUTH_SECRET_LEN],
}

impl CheckedSubscription {
    pub fn into_subscription(self, device_id: DeviceId, now: Timestamp) -> PushSubscription {
        PushSubscription {
            device_id,
            endpoint: self.endpoint.to_string(),
            p256dh: URL_SAFE_NO_PAD.encode(self.p256dh),
            auth: URL_SAFE_NO_PAD.encode(self.auth),
            created_at: now,
        }
    }
}

/// Checks a subscription a device sent. `allow_private` (the `[web_push]
/// allow_private_endpoints` setting, for tests and closed networks) lets the host be a
/// loopback or private address; `https` is required either way. Whether `p256dh` is a point on
/// the curve is checked by the edge, which owns the elliptic-curve code that will use it.
pub fn check_subscription(
    body: &PushSubscriptionBody,
    allow_private: bool,
) -> Result<CheckedSubscription, SubscriptionRefused> {
    let endpoint = check_endpoint(&body.endpoint, allow_private)?;
    if let Some(when) = &body.expiration_time
        && when.as_u64().is_none()
    {
        return Err(refused(
            "bad_subscription",
            "expirationTime must be null or a whole number of milliseconds",
        ));
    }
    let p256dh = decode_fixed::<P256DH_LEN>(&body.keys.p256dh).ok_or_else(|| {
        refused(
            "bad_subscription",
            "keys.p256dh must be an uncompressed P-256 point, base64url (65 bytes)",
        )
    })?;
    if p256dh[0] != 0x04 {
        return Err(refused(
            "bad_subscription",
            "keys.p256dh must be an uncompressed P-256 point, base64url (65 bytes)",
        ));
    }
    let auth = decode_fixed::<AUTH_SECRET_LEN>(&body.keys.auth)
        .ok_or_else(|| refused("bad_subscription", "keys.auth must be 16 bytes, base64url"))?;
    Ok(CheckedSubscription {
        endpoint,
        p256dh,
        auth,
    })
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    // A longer text cannot decode to N bytes; refuse it before decoding.
    if text.len() > N.div_ceil(3) * 4 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

/// The endpoint rules that need no DNS.
pub fn check_endpoint(
    endpoint: &str,
    allow_private: bool,
) -> Result<url::Url, SubscriptionRefused> {
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(refused(
            "bad_endpoint",
            format!("the endpoint is longer than {MAX_ENDPOINT_LEN} characters"),
        ));
    }
    let url = url::Url::parse(endpoint)
        .map_err(|_| refused("bad_endpoint", "the endpoint is not a URL"))?;
    if url.scheme() != "https" {
        return Err(refused("bad_endpoint", "the endpoint must be an https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused(
            "bad_endpoint",
            "the endpoint must not carry a user name or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(refused(
            "bad_endpoint",
            "the endpoint must not have a fragment",
        ));
    }
    let private = match url.host() {
        None => return Err(refused("bad_endpoint", "the endpoint has no host")),
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => is_local_name(name),
    };
    if private && !allow_private {
        return Err(refused(
            "private_endpoint",
            "the endpoint is a loopback, private or link-local address; the server sends only to public push services",
        ));
    }
    Ok(url)
}

/// Names that mean this machine or the local network whatever DNS says.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || name.ends_with(".home.arpa")
        || !name.contains('.')
}

/// Whether an address is one the server may send a push to: a globally routable unicast
/// address. Loopback, private (RFC 1918, unique local), link-local, shared (CGN), multicast,
/// documentation, benchmarking, unspecified and reserved ranges are not, and neither is an
/// IPv4 address written as IPv6 (mapped or compatible) that is not.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the old site-local, fec0::/10.
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // IPv4-compatible (::a.b.c.d) and the NAT64 prefix 64:ff9b::/96 can reach IPv4
        // addresses, private ones included.
        || (s[0..6] == [0, 0, 0, 0, 0, 0])
        || (s[0] == 0x64 && s[1] == 0xff9b)
        // Documentation, 2001:db8::/32.
        || (s[0] == 0x2001 && s[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_protocol::push::PushSubscriptionKeys;

    fn body(endpoint: &str) -> PushSubscriptionBody {
        PushSubscriptionBody {
            endpoint: endpoint.into(),
            expiration_time: None,
            keys: PushSubscriptionKeys {
                p256dh: URL_SAFE_NO_PAD.encode({
                    let mut point = [7u8; 65];
                    point[0] = 4;
                    point
                }),
                auth: URL_SAFE_NO_PAD.encode([1u8; 16]),
            },
        }
    }

    #[test]
    fn ssrf_endpoints_in_the_operators_network_are_refused() {
        for endpoint in [
            "https://127.0.0.1/push",
            "https://10.1.2.3/push",
            "https://172.16.0.1/push",
            "https://192.168.1.1/push",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://localhost/",
            "https://push.localhost/",
            "https://intranet/",
            "https://printer.local/",
        ] {
            let refused = check_subscription(&body(endpoint), false).unwrap_err();
            assert_eq!(refused.code, "private_endpoint", "{endpoint}");
            // The test setting lets them through (https still required).
            assert!(
                check_subscription(&body(endpoint), true).is_ok(),
                "{endpoint}"
            );
        }
        for public in [
            "https://fcm.googleapis.com/fcm/send/x",
            "https://8.8.8.8/",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_subscription(&body(public), false).is_ok(), "{public}");
        }
    }

    #[test]
    fn endpoints_that_are_not_plain_https_are_refused() {
        for endpoint in [
            "http://push.example.com/x",
            "ftp://push.example.com/x",
            "https://user:pw@push.example.com/x",
            "https://push.example.com/x#frag",
            "not a url",
        ] {
            let refused = check_subscription(&body(endpoint), true).unwrap_err();
            assert_eq!(refused.code, "bad_endpoint", "{endpoint}");
        }
        let long = format!("https://push.example.com/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(
            check_subscription(&body(&long), true).unwrap_err().code,
            "bad_endpoint"
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        let mut wrong_auth = body("https://push.example.com/x");
        wrong_auth.keys.auth = URL_SAFE_NO_PAD.encode([1u8; 15]);
        assert_eq!(
            check_subscription(&wrong_auth, false).unwrap_err().code,
            "bad_subscription"
        );
        let mut padded = body("https://push.example.com/x");
        padded.keys.auth = format!("{}==", padded.keys.auth);
        assert!(check_subscription(&padded, false).is_err());
        let mut compressed = body("https://push.example.com/x");
        compressed.keys.p256dh = URL_SAFE_NO_PAD.encode([2u8; 65]);
        assert!(check_subscription(&compressed, false).is_err());
        let mut short = body("https://push.example.com/x");
        short.keys.p256dh = URL_SAFE_NO_PAD.encode([4u8; 33]);
        assert!(check_subscription(&short, false).is_err());
        let mut negative = body("https://push.example.com/x");
        negative.expiration_time = Some(serde_json::Number::from(-1));
        assert!(check_subscription(&negative, false).is_err());
    }
}
