//! Activation links in both forms (`{server}/authenticator/app/activate#code=…` and the older
//! `latchkey://activate?server=…&code=…`), as the authenticators read them from a QR code or a
//! paste, and the server address and code as typed by hand.
//!
//! Properties: whatever is accepted is a well-formed link (an http(s) server with a host, no
//! trailing slash, no query or fragment; a code of 1 to 128 base64url characters), and it
//! renders, in either form, to a link that parses back to the same value.

#![no_main]

use latchkey_protocol::ActivationLink;
use libfuzzer_sys::fuzz_target;

fn check_accepted(link: &ActivationLink) {
    let server = url::Url::parse(&link.server).expect("an accepted server is a URL");
    assert!(matches!(server.scheme(), "http" | "https"), "{link:?}");
    assert!(server.host_str().is_some(), "{link:?}");
    assert!(!link.server.ends_with('/'), "{link:?}");
    assert!(!link.server.contains(['?', '#']), "{link:?}");
    assert!((1..=128).contains(&link.code.len()), "{link:?}");
    assert!(
        link.code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{link:?}"
    );
    let uri = link.to_uri();
    let again = ActivationLink::parse(&uri)
        .unwrap_or_else(|e| panic!("{uri:?} (rendered from {link:?}) does not parse: {e}"));
    assert_eq!(&again, link, "{uri:?} changed on a round trip");
    let legacy = link.to_legacy_uri();
    let again = ActivationLink::parse(&legacy)
        .unwrap_or_else(|e| panic!("{legacy:?} (rendered from {link:?}) does not parse: {e}"));
    assert_eq!(&again, link, "{legacy:?} changed on a round trip");
    let typed = ActivationLink::from_parts(&link.server, &link.code)
        .unwrap_or_else(|e| panic!("the parts of {link:?} are refused: {e}"));
    assert_eq!(
        &typed, link,
        "typing in the parts of {link:?} gives another link"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(link) = ActivationLink::parse(text) {
        check_accepted(&link);
    }
    // The same bytes as a server address and a code typed into two fields.
    let (server, code) = text.split_once('\n').unwrap_or((text, "code"));
    if let Ok(link) = ActivationLink::from_parts(server, code) {
        check_accepted(&link);
    }
});
