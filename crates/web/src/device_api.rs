//! The authenticator API, `/authenticator/v1` (documented in `docs/authenticator-protocol.md`).
//!
//! Apart from activation, every request is signed by the device: the handlers take the raw
//! body, let the domain check the signature, timestamp and nonce over exactly those bytes, and
//! only then parse it. The live channel is a WebSocket; what it misses, `GET /requests` has.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use latchkey_domain::authenticator::Device;
use latchkey_domain::service::{
    AnsweringDevice, DeviceApiError, DeviceErrorKind, SignedDeviceRequest,
};
use latchkey_protocol::wire::{
    ActivateRequest, Answer, ApiError, DeviceEvent, DisablePhoneSignIn, EnablePasskey,
    EnablePhoneSignIn, PasskeyEnabled, PhoneSignInEnabled, PinUnlock,
};
use latchkey_protocol::{
    HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_BODY_BYTES,
};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::device_hub::DeviceHub;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/activate", post(activate))
        .route("/device", get(device_status).delete(remove_device))
        .route(
            "/phone-sign-in",
            post(enable_phone_sign_in).delete(disable_phone_sign_in),
        )
        .route("/phone-sign-in/unlock", post(unlock_phone_sign_in))
        .route("/phone-sign-in/passkey/options", post(passkey_options))
        .route("/phone-sign-in/passkey", post(enable_passkey))
        .route("/requests", get(pending))
        .route("/requests/{id}/answer", post(answer))
        .route("/stream", get(stream))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// An error in the protocol's JSON shape.
pub struct DeviceError(DeviceApiError);

impl From<DeviceApiError> for DeviceError {
    fn from(e: DeviceApiError) -> Self {
        DeviceError(e)
    }
}

pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> DeviceError {
    DeviceError(DeviceApiError {
        kind: DeviceErrorKind::Invalid,
        code,
        message: message.into(),
        detail: None,
    })
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = match e.kind {
            DeviceErrorKind::Invalid => StatusCode::BAD_REQUEST,
            DeviceErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            DeviceErrorKind::Forbidden => StatusCode::FORBIDDEN,
            DeviceErrorKind::NotFound => StatusCode::NOT_FOUND,
            DeviceErrorKind::Conflict => StatusCode::CONFLICT,
            DeviceErrorKind::Gone => StatusCode::GONE,
            DeviceErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            DeviceErrorKind::Internal => {
                tracing::error!(
                    detail = e.detail.as_deref().unwrap_or(&e.message),
                    "authenticator API failure"
                );
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if e.kind == DeviceErrorKind::Unauthenticated {
            tracing::info!(code = e.code, "refused a device request");
        }
        (
            status,
            axum::Json(ApiError {
                error: e.code.to_string(),
                message: e.message,
            }),
        )
            .into_response()
    }
}

/// A body read whole (within the limit) so its exact bytes can be verified.
async fn raw_body(request: Request, state: &AppState) -> Result<Bytes, DeviceError> {
    Bytes::from_request(request, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            DeviceError(DeviceApiError {
                kind: DeviceErrorKind::Invalid,
                code: "body_too_large",
                message: format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
                detail: None,
            })
        } else {
            invalid("unreadable_body", "the request body could not be read")
        }
    })
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, DeviceError> {
    serde_json::from_slice(body).map_err(|e| invalid("invalid_json", e.to_string()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The four signature values of a request, from its `X-Latchkey-*` headers or (the live
/// channel only) from its query.
struct SignatureValues<'a> {
    device_id: &'a str,
    timestamp: &'a str,
    nonce: &'a str,
    signature: &'a str,
}

impl<'a> SignatureValues<'a> {
    fn from_headers(headers: &'a HeaderMap) -> Self {
        SignatureValues {
            device_id: header(headers, HEADER_DEVICE),
            timestamp: header(headers, HEADER_TIMESTAMP),
            nonce: header(headers, HEADER_NONCE),
            signature: header(headers, HEADER_SIGNATURE),
        }
    }

    fn any_present(headers: &HeaderMap) -> bool {
        [
            HEADER_DEVICE,
            HEADER_TIMESTAMP,
            HEADER_NONCE,
            HEADER_SIGNATURE,
        ]
        .iter()
        .any(|name| headers.contains_key(*name))
    }

    /// The query-signed form of `GET /stream`, for browsers (which cannot set headers on a
    /// WebSocket handshake): exactly `device`, `timestamp`, `nonce` and `signature`, once each,
    /// in a query of at most [`MAX_STREAM_QUERY_BYTES`]. The values are taken as sent (every
    /// valid one is plain URL-safe text); anything percent-encoded fails the usual checks.
    /// A missing value is left empty, so the usual checks refuse it as `unsigned_request`.
    fn from_query(query: &'a str) -> Result<Self, DeviceError> {
        if query.len() > MAX_STREAM_QUERY_BYTES {
            return Err(invalid(
                "invalid_query",
                format!("the query is limited to {MAX_STREAM_QUERY_BYTES} bytes"),
            ));
        }
        let mut values = SignatureValues {
            device_id: "",
            timestamp: "",
            nonce: "",
            signature: "",
        };
        let mut seen = [false; 4];
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (slot, index) = match name {
                "device" => (&mut values.device_id, 0),
                "timestamp" => (&mut values.timestamp, 1),
                "nonce" => (&mut values.nonce, 2),
                "signature" => (&mut values.signature, 3),
                _ => {
                    return Err(invalid(
                        "invalid_query",
                        "the query may hold only device, timestamp, nonce and signature",
                    ));
                }
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(invalid(
                    "invalid_query",
                    format!("the query names {name} more than once"),
                ));
            }
            *slot = value;
        }
        Ok(values)
    }
}

/// The longest query the query-signed live channel accepts.
const MAX_STREAM_QUERY_BYTES: usize = 1024;

/// Checks the device's signature over this exact request.
async fn signed_device(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Device, DeviceError> {
    let full_path = signed_path(uri);
    let signed = signed_request(
        SignatureValues::from_headers(headers),
        method,
        &full_path,
        body,
    );
    Ok(state.latchkey.devices.authenticate_device(&signed).await?)
}

/// What a device signs as the path of a request: routes are nested, so the full path (and
/// query) it requested.
fn signed_path(uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}{}", latchkey_protocol::API_PREFIX, path)
}

/// The values of a signed request, whatever carried them, as the domain checks them.
fn signed_request<'a>(
    values: SignatureValues<'a>,
    method: &'a Method,
    full_path: &'a str,
    body: &'a [u8],
) -> SignedDeviceRequest<'a> {
    SignedDeviceRequest {
        device_id: values.device_id,
        timestamp: values.timestamp,
        nonce: values.nonce,
        signature: values.signature,
        method: method.as_str(),
        path: full_path,
        body,
    }
}

