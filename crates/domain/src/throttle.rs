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
    pub const fn new(limit: u32, window_seconds: i64) -> Limit {
        Limit {
            limit,
            window_seconds,
        }
    }
}

/// Every throttle and its default. The reasons for the numbers are in `docs/throttling.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleLimits {
    /// Notifications sent to one user's devices.
    pub notifications_per_user: Limit,
    /// Notifications caused by sign-ins from one client address.
    pub notifications_per_ip: Limit,
    /// Wrong numbers typed by one user; past this, no more notifications for a while.
    pub wrong_numbers_per_user: Limit,
    /// Failed passes and passwords for one user.
    pub failed_credentials_per_user: Limit,
    /// Failed passes and passwords from one client address.
    pub failed_credentials_per_ip: Limit,
    /// Answers one device may send.
    pub answers_per_device: Limit,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            notifications_per_user: Limit::new(10, 15 * 60),
            notifications_per_ip: Limit::new(30, 15 * 60),
            wrong_numbers_per_user: Limit::new(3, 15 * 60),
            failed_credentials_per_user: Limit::new(20, 15 * 60),
            failed_credentials_per_ip: Limit::new(60, 15 * 60),
            answers_per_device: Limit::new(30, 60),
        }
    }
}

impl ThrottleLimits {
    /// Limits must allow something and windows be between a second and a day.
    pub fn validate(&self) -> Result<(), String> {
        for (name, l) in [
            ("notifications_per_user", self.notifications_per_user),
            ("notifications_per_ip", self.notifications_per_ip),
            ("wrong_numbers_per_user", self.wrong_numbers_per_user),
            (
                "failed_credentials_per_user",
                self.failed_credentials_per_user,
            ),
            ("failed_credentials_per_ip", self.failed_credentials_per_ip),
            ("answers_per_device", self.answers_per_device),
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
