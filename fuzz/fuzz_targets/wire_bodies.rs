//! The JSON bodies of `/authenticator/v1`: what the server reads from devices, and what the
//! authenticator reads from a server (which it must not trust either).
//!
//! Properties: a body that deserializes re-serializes, deserializes again to the same value
//! and serializes to the same bytes; an approval request's context digest survives the trip;
//! and every body the server reads refuses a field it does not know.

#![no_main]

use latchkey_protocol::context_digest;
use latchkey_protocol::push::{PushMessage, PushStatus, PushSubscriptionBody};
use latchkey_protocol::wire::{
    ActivateRequest, ActivateResponse, Answer, AnswerResult, ApiError, ApprovalRequest,
    DeviceEvent, DeviceStatus, DisablePhoneSignIn, EnablePasskey, EnablePhoneSignIn,
    PasskeyEnabled, PasskeyOptions, PendingRequests,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The value and its second reading, when `data` is a `T` at all.
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<(T, T)> {
    let value: T = serde_json::from_slice(data).ok()?;
    let name = std::any::type_name::<T>();
    let text = serde_json::to_vec(&value).expect("an accepted body serializes");
    let again: T = serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "{name} serialized as {:?} does not read back: {e}",
            String::from_utf8_lossy(&text)
        )
    });
    let text_again = serde_json::to_vec(&again).expect("serializes");
    assert_eq!(
        text, text_again,
        "{name} serializes differently after a round trip"
    );
    Some((value, again))
}

/// For what the server reads: the same body with one more field must be refused.
fn refuses_unknown_fields<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if round_trip::<T>(data).is_none() {
        return;
    }
    let Ok(serde_json::Value::Object(mut body)) = serde_json::from_slice(data) else {
        return;
    };
    body.insert("unexpected_field".into(), serde_json::Value::Bool(true));
    assert!(
        serde_json::from_value::<T>(serde_json::Value::Object(body)).is_err(),
        "{} accepted an unknown field",
        std::any::type_name::<T>()
    );
}

fuzz_target!(|data: &[u8]| {
    // Read by the server.
    refuses_unknown_fields::<ActivateRequest>(data);
    refuses_unknown_fields::<EnablePhoneSignIn>(data);
    refuses_unknown_fields::<DisablePhoneSignIn>(data);
    refuses_unknown_fields::<Answer>(data);
    refuses_unknown_fields::<EnablePasskey>(data);
    refuses_unknown_fields::<PushSubscriptionBody>(data);

    // Read by the authenticator.
    round_trip::<ActivateResponse>(data);
    round_trip::<DeviceStatus>(data);
    round_trip::<PasskeyOptions>(data);
    round_trip::<PasskeyEnabled>(data);
    round_trip::<AnswerResult>(data);
    round_trip::<PendingRequests>(data);
    round_trip::<ApiError>(data);
    round_trip::<PushStatus>(data);
    round_trip::<PushMessage>(data);
    if let Some((request, again)) = round_trip::<ApprovalRequest>(data) {
        assert_eq!(request, again);
        assert_eq!(context_digest(&request), context_digest(&again));
    }
    if let Some((event, again)) = round_trip::<DeviceEvent>(data) {
        assert_eq!(event, again);
    }
});
