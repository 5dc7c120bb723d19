//! The `Authorization` header: the scheme match every bearer and basic caller goes through,
//! and the HTTP Basic client credentials the token endpoint decodes (RFC 6749 §2.3.1).
//!
//! Properties: a scheme matches only as the header's first word, in any case, and the
//! credentials are the rest, trimmed; Basic credentials decode to exactly what an
//! `application/x-www-form-urlencoded` reading of each half gives, nothing dropped; and any
//! client id and secret, encoded as the RFC says, decode back to themselves.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, header};
use latchkey_web::auth_header::{basic_credentials, credentials};
use libfuzzer_sys::fuzz_target;

/// The form-urlencoded reading of one value, written out independently of the code under test:
/// `+` is a space, `%XX` a byte, anything else itself.
fn form_value(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(&[hi, lo]) if bytes[i] == b'%' => hex(hi).zip(hex(lo)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

// Three lines: the Authorization header's value, then a client id and a secret to encode.
fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let header_value = lines.next().unwrap_or_default();
    let client_id = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let secret = String::from_utf8_lossy(lines.next().unwrap_or_default());
    if let Ok(value) = HeaderValue::from_bytes(header_value) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.clone());
        for scheme in ["Basic", "Bearer"] {
            let Some(rest) = credentials(&headers, scheme) else {
                continue;
            };
            let text = value.to_str().expect("credentials come from a text header");
            let (given, after) = text
                .split_once(' ')
                .expect("a scheme is followed by a space");
            assert!(
                given.eq_ignore_ascii_case(scheme),
                "{text:?} matched {scheme}"
            );
            assert_eq!(rest, after.trim());
            if scheme == "Basic" {
                let decoded = basic_credentials(rest);
                let expected = STANDARD
                    .decode(rest)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| {
                        let (id, secret) = text.split_once(':')?;
                        Some((form_value(id), form_value(secret)))
                    });
                assert_eq!(decoded, expected, "Basic {rest:?}");
            }
        }
    }
    let encoded = STANDARD.encode(format!("{}:{}", encode(&client_id), encode(&secret)));
    assert_eq!(
        basic_credentials(&encoded),
        Some((client_id.into_owned(), secret.into_owned())),
        "Basic {encoded:?}"
    );
});
