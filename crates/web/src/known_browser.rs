//! The known-browser cookie (smart lockout): a browser that signed in as a user keeps the
//! user's own allowance of failures and notifications, whatever a stranger does elsewhere.
//!
//! The cookie holds a random browser id and its MAC under a key of its own (the server secret
//! `known-browser-key`, used for nothing else), so a client cannot make one up. That a browser
//! is known *for a user* is the store's list of (user, browser) pairs that signed in, which the
//! domain keeps; the cookie alone vouches for no user. It never carries a session and is not
//! removed at sign-out: it only says "this browser signed in here before".

use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use latchkey_domain::ids::BrowserId;
use latchkey_domain::secret::{keyed_mac, keyed_mac_matches};
use latchkey_domain::throttle::KNOWN_BROWSER_SECONDS;

use crate::AppState;

pub const COOKIE: &str = "lk_browser";

/// What the MAC covers besides the id, so the key's output can mean nothing else.
const LABEL: &[u8] = b"latchkey known-browser v1:";

fn mac(key: &[u8], id: &str) -> String {
    keyed_mac(key, &[LABEL, id.as_bytes()].concat())
}

/// The browser id in `value` if its MAC is right; `None` for anything else.
fn open(key: &[u8], value: &str) -> Option<BrowserId> {
    if value.len() > 128 {
        return None;
    }
    let (id, tag) = value.split_once('.')?;
    let well_formed = (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit());
    (well_formed && keyed_mac_matches(key, &[LABEL, id.as_bytes()].concat(), tag))
        .then(|| BrowserId::from_string(id))
}

/// The checked browser id of the request, if it carries a genuine cookie.
pub fn from_headers(state: &crate::AppParts, headers: &HeaderMap) -> Option<BrowserId> {
    let jar = CookieJar::from_headers(headers);
    open(&state.known_browser_key, jar.get(COOKIE)?.value())
}

/// The browser's id (its own, or a new one with the cookie that carries it), for the domain to
/// remember with the user it signs in as. The jar with a new cookie is sent only with a
/// successful sign-in, so a browser that never signed in gets no cookie.
pub fn ensure(state: &AppState, jar: CookieJar) -> (CookieJar, BrowserId) {
    if let Some(id) = jar
        .get(COOKIE)
        .and_then(|c| open(&state.known_browser_key, c.value()))
    {
        return (jar, id);
    }
    let id = BrowserId::random();
    let value = format!("{id}.{}", mac(&state.known_browser_key, id.as_str()));
    // Parsed rather than built only to set Max-Age without naming the cookie crate's `time`.
    let mut cookie = Cookie::parse(format!("{COOKIE}={value}; Max-Age={KNOWN_BROWSER_SECONDS}"))
        .expect("a well-formed cookie")
        .into_owned();
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_secure(state.secure_cookies);
    cookie.set_same_site(SameSite::Lax);
    (jar.add(cookie), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a known-browser key for the tests";

    #[test]
    fn only_a_cookie_made_with_the_key_opens() {
        let id = BrowserId::random();
        let value = format!("{id}.{}", mac(KEY, id.as_str()));
        assert_eq!(open(KEY, &value), Some(id.clone()));
        assert_eq!(open(b"another key", &value), None, "another key");
        let other = BrowserId::random();
        let swapped = format!("{other}.{}", mac(KEY, id.as_str()));
        assert_eq!(open(KEY, &swapped), None, "a MAC moved to another id");
        for bad in [
            "",
            ".",
            id.as_str(),
            &format!("{id}."),
            &format!(".{}", mac(KEY, id.as_str())),
            &format!("not-hex!.{}", mac(KEY, "not-hex!")),
            &format!("{}.{}", "a".repeat(200), mac(KEY, &"a".repeat(200))),
        ] {
            assert_eq!(open(KEY, bad), None, "{bad:?}");
        }
        // The plain HMAC of the id (what another use of a shared key would give) is no MAC.
        let unlabelled = format!("{id}.{}", keyed_mac(KEY, id.as_str().as_bytes()));
        assert_eq!(open(KEY, &unlabelled), None);
    }
}
