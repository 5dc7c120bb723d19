//! Throttles and smart lockout's familiar places.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::ids::UserId;

use super::StoreResult;

/// One fixed-window throttle slot an operation takes before it does anything else (see
/// [`ThrottleStore::take_throttle_slot`] for what taking means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleTake {
    pub key: String,
    pub window_seconds: i64,
    pub limit: u32,
}

/// Fixed-window throttle counters and the places (browsers, addresses) users signed in from.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    // Throttles: fixed-window counters.
    /// Counts one event for `key` in the window of `window_seconds` that contains `now`, if
    /// fewer than `limit` were counted there; returns whether it was counted (allowed).
    async fn take_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
        limit: u32,
    ) -> StoreResult<bool>;
    /// Gives back one event counted in the window containing `now` (an attempt that turned
    /// out fine); never below zero.
    async fn release_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<()>;
    /// How many events `key` has in the window containing `now`.
    async fn throttle_count(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<u32>;

    // Smart lockout: the places (browsers, addresses) a user signed in from.
    /// Notes that `user` signed in successfully from `place` (a key made by
    /// `crate::throttle::browser_place` or `address_place`) at `at`, and forgets the user's
    /// places last seen before `forget_before`, so the list stays small. `NotFound` for an
    /// unknown user.
    async fn remember_familiar_place(
        &self,
        user: &UserId,
        place: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> StoreResult<()>;
    /// When `user` last signed in successfully from `place`, if ever (and not forgotten).
    async fn familiar_place_seen(
        &self,
        user: &UserId,
        place: &str,
    ) -> StoreResult<Option<Timestamp>>;
}
