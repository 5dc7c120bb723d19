//! Latchkey's authenticator app, as a library (the tests, the demo and the benchmark drive it)
//! and a terminal program (`main.rs`).
//!
//! An [`Authenticator`] is one device: a home folder with its [`keystore::Keystore`], and
//! accounts on one or several servers. It speaks the authenticator protocol over real HTTP
//! and WebSocket connections and signs every request with the account's device key.

pub mod client;
pub mod keystore;
pub mod qr;
pub mod terminal;

use std::path::{Path, PathBuf};

use latchkey_protocol::wire::{
    Answer, AnswerOutcome, ApprovalKind, ApprovalRequest, Decision, DeviceStatus,
};
use latchkey_protocol::{ActivationLink, DeviceKeyPair};

pub use client::{DeviceClient, EventStream};
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

impl Authenticator {
    pub fn open(home: &Path) -> Result<Authenticator, Error> {
        Ok(Authenticator {
            store: Keystore::open(home)?,
            http: client::http_client()?,
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

    /// The account's device, ready to speak to its server.
    pub fn client(&self, index: usize) -> Result<DeviceClient, Error> {
        let account = self.store.account(index);
        Ok(DeviceClient::new(
            self.http.clone(),
            &account.server,
            &account.device_id,
            account.device_key()?,
        ))
    }

    /// Redeems an activation link: creates the account's device key, registers it, and
    /// returns the account's index and the test notification to answer.
    pub async fn add(
        &mut self,
        link: &ActivationLink,
        device_name: &str,
    ) -> Result<(usize, ApprovalRequest), Error> {
        let key = DeviceKeyPair::generate().map_err(Error::Corrupt)?;
        let activated = client::activate(&self.http, link, device_name, &key).await?;
        let index = self.store.add_account(
            &link.server,
            &activated.device_id,
            device_name,
            &activated.account,
            &key,
        )?;
        Ok((index, activated.test_request))
    }

    pub async fn status(&self, index: usize) -> Result<DeviceStatus, Error> {
        self.client(index)?.status().await
    }

    /// Turns on phone sign-in with a new PIN: creates the passwordless key, registers it with
    /// the PIN's verifier, and keeps it sealed under the PIN and the unlock secret the server
    /// returns. When phone sign-in is already on, `pin` is also the current PIN (the current
    /// key must agree to its replacement); [`Authenticator::change_phone_sign_in`] takes both.
    pub async fn enable_phone_sign_in(&mut self, index: usize, pin: &str) -> Result<(), Error> {
        self.change_phone_sign_in(index, Some(pin), pin).await
    }

    /// Turns on phone sign-in with `new_pin`; `current_pin` opens the key it replaces, if any.
    pub async fn change_phone_sign_in(
        &mut self,
        index: usize,
        current_pin: Option<&str>,
        new_pin: &str,
    ) -> Result<(), Error> {
        let (pin, verifier) = Keystore::new_pin(new_pin)?;
        let client = self.client(index)?;
        let status = client.status().await?;
        // A key this account already has must agree to being replaced.
        let previous = match (
            status.phone_sign_in,
            self.store.account(index).phone_sign_in(),
        ) {
            (true, true) => {
                let current = current_pin.ok_or_else(|| {
                    Error::Usage("phone sign-in is on: the current PIN is needed".into())
                })?;
                Some(self.unlock_passwordless_key(index, current).await?)
            }
            (true, false) => {
                return Err(Error::Usage(
                    "phone sign-in is on at the server but this app does not hold its key; remove the account and add it again from security info".into(),
                ));
            }
            (false, _) => None,
        };
        let key = DeviceKeyPair::generate().map_err(Error::Corrupt)?;
        let enabled = client
            .enable_phone_sign_in(&key.public_key(), &key, previous.as_ref(), &verifier)
            .await?;
        self.store
            .store_passwordless_key(index, pin, &verifier, &enabled.unlock_secret, &key)
    }

    /// Opens the account's passwordless key with the PIN: the server checks the PIN (and
    /// counts a wrong one) and releases the unlock secret the key is sealed under.
    pub async fn unlock_passwordless_key(
        &mut self,
        index: usize,
        pin: &str,
    ) -> Result<DeviceKeyPair, Error> {
        let verifier = self.store.pin_verifier(index, pin)?;
        match self.client(index)?.unlock(&verifier).await {
            Ok(unlocked) => {
                self.store
                    .open_passwordless_key(index, &verifier, &unlocked.unlock_secret)
            }
            Err(e) => {
                // The server turned phone sign-in off: the sealed key can never open again.
                if matches!(
                    e.code(),
                    Some("phone_sign_in_locked" | "phone_sign_in_not_enabled")
                ) {
                    self.store.forget_passwordless_key(index)?;
                }
                Err(e)
            }
        }
    }

    /// Turns phone sign-in off; the PIN opens the key that signs the request.
    pub async fn disable_phone_sign_in(&mut self, index: usize, pin: &str) -> Result<(), Error> {
        let key = self.unlock_passwordless_key(index, pin).await?;
        self.client(index)?.disable_phone_sign_in(&key).await?;
        self.store.forget_passwordless_key(index)
    }

    /// Unregisters the device at the server, then forgets the account. An account the server
    /// no longer knows is forgotten all the same.
    pub async fn remove(&mut self, index: usize) -> Result<Account, Error> {
        self.client(index)?.remove().await?;
        self.store.remove_account(index)
    }

    /// Requests waiting for this account (what arrived while not listening).
    pub async fn pending(&self, index: usize) -> Result<Vec<ApprovalRequest>, Error> {
        self.client(index)?.pending().await
    }

    /// Answers a request. Approving a phone sign-in is signed with the passwordless key and so
    /// needs the PIN; everything else (refusing a phone sign-in, MFA pushes and registration
    /// tests) is signed with the device key, and `pin` is not used.
    pub async fn respond(
        &mut self,
        index: usize,
        request: &ApprovalRequest,
        decision: Decision,
        number: Option<u8>,
        pin: Option<&str>,
    ) -> Result<AnswerOutcome, Error> {
        let key = match request.kind {
            ApprovalKind::PhoneSignIn if decision == Decision::Approve => {
                let pin = pin.ok_or_else(|| {
                    Error::Usage("a phone sign-in is approved with your device PIN".into())
                })?;
                self.unlock_passwordless_key(index, pin).await?
            }
            ApprovalKind::PhoneSignIn
            | ApprovalKind::MfaPush
            | ApprovalKind::RegistrationTest
            | ApprovalKind::PhoneSignInConsent => self.store.account(index).device_key()?,
        };
        let answer = client::sign_answer(&key, request, decision, number);
        self.send_answer(index, &request.id, &answer).await
    }

    /// Sends an answer as given (the tests use it to send forged and replayed answers).
    pub async fn send_answer(
        &self,
        index: usize,
        request_id: &str,
        answer: &Answer,
    ) -> Result<AnswerOutcome, Error> {
        self.client(index)?.send_answer(request_id, answer).await
    }

    /// Opens the live channel for an account.
    pub async fn connect(&self, index: usize) -> Result<EventStream, Error> {
        self.client(index)?.connect().await
    }
}
