//! Applying the throttles of [`crate::throttle`]: counted in the store, checked before a
//! notification is sent or a credential is tried.

use super::Latchkey;
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::ids::{DeviceId, UserId};
use crate::log::SignInContext;
use crate::throttle::{Limit, key};
use crate::user::User;

impl Latchkey {
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

    /// Whether a notification to `user` for a sign-in from `context` may go out; counts it if
    /// so. Too many wrong numbers recently also stop it.
    pub(super) async fn notification_allowed(
        &self,
        user: &UserId,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let limits = self.settings.throttle;
        if self
            .over(
                &key("wrong-number:user", user.as_str()),
                limits.wrong_numbers_per_user,
                now,
            )
            .await?
        {
            return Ok(false);
        }
        if let Some(ip) = context.ip_address
            && !self
                .take(
                    &key("notify:ip", &ip.to_string()),
                    limits.notifications_per_ip,
                    now,
                )
                .await?
        {
            return Ok(false);
        }
        self.take(
            &key("notify:user", user.as_str()),
            limits.notifications_per_user,
            now,
        )
        .await
    }

    pub(super) async fn count_wrong_number(&self, user: &UserId) -> Result<(), StoreError> {
        let limits = self.settings.throttle;
        self.take(
            &key("wrong-number:user", user.as_str()),
            limits.wrong_numbers_per_user,
            self.now(),
        )
        .await
        .map(|_| ())
    }

    /// Counts a pass or password attempt for this user and address before it is checked, so
    /// parallel attempts cannot all slip under the limit; false when a limit is reached (the
    /// attempt is then not checked at all). A successful attempt is given back with
    /// [`Latchkey::credential_succeeded`], so the limits count failures in the end.
    ///
    /// A name that belongs to nobody is counted too, under the name as typed (case folded,
    /// hashed to bound the key), so that the throttle notice after too many wrong passwords
    /// does not tell an attacker which names exist.
    pub(super) async fn credential_attempt_allowed(
        &self,
        user: Option<&User>,
        typed_name: &str,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let limits = self.settings.throttle;
        if let Some(ip) = context.ip_address
            && !self
                .take(
                    &key("failed:ip", &ip.to_string()),
                    limits.failed_credentials_per_ip,
                    now,
                )
                .await?
        {
            return Ok(false);
        }
        match user {
            Some(user) => {
                self.take(
                    &key("failed:user", user.id.as_str()),
                    limits.failed_credentials_per_user,
                    now,
                )
                .await
            }
            None => {
                let name = crate::secret::sha256(typed_name.trim().to_lowercase().as_bytes());
                self.take(
                    &key("failed:name", &crate::secret::base64url(&name)),
                    limits.failed_credentials_per_user,
                    now,
                )
                .await
            }
        }
    }

    pub(super) async fn credential_succeeded(
        &self,
        user: &User,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let limits = self.settings.throttle;
        if let Some(ip) = context.ip_address {
            self.store
                .release_throttle_slot(
                    &key("failed:ip", &ip.to_string()),
                    now,
                    limits.failed_credentials_per_ip.window_seconds,
                )
                .await?;
        }
        self.store
            .release_throttle_slot(
                &key("failed:user", user.id.as_str()),
                now,
                limits.failed_credentials_per_user.window_seconds,
            )
            .await
    }

    pub(super) async fn answer_allowed(&self, device: &DeviceId) -> Result<bool, StoreError> {
        let limits = self.settings.throttle;
        self.take(
            &key("answer:device", device.as_str()),
            limits.answers_per_device,
            self.now(),
        )
        .await
    }
}
