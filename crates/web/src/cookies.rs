//! Cookies: their names and attributes, the keys behind them, and CSRF protection.
//!
//! One key per purpose: each is derived from the stored `cookie-key` secret with its own HKDF
//! label ([`KeyPurpose`]), so nothing made with one key can be presented as made with another.
//!
//! A CSRF token is the HMAC of the server-side thing the form acts on: the session for
//! signed-in pages, the pending sign-in for the sign-in pages, My Apps' own session for its
//! form. Never of a value the browser chooses: a token minted in one browser's session is
//! worthless in another's, even if an attacker plants cookies.
//!
//! Over TLS every cookie is named `__Host-…`: the browser then only accepts it from this
//! origin with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant it.

use axum::extract::FromRef;
use axum_extra::extract::cookie::{Cookie, CookieJar, Key, SameSite};
use latchkey_domain::ids::{SessionId, SignInId};
use latchkey_domain::secret::{derive_key, keyed_mac, keyed_mac_matches};

use crate::AppState;
use crate::error::PageError;

/// A cookie's name, plain over HTTP and `__Host-` prefixed over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieName {
    plain: &'static str,
    host: &'static str,
}

impl CookieName {
    /// `host` must be `plain` with the `__Host-` prefix (checked in the tests below).
    pub const fn new(plain: &'static str, host: &'static str) -> Self {
        CookieName { plain, host }
    }

    /// The name this server uses: prefixed when it is reached over TLS.
    pub fn of(self, state: &AppState) -> &'static str {
        if state.secure_cookies {
            self.host
        } else {
            self.plain
        }
    }
}

/// The browser's session at the identity provider (its value stands for a stored session).
pub const SESSION: CookieName = CookieName::new("lk_session", "__Host-lk_session");
/// The sign-in in progress in this browser (its id).
pub const SIGN_IN: CookieName = CookieName::new("lk_signin", "__Host-lk_signin");
/// My Apps' signed session (see `myapps.rs`).
pub const MY_APPS_SESSION: CookieName = CookieName::new("lk_myapps", "__Host-lk_myapps");
/// My Apps' signed login in flight: state, nonce and PKCE verifier.
pub const MY_APPS_LOGIN: CookieName = CookieName::new("lk_myapps_login", "__Host-lk_myapps_login");

/// The value of cookie `name`, if the browser sent one of a sane size.
pub fn get<'a>(state: &AppState, jar: &'a CookieJar, name: CookieName) -> Option<&'a str> {
    jar.get(name.of(state))
        .map(|c| c.value())
        .filter(|v| !v.is_empty() && v.len() <= 4096)
}

pub fn build(
    state: &AppState,
    name: CookieName,
    value: String,
    same_site: SameSite,
) -> Cookie<'static> {
    Cookie::build((name.of(state), value))
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(same_site)
        .build()
}

/// A cookie that removes `name`. It carries the same attributes, as a browser ignores a
/// `__Host-` cookie without `Secure` even when it only expires one.
pub fn removal(state: &AppState, name: CookieName) -> Cookie<'static> {
    let mut cookie = build(state, name, String::new(), SameSite::Lax);
    cookie.make_removal();
    cookie
}

/// What a key derived from the cookie secret is for. Each has its own HKDF label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    CsrfTokens,
    MyAppsCookies,
}

impl KeyPurpose {
    fn label(self) -> &'static str {
        match self {
            KeyPurpose::CsrfTokens => "latchkey/web/csrf-tokens/v1",
            KeyPurpose::MyAppsCookies => "latchkey/web/my-apps-cookies/v1",
        }
    }
}

/// The key for `purpose`, derived from the stored secret (cheap: two HMACs).
fn key<const N: usize>(state: &AppState, purpose: KeyPurpose) -> [u8; N] {
    derive_key(&state.cookie_key, purpose.label())
}

/// The key of My Apps' signed cookie jar (`SignedCookieJar<MyAppsKey>`).
#[derive(Clone)]
pub struct MyAppsKey(Key);

impl FromRef<AppState> for MyAppsKey {
    fn from_ref(state: &AppState) -> Self {
        MyAppsKey(Key::from(&key::<64>(state, KeyPurpose::MyAppsCookies)))
    }
}

impl From<MyAppsKey> for Key {
    fn from(key: MyAppsKey) -> Key {
        key.0
    }
}

/// What a form acts on; its CSRF token is bound to it.
#[derive(Debug, Clone, Copy)]
pub enum CsrfScope<'a> {
    /// A signed-in page (security info, the console, sign-out): the server-side session.
    Session(&'a SessionId),
    /// A sign-in page: the pending sign-in (stored, or about to be stored on its first post).
    SignIn(&'a SignInId),
    /// My Apps' sign-out: the random id inside My Apps' signed session cookie.
    MyApps(&'a str),
    /// The logout confirmation shown to a browser with no session: it can end nothing.
    NoSession,
}

impl CsrfScope<'_> {
    /// Kind and id, separated by a byte no id contains, so that no two scopes share a message.
    fn message(&self) -> Vec<u8> {
        let (kind, id) = match self {
            CsrfScope::Session(id) => ("session", id.as_str()),
            CsrfScope::SignIn(id) => ("sign-in", id.as_str()),
            CsrfScope::MyApps(id) => ("my-apps", *id),
            CsrfScope::NoSession => ("no-session", ""),
        };
        [kind.as_bytes(), b"\0", id.as_bytes()].concat()
    }
}

/// The CSRF token for forms acting on `scope`.
pub fn csrf_token(state: &AppState, scope: CsrfScope<'_>) -> String {
    keyed_mac(&key::<32>(state, KeyPurpose::CsrfTokens), &scope.message())
}

/// Whether a submitted form carries the token for `scope`.
fn csrf_ok(state: &AppState, scope: CsrfScope<'_>, submitted: &str) -> bool {
    !submitted.is_empty()
        && submitted.len() <= 128
        && keyed_mac_matches(
            &key::<32>(state, KeyPurpose::CsrfTokens),
            &scope.message(),
            submitted,
        )
}

/// Refuses a form that does not carry the token for `scope` ("Your form expired"). Called by
/// the extractors (`extract`, `console::AdminForm`) and by My Apps' one form.
pub fn require_csrf(
    state: &AppState,
    scope: CsrfScope<'_>,
    submitted: &str,
) -> Result<(), PageError> {
    if csrf_ok(state, scope, submitted) {
        Ok(())
    } else {
        Err(PageError::csrf())
    }
}

/// The sign-in this browser's cookie names. The cookie holds the sign-in's id and, while it is
/// only drafted, `.` and where it returns to (base64url): nothing about a draft is stored
/// until its user name is posted.
pub fn sign_in_id(state: &AppState, jar: &CookieJar) -> Option<SignInId> {
    get(state, jar, SIGN_IN)
        .map(|v| v.split('.').next().unwrap_or_default())
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .map(SignInId::from_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_name_is_its_plain_name_with_the_prefix() {
        for name in [SESSION, SIGN_IN, MY_APPS_SESSION, MY_APPS_LOGIN] {
            assert_eq!(name.host, format!("__Host-{}", name.plain));
        }
    }

    #[test]
    fn scopes_never_share_a_message() {
        let session = SessionId::from_string("abc");
        let sign_in = SignInId::from_string("abc");
        let messages = [
            CsrfScope::Session(&session).message(),
            CsrfScope::SignIn(&sign_in).message(),
            CsrfScope::MyApps("abc").message(),
            CsrfScope::NoSession.message(),
        ];
        for (i, a) in messages.iter().enumerate() {
            for b in &messages[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
