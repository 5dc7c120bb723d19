//! The protocol half of the app: one registered device talking to its server, with its keys
//! in memory. The [`crate::Authenticator`] opens one from its key store for each call; the
//! load generator keeps thousands of them without a key store at all.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use latchkey_protocol::wire::{
    ActivateRequest, ActivateResponse, Answer, AnswerOutcome, AnswerResult, ApiError,
    ApprovalRequest, Decision, DeviceEvent, DeviceStatus, DisablePhoneSignIn, EnablePhoneSignIn,
    PhoneSignInEnabled, PinUnlock, PinUnlocked,
};
use latchkey_protocol::{
    API_PREFIX, ActivationLink, DeviceKeyPair, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, PublicKey, activation_proof_input, answer_signing_input, context_digest,
    passwordless_off_input, passwordless_proof_input, request_signing_input,
};

use crate::Error;
use crate::keystore::PinVerifier;
use crate::terminal::printable;

/// The largest HTTP body or WebSocket message the app reads from a server. The protocol's
/// answers are a few kilobytes; a server named in a link could otherwise make the app read
/// without end.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

fn too_large() -> Error {
    Error::Network(format!(
        "the server's answer is larger than {} KiB; not read",
        MAX_RESPONSE_BYTES / 1024
    ))
}

/// Reads a body up to [`MAX_RESPONSE_BYTES`], refusing (and dropping the connection) beyond.
async fn capped_body(mut response: reqwest::Response) -> Result<Vec<u8>, Error> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::Network(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A refusal as the app shows it: the server's code and sentence, made printable.
fn server_error(status: reqwest::StatusCode, body: &[u8]) -> Error {
    let error: ApiError = serde_json::from_slice(body).unwrap_or(ApiError {
        error: "http_error".into(),
        message: format!("HTTP {status}"),
    });
    Error::Server {
        status: status.as_u16(),
        code: printable(&error.error),
        message: printable(&error.message),
    }
}

/// The HTTP client the app uses: one per app, shared by its accounts.
pub fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        // The device API never redirects; a server that does is not followed elsewhere with
        // the app's signed requests.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Network(e.to_string()))
}

pub(crate) fn nonce() -> String {
    use aws_lc_rs::rand::SecureRandom;
    use base64::Engine;
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

pub(crate) async fn read_response<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, Error> {
    let status = response.status();
    let bytes = capped_body(response).await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| {
            Error::Network(format!(
                "unexpected answer from the server: {}",
                printable(&e.to_string())
            ))
        });
    }
    Err(server_error(status, &bytes))
}

/// Redeems an activation link with a new device key: the server registers the key and sends
/// back the test notification to answer.
pub async fn activate(
    http: &reqwest::Client,
    link: &ActivationLink,
    device_name: &str,
    key: &DeviceKeyPair,
) -> Result<ActivateResponse, Error> {
    let public = key.public_key();
    let body = ActivateRequest {
        code: link.code.clone(),
        device_name: device_name.to_string(),
        proof: key.sign(&activation_proof_input(&link.code, &public)),
        device_key: public,
        app: None,
    };
    let response = http
        .post(format!("{}{API_PREFIX}/activate", link.server))
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::Network(e.to_string()))?;
    read_response(response).await
}

/// Signs an answer to `request` with `key`: the passwordless key for a phone sign-in, the
/// device key for an MFA push or a registration test.
pub fn sign_answer(
    key: &DeviceKeyPair,
    request: &ApprovalRequest,
    decision: Decision,
    number: Option<u8>,
) -> Answer {
    let digest = context_digest(request);
    Answer {
        decision,
        number,
        signature: key.sign(&answer_signing_input(
            &request.id,
            &request.nonce,
            decision,
            number,
            &digest,
        )),
        context_digest: digest,
        assertion: None,
    }
}

/// One registered device: where its server is, its id there, and its device key.
pub struct DeviceClient {
    http: reqwest::Client,
    server: String,
    device_id: String,
    key: DeviceKeyPair,
}

impl DeviceClient {
    pub fn new(
        http: reqwest::Client,
        server: &str,
        device_id: &str,
        key: DeviceKeyPair,
    ) -> DeviceClient {
        DeviceClient {
            http,
            server: server.to_string(),
            device_id: device_id.to_string(),
            key,
        }
    }

    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    pub fn device_key(&self) -> &DeviceKeyPair {
        &self.key
    }

