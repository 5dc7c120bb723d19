//! The signed Web Push endpoints of `/authenticator/v1` (docs/authenticator-protocol.md, "Web
//! Push"): the VAPID key a device subscribes with, and its one push subscription.
//!
//! A subscription is a URL the server will POST to, chosen by the device: it is checked
//! strictly here (shape, `https`, keys, and that its host is not in the operator's network),
//! and again at every send (`web_push`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use latchkey_domain::service::{DeviceApiError, DeviceErrorKind};
use latchkey_protocol::MAX_BODY_BYTES;
use latchkey_protocol::push::{PushStatus, PushSubscriptionBody};

use crate::AppState;
use crate::device_api::{DeviceError, SignedRequest, invalid, parse};
use crate::web_push::{WebPushSender, is_p256_point, resolve_public};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/push", get(push_status))
        .route(
            "/push-subscription",
            axum::routing::put(subscribe).delete(unsubscribe),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn sender(state: &AppState) -> Result<&WebPushSender, DeviceError> {
    state.web_push.as_deref().ok_or_else(|| {
        DeviceError::from(DeviceApiError {
            kind: DeviceErrorKind::NotFound,
            code: "web_push_disabled",
            message: "this server does not send Web Push; the app pulls and uses the live channel"
                .into(),
            detail: None,
        })
    })
}

async fn push_status(
    State(state): State<AppState>,
    SignedRequest { device, .. }: SignedRequest,
) -> Result<Response, DeviceError> {
    let sender = sender(&state)?;
    let subscribed = state
        .latchkey
        .push
        .subscription(&device.id)
        .await
        .map_err(DeviceApiError::from)?
        .is_some();
    Ok(axum::Json(PushStatus {
        vapid_public_key: sender.vapid_public_key().to_string(),
        subscribed,
    })
    .into_response())
}

async fn subscribe(
    State(state): State<AppState>,
    SignedRequest { device, body }: SignedRequest,
) -> Result<Response, DeviceError> {
    let sender = sender(&state)?;
    let body: PushSubscriptionBody = parse(&body)?;
    let allow_private = sender.allows_private_endpoints();
    let checked = state.latchkey.push.check(&body, allow_private)?;
    if !is_p256_point(&checked.p256dh) {
        return Err(invalid(
            "bad_subscription",
            "keys.p256dh is not a point on the P-256 curve",
        ));
    }
    // A name must not lead into the operator's network either. It is checked again, by the
    // connection's own resolver, at every send; a name that does not resolve now is refused.
    if let Some(url::Host::Domain(name)) = checked.endpoint.host()
        && !allow_private
        && let Err(refused) = resolve_public(name, false).await
    {
        return Err(invalid(refused.code, refused.message));
    }
    state.latchkey.push.subscribe(&device, checked).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unsubscribe(
    State(state): State<AppState>,
    SignedRequest { device, body }: SignedRequest,
) -> Result<Response, DeviceError> {
    sender(&state)?;
    if !body.is_empty() {
        return Err(invalid(
            "invalid_json",
            "DELETE /push-subscription takes no body",
        ));
    }
    state.latchkey.push.unsubscribe(&device).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
