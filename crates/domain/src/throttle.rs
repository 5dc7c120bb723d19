//! Throttles: how many notifications, wrong numbers and failed passes or passwords are allowed
//! per user, client address and device in a window, before Latchkey stops sending or trying.
//!
//! Counters live in the store (fixed windows), not in process memory, so the limits hold when
//! several server instances share one database.

use serde::{Deserialize, Serialize};

/// A limit: at most `limit` events in `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub limit: u32,
    pub window_seconds: i64,
}

impl Limit {
    /// Seconds from `now` (Unix seconds) to the end of the current window.
    pub fn seconds_left(&self, now: i64) -> i64 {
        let window = self.window_seconds.max(1);
        window - now.rem_euclid(window)
    }

    pub const fn new(limit: u32, window_seconds: i64) -> Limit {
        Limit {
            limit,
            window_seconds,
        }
    }
}

/// Every throttle and its default. The reasons for the numbers are in `docs/throttling.md`.
///
/// The per-user limits come in two allowances (smart lockout): one for [`Place::Familiar`]
/// places, where the user signed in before, and a smaller one shared by every
/// [`Place::Unfamiliar`] place. A stranger who knows the name uses up only the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleLimits {
    /// Notifications sent to one user's devices for sign-ins from familiar places.
    pub notifications_per_user: Limit,
    /// Notifications sent to one user's devices for sign-ins from unfamiliar places, all of
    /// them together.
    pub notifications_per_user_unfamiliar: Limit,
    /// Notifications caused by sign-ins from one client address.
    pub notifications_per_ip: Limit,
    /// Wrong numbers typed by one user; past this, no more notifications for a while.
    pub wrong_numbers_per_user: Limit,
    /// Failed passes and passwords for one user from familiar places.
    pub failed_credentials_per_user: Limit,
    /// Failed passes and passwords for one user from unfamiliar places, all of them together
    /// (and for a name that belongs to nobody, which has no familiar place).
    pub failed_credentials_per_user_unfamiliar: Limit,
    /// Failed passes and passwords from one client address.
    pub failed_credentials_per_ip: Limit,
    /// Answers one device may send.
    pub answers_per_device: Limit,
    /// Device-grant user codes one signed-in user may type that match nothing (guessing).
    pub wrong_user_codes_per_user: Limit,
    /// Device-grant user codes typed from one client address that match nothing.
    pub wrong_user_codes_per_ip: Limit,
    /// Device-grant user codes typed anywhere that match nothing, all together: the bound on
    /// guessing from many accounts and addresses at once.
    pub wrong_user_codes_global: Limit,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            notifications_per_user: Limit::new(10, 15 * 60),
            notifications_per_user_unfamiliar: Limit::new(3, 15 * 60),
            notifications_per_ip: Limit::new(30, 15 * 60),
            wrong_numbers_per_user: Limit::new(3, 15 * 60),
            failed_credentials_per_user: Limit::new(20, 15 * 60),
            failed_credentials_per_user_unfamiliar: Limit::new(10, 15 * 60),
            failed_credentials_per_ip: Limit::new(60, 15 * 60),
            answers_per_device: Limit::new(30, 60),
            wrong_user_codes_per_user: Limit::new(10, 15 * 60),
            wrong_user_codes_per_ip: Limit::new(20, 15 * 60),
            wrong_user_codes_global: Limit::new(500, 15 * 60),
        }
    }
}

/// How long a browser that signed in as a user stays familiar for that user after its last
/// successful sign-in. The cookie lives as long (see the web edge's `known_browser`).
pub const KNOWN_BROWSER_SECONDS: i64 = 180 * 86_400;

/// How long an address a user signed in from stays familiar for that user after the last
/// successful sign-in from it: long enough for a home or office address, short enough that
/// an address handed to someone else by the provider soon stops counting.
pub const RECENT_ADDRESS_SECONDS: i64 = 30 * 86_400;

/// Where a sign-in attempt comes from, as far as the user's own history tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A browser that signed in as this user before (its known-browser cookie), or an
    /// address the user signed in from recently.
    Familiar,
    /// Anywhere else; every such place shares one smaller allowance.
    Unfamiliar,
}

/// What the store remembers a familiar place by: the hash of a browser id (so a copy of the
/// database holds no cookie value), or the client address as text.
pub fn browser_place(browser: &crate::ids::BrowserId) -> String {
    format!(
        "browser:{}",
        crate::secret::base64url(&crate::secret::sha256(browser.as_str().as_bytes()))
    )
}

pub fn address_place(ip: std::net::IpAddr) -> String {
    format!("address:{ip}")
}

impl ThrottleLimits {
    /// Seconds until the windows of every throttle on passes, passwords and passkey answers
    /// have ended, at `now` (Unix seconds): how long a person stopped by one of them waits.
    /// Windows are fixed and start at multiples of their length.
    pub fn credential_wait_seconds(&self, now: i64) -> i64 {
        [
            self.failed_credentials_per_user,
            self.failed_credentials_per_user_unfamiliar,
            self.failed_credentials_per_ip,
        ]
        .iter()
        .map(|limit| limit.seconds_left(now))
        .max()
        .unwrap_or(0)
    }

    /// Seconds until the windows of every throttle that holds back notifications have ended.
    pub fn notification_wait_seconds(&self, now: i64) -> i64 {
        [
            self.notifications_per_user,
            self.notifications_per_user_unfamiliar,
            self.notifications_per_ip,
            self.wrong_numbers_per_user,
        ]
        .iter()
        .map(|limit| limit.seconds_left(now))
        .max()
        .unwrap_or(0)
    }

    /// Seconds until the windows of the throttles on wrong device-grant user codes have ended.
    pub fn user_code_wait_seconds(&self, now: i64) -> i64 {
        [
            self.wrong_user_codes_per_user,
            self.wrong_user_codes_per_ip,
            self.wrong_user_codes_global,
        ]
        .iter()
        .map(|limit| limit.seconds_left(now))
        .max()
        .unwrap_or(0)
    }

    /// Limits must allow something and windows be between a second and a day.
    pub fn validate(&self) -> Result<(), String> {
        for (name, l) in [
            ("notifications_per_user", self.notifications_per_user),
            (
                "notifications_per_user_unfamiliar",
                self.notifications_per_user_unfamiliar,
            ),
            ("notifications_per_ip", self.notifications_per_ip),
            ("wrong_numbers_per_user", self.wrong_numbers_per_user),
            (
                "failed_credentials_per_user",
                self.failed_credentials_per_user,
            ),
            (
                "failed_credentials_per_user_unfamiliar",
                self.failed_credentials_per_user_unfamiliar,
            ),
            ("failed_credentials_per_ip", self.failed_credentials_per_ip),
            ("answers_per_device", self.answers_per_device),
            ("wrong_user_codes_per_user", self.wrong_user_codes_per_user),
            ("wrong_user_codes_per_ip", self.wrong_user_codes_per_ip),
            ("wrong_user_codes_global", self.wrong_user_codes_global),
        ] {
            if l.limit == 0 || !(1..=86_400).contains(&l.window_seconds) {
                return Err(format!(
                    "throttle.{name}: limit must be at least 1 and window_seconds 1 to 86400"
                ));
            }
        }
        Ok(())
    }
}

/// The store key of a counter: what is counted, and for whom.
pub fn key(what: &str, subject: &str) -> String {
    format!("{what}:{subject}")
}
