//! Devices and approvals: registering the authenticator app, enabling phone sign-in (and the
//! person allowing it from security info), its PIN,
//! sending number-matching requests and settling the devices' answers.
//!
//! Every request a device makes after activation is signed with its device key and carries a
//! timestamp and a single-use nonce; [`Devices::authenticate_device`] checks all three before
//! anything else happens. Answers are settled by the store in one conditional write, so of
//! two racing answers exactly one counts.

mod answers;
mod consent;
mod methods;
mod pin;
mod registration;
mod requests;
mod signed;
mod waiters;
mod webauthn;

use std::sync::{Arc, RwLock};

use latchkey_protocol::wire::AccountInfo;
use latchkey_protocol::{FRESHNESS_SECONDS, MAX_NONCE_LEN, MIN_NONCE_LEN};

pub use answers::AnsweringDevice;
pub use consent::ConsentProgress;
pub use methods::RegisteredMethod;
pub use waiters::{ApprovalWaiters, MAX_WAITERS, MAX_WAITERS_PER_APPROVAL, WaitRefused};

use super::access::MethodAccess;
use super::applications::Applications;
use super::directory::Directory;
use super::governance::Governance;
use super::messages::STORE_TROUBLE;
use super::settings::Settings;
use super::shared::{Anomalies, AuditTrail, ServerKeys, Throttles};
use crate::authenticator::{Activation, Approval, Device};
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::{ApprovalId, DeviceId, UserId};
use crate::log::{Actor, AuditCategory, SignInRecord};
use crate::notify::{Notifier, PullOnly};
use crate::random::RandomSource;
use crate::signin::PendingSignIn;
use crate::store::DeviceStore;
use crate::user::User;

/// Devices one user may register; enough for a phone, a tablet and spares.
pub const MAX_DEVICES_PER_USER: usize = 10;

/// Activations one user may have open (started, not yet used by a device, not expired). A
/// person adds one app at a time; five covers a page reloaded a few times, and bounds what
/// one stolen session can hold ready for parallel redemption.
pub const MAX_OPEN_ACTIVATIONS_PER_USER: u32 = 5;

/// Shown beside a location that came from the GeoIP database (DB-IP's CC BY 4.0 licence).
pub const LOCATION_ATTRIBUTION: &str = "IP Geolocation by DB-IP (https://db-ip.com)";

/// What the authenticator API answers when it refuses: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceApiError {
    pub kind: DeviceErrorKind,
    pub code: &'static str,
    /// What the device is told.
    pub message: String,
    /// For the server's log only.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceErrorKind {
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Gone,
    /// Too many requests; try again later.
    Throttled,
    Internal,
}

impl DeviceApiError {
    pub(crate) fn new(
        kind: DeviceErrorKind,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        DeviceApiError {
            kind,
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub(crate) fn unauthenticated(code: &'static str, message: &str) -> Self {
        Self::new(DeviceErrorKind::Unauthenticated, code, message)
    }
}

/// The detail of an internal failure goes to the server's log (the edge logs `Internal`
/// errors' `detail`), never to the device.
impl From<StoreError> for DeviceApiError {
    fn from(e: StoreError) -> Self {
        DeviceApiError {
            kind: DeviceErrorKind::Internal,
            code: "internal",
            message: STORE_TROUBLE.into(),
            detail: Some(e.to_string()),
        }
    }
}

impl From<DomainError> for DeviceApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Store(e) => e.into(),
            DomainError::Invalid { .. } => {
                Self::new(DeviceErrorKind::Invalid, "invalid_input", e.to_string())
            }
            DomainError::NotFound(_) => {
                Self::new(DeviceErrorKind::NotFound, "not_found", e.to_string())
            }
            other => DeviceApiError {
                kind: DeviceErrorKind::Internal,
                code: "internal",
                message: STORE_TROUBLE.into(),
                detail: Some(other.to_string()),
            },
        }
    }
}

/// A request as the device signed it, taken apart by the web edge.
#[derive(Debug, Clone)]
pub struct SignedDeviceRequest<'a> {
    pub device_id: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub method: &'a str,
    /// Path and query, exactly as sent.
    pub path: &'a str,
    pub body: &'a [u8],
}

impl SignedDeviceRequest<'_> {
    /// The checks that need neither the store nor the device's key: all four headers present,
    /// a device id of sane length, a base64url nonce of the protocol's length, and a timestamp
    /// within [`FRESHNESS_SECONDS`] of `now`. Returns the timestamp.
    pub fn checked_timestamp(&self, now: Timestamp) -> Result<i64, DeviceApiError> {
        let missing = || {
            DeviceApiError::unauthenticated(
                "unsigned_request",
                "the request must carry the device id, timestamp, nonce and signature headers",
            )
        };
        if [self.device_id, self.timestamp, self.nonce, self.signature]
            .iter()
            .any(|h| h.is_empty())
        {
            return Err(missing());
        }
        if self.device_id.len() > 64 {
            return Err(DeviceApiError::unauthenticated(
                "unknown_device",
                "this device is not registered (it may have been removed); add the account again",
            ));
        }
        let timestamp: i64 = self.timestamp.parse().map_err(|_| {
            DeviceApiError::unauthenticated(
                "stale_request",
                "the timestamp must be whole seconds since the Unix epoch",
            )
        })?;
        let nonce_ok = (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&self.nonce.len())
            && self
                .nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !nonce_ok {
            return Err(DeviceApiError::unauthenticated(
                "bad_nonce",
                "the nonce must be 16 to 64 base64url characters",
            ));
        }
        if now.0.abs_diff(timestamp) > FRESHNESS_SECONDS.unsigned_abs() {
            return Err(DeviceApiError::unauthenticated(
                "stale_request",
                "the request's timestamp is too far from the server's clock; check the device's time",
            ));
        }
        Ok(timestamp)
    }
}

