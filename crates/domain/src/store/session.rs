//! Sessions, sign-ins in progress and Temporary Access Passes: everything a sign-in reads
//! and writes until it ends in a session.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::credential::TemporaryAccessPass;
use crate::ids::SessionId;
use crate::ids::SignInId;
use crate::ids::UserId;
use crate::log::SignInRecord;
use crate::oidc::{AuthorizationCode, Grant};
use crate::secret::TokenHash;
use crate::session::Session;
use crate::signin::PendingSignIn;

use super::StoreResult;

/// What a successful sign-in makes familiar for its user, stored in the same step as the
/// sign-in itself: the places its throttles know again (see `crate::throttle`) and the country
/// unusual sign-ins are judged against (see `crate::anomaly`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Familiar {
    /// Familiar-place keys (`crate::throttle::address_place`, `browser_place`), seen at `at`.
    pub places: Vec<String>,
    /// The country the sign-in came from, when known.
    pub country: Option<String>,
    pub at: Timestamp,
    /// The user's places last seen before this are forgotten, so the list stays small.
    pub forget_before: Timestamp,
}

/// Sessions, sign-ins in progress, and Temporary Access Passes.
#[async_trait]
pub trait SessionStore: Send + Sync {
    // Temporary Access Passes: at most one per user; putting one replaces the previous one.
    async fn put_pass(&self, pass: &TemporaryAccessPass) -> StoreResult<()>;
    async fn pass_for_user(&self, user: &UserId) -> StoreResult<Option<TemporaryAccessPass>>;
    /// Records a use. For a one-time pass, only the first call returns true.
    async fn mark_pass_used(
        &self,
        user: &UserId,
        hash: &TokenHash,
        at: Timestamp,
    ) -> StoreResult<bool>;
    async fn delete_pass(&self, user: &UserId) -> StoreResult<()>;

    // Sessions.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    async fn session_by_token(&self, token_hash: &TokenHash) -> StoreResult<Option<Session>>;
    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>>;
    async fn revoke_session(&self, id: &SessionId) -> StoreResult<()>;
    /// Ends every session of the user and revokes every grant (and so every token) they hold.
    async fn revoke_user_sessions_and_grants(&self, user: &UserId) -> StoreResult<()>;

    // Sign-ins in progress.
    async fn put_sign_in(&self, sign_in: &PendingSignIn) -> StoreResult<()>;
    async fn sign_in(&self, id: &SignInId) -> StoreResult<Option<PendingSignIn>>;
    async fn delete_sign_in(&self, id: &SignInId) -> StoreResult<()>;

    // The outcome of a sign-in step. Each record is written in the same transaction as its
    // outcome, so an outcome and its log entry never part.
    /// A sign-in succeeded: creates the session, removes the pending sign-in, records it, and
    /// remembers what it made `familiar` for the session's user, all in one step; with `code`,
    /// that step also stores the grant and authorization code the sign-in ends in, so the
    /// application's code costs no write of its own. `Conflict` (and no change) when the
    /// pending sign-in is already gone, so a sign-in can start at most one session.
    async fn complete_sign_in(
        &self,
        session: &Session,
        sign_in: &SignInId,
        record: &SignInRecord,
        familiar: &Familiar,
        code: Option<(&Grant, &AuthorizationCode)>,
    ) -> StoreResult<()>;
    /// A sign-in step failed: saves the pending sign-in as given (its failure count updated),
    /// or removes it when `ended`, and records the attempt.
    async fn fail_sign_in(
        &self,
        sign_in: &PendingSignIn,
        ended: bool,
        record: &SignInRecord,
    ) -> StoreResult<()>;
}
