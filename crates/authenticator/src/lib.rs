//! Latchkey's authenticator app, as a library (the tests, the demo and the benchmark drive it)
//! and a terminal program (`main.rs`).
//!
//! An [`Authenticator`] is one device: a home folder with its [`keystore::Keystore`], and
//! accounts on one or several servers. It speaks the authenticator protocol over real HTTP
//! and WebSocket connections and signs every request with the account's device key.

pub mod keystore;
pub mod qr;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use latchkey_protocol::wire::{
    ActivateRequest, ActivateResponse, Answer, AnswerOutcome, AnswerResult, ApiError, ApprovalKind,
    ApprovalRequest, Decision, DeviceEvent, DeviceStatus, DisablePhoneSignIn, EnablePhoneSignIn,
};
use latchkey_protocol::{
    API_PREFIX, ActivationLink, DeviceKeyPair, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, activation_proof_input, answer_signing_input, context_digest,
    passwordless_off_input, passwordless_proof_input, request_signing_input,
};

pub use keystore::{Account, Keystore};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the server refused: {message} ({code})")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    #[error("could not reach the server: {0}")]
    Network(String),
    #[error("that PIN is not right; {remaining} tries left before the app locks")]
    WrongPin { remaining: u32 },
    #[error(
        "too many wrong PINs: the app erased its phone sign-in keys and its PIN. Remove your accounts and add them again from security info"
    )]
    Locked,
    #[error("{0}")]
    Usage(String),
    #[error("the key store is damaged: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// The server's stable error code, if the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Where the device lives unless `--home` says otherwise: `$XDG_CONFIG_HOME` or
/// `~/.config`, then `latchkey-authenticator`.
pub fn default_home() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("latchkey-authenticator")
}

pub struct Authenticator {
    store: Keystore,
    http: reqwest::Client,
}

fn nonce() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random source");
    latchkey_protocol_b64(&bytes)
}

fn latchkey_protocol_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

async fn read_response<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, Error> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::Network(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| Error::Network(format!("unexpected answer from the server: {e}")));
    }
    let error: ApiError = serde_json::from_slice(&bytes).unwrap_or(ApiError {
        error: "http_error".into(),
        message: format!("HTTP {status}"),
    });
    Err(Error::Server {
        status: status.as_u16(),
        code: error.error,
        message: error.message,
    })
}

/// A device request's signed headers, for HTTP and for the WebSocket handshake.
fn signed_headers(
    account: &Account,
    key: &DeviceKeyPair,
    method: &str,
    path: &str,
    body: &[u8],
    nonce: String,
) -> Vec<(&'static str, String)> {
    let timestamp = unix_now();
    let signature = key.sign(&request_signing_input(
        method, path, timestamp, &nonce, body,
    ));
    vec![
        (HEADER_DEVICE, account.device_id.clone()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_NONCE, nonce),
        (HEADER_SIGNATURE, signature),
    ]
}

