//! Fetches certificate revocation lists for certificate-based sign-in: a plain HTTP(S) GET
//! with no redirects followed, the body read in chunks and refused past
//! [`MAX_CRL_BYTES`], the whole fetch within [`CRL_FETCH_SECONDS`]. The domain caches what
//! this returns until the list's nextUpdate and checks its signature.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_domain::service::{CRL_FETCH_SECONDS, CrlSource, MAX_CRL_BYTES};

pub struct HttpCrlSource {
    http: reqwest::Client,
    limit: usize,
}

impl HttpCrlSource {
    pub fn new() -> Arc<HttpCrlSource> {
        Self::with_limit(MAX_CRL_BYTES)
    }

    /// A source with another size limit (tests use a small one).
    pub fn with_limit(limit: usize) -> Arc<HttpCrlSource> {
        let total = Duration::from_secs(CRL_FETCH_SECONDS);
        Arc::new(HttpCrlSource {
            http: reqwest::Client::builder()
                .timeout(total)
                .connect_timeout(total)
                // A redirect could send the fetch to another scheme or host; CAs publish at
                // the URL configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            limit,
        })
    }

    async fn fetch_within(&self, url: &str) -> Result<Vec<u8>, String> {
        let parsed = url::Url::parse(url).map_err(|_| "not a URL".to_string())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("only http and https revocation lists are fetched".into());
        }
        let mut response = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("the server answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.limit as u64)
        {
            return Err(format!("larger than {} bytes", self.limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            if body.len() + chunk.len() > self.limit {
                return Err(format!("larger than {} bytes", self.limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl CrlSource for HttpCrlSource {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        // reqwest's timeout covers the whole request; this one also bounds reading the body.
        let total = Duration::from_secs(CRL_FETCH_SECONDS);
        let result = match tokio::time::timeout(total, self.fetch_within(url)).await {
            Ok(result) => result,
            Err(_) => Err(format!("not fetched within {CRL_FETCH_SECONDS} seconds")),
        };
        if let Err(reason) = &result {
            tracing::warn!(url, reason = %reason, "certificate revocation list unavailable");
        }
        result
    }
}