/// What the security-info page shows while a device is being added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationProgress {
    /// Not redeemed yet: show the QR code and the code.
    WaitingForDevice { activation: Activation },
    /// The device redeemed it: show the test notification's number.
    WaitingForTest { number: u8, device_name: String },
    /// The test was approved; the method is registered.
    Registered { device_name: String },
    /// Expired, denied, or the wrong number was entered: add the method again.
    Failed { message: String },
}

/// What asking for an approval did.
pub(crate) enum ApprovalStart {
    /// The notification went out; the sign-in, moved to the number page, is stored with it.
    Sent(Box<PendingSignIn>),
    /// Phone sign-in or push does not apply to this user now.
    NotApplicable,
    /// A notification for this user is already waiting: none is sent.
    AlreadyPending,
    /// A throttle stopped it: the attempt's sign-in log record, which the sign-in stores
    /// with its failure.
    Throttled(Box<SignInRecord>),
}

pub struct Devices {
    pub(crate) store: Arc<dyn DeviceStore>,
    /// Where the WebAuthn ceremony of enabling phone sign-in by passkey keeps its state.
    pub(crate) ceremonies: Arc<dyn crate::store::PasskeyStore>,
    /// The relying party the web app's WebAuthn credentials are made for (the passkeys').
    pub(crate) relying_party: Arc<super::passkeys::RelyingParty>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) notifier: RwLock<Arc<dyn Notifier>>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) keys: Arc<ServerKeys>,
    pub(crate) throttles: Arc<Throttles>,
    pub(crate) anomalies: Arc<Anomalies>,
    pub(crate) access: Arc<MethodAccess>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) applications: Arc<Applications>,
    pub(crate) governance: Arc<Governance>,
    /// Browsers waiting for an approval to settle (the number page's long-poll).
    pub(crate) waiters: Arc<ApprovalWaiters>,
}

impl Devices {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The user's own device: someone else's is "not found" too, so an id guessed from
    /// another account reveals nothing.
    async fn own_device(&self, user: &UserId, id: &DeviceId) -> Result<Device, DomainError> {
        self.store
            .device(id)
            .await?
            .filter(|d| &d.user_id == user)
            .ok_or(DomainError::NotFound("authenticator app"))
    }

    /// Sets how notifications reach devices (the web edge's live channel). Until then devices
    /// only find requests by pulling.
    pub fn attach_notifier(&self, notifier: Arc<dyn Notifier>) {
        if let Ok(mut slot) = self.notifier.write() {
            *slot = notifier;
        }
    }

    fn notifier(&self) -> Arc<dyn Notifier> {
        self.notifier
            .read()
            .map(|n| n.clone())
            .unwrap_or_else(|_| Arc::new(PullOnly))
    }

    /// An approval settled here: wakes its waiters on this instance and tells the others.
    fn settled(&self, approval: &ApprovalId) {
        self.waiters.wake(approval);
        self.notifier().settled(approval);
    }

    /// Another instance settled `approval`: wakes its waiters here. `None` wakes them all
    /// (the cross-instance listener reconnected, and what was sent meanwhile is lost).
    pub fn wake_waiters(&self, approval: Option<&ApprovalId>) {
        match approval {
            Some(approval) => self.waiters.wake(approval),
            None => self.waiters.wake_all(),
        }
    }

    /// How many browsers wait for an approval on this instance now.
    pub fn waiting_browsers(&self) -> usize {
        self.waiters.count()
    }

    /// The user's registered authenticator apps, oldest first.
    pub async fn devices(&self, user: &UserId) -> Result<Vec<Device>, DomainError> {
        Ok(self.store.devices_of_user(user).await?)
    }

    fn account_info(&self, user: &User) -> AccountInfo {
        AccountInfo {
            user_id: user.id.to_string(),
            user_principal_name: user.upn.to_string(),
            display_name: user.display_name.clone(),
            issuer: self.settings.issuer.clone(),
        }
    }

    /// Audits a change to a device; `removal` puts the device in `before` (it is gone after).
    pub(crate) async fn device_audit(
        &self,
        device: &Device,
        activity: &str,
        removal: bool,
    ) -> Result<(), DeviceApiError> {
        let upn = self
            .directory
            .lookup(&device.user_id)
            .await?
            .map(|u| u.upn.to_string())
            .unwrap_or_else(|| device.user_id.to_string());
        let summary = serde_json::json!({
            "deviceId": device.id,
            "deviceName": device.name,
            "phoneSignIn": device.has_phone_sign_in(),
        });
        self.audit
            .record(
                &Actor::user(&upn),
                AuditCategory::UserAuthenticationMethods,
                activity,
                &upn,
                removal.then(|| summary.clone()),
                (!removal).then_some(summary),
            )
            .await?;
        Ok(())
    }

    /// A device as it is stored now (after a request changed it), if it is still registered.
    pub async fn registered_device(&self, id: &DeviceId) -> Result<Option<Device>, DomainError> {
        Ok(self.store.device(id).await?)
    }

    /// A device by id (the sign-in it answered reads its name).
    pub(crate) async fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.store.device(id).await
    }

    /// An approval by id (the sign-in waiting on it reads it).
    pub(crate) async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        self.store.approval(id).await
    }
}
