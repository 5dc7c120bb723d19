//! Typed identifiers, so that a user id can never be passed where a group id is expected.

use serde::{Deserialize, Serialize};

use crate::secret::random_hex;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh, random, opaque identifier (128 bits, hex).
            pub fn random() -> Self {
                $name(random_hex(16))
            }

            /// A fresh identifier drawn from the services' random source.
            pub fn generate(random: &dyn $crate::random::RandomSource) -> Self {
                $name(random.hex(16))
            }

            pub fn from_string(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// A user's stable, opaque id; also the `sub` claim.
    UserId
);
typed_id!(GroupId);
typed_id!(
    /// An application's OAuth `client_id`.
    ClientId
);
typed_id!(
    /// A browser session's public id (the `sid` claim); never the cookie value.
    SessionId
);
typed_id!(
    /// What one authorization code issued: its access and refresh tokens share it.
    GrantId
);
typed_id!(
    /// A sign-in in progress in one browser.
    SignInId
);
typed_id!(
    /// A signing key's `kid`.
    KeyId
);
typed_id!(
    /// A registered authenticator device (one account on one phone).
    DeviceId
);
typed_id!(
    /// A request for approval sent to a user's devices: phone sign-in, MFA push or a
    /// registration test.
    ApprovalId
);
typed_id!(
    /// A one-time activation started on the security-info page; public, unlike its code.
    ActivationId
);
typed_id!(
    /// An administrator API token's public id (never the token itself).
    AdminTokenId
);
typed_id!(
    /// A browser, as the random id inside its known-browser cookie (which the web edge
    /// checks against its MAC before anything here sees the id).
    BrowserId
);
typed_id!(
    /// A registered passkey or security key (Latchkey's own id, not the credential id).
    PasskeyId
);
typed_id!(
    /// A WebAuthn ceremony in progress: names its state, kept server-side and used once.
    CeremonyId
);
