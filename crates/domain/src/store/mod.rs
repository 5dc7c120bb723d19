//! The storage ports. The domain says what it needs from storage as one trait per aggregate
//! (users, groups, applications, sessions and sign-ins, grants and keys, the authenticator
//! app, governance and logs, throttles, administrator tokens, passkeys), composed into the one
//! [`Store`] bound, as lldap composes its backend handler traits. A service holds only the
//! ports it uses; the binary builds one store and hands it out as each of them.
//!
//! Every database Latchkey supports implements every port and passes the same conformance
//! suite (`latchkey-store`'s `conformance` module).
//!
//! Methods that spend a single-use secret (codes, refresh tokens, one-time passes) must do so
//! atomically: two concurrent callers can never both see the secret as fresh.

mod admin_token;
mod application;
mod campaign;
mod device;
mod device_authorization;
mod governance;
mod grant;
mod group;
mod maintenance;
mod passkey;
mod push;
mod session;
mod throttle;
mod user;

pub use admin_token::AdminTokenStore;
pub use application::ApplicationStore;
pub use campaign::CampaignStore;
pub use device::{ApprovalPut, DeviceStore, NonceUse};
pub use device_authorization::DeviceAuthorizationStore;
pub use governance::GovernanceStore;
pub use grant::GrantStore;
pub use group::GroupStore;
pub use maintenance::MaintenanceStore;
pub use passkey::{PasskeyStore, PasskeyUse};
pub use push::PushStore;
pub use session::{Familiar, SessionStore};
pub use throttle::{ThrottleStore, ThrottleTake};
pub use user::UserStore;

use crate::error::StoreError;

pub type StoreResult<T> = Result<T, StoreError>;

/// Declares the whole-store trait as the sum of the ports and implements it for anything that
/// has them all, so the list of ports is written once and cannot drift between the two.
macro_rules! all_ports {
    ($(#[$doc:meta])* pub trait $name:ident: $($port:ident),+ $(,)?) => {
        $(#[$doc])*
        pub trait $name: $($port +)+ Send + Sync {}

        impl<T> $name for T where T: $($port +)+ Send + Sync + ?Sized {}
    };
}

all_ports! {
    /// Every port at once: what a whole database offers. Implemented for any type that
    /// implements all the ports, so a store implements the ports and never this trait by hand.
    ///
    /// Methods on `dyn Store` resolve through the supertraits without importing them, and an
    /// `Arc<dyn Store>` upcasts to an `Arc<dyn UserStore>` (or any other port) for a service
    /// that needs only that one.
    pub trait Store:
        UserStore,
        GroupStore,
        ApplicationStore,
        SessionStore,
        GrantStore,
        DeviceStore,
        GovernanceStore,
        ThrottleStore,
        AdminTokenStore,
        MaintenanceStore,
        PasskeyStore,
        CampaignStore,
        PushStore,
        DeviceAuthorizationStore,
}

/// Compile-time check that a whole store can be handed out as each of its ports (trait
/// upcasting), which is how services get only the ports they use.
#[allow(dead_code)]
fn upcasts(store: std::sync::Arc<dyn Store>) {
    use std::sync::Arc;
    let _: Arc<dyn UserStore> = store.clone();
    let _: Arc<dyn GroupStore> = store.clone();
    let _: Arc<dyn ApplicationStore> = store.clone();
    let _: Arc<dyn SessionStore> = store.clone();
    let _: Arc<dyn GrantStore> = store.clone();
    let _: Arc<dyn DeviceStore> = store.clone();
    let _: Arc<dyn GovernanceStore> = store.clone();
    let _: Arc<dyn ThrottleStore> = store.clone();
    let _: Arc<dyn AdminTokenStore> = store.clone();
    let _: Arc<dyn MaintenanceStore> = store.clone();
    let _: Arc<dyn PasskeyStore> = store.clone();
    let _: Arc<dyn CampaignStore> = store.clone();
    let _: Arc<dyn PushStore> = store.clone();
    let _: Arc<dyn DeviceAuthorizationStore> = store;
}
