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
use tokio::task::JoinSet;

use crate::server::Target;

/// The password of users who sign in with password and MFA push.
pub const PASSWORD: &str = "load generator password 1";

/// Requests the seeding keeps in flight at once.
const SEED_WORKERS: usize = 16;

/// The admin API, through its typed client.
#[derive(Clone)]
pub struct Admin {
    api: latchkey_api::Client,
}

impl Admin {
    pub fn new(http: &reqwest::Client, target: &Target) -> Admin {
        Admin {
            api: latchkey_api::Client::new(http.clone(), &target.base, &target.admin_token),
        }
    }

    pub async fn create_user(&self, upn: &str) -> Result<String> {
        let name = upn.split('@').next().unwrap_or(upn);
        let user = self
            .api
            .create_user(&latchkey_api::NewUser {
                user_principal_name: upn.to_string(),
                display_name: name.to_string(),
                mail: None,
                account_enabled: true,
            })
            .await
            .with_context(|| format!("creating {upn}"))?;
        Ok(user.id)
    }

    pub async fn set_password(&self, user: &str, password: &str) -> Result<()> {
        self.api
            .set_password(user, password)
            .await
            .with_context(|| format!("setting the password of {user}"))
    }

    /// Registers the application the virtual users sign in to: confidential, ES256.
    pub async fn register_app(&self, redirect_uri: &str) -> Result<(String, String)> {
        let app = self
            .api
            .register_application(&latchkey_api::NewApplication {
                display_name: "Load generator".into(),
                redirect_uris: vec![redirect_uri.to_string()],
                post_logout_redirect_uris: vec![],
                public_client: false,
                id_token_signing_alg: Some("ES256".into()),
                home_url: None,
                required_strength: None,
                allowed_origins: vec![],
                groups_claim: None,
                assignment_required: false,
                backchannel_logout_uri: None,
            })
            .await
            .context("registering the application")?;
        let secret = app
            .client_secret
            .ok_or_else(|| anyhow!("the registered application has no client secret"))?;
        Ok((app.application.app_id, secret))
    }

    async fn issue_activation(&self, user: &str) -> Result<(String, ActivationLink)> {
        let activation = self
            .api
            .create_activation(user)
            .await
            .with_context(|| format!("starting an activation for {user}"))?;
        let link = ActivationLink::parse(&activation.activation_link)
            .map_err(|e| anyhow!("the activation link: {e}"))?;
        Ok((activation.id, link))
    }

    async fn test_number(&self, user: &str, activation: &str) -> Result<u8> {
        match self.api.activation(user, activation).await? {
            latchkey_api::AuthenticatorActivation::WaitingForTest { test_number, .. } => {
                Ok(test_number)
            }
            other => bail!("the activation is not waiting for its test: {other:?}"),
        }
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
    /// The instance this user's browsers sign in at.
    pub browser_base: String,
    /// Bound to the instance the device connects to and answers at.
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
            ApprovalKind::MfaPush
            | ApprovalKind::RegistrationTest
            | ApprovalKind::PhoneSignInConsent => Ok(self.client.device_key()),
        }
    }
}

/// Creates a user and registers a device for them (through the activation link's server);
/// the device then talks to `device_base`, the user's browsers to `browser_base`.
async fn seed_one(
    admin: &Admin,
    http: &reqwest::Client,
    upn: String,
    way: Way,
    (browser_base, device_base): (&str, &str),
) -> Result<VirtualDevice> {
    let user = admin.create_user(&upn).await?;
    let (activation, link) = admin.issue_activation(&user).await?;
    let key = DeviceKeyPair::generate().map_err(|e| anyhow!(e))?;
    let activated = activate(http, &link, "Load phone", &key).await?;
    let client = DeviceClient::new(http.clone(), device_base, &activated.device_id, key);
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
        browser_base: browser_base.to_string(),
        client,
        passwordless,
    })
}

/// Seeds `count` users, `user00000@load.example` on; every `password_every`-th signs in with
/// password and push (0: none). Their browsers and devices are spread over `target`'s
/// instances ([`placement`]). Prints progress; returns them in order.
pub async fn seed(
    admin: &Admin,
    http: &reqwest::Client,
    target: &Target,
    count: usize,
    password_every: usize,
) -> Result<Vec<VirtualDevice>> {
    let instances = Arc::new(target.instances.clone());
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..SEED_WORKERS.min(count.max(1)) {
        let (admin, http, next) = (admin.clone(), http.clone(), next.clone());
        let instances = instances.clone();
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
                let device = seed_one(&admin, &http, upn.clone(), way, placement(&instances, n))
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

/// Where the browser of seeded user `n` goes, and where its device connects: round-robin over
/// the instances, the device one instance further on, so that with two or more instances it is
/// never on its browser's.
pub fn placement(instances: &[String], n: usize) -> (&str, &str) {
    let count = instances.len();
    (&instances[n % count], &instances[(n + 1) % count])
}

fn rand_verifier() -> [u8; latchkey_protocol::PIN_VERIFIER_LEN] {
    let mut bytes = [0u8; latchkey_protocol::PIN_VERIFIER_LEN];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::placement;

    #[test]
    fn with_two_instances_each_device_is_on_the_other_instance_from_its_browser() {
        let two = ["http://a".to_string(), "http://b".to_string()];
        assert_eq!(placement(&two, 0), ("http://a", "http://b"));
        assert_eq!(placement(&two, 1), ("http://b", "http://a"));
        let one = ["http://a".to_string()];
        assert_eq!(placement(&one, 7), ("http://a", "http://a"));
    }
}