/// Checks the signature of a `GET /stream` handshake: by its headers, or, when it has none of
/// them and a query, by its query. The query form signs the path without the query (which
/// carries the signature); mixing the two forms is refused.
async fn signed_stream_device(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Device, DeviceError> {
    let query = uri.query().filter(|q| !q.is_empty());
    match query {
        Some(query) if !SignatureValues::any_present(headers) => {
            let values = SignatureValues::from_query(query)?;
            let full_path = format!("{}{}", latchkey_protocol::API_PREFIX, uri.path());
            let signed = signed_request(values, method, &full_path, b"");
            Ok(state.latchkey.devices.authenticate_device(&signed).await?)
        }
        Some(_) => Err(invalid(
            "invalid_query",
            "sign the live channel by headers or by query, not both",
        )),
        None => signed_device(state, method, uri, headers, b"").await,
    }
}

/// A request signed by a device: the device, once the domain has checked the signature,
/// timestamp and nonce over exactly these bytes, and the body it signed (parse it only now).
pub(crate) struct SignedRequest {
    pub(crate) device: Device,
    pub(crate) body: Bytes,
}

impl FromRequest<AppState> for SignedRequest {
    type Rejection = DeviceError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, DeviceError> {
        let (parts, body) = request.into_parts();
        let body = raw_body(Request::from_parts(parts.clone(), body), state).await?;
        let device = signed_device(state, &parts.method, &parts.uri, &parts.headers, &body).await?;
        Ok(SignedRequest { device, body })
    }
}

async fn activate(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, DeviceError> {
    let body = raw_body(request, &state).await?;
    let activation: ActivateRequest = parse(&body)?;
    let response = state.latchkey.devices.activate(activation).await?;
    Ok((StatusCode::CREATED, axum::Json(response)).into_response())
}

async fn device_status(
    State(state): State<AppState>,
    SignedRequest { device, .. }: SignedRequest,
) -> Result<Response, DeviceError> {
    Ok(axum::Json(state.latchkey.devices.device_status(&device).await?).into_response())
}

async fn remove_device(
    State(state): State<AppState>,
    SignedRequest { device, .. }: SignedRequest,
) -> Result<Response, DeviceError> {
    state
        .latchkey
        .devices
        .remove_device_by_itself(&device)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn enable_phone_sign_in(
    State(state): State<AppState>,
    SignedRequest { device, body }: SignedRequest,
) -> Result<Response, DeviceError> {
    let enable: EnablePhoneSignIn = parse(&body)?;
    let unlock_secret = state
        .latchkey
        .devices
        .enable_phone_sign_in(&device, &enable)
        .await?;
    let device = state
        .latchkey
        .devices
        .device_status(&device_again(&state, &device).await?)
        .await?;
    Ok(axum::Json(PhoneSignInEnabled {
        device,
        unlock_secret,
    })
    .into_response())
}

/// The body of `POST /phone-sign-in/passkey/options`: an empty object.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// The creation options for the web app's WebAuthn credential (phone sign-in's second
/// passwordless proof).
async fn passkey_options(
    State(state): State<AppState>,
    SignedRequest { device, body }: SignedRequest,
) -> Result<Response, DeviceError> {
    let _: NoFields = parse(&body)?;
    let options = state
        .latchkey
        .devices
        .begin_phone_sign_in_passkey(&device)
        .await?;
    Ok(axum::Json(options).into_response())
}

/// The credential the phone made: phone sign-in is on with proof `webauthn`.
async fn enable_passkey(
    State(state): State<AppState>,
    SignedRequest { device, body }: SignedRequest,
) -> Result<Response, DeviceError> {
    let enable: EnablePasskey = parse(&body)?;
    state
        .latchkey
        .devices
        .finish_phone_sign_in_passkey(&device, &enable)
        .await?;
    let device = state
        .latchkey
        .devices
        .device_status(&device_again(&state, &device).await?)
        .await?;
    Ok(axum::Json(PasskeyEnabled { device }).into_response())
}

/// The PIN check: the unlock secret for the right PIN verifier; wrong ones are counted.
async fn unlock_phone_sign_in(
    State(state): State<AppState>,
    SignedRequest { device, body }: SignedRequest,
) -> Result<Response, DeviceError> {
    let unlock: PinUnlock = parse(&body)?;
    let unlocked = state
        .latchkey
        .devices
        .unlock_phone_sign_in(&device, &unlock)
        .await?;
    Ok(axum::Json(unlocked).into_response())
}

async fn disable_phone_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedRequest { device, body }: SignedRequest,
) -> Result<Response, DeviceError> {
    let nonce = header(&headers, HEADER_NONCE).to_string();
    // Already off needs no proof, so an empty body is fine then.
    let disable: Option<DisablePhoneSignIn> = if body.is_empty() {
        None
    } else {
        Some(parse(&body)?)
    };
    state
        .latchkey
        .devices
        .disable_phone_sign_in(&device, &nonce, disable.as_ref())
        .await?;
    Ok(axum::Json(
        state
            .latchkey
            .devices
            .device_status(&device_again(&state, &device).await?)
            .await?,
    )
    .into_response())
}

async fn device_again(state: &AppState, device: &Device) -> Result<Device, DeviceError> {
    let status = state
        .latchkey
        .devices
        .registered_device(&device.id)
        .await
        .map_err(DeviceApiError::from)?;
    status.ok_or_else(|| {
        DeviceError(DeviceApiError {
            kind: DeviceErrorKind::Unauthenticated,
            code: "unknown_device",
            message: "the device was removed".into(),
            detail: None,
        })
    })
}

async fn pending(
    State(state): State<AppState>,
    SignedRequest { device, .. }: SignedRequest,
) -> Result<Response, DeviceError> {
    let requests = state.latchkey.devices.pending_for_device(&device).await?;
    Ok(axum::Json(latchkey_protocol::wire::PendingRequests { requests }).into_response())
}

/// An answer's request is checked like any signed one, and also counts against its device's
/// answer throttle, in the same write that records its nonce.
async fn answer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, DeviceError> {
    let (parts, body) = request.into_parts();
    let body = raw_body(Request::from_parts(parts.clone(), body), &state).await?;
    let full_path = signed_path(&parts.uri);
    let signed = signed_request(
        SignatureValues::from_headers(&parts.headers),
        &parts.method,
        &full_path,
        &body,
    );
    let answering: AnsweringDevice = state.latchkey.devices.authenticate_answer(&signed).await?;
    let answer: Answer = parse(&body)?;
    let result = state
        .latchkey
        .devices
        .answer(&answering, &id, &answer)
        .await?;
    Ok(axum::Json(result).into_response())
}

/// How often the server pings an idle connection, so dead ones are noticed and proxies keep
/// the connection open.
const PING_EVERY: Duration = Duration::from_secs(25);

async fn stream(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match open_stream(state, method, uri, headers, upgrade).await {
        Ok(response) => response,
        Err(refused) => {
            // A refused live channel gets its answer and the connection closes: a client that
            // never authenticates holds nothing open.
            let mut response = refused.into_response();
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

async fn open_stream(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, DeviceError> {
    let device = signed_stream_device(&state, &method, &uri, &headers).await?;
    if !device.is_confirmed() {
        // An unfinished registration has its test in the activation answer; nothing to push.
        return Err(DeviceError(DeviceApiError {
            kind: DeviceErrorKind::Conflict,
            code: "registration_incomplete",
            message: "answer the test notification first".into(),
            detail: None,
        }));
    }
    let upgrade =
        upgrade.map_err(|_| invalid("websocket_required", "GET /stream is a WebSocket"))?;
    let hub = state.devices.clone();
    Ok(upgrade
        .max_message_size(MAX_BODY_BYTES)
        // A live channel carries a few small JSON events a minute; tungstenite's 128 KiB
        // buffers per direction made each idle phone cost the server 137 KiB.
        .read_buffer_size(CHANNEL_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_BODY_BYTES * 4)
        .on_upgrade(move |socket| relay(socket, hub, device))
        .into_response())
}

/// Read buffer of one live channel: the device sends only pongs and close frames.
const CHANNEL_BUFFER_BYTES: usize = 1024;

/// Forwards the device's events to its socket until either side goes away. The device sends
/// nothing but pongs and close frames; anything else is ignored.
async fn relay(socket: WebSocket, hub: Arc<DeviceHub>, device: Device) {
    let mut subscription = hub.subscribe(&device.id);
    let (mut sink, mut incoming) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            event = subscription.events.recv() => {
                let Some(event) = event else { break };
                let text = match serde_json::to_string::<DeviceEvent>(&*event) {
                    Ok(text) => text,
                    Err(_) => continue,
                };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
}
