//! Chain validation with rustls-webpki: the presented chain against the policy's CAs at the
//! domain clock's time, for client authentication, with the CAs' revocation lists.

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use super::CertificateFailure;
use crate::clock::Timestamp;
use crate::policy::TrustedCertificateAuthority;

/// One of the policy's CAs, decoded.
pub(crate) struct Authority {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) crl_url: Option<String>,
}

/// The policy's CAs as DER. A PEM field may hold several certificates; each is trusted. CAs
/// whose PEM does not decode are skipped (validation refuses them when the policy is saved).
pub(crate) fn authorities(cas: &[TrustedCertificateAuthority]) -> Vec<Authority> {
    cas.iter()
        .flat_map(|ca| {
            CertificateDer::pem_slice_iter(ca.certificate.as_bytes())
                .filter_map(Result::ok)
                .map(|der| Authority {
                    der,
                    crl_url: ca.certificate_revocation_list_url.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn unix(at: Timestamp) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.0.max(0) as u64))
}

/// Validates `leaf` over `intermediates` to one of `authorities` at `now`, for client
/// authentication, with `crls` (each must be signed by the CA it is for). Answers the index of
/// the authority the path ends at.
pub(crate) fn validate(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    authorities: &[Authority],
    now: Timestamp,
    crls: Option<&[&webpki::CertRevocationList<'_>]>,
) -> Result<usize, CertificateFailure> {
    let leaf = CertificateDer::from(leaf);
    let end_entity = EndEntityCert::try_from(&leaf).map_err(|_| CertificateFailure::Malformed)?;
    let anchors: Vec<(usize, TrustAnchor<'_>)> = authorities
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            webpki::anchor_from_trusted_cert(&a.der)
                .ok()
                .map(|t| (i, t))
        })
        .collect();
    let trust: Vec<TrustAnchor<'_>> = anchors.iter().map(|(_, t)| t.clone()).collect();
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let revocation = match crls {
        Some(crls) if !crls.is_empty() => Some(
            RevocationOptionsBuilder::new(crls)
                .map_err(|_| CertificateFailure::RevocationUnavailable)?
                .with_depth(RevocationCheckDepth::EndEntity)
                // A certificate from a CA without a configured list has no status to know; the
                // caller has already made sure that every configured list is here.
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build(),
        ),
        _ => None,
    };
    let path = end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &trust,
            &intermediates,
            unix(now),
            KeyUsage::client_auth(),
            revocation,
            None,
        )
        .map_err(failure)?;
    let anchor = path.anchor();
    Ok(anchors
        .iter()
        .find(|(_, t)| {
            t.subject == anchor.subject
                && t.subject_public_key_info == anchor.subject_public_key_info
        })
        .map(|(i, _)| *i)
        .unwrap_or(0))
}

fn failure(error: webpki::Error) -> CertificateFailure {
    use webpki::Error as E;
    #[allow(deprecated)]
    if matches!(error, E::RequiredEkuNotFound) {
        return CertificateFailure::WrongKeyUsage;
    }
    match error {
        E::UnknownIssuer | E::CaUsedAsEndEntity | E::CertDistrusted => {
            CertificateFailure::UntrustedIssuer
        }
        E::CertExpired { .. } => CertificateFailure::Expired,
        E::CertNotValidYet { .. } => CertificateFailure::NotYetValid,
        E::CertRevoked => CertificateFailure::Revoked,
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            CertificateFailure::WrongKeyUsage
        }
        E::UnknownRevocationStatus
        | E::CrlExpired { .. }
        | E::InvalidCrlSignatureForPublicKey
        | E::IssuerNotCrlSigner
        | E::UnsupportedCrlSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
        | E::UnsupportedIndirectCrl
        | E::UnsupportedRevocationReasonsPartitioning => CertificateFailure::RevocationUnavailable,
        E::InvalidSignatureForPublicKey => CertificateFailure::UntrustedIssuer,
        _ => CertificateFailure::Malformed,
    }
}

/// A revocation list as the cache keeps it: parsed once, with the time it stops being
/// current.
pub(crate) struct ParsedCrl {
    pub(crate) crl: webpki::CertRevocationList<'static>,
    /// The DER issuer name, compared with the CA's subject.
    pub(crate) issuer: Vec<u8>,
    pub(crate) next_update: Option<Timestamp>,
}

pub(crate) fn parse_crl(der: &[u8]) -> Option<ParsedCrl> {
    use x509_parser::prelude::FromDer as _;
    let (_, parsed) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(der).ok()?;
    let next_update = parsed.next_update().map(|t| Timestamp(t.timestamp()));
    let owned = OwnedCertRevocationList::from_der(der).ok()?;
    let crl = webpki::CertRevocationList::from(owned);
    let issuer = crl.issuer().to_vec();
    Some(ParsedCrl {
        crl,
        issuer,
        next_update,
    })
}

/// The DER subject name of a CA certificate (what its CRLs name as issuer).
pub(crate) fn subject_der(ca: &CertificateDer<'_>) -> Option<Vec<u8>> {
    webpki::anchor_from_trusted_cert(ca)
        .ok()
        .map(|t| t.subject.as_ref().to_vec())
}
