//! Governance: the authentication methods policy, the sign-in and audit logs, user risk and
//! the sign-in history that unusual sign-ins are told apart by.

use async_trait::async_trait;

use crate::anomaly::SignInHistory;
use crate::clock::Timestamp;
use crate::ids::UserId;
use crate::log::AuditEvent;
use crate::log::LogQuery;
use crate::log::SignInRecord;
use crate::policy::AuthenticationMethodsPolicy;
use crate::risk::RiskDetection;
use crate::risk::UserRisk;

use super::StoreResult;

/// The authentication methods policy, the logs, user risk and sign-in history.
#[async_trait]
pub trait GovernanceStore: Send + Sync {
    // The authentication methods policy.
    /// The saved policy, or `None` before the first save (the domain then uses its defaults).
    async fn policy(&self) -> StoreResult<Option<AuthenticationMethodsPolicy>>;
    /// Saves `policy` as version `policy.version`, only if the stored version is exactly
    /// `policy.version - 1` (0 meaning nothing stored yet); otherwise `Conflict`, and nothing
    /// changes. The audit event is written in the same transaction.
    async fn save_policy(
        &self,
        policy: &AuthenticationMethodsPolicy,
        audit: &AuditEvent,
    ) -> StoreResult<()>;

    // The sign-in log (written by `SessionStore::complete_sign_in`, `fail_sign_in` and
    // `DeviceStore::settle_approval`, each in the same transaction as its outcome).
    /// Newest first. `user` matches the user id or the UPN (case-insensitive); `app` the app id
    /// or display name (case-insensitive); `status` success means error code 0; `method` the
    /// `authentication_method`; `since` inclusive, `until` exclusive; then `skip` and `limit`.
    async fn sign_in_records(&self, query: &LogQuery) -> StoreResult<Vec<SignInRecord>>;
    /// Records an outcome that changes nothing else: an application refusing a user who is
    /// not assigned to it. `Conflict` for a taken record id.
    async fn append_sign_in_record(&self, record: &SignInRecord) -> StoreResult<()>;

    // The audit log.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first. `user` matches the actor or the target exactly; `category` the category
    /// name; time range and paging as for sign-ins; `app`, `status` and `method` are ignored.
    async fn audit_events(&self, query: &LogQuery) -> StoreResult<Vec<AuditEvent>>;
    /// Removes sign-in records and audit events older than `before`; returns how many went.
    async fn purge_logs(&self, before: Timestamp) -> StoreResult<u64>;

    // User risk.
    /// Records a detection and puts the user at risk, in one transaction.
    async fn record_risk(&self, detection: &RiskDetection) -> StoreResult<()>;
    async fn user_risk(&self, user: &UserId) -> StoreResult<Option<UserRisk>>;
    /// Every user with a risk record, at risk first, then most recently updated.
    async fn risky_users(&self) -> StoreResult<Vec<UserRisk>>;
    /// Newest first.
    async fn risk_detections(&self, user: &UserId) -> StoreResult<Vec<RiskDetection>>;
    /// Marks an at-risk user's risk dismissed; false if they were not at risk.
    async fn dismiss_risk(&self, user: &UserId, at: Timestamp) -> StoreResult<bool>;

    // Sign-in history: what an unusual sign-in is told apart by (see `crate::anomaly`).
    /// Notes that `user` signed in successfully from `country` at `at`. Again is not an error;
    /// the first and latest times are kept. `NotFound` for an unknown user (as for the next).
    async fn remember_sign_in_country(
        &self,
        user: &UserId,
        country: &str,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Notes that `user` denied or reported a sign-in request at `at`; the latest time is kept
    /// (an earlier `at` than the one stored changes nothing).
    async fn remember_refusal(&self, user: &UserId, at: Timestamp) -> StoreResult<()>;
    /// The countries the user's successful sign-ins came from (sorted) and their latest
    /// refusal. Empty for a user with neither.
    async fn sign_in_history(&self, user: &UserId) -> StoreResult<SignInHistory>;
}
