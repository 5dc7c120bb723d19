//! Applying the throttles of [`crate::throttle`]: counted in the store, checked before a
//! notification is sent or a credential is tried.
//!
//! Smart lockout: a user's own allowance is spent only from [`Place::Familiar`] places (a
//! browser that signed in as the user before, an address the user signed in from recently);
//! failures and notifications caused from anywhere else share a smaller allowance of their own,
//! so a stranger who knows the name can use that up but never the user's.

use std::sync::Arc;

use crate::clock::Clock;
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::ids::{DeviceId, UserId};
use crate::log::{SignInContext, SignInRecord};
use crate::store::{ThrottleStore, ThrottleTake};
use crate::throttle::{
    KNOWN_BROWSER_SECONDS, Limit, Place, RECENT_ADDRESS_SECONDS, ThrottleLimits, address_place,
    browser_place, key,
};
use crate::user::User;

/// The counters one credential attempt took, to give back if it succeeds.
pub(crate) struct CountedAttempt {
    pub allowed: bool,
    taken: Vec<(String, i64)>,
}

/// The throttles and the familiar places they are judged by.
pub(crate) struct Throttles {
    pub(crate) store: Arc<dyn ThrottleStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: ThrottleLimits,
}

impl Throttles {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn over(&self, counter: &str, limit: Limit, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self
            .store
            .throttle_count(counter, now, limit.window_seconds)
            .await?
            >= limit.limit)
    }

    async fn take(&self, counter: &str, limit: Limit, now: Timestamp) -> Result<bool, StoreError> {
        self.store
            .take_throttle_slot(counter, now, limit.window_seconds, limit.limit)
            .await
    }

    /// Whether `context` is a place `user` signed in from before: this browser (its cookie
    /// checked by the edge, the pair remembered here) within [`KNOWN_BROWSER_SECONDS`], or this
    /// address within [`RECENT_ADDRESS_SECONDS`].
    pub(crate) async fn place_of(
        &self,
        user: &UserId,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<Place, StoreError> {
        let recent = |seen: Option<Timestamp>, lifetime: i64| {
            seen.is_some_and(|at| now.0 - at.0 <= lifetime)
        };
        if let Some(browser) = &context.browser {
            let seen = self
                .store
                .familiar_place_seen(user, &browser_place(browser))
                .await?;
            if recent(seen, KNOWN_BROWSER_SECONDS) {
                return Ok(Place::Familiar);
            }
        }
        if let Some(ip) = context.ip_address {
            let seen = self
                .store
                .familiar_place_seen(user, &address_place(ip))
                .await?;
            if recent(seen, RECENT_ADDRESS_SECONDS) {
                return Ok(Place::Familiar);
            }
        }
        Ok(Place::Unfamiliar)
    }

    /// The places a successful sign-in makes familiar for its user: its address, and the
    /// browser it finished in (the edge's checked or just minted known-browser id), if known.
    /// The second value is when the user's places not seen since are forgotten.
    pub(crate) fn familiar_places(
        record: &SignInRecord,
        browser: Option<&crate::ids::BrowserId>,
        now: Timestamp,
    ) -> (Vec<String>, Timestamp) {
        let address = record
            .ip_address
            .as_deref()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(address_place);
        let places = address
            .into_iter()
            .chain(browser.map(browser_place))
            .collect();
        (places, forget_before(now))
    }

    /// A browser just signed in as `user`: from now on it is a familiar place for them. The
    /// edge calls this only after a successful sign-in, with the id from the browser's
    /// known-browser cookie (checked, or just minted).
    pub(crate) async fn remember_browser(
        &self,
        user: &UserId,
        browser: &crate::ids::BrowserId,
    ) -> Result<(), crate::error::DomainError> {
        let now = self.now();
        self.store
            .remember_familiar_place(user, &browser_place(browser), now, forget_before(now))
            .await?;
        Ok(())
    }

    /// The throttle slots a notification to `user` for a sign-in from `context` must take
    /// before it goes out, in order (the store takes them in the same trip that stores the
    /// request): the address's, then the user's own allowance from a familiar place or the
    /// smaller shared one from anywhere else. `None` when too many wrong numbers recently
    /// stop it outright.
    pub(crate) async fn notification_slots(
        &self,
        user: &UserId,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<Option<Vec<ThrottleTake>>, StoreError> {
        let limits = self.limits;
        if self
            .over(
                &key("wrong-number:user", user.as_str()),
                limits.wrong_numbers_per_user,
                now,
            )
            .await?
        {
            return Ok(None);
        }
        let mut slots = Vec::with_capacity(2);
        if let Some(ip) = context.ip_address {
            slots.push(slot(
                key("notify:ip", &ip.to_string()),
                limits.notifications_per_ip,
            ));
        }
        slots.push(match self.place_of(user, context, now).await? {
            Place::Familiar => slot(
                key("notify:user", user.as_str()),
                limits.notifications_per_user,
            ),
            Place::Unfamiliar => slot(
                key("notify:user-unfamiliar", user.as_str()),
                limits.notifications_per_user_unfamiliar,
            ),
        });
        Ok(Some(slots))
    }

    pub(crate) async fn count_wrong_number(&self, user: &UserId) -> Result<(), StoreError> {
        let limits = self.limits;
        self.take(
            &key("wrong-number:user", user.as_str()),
            limits.wrong_numbers_per_user,
            self.now(),
        )
        .await
        .map(|_| ())
    }

    /// Counts a pass or password attempt for this user and address before it is checked, so
    /// parallel attempts cannot all slip under the limit; `allowed` is false when a limit is
    /// reached (the attempt is then not checked at all). A successful attempt is given back
    /// with [`Throttles::credential_succeeded`], so the limits count failures in the end.
    ///
    /// From a familiar place the attempt counts against the user's own allowance; from
    /// anywhere else against the allowance all unfamiliar places share. A name that belongs to
    /// nobody has no familiar place: it is counted like an unfamiliar attempt, under the name
    /// as typed (case folded, hashed to bound the key), so that the throttle notice after too
    /// many wrong passwords does not tell an attacker which names exist.
    pub(crate) async fn credential_attempt(
        &self,
        user: Option<&User>,
        typed_name: &str,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<CountedAttempt, StoreError> {
        let limits = self.limits;
        let mut attempt = CountedAttempt {
            allowed: false,
            taken: Vec::new(),
        };
        if let Some(ip) = context.ip_address {
            let counter = key("failed:ip", &ip.to_string());
            let limit = limits.failed_credentials_per_ip;
            if !self.take(&counter, limit, now).await? {
                return Ok(attempt);
            }
            attempt.taken.push((counter, limit.window_seconds));
        }
        let (counter, limit) = match user {
            Some(user) => match self.place_of(&user.id, context, now).await? {
                Place::Familiar => (
                    key("failed:user", user.id.as_str()),
                    limits.failed_credentials_per_user,
                ),
                Place::Unfamiliar => (
                    key("failed:user-unfamiliar", user.id.as_str()),
                    limits.failed_credentials_per_user_unfamiliar,
                ),
            },
            None => {
                let name = crate::secret::sha256(typed_name.trim().to_lowercase().as_bytes());
                (
                    key("failed:name", &crate::secret::base64url(&name)),
                    limits.failed_credentials_per_user_unfamiliar,
                )
            }
        };
        attempt.allowed = self.take(&counter, limit, now).await?;
        if attempt.allowed {
            attempt.taken.push((counter, limit.window_seconds));
        }
        Ok(attempt)
    }

    pub(crate) async fn credential_succeeded(
        &self,
        attempt: CountedAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for (counter, window_seconds) in attempt.taken {
            self.store
                .release_throttle_slot(&counter, now, window_seconds)
                .await?;
        }
        Ok(())
    }

    /// The counters of user codes that matched nothing, for this user and address and for
    /// everyone together.
    fn wrong_user_code_counters(
        &self,
        user: &UserId,
        context: &SignInContext,
    ) -> Vec<(String, Limit)> {
        let limits = self.limits;
        let mut counters = vec![
            (
                key("wrong-user-code:user", user.as_str()),
                limits.wrong_user_codes_per_user,
            ),
            (
                key("wrong-user-code", "global"),
                limits.wrong_user_codes_global,
            ),
        ];
        if let Some(ip) = context.ip_address {
            counters.push((
                key("wrong-user-code:ip", &ip.to_string()),
                limits.wrong_user_codes_per_ip,
            ));
        }
        counters
    }

    /// Whether `user` may type another device-grant user code from `context`: false once too
    /// many codes matched nothing for them, from their address, or from everyone at once.
    pub(crate) async fn user_code_allowed(
        &self,
        user: &UserId,
        context: &SignInContext,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        for (counter, limit) in self.wrong_user_code_counters(user, context) {
            if self.over(&counter, limit, now).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Counts a user code that matched nothing.
    pub(crate) async fn count_wrong_user_code(
        &self,
        user: &UserId,
        context: &SignInContext,
    ) -> Result<(), StoreError> {
        let now = self.now();
        for (counter, limit) in self.wrong_user_code_counters(user, context) {
            self.take(&counter, limit, now).await?;
        }
        Ok(())
    }

    /// The slot an answer from `device` takes of its answer throttle (the store takes it with
    /// the answer's request nonce, in one write).
    pub(crate) fn answer_slot(&self, device: &DeviceId) -> ThrottleTake {
        slot(
            key("answer:device", device.as_str()),
            self.limits.answers_per_device,
        )
    }
}

/// One slot of the throttle `limit` counted under `key`, for the store to take with a write.
fn slot(key: String, limit: Limit) -> ThrottleTake {
    ThrottleTake {
        key,
        window_seconds: limit.window_seconds,
        limit: limit.limit,
    }
}

/// A user's familiar places not seen since this are forgotten: older than both the address
/// and the browser windows.
fn forget_before(now: Timestamp) -> Timestamp {
    Timestamp(now.0 - RECENT_ADDRESS_SECONDS.max(KNOWN_BROWSER_SECONDS))
}
