//! Reading the `Authorization` header. Scheme names are case-insensitive (RFC 9110 §11.1).

use axum::http::{HeaderMap, HeaderValue, header};
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

/// A `WWW-Authenticate` challenge (RFC 9110 §11.6.1): every parameter's value is a
/// quoted-string with `"` and `\` escaped, so a value cannot end the string early or add
/// parameters of its own; characters a header cannot carry (controls, non-ASCII) become `?`.
pub fn challenge(scheme: &str, params: &[(&str, &str)]) -> HeaderValue {
    let mut value = scheme.to_string();
    for (i, (name, param)) in params.iter().enumerate() {
        value.push_str(if i == 0 { " " } else { ", " });
        value.push_str(name);
        value.push_str("=\"");
        for c in param.chars() {
            match c {
                '"' | '\\' => {
                    value.push('\\');
                    value.push(c);
                }
                ' '..='~' => value.push(c),
                _ => value.push('?'),
            }
        }
        value.push('"');
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
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

    #[test]
    fn a_quote_or_backslash_in_an_error_description_cannot_break_out_of_the_challenge() {
        let value = challenge(
            "Bearer",
            &[
                ("error", "invalid_token"),
                ("error_description", r#"bad", scope="admin \ x"#),
            ],
        );
        assert_eq!(
            value.to_str().unwrap(),
            r#"Bearer error="invalid_token", error_description="bad\", scope=\"admin \\ x""#
        );
        // Read back as a client would: one quoted-string, the original text inside.
        let text = value.to_str().unwrap();
        let start = text.find("error_description=\"").unwrap() + "error_description=\"".len();
        let (mut original, mut chars) = (String::new(), text[start..].chars());
        while let Some(c) = chars.next() {
            match c {
                '\\' => original.push(chars.next().unwrap()),
                '"' => break,
                c => original.push(c),
            }
        }
        assert_eq!(original, r#"bad", scope="admin \ x"#);
        assert_eq!(
            chars.as_str(),
            "",
            "nothing after the description's closing quote"
        );
        let odd = challenge(
            "Bearer",
            &[("error_description", "line\r\nSet-Cookie: x\u{202e}")],
        );
        assert_eq!(
            odd.to_str().unwrap(),
            r#"Bearer error_description="line??Set-Cookie: x?""#
        );
    }
}
