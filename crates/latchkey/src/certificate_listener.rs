//! The certificate host's TLS (docs/certificates.md): a rustls server configuration that
//! requires a client certificate, asks for one from the policy's certificate authorities, and
//! checks the handshake's signature (proof of possession of the certificate's key), but leaves
//! the chain to the certificate service, so that every refusal gets a sign-in log entry and a
//! page instead of a bare TLS alert.
//!
//! The configuration is rebuilt when the policy's authorities change: each handshake reads
//! them (the certificate service caches the policy), and a configuration is reused while they
//! stay the same.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use latchkey_domain::Latchkey;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};

/// What the certificate listener needs for each handshake.
pub struct CertificateTls {
    provider: Arc<CryptoProvider>,
    server_key: Arc<CertifiedKey>,
    latchkey: Arc<Latchkey>,
    /// The last configuration made, and the authorities it asks for.
    current: Mutex<Option<MadeFor>>,
}

/// A configuration, and the authorities (DER) it asks for.
type MadeFor = (Vec<Vec<u8>>, Arc<ServerConfig>);

impl std::fmt::Debug for CertificateTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateTls").finish_non_exhaustive()
    }
}

impl CertificateTls {
    /// Loads the listener's own certificate chain and key (PEM).
    pub fn load(cert: &Path, key: &Path, latchkey: Arc<Latchkey>) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading {}", cert.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading the certificates in {}", cert.display()))?;
        if chain.is_empty() {
            anyhow::bail!("{} holds no certificate", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the private key in {}", key.display()))?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .context("loading the certificate listener's private key")?;
        Ok(CertificateTls {
            provider,
            server_key: Arc::new(CertifiedKey::new(chain, signing)),
            latchkey,
            current: Mutex::new(None),
        })
    }

    /// The configuration for a new handshake: the one made before, unless the policy's
    /// authorities changed since.
    pub async fn server_config(&self) -> anyhow::Result<Arc<ServerConfig>> {
        let authorities = self.latchkey.certificates.trusted_authorities().await;
        {
            let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((made_for, config)) = current.as_ref()
                && *made_for == authorities
            {
                return Ok(config.clone());
            }
        }
        let config = Arc::new(self.build(&authorities)?);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((authorities, config.clone()));
        Ok(config)
    }

    fn build(&self, authorities: &[Vec<u8>]) -> anyhow::Result<ServerConfig> {
        let mut roots = RootCertStore::empty();
        let (_, unusable) = roots.add_parsable_certificates(
            authorities
                .iter()
                .map(|der| CertificateDer::from(der.clone())),
        );
        if unusable > 0 {
            tracing::warn!(
                unusable,
                "some of the policy's certificate authorities cannot be offered to browsers"
            );
        }
        let verifier = Arc::new(DeferredChainVerifier {
            subjects: roots.subjects(),
            algorithms: self.provider.signature_verification_algorithms,
        });
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(FixedCertificate(self.server_key.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[derive(Debug)]
struct FixedCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Requires a client certificate and checks the handshake's signature with it (so the client
/// holds the certificate's private key), and accepts the chain as presented: the certificate
/// service validates it afterwards (authorities, validity, revocation, bindings), where a
/// refusal can be logged and explained.
#[derive(Debug)]
struct DeferredChainVerifier {
    /// The policy's authorities, which browsers use to choose which certificate to offer.
    subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeferredChainVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
