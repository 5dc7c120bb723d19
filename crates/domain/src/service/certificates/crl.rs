//! Certificate revocation lists: fetched through [`CrlSource`] (the binary's is HTTP), kept
//! in memory until their nextUpdate.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::chain::{ParsedCrl, parse_crl};
use crate::clock::Timestamp;

/// The most a revocation list may weigh (Entra's limit).
pub const MAX_CRL_BYTES: usize = 20 * 1024 * 1024;
/// The most time fetching one may take, in seconds (Entra's limit).
pub const CRL_FETCH_SECONDS: u64 = 10;
/// How many lists the cache keeps at most; past it, the one that expires first goes.
pub const CRL_CACHE_ENTRIES: usize = 64;
/// How long a list without nextUpdate is kept, in seconds.
pub const CRL_DEFAULT_LIFETIME_SECONDS: i64 = 3600;

/// Where revocation lists come from. The binary fetches them over HTTP (at most
/// [`MAX_CRL_BYTES`], within [`CRL_FETCH_SECONDS`]); tests serve them from memory.
#[async_trait]
pub trait CrlSource: Send + Sync {
    /// The DER (or PEM) bytes at `url`, or why they cannot be had.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// The source before the binary sets one: no list can be had, so a CA with a list configured
/// fails closed.
pub struct NoCrlSource;

#[async_trait]
impl CrlSource for NoCrlSource {
    async fn fetch(&self, _url: &str) -> Result<Vec<u8>, String> {
        Err("no revocation list source is configured".into())
    }
}

#[derive(Default)]
pub(crate) struct CrlCache {
    entries: Mutex<HashMap<String, (Arc<ParsedCrl>, Timestamp)>>,
}

impl CrlCache {
    /// The list at `url`: the cached one while current, else a fresh fetch. `None` when it
    /// cannot be had or does not parse.
    pub(crate) async fn get(
        &self,
        source: &dyn CrlSource,
        url: &str,
        now: Timestamp,
    ) -> Option<Arc<ParsedCrl>> {
        {
            let entries = self.entries.lock().await;
            if let Some((crl, until)) = entries.get(url)
                && now < *until
            {
                return Some(crl.clone());
            }
        }
        let bytes = source.fetch(url).await.ok()?;
        if bytes.len() > MAX_CRL_BYTES {
            return None;
        }
        let der = pem_or_der(bytes);
        let parsed = Arc::new(parse_crl(&der)?);
        let until = parsed
            .next_update
            .unwrap_or(now.plus_seconds(CRL_DEFAULT_LIFETIME_SECONDS));
        if until <= now {
            // Already stale: usable for nothing (webpki would refuse it as expired).
            return None;
        }
        let mut entries = self.entries.lock().await;
        entries.retain(|_, (_, until)| now < *until);
        while entries.len() >= CRL_CACHE_ENTRIES {
            let Some(first) = entries
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            entries.remove(&first);
        }
        entries.insert(url.to_string(), (parsed.clone(), until));
        Some(parsed)
    }
}

/// CAs publish CRLs as DER and sometimes as PEM (`-----BEGIN X509 CRL-----`).
fn pem_or_der(bytes: Vec<u8>) -> Vec<u8> {
    use rustls_pki_types::CertificateRevocationListDer;
    use rustls_pki_types::pem::PemObject as _;
    if bytes.starts_with(b"-----BEGIN")
        && let Ok(der) = CertificateRevocationListDer::from_pem_slice(&bytes)
    {
        return der.as_ref().to_vec();
    }
    bytes
}
