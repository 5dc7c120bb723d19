//! Delivers back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.5): an HTTP
//! POST of `logout_token=<JWT>` as `application/x-www-form-urlencoded` to the application's
//! registered URI, in the background (a sign-out never waits for it), with a short timeout, no
//! redirects followed, and a few retries with backoff. The outcome is logged with the client
//! id and status only, never the token.

use std::sync::Arc;
use std::time::Duration;

use latchkey_domain::service::{LogoutDelivery, LogoutSender};

/// Attempts per logout token, the first included.
const ATTEMPTS: u32 = 3;
/// The wait before the first retry; it doubles for each further one.
const RETRY_BASE: Duration = Duration::from_millis(500);
/// How long one attempt may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct HttpLogoutSender {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl HttpLogoutSender {
    pub fn new() -> Arc<HttpLogoutSender> {
        Arc::new(HttpLogoutSender {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

impl LogoutSender for HttpLogoutSender {
    fn send(&self, delivery: LogoutDelivery) {
        let http = self.http.clone();
        self.runtime.spawn(async move {
            let client = delivery.client_id.to_string();
            let mut wait = RETRY_BASE;
            for attempt in 1..=ATTEMPTS {
                let sent = http
                    .post(&delivery.uri)
                    .header("cache-control", "no-store")
                    .form(&[("logout_token", delivery.logout_token.as_str())])
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        tracing::info!(client = %client, status = %response.status(), "back-channel logout delivered");
                        return;
                    }
                    // A 400 is the application refusing this token (RFC: it could not
                    // validate it); sending the same token again will not change its mind.
                    Ok(response) if response.status().is_client_error() => {
                        tracing::warn!(client = %client, status = %response.status(), "back-channel logout refused");
                        return;
                    }
                    Ok(response) => {
                        tracing::warn!(client = %client, status = %response.status(), attempt, "back-channel logout failed")
                    }
                    Err(e) => {
                        // reqwest's error names the URL, not the body.
                        tracing::warn!(client = %client, error = %e.without_url(), attempt, "back-channel logout failed")
                    }
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
            tracing::warn!(client = %client, attempts = ATTEMPTS, "back-channel logout gave up");
        });
    }
}