impl Authenticator {
    pub fn open(home: &Path) -> Result<Authenticator, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Error::Network(e.to_string()))?;
        Ok(Authenticator {
            store: Keystore::open(home)?,
            http,
        })
    }

    pub fn accounts(&self) -> &[Account] {
        self.store.accounts()
    }

    pub fn account(&self, index: usize) -> &Account {
        self.store.account(index)
    }

    pub fn find(&self, selector: &str) -> Result<usize, Error> {
        self.store.find(selector)
    }

    pub fn keystore(&mut self) -> &mut Keystore {
        &mut self.store
    }

    /// Redeems an activation link: creates the account's device key, registers it, and
    /// returns the account's index and the test notification to answer.
    pub async fn add(
        &mut self,
        link: &ActivationLink,
        device_name: &str,
    ) -> Result<(usize, ApprovalRequest), Error> {
        let key = DeviceKeyPair::generate().map_err(Error::Corrupt)?;
        let public = key.public_key();
        let body = ActivateRequest {
            code: link.code.clone(),
            device_name: device_name.to_string(),
            proof: key.sign(&activation_proof_input(&link.code, &public)),
            device_key: public,
        };
        let response = self
            .http
            .post(format!("{}{API_PREFIX}/activate", link.server))
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        let activated: ActivateResponse = read_response(response).await?;
        let index = self.store.add_account(
            &link.server,
            &activated.device_id,
            device_name,
            &activated.account,
            &key,
        )?;
        Ok((index, activated.test_request))
    }

    async fn signed(
        &self,
        index: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, Error> {
        self.signed_with_nonce(index, method, path, body, nonce())
            .await
    }

    async fn signed_with_nonce(
        &self,
        index: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        nonce: String,
    ) -> Result<reqwest::Response, Error> {
        let account = self.store.account(index);
        let key = account.device_key()?;
        let full = format!("{API_PREFIX}{path}");
        let bytes = body.unwrap_or_default();
        let mut request = self
            .http
            .request(method.clone(), format!("{}{full}", account.server));
        for (name, value) in signed_headers(account, &key, method.as_str(), &full, &bytes, nonce) {
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

    pub async fn status(&self, index: usize) -> Result<DeviceStatus, Error> {
        read_response(
            self.signed(index, reqwest::Method::GET, "/device", None)
                .await?,
        )
        .await
    }

    /// Turns on phone sign-in: sets the PIN on first use (or checks it), creates the
    /// passwordless key, registers it, and only then keeps it, sealed under the PIN.
    pub async fn enable_phone_sign_in(&mut self, index: usize, pin: &str) -> Result<(), Error> {
        self.store.verify_pin(pin)?;
        // A key this account already has must agree to being replaced.
        let previous = if self.store.account(index).phone_sign_in() {
            Some(self.store.passwordless_key(index, pin)?)
        } else {
            None
        };
        let key = DeviceKeyPair::generate().map_err(Error::Corrupt)?;
        let public = key.public_key();
        let account = self.store.account(index);
        let message = passwordless_proof_input(&account.device_id, &public);
        let body = EnablePhoneSignIn {
            proof: key.sign(&message),
            previous_proof: previous.map(|p| p.sign(&message)),
            key: public,
        };
        let bytes = serde_json::to_vec(&body).expect("serialises");
        let response = self
            .signed(index, reqwest::Method::POST, "/phone-sign-in", Some(bytes))
            .await?;
        let _: DeviceStatus = read_response(response).await?;
        self.store.store_passwordless_key(index, pin, &key)
    }

    /// Turns phone sign-in off; the PIN opens the key that signs the request.
    pub async fn disable_phone_sign_in(&mut self, index: usize, pin: &str) -> Result<(), Error> {
        let key = self.store.passwordless_key(index, pin)?;
        let nonce = nonce();
        let device_id = self.store.account(index).device_id.clone();
        let body = DisablePhoneSignIn {
            proof: key.sign(&passwordless_off_input(&device_id, &nonce)),
        };
        let bytes = serde_json::to_vec(&body).expect("serialises");
        let response = self
            .signed_with_nonce(
                index,
                reqwest::Method::DELETE,
                "/phone-sign-in",
                Some(bytes),
                nonce,
            )
            .await?;
        let _: DeviceStatus = read_response(response).await?;
        self.store.forget_passwordless_key(index)
    }

    /// Unregisters the device at the server, then forgets the account. An account the server
    /// no longer knows is forgotten all the same.
    pub async fn remove(&mut self, index: usize) -> Result<Account, Error> {
        let response = self
            .signed(index, reqwest::Method::DELETE, "/device", None)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let refused = read_response::<serde_json::Value>(response).await;
            if !matches!(&refused, Err(e) if e.code() == Some("unknown_device")) {
                refused?;
            }
        }
        self.store.remove_account(index)
    }

    /// Requests waiting for this account (what arrived while not listening).
    pub async fn pending(&self, index: usize) -> Result<Vec<ApprovalRequest>, Error> {
        // Read leniently: a request of a kind this app does not know is skipped, not fatal.
        let list: serde_json::Value = read_response(
            self.signed(index, reqwest::Method::GET, "/requests", None)
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

    /// Answers a request. Phone sign-in answers are signed with the passwordless key and so
    /// need the PIN; MFA pushes and registration tests are signed with the device key.
    pub async fn respond(
        &mut self,
        index: usize,
        request: &ApprovalRequest,
        decision: Decision,
        number: Option<u8>,
        pin: Option<&str>,
    ) -> Result<AnswerOutcome, Error> {
        let key = match request.kind {
            ApprovalKind::PhoneSignIn => {
                let pin = pin.ok_or_else(|| {
                    Error::Usage("a phone sign-in is approved with your device PIN".into())
                })?;
                self.store.passwordless_key(index, pin)?
            }
            ApprovalKind::MfaPush | ApprovalKind::RegistrationTest => {
                self.store.account(index).device_key()?
            }
        };
        let digest = context_digest(request);
        let answer = Answer {
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
        };
        self.send_answer(index, &request.id, &answer).await
    }

    /// Sends an answer as given (the tests use it to send forged and replayed answers).
    pub async fn send_answer(
        &self,
        index: usize,
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
                index,
                reqwest::Method::POST,
                &format!("/requests/{request_id}/answer"),
                Some(bytes),
            )
            .await?;
        let result: AnswerResult = read_response(response).await?;
        Ok(result.outcome)
    }

    /// Opens the live channel for an account.
    pub async fn connect(&self, index: usize) -> Result<EventStream, Error> {
        let account = self.store.account(index);
        let key = account.device_key()?;
        let path = format!("{API_PREFIX}/stream");
        let ws_url = format!("{}{path}", account.server)
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = ws_url
            .into_client_request()
            .map_err(|e| Error::Network(e.to_string()))?;
        for (name, value) in signed_headers(account, &key, "GET", &path, b"", nonce()) {
            request.headers_mut().insert(
                name,
                value
                    .parse()
                    .map_err(|_| Error::Usage("bad header".into()))?,
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    let body = response.body().clone().unwrap_or_default();
                    let error: ApiError = serde_json::from_slice(&body).unwrap_or(ApiError {
                        error: "http_error".into(),
                        message: format!("HTTP {}", response.status()),
                    });
                    Error::Server {
                        status: response.status().as_u16(),
                        code: error.error,
                        message: error.message,
                    }
                }
                other => Error::Network(other.to_string()),
            })?;
        Ok(EventStream { socket })
    }
}

/// The live channel of one account.
pub struct EventStream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl EventStream {
    /// The next event; `None` when the server closed the connection.
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