    /// A device request's signed headers, for HTTP and for the WebSocket handshake.
    fn signed_headers(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        nonce: String,
    ) -> [(&'static str, String); 4] {
        let timestamp = unix_now();
        let signature = self.key.sign(&request_signing_input(
            method, path, timestamp, &nonce, body,
        ));
        [
            (HEADER_DEVICE, self.device_id.clone()),
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_NONCE, nonce),
            (HEADER_SIGNATURE, signature),
        ]
    }

    /// Sends a request signed with the device key; `path` is below the API prefix.
    pub async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        nonce: String,
    ) -> Result<reqwest::Response, Error> {
        let full = format!("{API_PREFIX}{path}");
        let bytes = body.unwrap_or_default();
        let mut request = self
            .http
            .request(method.clone(), format!("{}{full}", self.server));
        for (name, value) in self.signed_headers(method.as_str(), &full, &bytes, nonce) {
            request = request.header(name, value);
        }
        if !bytes.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }
        request
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))
    }

    pub async fn status(&self) -> Result<DeviceStatus, Error> {
        read_response(
            self.signed(reqwest::Method::GET, "/device", None, nonce())
                .await?,
        )
        .await
    }

    /// Registers `key` as this device's passwordless key with the verifier of its PIN;
    /// `previous` is the key it replaces, which must agree. The answer carries the unlock
    /// secret to seal the key under.
    pub async fn enable_phone_sign_in(
        &self,
        key: &PublicKey,
        proof_key: &DeviceKeyPair,
        previous: Option<&DeviceKeyPair>,
        pin_verifier: &PinVerifier,
    ) -> Result<PhoneSignInEnabled, Error> {
        let message = passwordless_proof_input(&self.device_id, key);
        let body = EnablePhoneSignIn {
            proof: proof_key.sign(&message),
            previous_proof: previous.map(|p| p.sign(&message)),
            key: key.clone(),
            pin_verifier: pin_verifier.encoded(),
        };
        let bytes = serde_json::to_vec(&body).expect("serialises");
        read_response(
            self.signed(
                reqwest::Method::POST,
                "/phone-sign-in",
                Some(bytes),
                nonce(),
            )
            .await?,
        )
        .await
    }

    /// Asks for the unlock secret with a PIN's verifier. The server counts wrong PINs
    /// (`wrong_pin`) and turns phone sign-in off after too many (`phone_sign_in_locked`).
    pub async fn unlock(&self, pin_verifier: &PinVerifier) -> Result<PinUnlocked, Error> {
        let body = PinUnlock {
            pin_verifier: pin_verifier.encoded(),
        };
        let bytes = serde_json::to_vec(&body).expect("serialises");
        read_response(
            self.signed(
                reqwest::Method::POST,
                "/phone-sign-in/unlock",
                Some(bytes),
                nonce(),
            )
            .await?,
        )
        .await
    }

    /// Turns phone sign-in off; the passwordless key signs that it agrees.
    pub async fn disable_phone_sign_in(
        &self,
        passwordless: &DeviceKeyPair,
    ) -> Result<DeviceStatus, Error> {
        let nonce = nonce();
        let body = DisablePhoneSignIn {
            proof: Some(passwordless.sign(&passwordless_off_input(&self.device_id, &nonce))),
            assertion: None,
        };
        let bytes = serde_json::to_vec(&body).expect("serialises");
        read_response(
            self.signed(
                reqwest::Method::DELETE,
                "/phone-sign-in",
                Some(bytes),
                nonce,
            )
            .await?,
        )
        .await
    }

    /// Unregisters the device. A device the server no longer knows counts as removed.
    pub async fn remove(&self) -> Result<(), Error> {
        let response = self
            .signed(reqwest::Method::DELETE, "/device", None, nonce())
            .await?;
        if response.status().is_success() {
            return Ok(());
        }
        match read_response::<serde_json::Value>(response).await {
            Err(e) if e.code() == Some("unknown_device") => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// Requests waiting for this device (what arrived while not listening).
    pub async fn pending(&self) -> Result<Vec<ApprovalRequest>, Error> {
        // Read leniently: a request of a kind this app does not know is skipped, not fatal.
        let list: serde_json::Value = read_response(
            self.signed(reqwest::Method::GET, "/requests", None, nonce())
                .await?,
        )
        .await?;
        Ok(list["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_value(r.clone()).ok())
            .collect())
    }

    /// Sends an answer as given (the tests use it to send forged and replayed answers).
    pub async fn send_answer(
        &self,
        request_id: &str,
        answer: &Answer,
    ) -> Result<AnswerOutcome, Error> {
        if request_id.is_empty()
            || !request_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::Usage("that is not a request id".into()));
        }
        let bytes = serde_json::to_vec(answer).expect("serialises");
        let response = self
            .signed(
                reqwest::Method::POST,
                &format!("/requests/{request_id}/answer"),
                Some(bytes),
                nonce(),
            )
            .await?;
        let result: AnswerResult = read_response(response).await?;
        Ok(result.outcome)
    }

    /// Opens the live channel.
    pub async fn connect(&self) -> Result<EventStream, Error> {
        self.connect_from(None).await
    }

    /// Opens the live channel from `local`, a local address to connect from (`None`: the
    /// operating system's choice). A load generator spreads its thousands of channels over
    /// several loopback addresses so that they do not run out of one address's ports.
    pub async fn connect_from(&self, local: Option<IpAddr>) -> Result<EventStream, Error> {
        let path = format!("{API_PREFIX}/stream");
        let ws_url = format!("{}{path}", self.server)
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = ws_url
            .into_client_request()
            .map_err(|e| Error::Network(e.to_string()))?;
        for (name, value) in self.signed_headers("GET", &path, b"", nonce()) {
            request.headers_mut().insert(
                name,
                value
                    .parse()
                    .map_err(|_| Error::Usage("bad header".into()))?,
            );
        }
        // The channel carries a few small events a minute: tungstenite's 128 KiB read buffer
        // would be most of what an open channel costs the app.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_RESPONSE_BYTES))
            .max_frame_size(Some(MAX_RESPONSE_BYTES))
            .read_buffer_size(CHANNEL_READ_BUFFER_BYTES)
            .write_buffer_size(0);
        let opened = match local {
            None => {
                tokio_tungstenite::connect_async_with_config(request, Some(config), false).await
            }
            Some(local) => {
                let tcp = connect_tcp_from(local, request.uri()).await?;
                tokio_tungstenite::client_async_tls_with_config(request, tcp, Some(config), None)
                    .await
            }
        };
        let (socket, _) = opened.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                let body = response.body().clone().unwrap_or_default();
                let status = reqwest::StatusCode::from_u16(response.status().as_u16())
                    .unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
                server_error(status, &body[..body.len().min(MAX_RESPONSE_BYTES)])
            }
            other => Error::Network(other.to_string()),
        })?;
        Ok(EventStream { socket })
    }
}

