//! The use cases, one service per context: what administrators, users, devices and
//! applications can ask of Latchkey.
//!
//! | service | context |
//! |---|---|
//! | [`Directory`] | users, groups, passwords, Temporary Access Passes |
//! | [`Applications`] | OpenID Connect clients and My Apps |
//! | [`Tokens`] | signing keys, authorization codes, grants, userinfo, end session |
//! | [`SignIns`] | the sign-in state machine and browser sessions |
//! | [`Devices`] | the authenticator app: registration, PIN, requests and answers |
//! | [`Passkeys`] | passkeys and security keys: registration, list, rename, remove |
//! | [`Governance`] | the methods policy, logs, risk, administrator tokens and role |
//!
//! Each holds only what it uses; the shared pieces (settings, clock, random source, event bus,
//! throttles, audit trail, server keys) are passed in explicitly. A use case that needs another
//! context calls that context's service. The dependencies run one way:
//! directory and applications → governance → devices → tokens → sign-in.
//! [`Latchkey`] is only the bundle the binary builds and hands to the web edge.

mod access;
mod applications;
mod applications_cache;
mod campaign;
mod certificates;
mod devices;
mod directory;
mod governance;
mod maintenance;
pub(crate) mod messages;
mod passkeys;
mod push;
mod settings;
mod shared;
mod sign_in;
mod tokens;

use std::sync::{Arc, RwLock};

pub use applications::{
    ApplicationPatch, Applications, BrowserOrigins, NewApplication, not_assigned_message,
};
pub use applications_cache::APP_CACHE_SECONDS;
pub use campaign::{
    ACTIVITY_SET_UP, ACTIVITY_SHOWN, ACTIVITY_SNOOZED, CampaignPrompt, CampaignRefusal,
    RegistrationCampaigns,
};
pub use certificates::{
    CRL_CACHE_ENTRIES, CRL_FETCH_SECONDS, CertificateFacts, CertificateFailure, CertificateResult,
    CertificateSignIn, Certificates, CrlSource, MAX_CRL_BYTES, ModeDecision, NoCrlSource,
    PresentedChain,
};
pub use devices::{
    ActivationProgress, AnsweringDevice, ConsentProgress, DeviceApiError, DeviceErrorKind, Devices,
    LOCATION_ATTRIBUTION, MAX_DEVICES_PER_USER, MAX_OPEN_ACTIVATIONS_PER_USER, MAX_WAITERS,
    MAX_WAITERS_PER_APPROVAL, RegisteredMethod, SignedDeviceRequest, WaitRefused,
};
pub use directory::{Directory, NewUser, UserPatch};
pub use governance::{ADMINISTRATORS_GROUP_NAME, Administrator, Governance, NewAdminToken};
pub use maintenance::Maintenance;
pub use passkeys::Passkeys;
pub use push::WebPush;
pub use settings::{
    DEFAULT_APPROVAL_LIFETIME_SECONDS, DEFAULT_DEVICE_CODE_LIFETIME_SECONDS,
    DEFAULT_DEVICE_POLL_INTERVAL_SECONDS, MY_APPS_CLIENT_ID, Settings, USERNAME_STEP_FLOOR,
};
pub use shared::ServerKeys;
pub use sign_in::{
    ApprovalWait, AuthorizeStep, CERTIFICATE_REFERENCE_REFUSED, CERTIFICATE_RESULT_REFUSED,
    CertificateRefusal, CredentialInput, MAX_CERTIFICATE_REFERENCE_LENGTH, RECHECK_EVERY,
    REFERENCE_LIFETIME_SECONDS, SignInFailure, SignIns, SignedIn, StrengthPrompt,
    WaitingForApproval, certificate_log_code,
};
pub use tokens::{
    BACKCHANNEL_LOGOUT_EVENT, BackchannelLogouts, ClientCredentials, DeviceAuthorizationResponse,
    DeviceConfirmation, EndSession, Introspection, JWKS_MAX_AGE_SECONDS,
    KEY_PUBLICATION_LEAD_SECONDS, KEYRING_CACHE_SECONDS, LOGOUT_TOKEN_LIFETIME_SECONDS,
    LOGOUT_TOKEN_TYPE, LogoutDelivery, LogoutSender, NoLogoutSender, OAuthError, TokenResponse,
    TokenTypeHint, Tokens, error_redirect,
};

use crate::clock::{Clock, Timestamp};
use crate::notify::{EventBus, PullOnly};
use crate::random::{OsRandom, RandomSource};
use crate::store::Store;

/// The services, built once in `main` and passed to the web edge.
pub struct Latchkey {
    pub directory: Arc<Directory>,
    pub applications: Arc<Applications>,
    pub tokens: Arc<Tokens>,
    pub sign_in: Arc<SignIns>,
    pub devices: Arc<Devices>,
    pub passkeys: Arc<Passkeys>,
    pub governance: Arc<Governance>,
    pub campaign: Arc<RegistrationCampaigns>,
    pub maintenance: Arc<Maintenance>,
    /// Web Push: the VAPID key and the devices' push subscriptions.
    pub push: Arc<WebPush>,
    /// Certificate-based sign-in: chain, revocation, bindings and rules.
    pub certificates: Arc<Certificates>,
    /// The server's purpose keys (the web edge derives its cookie keys from them).
    pub server_keys: Arc<ServerKeys>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
}

