//! The activation link the security-info page shows as a QR code and as text:
//! `{server}/authenticator/app/activate#code=<one-time code>` (an `https` link a phone's camera
//! opens in the browser: the web authenticator app; the code is in the fragment, so it is never
//! sent to the server, nor kept in access logs or a `Referer`). The older form
//! `latchkey://activate?server=<base URL>&code=<one-time code>` is still read.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationLink {
    /// The server's public base URL, without a trailing slash.
    pub server: String,
    pub code: String,
}

pub const SCHEME: &str = "latchkey";
/// The path of the web app's activation page, after the server's base URL.
pub const APP_ACTIVATE_PATH: &str = "/authenticator/app/activate";
const MAX_LINK_LEN: usize = 2048;
const MAX_CODE_LEN: usize = 128;
/// Long enough for any real base URL; short enough that a link to it, percent-encoded, stays
/// within [`MAX_LINK_LEN`] (three bytes for each of these, plus the code and the prefix).
const MAX_SERVER_LEN: usize = 512;

impl ActivationLink {
    /// The `https` form (or `http`, as the server's URL is): the web app's activation page
    /// with the code in the fragment.
    pub fn to_uri(&self) -> String {
        format!("{}{APP_ACTIVATE_PATH}#code={}", self.server, self.code)
    }

    /// The older `latchkey://activate?server=…&code=…` form.
    pub fn to_legacy_uri(&self) -> String {
        let mut url = Url::parse("latchkey://activate").expect("static URL");
        url.query_pairs_mut()
            .append_pair("server", &self.server)
            .append_pair("code", &self.code);
        url.to_string()
    }

