//! WebDriver's virtual authenticators (WebAuthn Level 2, §"Automation"), which chromedriver
//! implements: a security key or platform authenticator that lives in the browser, so a test
//! can register and sign in with real WebAuthn without hardware. fantoccini has no words for
//! them, so each is a raw command sent with `Client::issue_cmd`.

use fantoccini::Client;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

/// One virtual-authenticator command, under `/session/{id}/webauthn/authenticator`.
#[derive(Debug)]
enum Command {
    Add(Value),
    AddCredential(String, Value),
    Credentials(String),
    RemoveCredentials(String),
    SetUserVerified(String, bool),
}

impl WebDriverCompatibleCommand for Command {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let root = format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        );
        let path = match self {
            Command::Add(_) => root,
            Command::AddCredential(id, _) => format!("{root}/{id}/credential"),
            Command::Credentials(id) | Command::RemoveCredentials(id) => {
                format!("{root}/{id}/credentials")
            }
            Command::SetUserVerified(id, _) => format!("{root}/{id}/uv"),
        };
        base.join(&path)
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        use axum::http::Method;
        match self {
            Command::Add(options) => (Method::POST, Some(options.to_string())),
            Command::RemoveCredentials(_) => (Method::DELETE, None),
            Command::AddCredential(_, credential) => (Method::POST, Some(credential.to_string())),
            Command::Credentials(_) => (Method::GET, None),
            Command::SetUserVerified(_, verified) => (
                Method::POST,
                Some(json!({ "isUserVerified": verified }).to_string()),
            ),
        }
    }
}

/// What kind of authenticator to plug in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A roaming CTAP2 key on USB, with resident keys and a PIN (user verification).
    SecurityKey,
    /// The device's own authenticator (the Windows Hello kind): transport `internal`.
    Platform,
}

/// A virtual authenticator attached to one browser tab. Its AAGUID is Chromium's fixed
/// `01020304-0506-0708-0102-030405060708`, but under attestation "none" (Latchkey's default)
/// Chromium sends an all-zero one, as it does for real keys.
pub struct VirtualAuthenticator {
    pub id: String,
}

impl VirtualAuthenticator {
    /// Adds one to the browser's current tab (call it after the first navigation: chromedriver
    /// enables WebAuthn on the current window).
    pub async fn add(client: &Client, kind: Kind) -> VirtualAuthenticator {
        let transport = match kind {
            Kind::SecurityKey => "usb",
            Kind::Platform => "internal",
        };
        let answer = client
            .issue_cmd(Command::Add(json!({
                "protocol": "ctap2",
                "transport": transport,
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "isUserConsenting": true,
            })))
            .await
            .unwrap_or_else(|e| panic!("add a virtual authenticator: {e}"));
        let id = answer
            .as_str()
            .unwrap_or_else(|| panic!("an authenticator id, not {answer}"))
            .to_string();
        VirtualAuthenticator { id }
    }

    /// The credentials it holds, as the spec's Credential Parameters (`credentialId`,
    /// `privateKey`, `signCount`, `rpId`, `userHandle`, `isResidentCredential`).
    pub async fn credentials(&self, client: &Client) -> Vec<Value> {
        let answer = client
            .issue_cmd(Command::Credentials(self.id.clone()))
            .await
            .expect("list credentials");
        answer.as_array().cloned().unwrap_or_default()
    }

    /// Whether the next ceremony's user verification (PIN, fingerprint) succeeds.
    pub async fn set_user_verified(&self, client: &Client, verified: bool) {
        client
            .issue_cmd(Command::SetUserVerified(self.id.clone(), verified))
            .await
            .expect("set user verified");
    }

    /// Replaces every credential with a copy whose signature counter is `sign_count`: what a
    /// cloned key looks like to the server (its counter behind the original's).
    pub async fn rewind_counters(&self, client: &Client, sign_count: u64) {
        let credentials = self.credentials(client).await;
        assert!(!credentials.is_empty(), "no credential to rewind");
        client
            .issue_cmd(Command::RemoveCredentials(self.id.clone()))
            .await
            .expect("remove credentials");
        for mut credential in credentials {
            credential["signCount"] = json!(sign_count);
            if let Some(fields) = credential.as_object_mut() {
                // Chromium lists these but does not take them back.
                fields.retain(|name, _| {
                    [
                        "credentialId",
                        "isResidentCredential",
                        "rpId",
                        "privateKey",
                        "userHandle",
                        "signCount",
                    ]
                    .contains(&name.as_str())
                });
            }
            client
                .issue_cmd(Command::AddCredential(self.id.clone(), credential))
                .await
                .expect("add the credential back");
        }
    }
}
