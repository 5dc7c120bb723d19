//! `[certificate]`: certificate-based sign-in's own host (docs/certificates.md).
//!
//! Like Entra's `certauth` host, the certificate is asked for on a host of its own, so that the
//! main host never asks browsers for a certificate. Either Latchkey serves that host itself
//! (`listen`, with a TLS listener that requires a client certificate), or a reverse proxy
//! terminates TLS for it and forwards the certificate in `proxy_header`, which is believed only
//! from `trusted_proxies`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The default header a TLS-terminating proxy puts the client certificate in (URL-encoded PEM,
/// as nginx's `$ssl_client_escaped_cert` gives it).
pub const DEFAULT_PROXY_HEADER: &str = "X-Client-Cert";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CertificateConfig {
    /// Where Latchkey's own certificate listener listens (`0.0.0.0:8443`); absent: no listener
    /// (a proxy may still forward certificates).
    pub listen: Option<String>,
    /// The certificate host's https URL (`https://certauth.example.com`); the sign-in page
    /// offers "Use a certificate or smart card" only when it is set.
    pub public_url: Option<String>,
    /// The certificate listener's own certificate chain (PEM); default: `tls.cert`.
    pub tls_certificate: Option<PathBuf>,
    /// The certificate listener's private key (PEM); default: `tls.key`.
    pub tls_key: Option<PathBuf>,
    /// Addresses (IPs or CIDRs) of the reverse proxies whose `proxy_header` is believed. From
    /// anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// The header a trusted proxy forwards the client certificate in (URL-encoded PEM).
    pub proxy_header: String,
}

impl Default for CertificateConfig {
    fn default() -> Self {
        CertificateConfig {
            listen: None,
            public_url: None,
            tls_certificate: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            proxy_header: DEFAULT_PROXY_HEADER.into(),
        }
    }
}

impl CertificateConfig {
    /// Whether certificate sign-in is offered at all.
    pub fn enabled(&self) -> bool {
        self.public_url.is_some()
    }

    pub(super) fn validate(&self, main_tls: Option<&super::TlsConfig>) -> anyhow::Result<()> {
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url)
                .ok()
                .filter(|u| u.scheme() == "https" && u.host().is_some())
                .filter(|u| u.query().is_none() && u.fragment().is_none());
            if parsed.is_none() {
                bail!("certificate.public_url must be an https URL without query or fragment");
            }
        }
        if let Some(listen) = &self.listen {
            listen.parse::<std::net::SocketAddr>().with_context(|| {
                format!("certificate.listen {listen:?} is not an address such as 0.0.0.0:8443")
            })?;
            if self.public_url.is_none() {
                bail!(
                    "certificate.listen needs certificate.public_url (the host browsers reach it at)"
                );
            }
            let (cert, key) = self.tls_files(main_tls).ok_or_else(|| {
                anyhow::anyhow!(
                    "certificate.listen needs certificate.tls_certificate and certificate.tls_key (or [tls])"
                )
            })?;
            for (what, path) in [
                ("certificate.tls_certificate", cert),
                ("certificate.tls_key", key),
            ] {
                if !path.exists() {
                    bail!("{what}: {} does not exist", path.display());
                }
            }
        }
        latchkey_domain::location::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("certificate.trusted_proxies: {e}"))?;
        let header = self.proxy_header.as_str();
        if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() || header.is_empty() {
            bail!("certificate.proxy_header must be an HTTP header name");
        }
        Ok(())
    }

    /// The listener's certificate and key: its own, else the main listener's.
    pub fn tls_files<'a>(
        &'a self,
        main_tls: Option<&'a super::TlsConfig>,
    ) -> Option<(&'a PathBuf, &'a PathBuf)> {
        match (&self.tls_certificate, &self.tls_key, main_tls) {
            (Some(cert), Some(key), _) => Some((cert, key)),
            (None, None, Some(tls)) => Some((&tls.cert, &tls.key)),
            _ => None,
        }
    }
}
