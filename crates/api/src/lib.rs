//! The admin API's contract (`/api/v1`): the request and response bodies, shaped after Microsoft
//! Graph where Graph has a shape, with their OpenAPI schemas. The server (`latchkey-web`) answers
//! with these types and generates its OpenAPI document from them; `latchkey admin`, the load
//! generator and the tests talk to it through [`Client`] (feature `client`).
//!
//! Answers declare their fields in alphabetical order: that is the order clients have always
//! received (the answers used to be built as JSON maps, which sort their keys), and the order
//! Graph documents properties in. Request bodies keep the order their validation messages
//! ("missing field `userPrincipalName`") have always named them in.

mod admin;
mod directory;
mod error;
mod logs;
mod method_config;
mod policy;
mod risk;

#[cfg(feature = "client")]
mod client;

pub use admin::*;
pub use directory::*;
pub use error::*;
pub use logs::*;
pub use method_config::*;
pub use policy::*;
pub use risk::*;

#[cfg(feature = "client")]
pub use client::{Client, ClientError};

/// Declares Graph's collection shape, `{"value": [...]}`, under a name of its own, so the
/// document names each list (`UserList`, …) as the hand-written one did.
macro_rules! collection {
    ($(#[$doc:meta])* $name:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub struct $name {
            pub value: Vec<$item>,
        }

        impl From<Vec<$item>> for $name {
            fn from(value: Vec<$item>) -> Self {
                $name { value }
            }
        }
    };
}
pub(crate) use collection;
