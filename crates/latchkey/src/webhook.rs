//! Tells administrators' systems when a user reports a sign-in as not theirs: a signed JSON
//! POST to a configured URL, retried with exponential backoff.
//!
//! The signature is `X-Latchkey-Signature: t=<unix seconds>,v1=<HMAC-SHA256, base64url>` over
//! `<t>.<body>` with the configured secret, so a receiver can check origin and freshness.
//! Deliveries are best effort and in memory: a restart drops retries still waiting (the
//! audit log and the risky-users API keep the facts).

use std::sync::Arc;
use std::time::Duration;

use latchkey_domain::notify::{DomainEvent, EventBus};
use latchkey_domain::secret::keyed_mac;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Where to POST reports of suspicious activity; none by default.
    pub risk_url: Option<String>,
    /// The HMAC key receivers verify with (at least 16 characters).
    pub secret: Option<String>,
    /// Attempts per event, the first included.
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each further one.
    pub retry_base_millis: u64,
}

impl WebhookConfig {
    pub fn validate(&self) -> Result<(), String> {
        match (&self.risk_url, &self.secret) {
            (None, _) => Ok(()),
            (Some(url), secret) => {
                let parsed = url::Url::parse(url)
                    .map_err(|_| "webhooks.risk_url is not a URL".to_string())?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err("webhooks.risk_url must be http or https".into());
                }
                if secret.as_deref().is_none_or(|s| s.len() < 16) {
                    return Err("webhooks.secret must be set, at least 16 characters".into());
                }
                if !(1..=10).contains(&self.attempts) {
                    return Err("webhooks.attempts must be between 1 and 10".into());
                }
                Ok(())
            }
        }
    }
}

/// No webhook; five attempts, one second before the first retry (then 2, 4 and 8 seconds).
impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            risk_url: None,
            secret: None,
            attempts: 5,
            retry_base_millis: 1000,
        }
    }
}

/// An [`EventBus`] that delivers the events administrators asked to hear about.
pub struct WebhookBus {
    config: WebhookConfig,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl WebhookBus {
    pub fn new(config: WebhookConfig) -> Arc<WebhookBus> {
        Arc::new(WebhookBus {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

fn body_of(event: &DomainEvent) -> Option<serde_json::Value> {
    match event {
        DomainEvent::UserReportedSuspiciousActivity {
            user,
            user_principal_name,
            detection,
        } => Some(serde_json::json!({
            "type": "userReportedSuspiciousActivity",
            "userId": user,
            "userPrincipalName": user_principal_name,
            "riskLevel": "high",
            "riskState": "atRisk",
            "detection": {
                "id": detection.id,
                "detectedDateTime": detection.detected_date_time.to_rfc3339(),
                "ipAddress": detection.ip_address,
                "location": detection.location,
                "appDisplayName": detection.app_display_name,
                "deviceName": detection.device_name,
            },
        })),
        _ => None,
    }
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        keyed_mac(secret.as_bytes(), &message)
    )
}

impl EventBus for WebhookBus {
    fn publish(&self, event: DomainEvent) {
        let (Some(url), Some(secret)) = (self.config.risk_url.clone(), self.config.secret.clone())
        else {
            return;
        };
        let Some(body) = body_of(&event) else {
            return;
        };
        let body = serde_json::to_vec(&body).expect("serialises");
        let http = self.http.clone();
        let attempts = self.config.attempts.max(1);
        let base = Duration::from_millis(self.config.retry_base_millis);
        self.runtime.spawn(async move {
            let mut wait = base;
            for attempt in 1..=attempts {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or_default();
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-latchkey-signature", signature(&secret, now, &body))
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::warn!(status = %response.status(), attempt, "risk webhook refused")
                    }
                    Err(e) => tracing::warn!(error = %e, attempt, "risk webhook failed"),
                }
                if attempt < attempts {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
            tracing::error!(attempts, "risk webhook gave up");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_needs_a_real_url_and_a_long_enough_secret() {
        let ok = WebhookConfig {
            risk_url: Some("https://siem.example/hooks/latchkey".into()),
            secret: Some("0123456789abcdef".into()),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        assert!(
            WebhookConfig::default().validate().is_ok(),
            "none configured"
        );
        for bad in [
            WebhookConfig {
                secret: Some("short".into()),
                ..ok.clone()
            },
            WebhookConfig {
                secret: None,
                ..ok.clone()
            },
            WebhookConfig {
                risk_url: Some("ftp://siem.example/".into()),
                ..ok.clone()
            },
            WebhookConfig {
                risk_url: Some("not a url".into()),
                ..ok.clone()
            },
            WebhookConfig {
                attempts: 0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
