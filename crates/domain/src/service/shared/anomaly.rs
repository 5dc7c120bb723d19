//! Applying [`crate::anomaly`]: deciding, as a sign-in request is created, whether to push it
//! or let it wait for the app to pull; and remembering what later sign-ins are judged by
//! (the countries of successful sign-ins, the latest refusal).

use std::sync::Arc;

use super::Throttles;
use crate::anomaly::{HeldBack, country_key, judge};
use crate::clock::Clock;
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::ids::UserId;
use crate::log::{SignInContext, SignInRecord};
use crate::policy::{Evaluation, Feature};
use crate::store::GovernanceStore;

/// What later sign-ins are judged by, and the judging.
pub(crate) struct Anomalies {
    pub(crate) store: Arc<dyn GovernanceStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) throttles: Arc<Throttles>,
}

impl Anomalies {
    /// Whether the user is at risk (a report of theirs not yet dismissed): never pushed to.
    async fn is_at_risk(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self
            .store
            .user_risk(user)
            .await?
            .is_some_and(|r| r.is_at_risk()))
    }

    /// Why a new sign-in request for `user` from `context` should not be pushed, if it should
    /// not. A user at risk never gets pushes; an unusual sign-in is held back only where the
    /// policy's switch is on for the user.
    pub(crate) async fn held_back(
        &self,
        user: &UserId,
        evaluation: &Evaluation,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<Option<HeldBack>, StoreError> {
        if self.is_at_risk(user).await? {
            return Ok(Some(HeldBack::UserAtRisk));
        }
        let switched_on = evaluation
            .features
            .iter()
            .any(|f| f.feature == Feature::SuppressAnomalousNotifications && f.enabled);
        if !switched_on {
            return Ok(None);
        }
        let history = self.store.sign_in_history(user).await?;
        let country = country_key(context.location.as_ref());
        Ok(judge(country.as_deref(), &history, now))
    }

    /// A sign-in is about to succeed: its country (when known) becomes familiar for the user.
    /// Called just before the success is stored, so that a failure here leaves the sign-in to
    /// be tried again rather than succeeding unremembered.
    pub(crate) async fn remember_sign_in_place(
        &self,
        record: &SignInRecord,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // Its address becomes familiar for the smart lockout too.
        self.throttles.remember_sign_in_address(record, now).await?;
        match (&record.user_id, country_key(record.location.as_ref())) {
            (Some(user), Some(country)) => {
                self.store
                    .remember_sign_in_country(user, &country, now)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// The user denied or reported a sign-in request.
    pub(crate) async fn remember_refusal(&self, user: &UserId) -> Result<(), StoreError> {
        self.store.remember_refusal(user, self.clock.now()).await
    }
}
