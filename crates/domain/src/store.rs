//! The storage port. Every database Latchkey supports implements [`Store`] and passes the same
//! conformance suite (`latchkey-store`'s `conformance` module).
//!
//! Methods that spend a single-use secret (codes, refresh tokens, one-time passes) must do so
//! atomically: two concurrent callers can never both see the secret as fresh.

use async_trait::async_trait;

use crate::admin_token::AdminToken;
use crate::anomaly::SignInHistory;
use crate::application::Application;
use crate::authenticator::{Activation, Approval, ApprovalState, Device, PinCheck, PinLock};
use crate::clock::Timestamp;
use crate::credential::TemporaryAccessPass;
use crate::error::StoreError;
use crate::ids::{
    ActivationId, AdminTokenId, ApprovalId, ClientId, DeviceId, GrantId, GroupId, SessionId,
    SignInId, UserId,
};
use crate::keys::SigningKey;
use crate::log::{AuditEvent, LogQuery, SignInRecord};
use crate::oidc::{AccessToken, AuthorizationCode, Grant, Redeemed, RefreshToken};
use crate::policy::AuthenticationMethodsPolicy;
use crate::risk::{RiskDetection, UserRisk};
use crate::secret::TokenHash;
use crate::session::Session;
use crate::signin::PendingSignIn;
use crate::user::{Group, Upn, User};

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync {
    // Users. UPNs are unique; `create_user` answers `Conflict` for a taken one.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: &UserId) -> StoreResult<Option<User>>;
    async fn user_by_upn(&self, upn: &Upn) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn set_password_hash(&self, id: &UserId, hash: Option<&str>) -> StoreResult<()>;
    async fn password_hash(&self, id: &UserId) -> StoreResult<Option<String>>;

    // Groups. Display names are unique (case-insensitive).
    async fn create_group(&self, group: &Group) -> StoreResult<()>;
    async fn group(&self, id: &GroupId) -> StoreResult<Option<Group>>;
    async fn list_groups(&self) -> StoreResult<Vec<Group>>;
    /// Adding a member twice is not an error.
    async fn add_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()>;
    async fn remove_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()>;
    async fn group_members(&self, group: &GroupId) -> StoreResult<Vec<UserId>>;
    async fn groups_of_user(&self, user: &UserId) -> StoreResult<Vec<GroupId>>;

    // Applications.
    async fn create_application(&self, app: &Application) -> StoreResult<()>;
    async fn application(&self, client_id: &ClientId) -> StoreResult<Option<Application>>;
    async fn list_applications(&self) -> StoreResult<Vec<Application>>;
    async fn delete_application(&self, client_id: &ClientId) -> StoreResult<()>;

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

    // Grants and the tokens they issue.
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()>;
    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>>;
    async fn revoke_grant(&self, id: &GrantId) -> StoreResult<()>;
    async fn revoke_session_grants(&self, session: &SessionId) -> StoreResult<()>;
    async fn put_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    /// Spends a code atomically.
    async fn redeem_code(&self, hash: &TokenHash) -> StoreResult<Redeemed<AuthorizationCode>>;
    async fn put_access_token(&self, token: &AccessToken) -> StoreResult<()>;
    async fn access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>>;
    async fn put_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    /// Spends a refresh token atomically (rotation).
    async fn redeem_refresh_token(&self, hash: &TokenHash) -> StoreResult<Redeemed<RefreshToken>>;

    // Signing keys.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    async fn put_signing_key(&self, key: &SigningKey) -> StoreResult<()>;
    /// Marks every unretired key as retired at `at`, except `keep`.
    async fn retire_signing_keys_except(
        &self,
        keep: &[crate::ids::KeyId],
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Server-wide secrets (for example the key that signs CSRF tokens), created once.
    /// Returns the stored value, inserting `candidate` if there was none.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;

    /// Removes expired codes, tokens, sign-ins and sessions. Returns how many rows went.
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64>;

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

    // The sign-in log. Each record is written in the same transaction as its outcome.
    /// A sign-in succeeded: creates the session, removes the pending sign-in, records it.
    /// `Conflict` (and no change) when the pending sign-in is already gone, so a sign-in can
    /// start at most one session.
    async fn complete_sign_in(
        &self,
        session: &Session,
        sign_in: &SignInId,
        record: &SignInRecord,
    ) -> StoreResult<()>;
    /// A sign-in step failed: saves the pending sign-in as given (its failure count updated),
    /// or removes it when `ended`, and records the attempt.
    async fn fail_sign_in(
        &self,
        sign_in: &PendingSignIn,
        ended: bool,
        record: &SignInRecord,
    ) -> StoreResult<()>;
    /// Newest first. `user` matches the user id or the UPN (case-insensitive); `app` the app id
    /// or display name (case-insensitive); `status` success means error code 0; `method` the
    /// `authentication_method`; `since` inclusive, `until` exclusive; then `skip` and `limit`.
    async fn sign_in_records(&self, query: &LogQuery) -> StoreResult<Vec<SignInRecord>>;

    // The audit log.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first. `user` matches the actor or the target exactly; `category` the category
    /// name; time range and paging as for sign-ins; `app`, `status` and `method` are ignored.
    async fn audit_events(&self, query: &LogQuery) -> StoreResult<Vec<AuditEvent>>;
    /// Removes sign-in records and audit events older than `before`; returns how many went.
    async fn purge_logs(&self, before: Timestamp) -> StoreResult<u64>;

    // The authenticator app.
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()>;
    async fn activation(&self, id: &ActivationId) -> StoreResult<Option<Activation>>;
    async fn activation_by_code(&self, code_hash: &TokenHash) -> StoreResult<Option<Activation>>;
    /// Redeems the activation whose code hashes to `code_hash`, if it is unused and not
    /// expired at `now`: in one transaction it records the device and its test notification
    /// on the activation, creates the device and stores the test. `None` (and no change) for an
    /// unknown, expired or already-used code; of two racing redemptions exactly one succeeds.
    /// Also `None` when the user already has `max_devices` devices: the count and the insert
    /// are one step, so parallel redemptions of different codes cannot pass the limit together.
    async fn redeem_activation(
        &self,
        code_hash: &TokenHash,
        now: Timestamp,
        device: &Device,
        test: &Approval,
        max_devices: u32,
    ) -> StoreResult<Option<Activation>>;
    async fn device(&self, id: &DeviceId) -> StoreResult<Option<Device>>;
    /// Oldest first.
    async fn devices_of_user(&self, user: &UserId) -> StoreResult<Vec<Device>>;
    async fn update_device(&self, device: &Device) -> StoreResult<()>;
    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()>;
    /// Records a signed request's nonce. False if the device already used it (a replay).
    async fn use_device_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        expires_at: Timestamp,
    ) -> StoreResult<bool>;
    async fn put_approval(&self, approval: &Approval) -> StoreResult<()>;
    /// Stores a sign-in approval only if its user has no other sign-in approval (phone sign-in
    /// or MFA push) still pending and unexpired at `now`; false, and nothing stored, otherwise.
    /// One transaction, so of two racing sign-ins only one notification is ever created.
    async fn put_approval_if_none_waiting(
        &self,
        approval: &Approval,
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>>;
    /// The user's approvals still in state `Pending` (expired or not), oldest first.
    async fn pending_approvals(&self, user: &UserId) -> StoreResult<Vec<Approval>>;
    /// Approvals still `Pending` whose expiry is at or before `now`, oldest first, at most
    /// `limit` of them (the maintenance loop expires them so their timeouts are logged).
    async fn overdue_approvals(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Approval>>;
    /// Moves a pending approval to `state`, only if it is still pending: true for the one
    /// caller that settled it. A failed sign-in's `record`, if given, is written in the same
    /// transaction, so an outcome and its log entry never part.
    async fn settle_approval(
        &self,
        id: &ApprovalId,
        state: ApprovalState,
        answered_by: Option<&DeviceId>,
        at: Timestamp,
        record: Option<&SignInRecord>,
    ) -> StoreResult<bool>;

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

    // Limits on adding the authenticator app.
    /// Stores `activation` only if its user has fewer than `max_outstanding` activations that
    /// are unused and unexpired at `now`, in one statement (so parallel starts cannot pass the
    /// limit together); false, and nothing stored, otherwise.
    async fn put_activation_within(
        &self,
        activation: &Activation,
        now: Timestamp,
        max_outstanding: u32,
    ) -> StoreResult<bool>;

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

    /// Whether the store answers (for readiness checks).
    async fn ping(&self) -> StoreResult<()>;

    // Administrator API tokens (stored as hashes; see `crate::admin_token`).
    /// `Conflict` for a hash or id already stored.
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()>;
    /// The token stored under exactly this hash, whatever its state.
    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<AdminToken>>;
    async fn admin_token(&self, id: &AdminTokenId) -> StoreResult<Option<AdminToken>>;
    /// Every token, revoked and expired ones included, oldest first.
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    /// How many tokens were ever made (revoked ones count).
    async fn count_admin_tokens(&self) -> StoreResult<u64>;
    /// Revokes a token that is not revoked yet: true for the one caller that revoked it.
    async fn revoke_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        by: &str,
    ) -> StoreResult<bool>;
    /// Sets the last-used time to `at` unless the stored one is later than `not_before`, so
    /// that racing requests write at most once per period.
    async fn touch_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        not_before: Timestamp,
    ) -> StoreResult<()>;
    /// Replaces a legacy (SHA-256) hash with the keyed one; only for a legacy row.
    async fn rehash_admin_token(&self, id: &AdminTokenId, hash: &TokenHash) -> StoreResult<()>;

    // Roles: which group holds the administrator role (bound by id, never by name).
    async fn administrators_group(&self) -> StoreResult<Option<GroupId>>;
    /// Binds the administrator role to `group`, replacing any previous binding.
    /// `NotFound` for an unknown group.
    async fn bind_administrators_group(&self, group: &GroupId) -> StoreResult<()>;

    // Reading a single-use secret without spending it, so that whoever presents it can be
    // checked first (client, secret, PKCE). Spent and expired rows are returned too.
    async fn code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>>;
    async fn refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>>;

    // PIN checks of phone sign-in (the count of wrong PINs lives only here).
    /// Sets or clears the device's phone sign-in as `device` says (its passwordless key) and,
    /// in the same transaction, its PIN record: a new `verifier_mac` with no wrong PINs and no
    /// lock, or none at all when phone sign-in is turned off.
    async fn set_phone_sign_in(
        &self,
        device: &Device,
        verifier_mac: Option<&str>,
    ) -> StoreResult<()>;
    async fn pin_lock(&self, device: &DeviceId) -> StoreResult<Option<PinLock>>;
    /// Records one PIN check atomically: a right one resets the count; a wrong one counts, and
    /// the one that reaches `limit` locks the record, clears its verifier and turns the
    /// device's phone sign-in off (its passwordless key) in the same transaction. A record
    /// already locked (or missing) changes nothing and answers `Locked`.
    async fn record_pin_check(
        &self,
        device: &DeviceId,
        right: bool,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<PinCheck>;
    /// The signed-in person allows a locked device to turn phone sign-in on again. False when
    /// the device is not locked.
    async fn allow_phone_sign_in_again(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<bool>;
}