    /// Reads a link in either form, refusing anything that is not exactly an activation link
    /// with an `http(s)` server and a code of sane length.
    pub fn parse(text: &str) -> Result<ActivationLink, String> {
        let text = text.trim();
        if text.len() > MAX_LINK_LEN {
            return Err("the activation link is too long".into());
        }
        let url = Url::parse(text).map_err(|_| "that is not an activation link".to_string())?;
        if matches!(url.scheme(), "http" | "https") {
            return ActivationLink::parse_app_link(text);
        }
        if url.scheme() != SCHEME || url.host_str() != Some("activate") {
            return Err("that is not a Latchkey activation link".into());
        }
        let mut server = None;
        let mut code = None;
        for (key, value) in url.query_pairs() {
            let slot = match key.as_ref() {
                "server" => &mut server,
                "code" => &mut code,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("the activation link names {key} twice"));
            }
            *slot = Some(value.into_owned());
        }
        let server = server.ok_or("the activation link has no server")?;
        let code = code.ok_or("the activation link has no code")?;
        ActivationLink::from_parts(&server, &code)
    }

    /// `{server}/authenticator/app/activate#code=…`: the server is the text before the
    /// activation path, exactly as written (so a link renders back to itself).
    fn parse_app_link(text: &str) -> Result<ActivationLink, String> {
        let (before, fragment) = text
            .split_once('#')
            .ok_or("the activation link has no code")?;
        let server = before
            .strip_suffix(APP_ACTIVATE_PATH)
            .ok_or("that is not a Latchkey activation link")?;
        if server.contains('?') {
            return Err("that is not a Latchkey activation link".into());
        }
        let mut code = None;
        for (key, value) in url::form_urlencoded::parse(fragment.as_bytes()) {
            if key != "code" {
                continue;
            }
            if code.is_some() {
                return Err("the activation link names code twice".into());
            }
            code = Some(value.into_owned());
        }
        let code = code.ok_or("the activation link has no code")?;
        ActivationLink::from_parts(server, &code)
    }

    /// For a code and server typed by hand.
    pub fn from_parts(server: &str, code: &str) -> Result<ActivationLink, String> {
        // Trailing slashes and spaces in any order, so what is kept reads the same next time.
        let server = server
            .trim_start()
            .trim_end_matches(|c: char| c == '/' || c.is_whitespace());
        if server.len() > MAX_SERVER_LEN {
            return Err("the server address is too long".into());
        }
        // The URL parser would quietly drop or encode these; a real address has none.
        if server.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("the server address cannot contain spaces or control characters".into());
        }
        // A base URL has no query or fragment; a link built on one would not read back.
        if server.contains(['?', '#']) {
            return Err("the server address cannot contain ? or #".into());
        }
        let server_url =
            Url::parse(server).map_err(|_| "the server address is not a URL".to_string())?;
        if !matches!(server_url.scheme(), "http" | "https") || server_url.host_str().is_none() {
            return Err("the server address must be an http or https URL".into());
        }
        let code = code.trim();
        if code.is_empty()
            || code.len() > MAX_CODE_LEN
            || !code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("the activation code is not valid".into());
        }
        Ok(ActivationLink {
            server: server.to_string(),
            code: code.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_round_trips_in_both_forms() {
        let link = ActivationLink {
            server: "http://localhost:8080".into(),
            code: "abc_DEF-123".into(),
        };
        assert_eq!(
            link.to_uri(),
            "http://localhost:8080/authenticator/app/activate#code=abc_DEF-123"
        );
        assert_eq!(ActivationLink::parse(&link.to_uri()).unwrap(), link);
        assert_eq!(ActivationLink::parse(&link.to_legacy_uri()).unwrap(), link);
    }

    #[test]
    fn the_https_form_keeps_the_servers_path_and_reads_the_code_from_the_fragment() {
        let link = ActivationLink::parse(
            "https://id.contoso.example/latchkey/authenticator/app/activate#code=b99vCpLg",
        )
        .unwrap();
        assert_eq!(link.server, "https://id.contoso.example/latchkey");
        assert_eq!(link.code, "b99vCpLg");
        // Other fragment parameters are ignored, as the old form's other parameters are.
        let other = ActivationLink::parse(
            "https://id.contoso.example/authenticator/app/activate#x=1&code=abc",
        )
        .unwrap();
        assert_eq!(other.code, "abc");
    }

    #[test]
    fn malformed_https_links_are_refused() {
        for bad in [
            "https://id.example/authenticator/app/activate",
            "https://id.example/authenticator/app/activate#",
            "https://id.example/authenticator/app/activate#code=",
            "https://id.example/authenticator/app/activate#code=a&code=b",
            "https://id.example/authenticator/app/activate#code=bad%20code",
            "https://id.example/authenticator/app/activate?code=abc",
            "https://id.example/authenticator/app/activat#code=abc",
            "https://id.example/x?y=1/authenticator/app/activate#code=abc",
            "ftp://id.example/authenticator/app/activate#code=abc",
            "https:///authenticator/app/activate#code=abc",
        ] {
            assert!(ActivationLink::parse(bad).is_err(), "{bad}");
        }
        assert!(ActivationLink::from_parts("https://id.example/?a", "abc").is_err());
        assert!(ActivationLink::from_parts("https://id.example/#a", "abc").is_err());
    }

    #[test]
    fn every_accepted_server_makes_a_link_that_reads_back_found_by_fuzzing() {
        // A long server full of control characters was accepted, but its link, encoded, was
        // over the length a link may have, so the app could not read the link it was shown.
        let junk = format!("https://id.example/{}", "\u{7}".repeat(600));
        assert!(ActivationLink::from_parts(&junk, "abc").is_err());
        let long = format!("https://id.example/{}", "%".repeat(MAX_SERVER_LEN));
        assert!(ActivationLink::from_parts(&long, "abc").is_err());
        let longest = format!("https://id.example/{}", "~".repeat(MAX_SERVER_LEN - 19));
        let link = ActivationLink::from_parts(&longest, &"c".repeat(MAX_CODE_LEN)).unwrap();
        assert_eq!(ActivationLink::parse(&link.to_uri()).unwrap(), link);
        assert_eq!(ActivationLink::parse(&link.to_legacy_uri()).unwrap(), link);
        let with_nul = ActivationLink::from_parts("https://id.example/a\0b", "abc");
        assert!(with_nul.unwrap_err().contains("control characters"));
        assert!(ActivationLink::from_parts("https://id.example/a b", "abc").is_err());
    }

    #[test]
    fn a_typed_server_keeps_no_trailing_slash_or_space() {
        let link = ActivationLink::from_parts(" https://id.example/ /\t", "abc").unwrap();
        assert_eq!(link.server, "https://id.example");
        // Found by fuzzing: "…/ /" used to keep a trailing space, and the link rendered from
        // it then read back as another server.
        let typed = ActivationLink::from_parts("http://a/x /", "abc").unwrap();
        assert_eq!(ActivationLink::parse(&typed.to_uri()).unwrap(), typed);
        assert_eq!(
            ActivationLink::parse(&typed.to_legacy_uri()).unwrap(),
            typed
        );
    }

    #[test]
    fn malformed_links_are_refused() {
        for bad in [
            "",
            "https://example.com/activate?code=x",
            "latchkey://other?server=http://a&code=x",
            "latchkey://activate?server=ftp://a&code=x",
            "latchkey://activate?server=http://a",
            "latchkey://activate?code=x",
            "latchkey://activate?server=http://a&code=x&code=y",
            "latchkey://activate?server=http://a&code=bad%20code",
        ] {
            assert!(ActivationLink::parse(bad).is_err(), "{bad}");
        }
        assert!(
            ActivationLink::parse(&format!(
                "latchkey://activate?server=http://a&code={}",
                "x".repeat(3000)
            ))
            .is_err()
        );
    }
}
