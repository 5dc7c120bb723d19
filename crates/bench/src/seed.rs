//! Seeding: users and their authenticator devices, created the way an administrator
//! provisions them in bulk — users through the admin API, each handed an activation link
//! (`POST /users/{id}/authenticatorActivations`, what the QR code holds) that a device
//! redeems over the authenticator protocol, answering its test notification with the number
//! the administrator reads back from the activation.
//!
//! The devices are virtual: the real protocol client with its keys in memory, not in a
//! PIN-sealed key store, so that ten thousand of them register in seconds rather than in an
//! hour of argon2id.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use latchkey_authenticator::DeviceClient;
use latchkey_authenticator::client::{activate, sign_answer};
use latchkey_authenticator::keystore::PinVerifier;
use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, Decision};
use latchkey_protocol::{ActivationLink, DeviceKeyPair};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::server::Target;

/// The password of users who sign in with password and MFA push.
pub const PASSWORD: &str = "load generator password 1";

/// Requests the seeding keeps in flight at once.
const SEED_WORKERS: usize = 16;

/// The admin API, with the token every call carries.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    pub fn new(http: &reqwest::Client, target: &Target) -> Admin {
        Admin {
            http: http.clone(),
            base: format!("{}/api/v1", target.base),
            token: target.admin_token.clone(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    pub async fn create_user(&self, upn: &str) -> Result<String> {
        let name = upn.split('@').next().unwrap_or(upn);
        let user = self
            .call(
                reqwest::Method::POST,
                "/users",
                Some(json!({"userPrincipalName": upn, "displayName": name})),
            )
            .await?;
        user["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the new user has no id: {user}"))
    }

    pub async fn set_password(&self, user: &str, password: &str) -> Result<()> {
        self.call(
            reqwest::Method::PUT,
            &format!("/users/{user}/password"),
            Some(json!({"password": password})),
        )
        .await?;
        Ok(())
    }

    /// Registers the application the virtual users sign in to: confidential, ES256.
    pub async fn register_app(&self, redirect_uri: &str) -> Result<(String, String)> {
        let app = self
            .call(
                reqwest::Method::POST,
                "/applications",
                Some(json!({
                    "displayName": "Load generator",
                    "redirectUris": [redirect_uri],
                    "idTokenSigningAlg": "ES256",
                })),
            )
            .await?;
        let field = |name: &str| {
            app[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("the registered application has no {name}: {app}"))
        };
        Ok((field("appId")?, field("clientSecret")?))
    }

    async fn issue_activation(&self, user: &str) -> Result<(String, ActivationLink)> {
        let activation = self
            .call(
                reqwest::Method::POST,
                &format!("/users/{user}/authenticatorActivations"),
                None,
            )
            .await?;
        let id = activation["id"]
            .as_str()
            .ok_or_else(|| anyhow!("the activation has no id: {activation}"))?;
        let link = activation["activationLink"]
            .as_str()
            .ok_or_else(|| anyhow!("the activation has no link: {activation}"))?;
        Ok((
            id.to_string(),
            ActivationLink::parse(link).map_err(|e| anyhow!("the activation link: {e}"))?,
        ))
    }

    async fn test_number(&self, user: &str, activation: &str) -> Result<u8> {
        let progress = self
            .call(
                reqwest::Method::GET,
                &format!("/users/{user}/authenticatorActivations/{activation}"),
                None,
            )
            .await?;
        ensure!(
            progress["status"] == "waitingForTest",
            "the activation is not waiting for its test: {progress}"
        );
        progress["testNumber"]
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| anyhow!("the activation shows no test number: {progress}"))
    }
}

/// How a seeded user signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// User name, number on the page, approve on the phone with the PIN-protected key.
    PhoneSignIn,
    /// User name and password, then approve an MFA push with the number.
    PasswordAndPush,
}

/// A seeded user and their registered device.
pub struct VirtualDevice {
    pub upn: String,
    pub way: Way,
    pub client: DeviceClient,
    /// The phone sign-in key; `None` for MFA push only.
    pub passwordless: Option<DeviceKeyPair>,
}

impl VirtualDevice {
    /// The key that signs an answer to a request of `kind`.
    pub fn answering_key(&self, kind: ApprovalKind) -> Result<&DeviceKeyPair> {
        match kind {
            ApprovalKind::PhoneSignIn => self
                .passwordless
                .as_ref()
                .ok_or_else(|| anyhow!("{} has no phone sign-in key", self.upn)),
            ApprovalKind::MfaPush | ApprovalKind::RegistrationTest => Ok(self.client.device_key()),
        }
    }
}

/// Creates a user and registers a device for them.
async fn seed_one(
    admin: &Admin,
    http: &reqwest::Client,
    upn: String,
    way: Way,
) -> Result<VirtualDevice> {
    let user = admin.create_user(&upn).await?;
    let (activation, link) = admin.issue_activation(&user).await?;
    let key = DeviceKeyPair::generate().map_err(|e| anyhow!(e))?;
    let activated = activate(http, &link, "Load phone", &key).await?;
    let client = DeviceClient::new(http.clone(), &link.server, &activated.device_id, key);
    let number = admin.test_number(&user, &activation).await?;
    let test = &activated.test_request;
    let answer = sign_answer(client.device_key(), test, Decision::Approve, Some(number));
    let outcome = client.send_answer(&test.id, &answer).await?;
    ensure!(
        outcome == AnswerOutcome::Approved,
        "{upn}'s test was {outcome:?}"
    );
    let passwordless = match way {
        Way::PhoneSignIn => {
            let passwordless = DeviceKeyPair::generate().map_err(|e| anyhow!(e))?;
            // The load's devices keep their key in memory and never unlock it, so the PIN
            // verifier need not come from a PIN: random bytes spare argon2id per user.
            let verifier = PinVerifier::from_bytes(rand_verifier());
            client
                .enable_phone_sign_in(&passwordless.public_key(), &passwordless, None, &verifier)
                .await?;
            Some(passwordless)
        }
        Way::PasswordAndPush => {
            admin.set_password(&user, PASSWORD).await?;
            None
        }
    };
    Ok(VirtualDevice {
        upn,
        way,
        client,
        passwordless,
    })
}

/// Seeds `count` users, `user00000@load.example` on; every `password_every`-th signs in with
/// password and push (0: none). Prints progress; returns them in order.
pub async fn seed(
    admin: &Admin,
    http: &reqwest::Client,
    count: usize,
    password_every: usize,
) -> Result<Vec<VirtualDevice>> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..SEED_WORKERS.min(count.max(1)) {
        let (admin, http, next) = (admin.clone(), http.clone(), next.clone());
        workers.spawn(async move {
            let mut seeded = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return anyhow::Ok(seeded);
                }
                let way = if password_every > 0 && n % password_every == password_every - 1 {
                    Way::PasswordAndPush
                } else {
                    Way::PhoneSignIn
                };
                let upn = format!("user{n:05}@load.example");
                let device = seed_one(&admin, &http, upn.clone(), way)
                    .await
                    .with_context(|| format!("seeding {upn}"))?;
                seeded.push((n, device));
                if n > 0 && n % 1000 == 0 {
                    eprintln!(
                        "  seeded {n} of {count} in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(done) = workers.join_next().await {
        all.extend(done??);
    }
    all.sort_by_key(|(n, _)| *n);
    eprintln!(
        "seeded {count} users with devices in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(all.into_iter().map(|(_, d)| d).collect())
}

fn rand_verifier() -> [u8; latchkey_protocol::PIN_VERIFIER_LEN] {
    let mut bytes = [0u8; latchkey_protocol::PIN_VERIFIER_LEN];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}