/// The live channel's read buffer (messages larger than it are still read whole).
const CHANNEL_READ_BUFFER_BYTES: usize = 1024;

/// A TCP connection to `uri`'s host from the local address `local`.
async fn connect_tcp_from(
    local: IpAddr,
    uri: &tokio_tungstenite::tungstenite::http::Uri,
) -> Result<tokio::net::TcpStream, Error> {
    let host = uri
        .host()
        .ok_or_else(|| Error::Usage("the server address has no host".into()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let network = |e: std::io::Error| Error::Network(e.to_string());
    let mut last = None;
    for remote in tokio::net::lookup_host((host, port))
        .await
        .map_err(network)?
    {
        if remote.is_ipv4() != local.is_ipv4() {
            continue;
        }
        let socket = if local.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(network)?;
        socket
            .bind(std::net::SocketAddr::new(local, 0))
            .map_err(network)?;
        match socket.connect(remote).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => network(e),
        None => Error::Network(format!("no address of {host} to reach from {local}")),
    })
}

/// The live channel of one device.
pub struct EventStream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl EventStream {
    /// The next event; `None` when the server closed the connection (or sent a message larger
    /// than [`MAX_RESPONSE_BYTES`], which ends the channel).
    pub async fn next(&mut self) -> Option<DeviceEvent> {
        use tokio_tungstenite::tungstenite::Message;
        while let Some(message) = self.socket.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    if let Ok(event) = serde_json::from_str(text.as_str()) {
                        return Some(event);
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
