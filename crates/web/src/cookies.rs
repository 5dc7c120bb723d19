//! Cookies: the session, the sign-in in progress, and CSRF protection.
//!
//! CSRF uses a signed double-submit: a random `lk_csrf` cookie, and in every form its HMAC
//! under the server's key. A site that can plant cookies still cannot compute the MAC.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use latchkey_domain::secret::{keyed_mac, keyed_mac_matches, random_token};

use crate::AppState;

pub const SESSION: &str = "lk_session";
pub const SIGN_IN: &str = "lk_signin";
pub const CSRF: &str = "lk_csrf";

pub fn build(
    state: &AppState,
    name: &'static str,
    value: String,
    same_site: SameSite,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(same_site)
        .build()
}

pub fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build((name, "")).path("/").build()
}

/// The CSRF token for this browser's forms, setting the cookie it is bound to if needed.
pub fn csrf_token(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let (jar, value) = match jar
        .get(CSRF)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 64)
    {
        Some(value) => (jar, value),
        None => {
            let value = random_token().expose().to_string();
            (
                jar.add(build(state, CSRF, value.clone(), SameSite::Lax)),
                value,
            )
        }
    };
    let token = keyed_mac(&state.cookie_key, value.as_bytes());
    (jar, token)
}

/// Whether a submitted form carries the token for this browser's CSRF cookie.
pub fn csrf_ok(state: &AppState, jar: &CookieJar, submitted: &str) -> bool {
    match jar.get(CSRF) {
        Some(cookie) if !submitted.is_empty() => {
            keyed_mac_matches(&state.cookie_key, cookie.value().as_bytes(), submitted)
        }
        _ => false,
    }
}
