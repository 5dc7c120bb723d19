//! A device's signed request: the four `x-latchkey-*` headers, the public key it registered,
//! and the signature over the request.
//!
//! Properties: headers pass the shape checks only when all four are present, the nonce is
//! 16 to 64 base64url characters and the timestamp is within the freshness window; a public
//! key is accepted only as an uncompressed P-256 point and survives a JSON round trip;
//! verifying arbitrary bytes never panics and never succeeds against a key whose private half
//! the input cannot know; a real signature verifies, but not for any other request; and two
//! well-formed requests that differ are never signed as the same bytes.

#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::service::SignedDeviceRequest;
use latchkey_protocol::{
    DeviceKeyPair, FRESHNESS_SECONDS, MAX_NONCE_LEN, MIN_NONCE_LEN, PublicKey,
    request_signing_input, verify_signature,
};
use libfuzzer_sys::fuzz_target;

/// One request as the server sees it: four headers, the request line, the body.
#[derive(Debug)]
struct Request {
    device_id: String,
    timestamp: String,
    nonce: String,
    signature: String,
    method: String,
    path: String,
    body: Vec<u8>,
}

impl Request {
    fn read(fields: &mut impl Iterator<Item = Vec<u8>>) -> Request {
        let mut text = || String::from_utf8_lossy(&fields.next().unwrap_or_default()).into_owned();
        Request {
            device_id: text(),
            timestamp: text(),
            nonce: text(),
            signature: text(),
            method: text(),
            path: text(),
            body: fields.next().unwrap_or_default(),
        }
    }
}

/// Made fresh for each run: the input cannot contain a signature by it, except by forging one.
fn server_known_key() -> &'static DeviceKeyPair {
    static KEY: OnceLock<DeviceKeyPair> = OnceLock::new();
    KEY.get_or_init(|| DeviceKeyPair::generate().expect("a P-256 key"))
}

fn signed<'a>(r: &'a Request, path: &'a str) -> SignedDeviceRequest<'a> {
    SignedDeviceRequest {
        device_id: &r.device_id,
        timestamp: &r.timestamp,
        nonce: &r.nonce,
        signature: &r.signature,
        method: &r.method,
        path,
        body: &r.body,
    }
}

fn well_formed_nonce(nonce: &str) -> bool {
    (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The signing input of a request whose headers passed the checks.
fn message(r: &Request, timestamp: i64) -> Vec<u8> {
    request_signing_input(&r.method, &r.path, timestamp, &r.nonce, &r.body)
}

// One field a line: the server's clock, a public key, then two requests of seven fields each
// (device id, timestamp, nonce, signature, method, path, body); the last body takes the rest.
fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(16, |&b| b == b'\n').map(<[u8]>::to_vec);
    let now = String::from_utf8_lossy(&fields.next().unwrap_or_default())
        .trim()
        .parse::<i64>()
        .unwrap_or(1_700_000_000);
    let public_key = String::from_utf8_lossy(&fields.next().unwrap_or_default()).into_owned();
    let request = Request::read(&mut fields);
    let other = Request::read(&mut fields);
    let checked = signed(&request, &request.path).checked_timestamp(Timestamp(now));
    if let Ok(timestamp) = checked {
        assert!(
            ![
                &request.device_id,
                &request.timestamp,
                &request.nonce,
                &request.signature
            ]
            .iter()
            .any(|h| h.is_empty())
        );
        assert!(request.device_id.len() <= 64);
        assert_eq!(request.timestamp.parse::<i64>().ok(), Some(timestamp));
        assert!(now.abs_diff(timestamp) <= FRESHNESS_SECONDS.unsigned_abs());
        assert!(well_formed_nonce(&request.nonce), "{:?}", request.nonce);
    }

    // Arbitrary keys: accepted only as a 65-byte uncompressed point; never a panic.
    if let Ok(key) = PublicKey::parse(&public_key) {
        assert_eq!(key.as_str(), public_key);
        let bytes = URL_SAFE_NO_PAD
            .decode(&public_key)
            .expect("accepted keys are base64url");
        assert!(bytes.len() == 65 && bytes[0] == 0x04);
        let json = serde_json::to_string(&key).expect("serializes");
        assert_eq!(
            serde_json::from_str::<PublicKey>(&json).ok(),
            Some(key.clone())
        );
        let _ = verify_signature(&key, &request.body, &request.signature);
    }

    let pair = server_known_key();
    let key = pair.public_key();
    let timestamp = *checked.as_ref().unwrap_or(&now);
    let wanted = message(&request, timestamp);
    assert!(
        !verify_signature(&key, &wanted, &request.signature),
        "an arbitrary signature verified: {request:?}"
    );
    assert!(!verify_signature(&key, &request.body, &request.signature));

    // A real signature verifies for its request and no other.
    let real = pair.sign(&wanted);
    assert!(verify_signature(&key, &wanted, &real));
    let other_checked = signed(&other, &other.path).checked_timestamp(Timestamp(now));
    let (Ok(timestamp), Ok(other_timestamp)) = (checked, other_checked) else {
        return;
    };
    // Methods and paths come from the request line, which cannot hold a line break.
    if [&request.method, &request.path, &other.method, &other.path]
        .iter()
        .any(|s| s.contains(['\n', '\r']))
    {
        return;
    }
    let same_request = request.method.to_ascii_uppercase() == other.method.to_ascii_uppercase()
        && request.path == other.path
        && timestamp == other_timestamp
        && request.nonce == other.nonce
        && request.body == other.body;
    let other_message = message(&other, other_timestamp);
    assert_eq!(
        wanted == other_message,
        same_request,
        "{request:?} and {other:?} sign the same bytes"
    );
    if !same_request {
        assert!(!verify_signature(&key, &other_message, &real));
    }
});
