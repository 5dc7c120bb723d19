//! Reading the `Authorization` header. Scheme names are case-insensitive (RFC 9110 §11.1).

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The credentials after `scheme` in the `Authorization` header, if it uses that scheme.
pub fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The client id and secret in HTTP Basic credentials as OAuth clients send them
/// (RFC 6749 §2.3.1): base64 of the form-urlencoded id, a colon, the form-urlencoded secret.
pub fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Each half is one form-urlencoded value: a raw `&` in it is a character, not a separator
    // after which the rest would be dropped.
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("v={}", s.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((
        decode(id).unwrap_or_default(),
        decode(secret).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_match_regardless_of_case() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(credentials(&headers, "Bearer"), Some("abc"));
        assert_eq!(credentials(&headers, "Basic"), None);
    }

    #[test]
    fn basic_credentials_keep_every_character() {
        let basic = |text: &str| basic_credentials(&STANDARD.encode(text));
        assert_eq!(basic("app:s3cret"), Some(("app".into(), "s3cret".into())));
        assert_eq!(
            basic("my+app%3A1:p%40ss%26word"),
            Some(("my app:1".into(), "p@ss&word".into()))
        );
        // Found by fuzzing: everything after a raw `&` used to be dropped, so "s&anything"
        // passed for the secret "s".
        assert_eq!(basic("app:a&b=c"), Some(("app".into(), "a&b=c".into())));
        assert_eq!(basic("appsecret"), None);
    }
}
