//! What an administrator configures: lifetimes, the issuer and the throttles.

use serde::{Deserialize, Serialize};

/// How long a notification waits for an answer unless configured otherwise: long enough to
/// find the phone and unlock it, short enough that a forgotten request does not linger.
pub const DEFAULT_APPROVAL_LIFETIME_SECONDS: i64 = 90;

/// The least time a user-name step that leads to the pass or password page takes. The work a
/// known name adds (its policy, groups and devices read) is well under a millisecond unloaded
/// but passed 15 ms on a test machine running five builds; 30 ms covers that, and a person does
/// not notice it.
pub const USERNAME_STEP_FLOOR: std::time::Duration = std::time::Duration::from_millis(30);

/// The client id of Latchkey's own My Apps portal.
pub const MY_APPS_CLIENT_ID: &str = "myapps";

/// Lifetimes and rules an administrator can configure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The issuer: the public base URL, without a trailing slash.
    pub issuer: String,
    pub session_lifetime_seconds: i64,
    pub code_lifetime_seconds: i64,
    pub access_token_lifetime_seconds: i64,
    pub id_token_lifetime_seconds: i64,
    pub refresh_token_lifetime_seconds: i64,
    /// How long a phone sign-in or MFA push request waits for an answer.
    pub approval_lifetime_seconds: i64,
    /// How long after its registration a device may first turn on phone sign-in. Later, only
    /// re-adding it from security info (which needs the user signed in) opens the window
    /// again, so a copy of a device key alone can never enable passwordless sign-in.
    pub phone_sign_in_enable_window_seconds: i64,
    pub throttle: crate::throttle::ThrottleLimits,
    /// The attestation root certificates (PEM text, one certificate each) a passkey's
    /// attestation must chain to when the policy enforces attestation (`passkeys.
    /// attestation_roots` in the configuration names the files). Empty: enforcement refuses
    /// every registration and says so.
    #[serde(default)]
    pub passkey_attestation_roots: Vec<String>,
    /// Scheduled signing-key rotation: how long a key signs before new keys take over; 0: only
    /// on demand (`latchkey keys rotate`).
    #[serde(default)]
    pub signing_key_rotation_seconds: i64,
    /// How long a device code (and its user code) of the device authorization grant lives.
    #[serde(default = "default_device_code_lifetime")]
    pub device_code_lifetime_seconds: i64,
    /// The least number of seconds a device waits between two polls of the token endpoint
    /// (RFC 8628 `interval`); `slow_down` adds 5 to it for a device that polls faster.
    #[serde(default = "default_device_poll_interval")]
    pub device_poll_interval_seconds: i64,
}

/// Device codes live 10 minutes: time to find a browser and sign in, RFC 8628's example.
pub const DEFAULT_DEVICE_CODE_LIFETIME_SECONDS: i64 = 600;
/// RFC 8628's default polling interval.
pub const DEFAULT_DEVICE_POLL_INTERVAL_SECONDS: i64 = 5;

fn default_device_code_lifetime() -> i64 {
    DEFAULT_DEVICE_CODE_LIFETIME_SECONDS
}

fn default_device_poll_interval() -> i64 {
    DEFAULT_DEVICE_POLL_INTERVAL_SECONDS
}

impl Settings {
    pub fn with_issuer(issuer: impl Into<String>) -> Self {
        Settings {
            issuer: issuer.into().trim_end_matches('/').to_string(),
            session_lifetime_seconds: 12 * 3600,
            code_lifetime_seconds: 60,
            access_token_lifetime_seconds: 3600,
            id_token_lifetime_seconds: 3600,
            refresh_token_lifetime_seconds: 14 * 86_400,
            approval_lifetime_seconds: DEFAULT_APPROVAL_LIFETIME_SECONDS,
            phone_sign_in_enable_window_seconds: 30 * 60,
            throttle: crate::throttle::ThrottleLimits::default(),
            passkey_attestation_roots: Vec::new(),
            signing_key_rotation_seconds: 0,
            device_code_lifetime_seconds: DEFAULT_DEVICE_CODE_LIFETIME_SECONDS,
            device_poll_interval_seconds: DEFAULT_DEVICE_POLL_INTERVAL_SECONDS,
        }
    }
}
