//! Applying [`crate::anomaly`]: deciding, as a sign-in request is created, whether to push it
//! or let it wait for the app to pull; and remembering what later sign-ins are judged by
//! (the countries of successful sign-ins, the latest refusal).

use std::sync::Arc;

use super::Throttles;
use crate::anomaly::{HeldBack, country_key, judge};
use crate::clock::Clock;
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::ids::{BrowserId, UserId};
use crate::log::{SignInContext, SignInRecord};
use crate::policy::{Evaluation, Feature};
use crate::store::{Familiar, GovernanceStore};

/// What later sign-ins are judged by, and the judging.
pub(crate) struct Anomalies {
    pub(crate) store: Arc<dyn GovernanceStore>,
    pub(crate) clock: Arc<dyn Clock>,
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

    /// What a sign-in about to succeed makes familiar for its user: its address and browser
    /// (for the throttles) and its country, when known. The store keeps them in the step that
    /// stores the success, so a sign-in never succeeds unremembered.
    pub(crate) fn familiar(
        record: &SignInRecord,
        browser: Option<&BrowserId>,
        now: Timestamp,
    ) -> Familiar {
        let (places, forget_before) = Throttles::familiar_places(record, browser, now);
        Familiar {
            places,
            country: country_key(record.location.as_ref()),
            at: now,
            forget_before,
        }
    }

    /// The user denied or reported a sign-in request.
    pub(crate) async fn remember_refusal(&self, user: &UserId) -> Result<(), StoreError> {
        self.store.remember_refusal(user, self.clock.now()).await
    }
}
