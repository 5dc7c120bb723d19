//! The authenticator app: activations, devices, signed-request nonces, approvals and the PIN
//! checks of phone sign-in.

use async_trait::async_trait;

use crate::authenticator::Activation;
use crate::authenticator::Approval;
use crate::authenticator::ApprovalState;
use crate::authenticator::Device;
use crate::authenticator::PinCheck;
use crate::authenticator::PinLock;
use crate::clock::Timestamp;
use crate::ids::ActivationId;
use crate::ids::ApprovalId;
use crate::ids::DeviceId;
use crate::ids::UserId;
use crate::log::SignInRecord;
use crate::secret::TokenHash;
use crate::signin::PendingSignIn;

use super::StoreResult;
use super::ThrottleTake;

/// What [`DeviceStore::use_device_nonce`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    /// The nonce is recorded, and the throttle slot asked for (if any) taken.
    Fresh,
    /// The device already used this nonce: nothing recorded, no slot taken.
    Replayed,
    /// The nonce is recorded (so the request cannot be replayed either), but the throttle
    /// slot asked for was refused.
    Throttled,
}

/// What [`DeviceStore::put_approval_if_none_waiting`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalPut {
    /// The approval is stored.
    Stored,
    /// Another sign-in approval of the user is waiting: nothing stored.
    AlreadyWaiting,
    /// A throttle slot was refused: nothing stored.
    Throttled,
}

/// The authenticator app: activations, devices and their nonces, approvals, phone sign-in.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    // Activations (adding the app to an account).
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()>;
    /// Stores `activation` only if its user has fewer than `max_outstanding` activations that
    /// are unused and unexpired at `now`, in one statement (so parallel starts cannot pass the
    /// limit together); false, and nothing stored, otherwise.
    async fn put_activation_within(
        &self,
        activation: &Activation,
        now: Timestamp,
        max_outstanding: u32,
    ) -> StoreResult<bool>;
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

    // Devices.
    async fn device(&self, id: &DeviceId) -> StoreResult<Option<Device>>;
    /// Oldest first.
    async fn devices_of_user(&self, user: &UserId) -> StoreResult<Vec<Device>>;
    async fn update_device(&self, device: &Device) -> StoreResult<()>;
    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()>;
    /// Records a signed request's nonce (`Replayed`, and nothing written, if the device
    /// already used it). When it is new and `throttle` names a slot, takes that slot of the
    /// window containing `now` in the same write (`Throttled` when refused; the nonce stays
    /// recorded): an answer's replay check and its device's answer throttle are one trip to
    /// the database.
    async fn use_device_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        expires_at: Timestamp,
        throttle: Option<&ThrottleTake>,
        now: Timestamp,
    ) -> StoreResult<NonceUse>;

    // Approvals (sign-in requests sent to a device).
    async fn put_approval(&self, approval: &Approval) -> StoreResult<()>;
    /// Takes the `throttles` slots in order, stopping at the first one refused (`Throttled`:
    /// the slots before it stay taken, and nothing is stored); then stores a sign-in approval
    /// only if its user has no other sign-in approval (phone sign-in or MFA push) still
    /// pending and unexpired at `now` (`AlreadyWaiting`, and nothing stored, otherwise).
    /// When the approval is stored, `sign_in` (the sign-in moved to the number page) is stored
    /// with it; otherwise it is not written. One transaction, so of two racing sign-ins only
    /// one notification is ever created, a sign-in never waits on a request that was not
    /// stored, and one trip to the database for the whole step.
    async fn put_approval_if_none_waiting(
        &self,
        approval: &Approval,
        now: Timestamp,
        throttles: &[ThrottleTake],
        sign_in: Option<&PendingSignIn>,
    ) -> StoreResult<ApprovalPut>;
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
    /// Records a WebAuthn assertion of phone sign-in: the device's credential (`passkey`, the
    /// serialised credential after the assertion) and its counter, only if the device still
    /// has the credential `credential_id` with the counter `expected_counter` (a conditional
    /// write: of two answers that read the same counter, one writes). True for the one that
    /// wrote.
    async fn record_device_webauthn_use(
        &self,
        device: &DeviceId,
        credential_id: &str,
        expected_counter: u32,
        counter: u32,
        passkey: &str,
    ) -> StoreResult<bool>;
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
    /// The person, signed in to security info, confirmed on the device by number matching
    /// that it may turn phone sign-in on: sets the PIN record's `reenable_allowed_at` to `now`,
    /// creating a record with no verifier, no wrong PINs and no lock when there is none. (On
    /// a locked record it allows turning it on again, as above.) Turning phone sign-in on or
    /// off clears it with the rest of the record.
    async fn allow_enabling_phone_sign_in(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<()>;
}