impl Latchkey {
    /// The services over one store, with the operating system's random source: the
    /// convenient constructor for tests and tools.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        events: Arc<dyn EventBus>,
        settings: Settings,
    ) -> Self {
        Self::build(store, clock, Arc::new(OsRandom), events, settings)
    }

    /// The services over one store, with the clock and the random source given: a test can fix
    /// both, the server passes the system clock and [`OsRandom`].
    pub fn build(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        events: Arc<dyn EventBus>,
        settings: Settings,
    ) -> Self {
        let settings = Arc::new(settings);
        // Each service gets the one store as only the ports it uses (`store.clone()` upcasts).
        let audit = Arc::new(shared::AuditTrail {
            store: store.clone(),
            clock: clock.clone(),
        });
        let keys = Arc::new(ServerKeys {
            store: store.clone(),
            keys: tokio::sync::OnceCell::new(),
        });
        let hashers = Arc::new(shared::Hashers::new());
        let throttles = Arc::new(shared::Throttles {
            store: store.clone(),
            clock: clock.clone(),
            limits: settings.throttle,
        });
        let anomalies = Arc::new(shared::Anomalies {
            store: store.clone(),
            clock: clock.clone(),
        });
        let access = Arc::new(access::MethodAccess {
            governance: store.clone(),
            groups: store.clone(),
        });
        let applications = Arc::new(Applications {
            store: store.clone(),
            sign_in_log: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
            settings: settings.clone(),
            audit: audit.clone(),
            apps: applications_cache::AppCache::default(),
        });
        let logouts = Arc::new(tokens::BackchannelLogouts {
            store: store.clone(),
            applications: applications.clone(),
            clock: clock.clone(),
            random: random.clone(),
            settings: settings.clone(),
            sender: RwLock::new(Arc::new(tokens::NoLogoutSender)),
        });
        let directory = Arc::new(Directory {
            users: store.clone(),
            groups: store.clone(),
            sessions: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
            events: events.clone(),
            audit: audit.clone(),
            keys: keys.clone(),
            hashers: hashers.clone(),
            access: access.clone(),
            logouts: logouts.clone(),
        });
        let governance = Arc::new(Governance {
            store: store.clone(),
            groups: store.clone(),
            admin_tokens: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
            events: events.clone(),
            audit: audit.clone(),
            keys: keys.clone(),
            access: access.clone(),
            directory: directory.clone(),
        });
        let relying_party = Arc::new(passkeys::RelyingParty::new(
            &settings.issuer,
            &settings.passkey_attestation_roots,
        ));
        let devices = Arc::new(Devices {
            store: store.clone(),
            ceremonies: store.clone(),
            relying_party: relying_party.clone(),
            clock: clock.clone(),
            random: random.clone(),
            settings: settings.clone(),
            notifier: RwLock::new(Arc::new(PullOnly)),
            audit: audit.clone(),
            keys: keys.clone(),
            throttles: throttles.clone(),
            anomalies: anomalies.clone(),
            access: access.clone(),
            directory: directory.clone(),
            applications: applications.clone(),
            governance: governance.clone(),
            waiters: Arc::default(),
        });
        let passkeys = Arc::new(Passkeys {
            store: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
            audit: audit.clone(),
            access: access.clone(),
            relying_party,
            directory: directory.clone(),
        });
        let campaign = Arc::new(RegistrationCampaigns {
            store: store.clone(),
            devices: store.clone(),
            clock: clock.clone(),
            audit: audit.clone(),
            access: access.clone(),
        });
        let tokens = Arc::new(Tokens {
            store: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
            settings: settings.clone(),
            audit,
            applications: applications.clone(),
            directory: directory.clone(),
            keyring: RwLock::new(None),
            device_authorizations: store.clone(),
            throttles: throttles.clone(),
            keys: keys.clone(),
            logouts: logouts.clone(),
        });
        let certificates = Arc::new(Certificates {
            users: store.clone(),
            clock: clock.clone(),
            access: access.clone(),
            crl_source: RwLock::new(Arc::new(NoCrlSource)),
            crls: Default::default(),
        });
        let sign_in = Arc::new(SignIns {
            store: store.clone(),
            clock: clock.clone(),
            random,
            settings: settings.clone(),
            events,
            hashers,
            keys: keys.clone(),
            throttles,
            access,
            directory: directory.clone(),
            applications: applications.clone(),
            tokens: tokens.clone(),
            devices: devices.clone(),
            passkeys: passkeys.clone(),
        });
        let push = Arc::new(WebPush {
            store: store.clone(),
            clock: clock.clone(),
            vapid: tokio::sync::OnceCell::new(),
        });
        let maintenance = Arc::new(Maintenance {
            store,
            clock: clock.clone(),
            devices: devices.clone(),
        });
        Latchkey {
            directory,
            applications,
            tokens,
            sign_in,
            devices,
            passkeys,
            governance,
            campaign,
            maintenance,
            push,
            certificates,
            server_keys: keys,
            settings,
            clock,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
