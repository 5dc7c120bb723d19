//! A test PKI made with rcgen: certificate authorities, client certificates with the fields
//! the bindings and rules read, and revocation lists.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::service::{CrlSource, PresentedChain};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, OtherNameValue,
    RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::fixture::START;

fn at(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.0).unwrap()
}

pub struct Ca {
    pub name: String,
    pub pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Contoso");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = at(START.plus_seconds(-365 * 86_400));
        params.not_after = at(START.plus_seconds(10 * 365 * 86_400));
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            name: name.to_string(),
            pem: cert.pem(),
            params,
            key,
        }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A revocation list naming `serials`, current from START for a day.
    pub fn crl(&self, serials: &[u64]) -> Vec<u8> {
        let params = CertificateRevocationListParams {
            this_update: at(START.plus_seconds(-60)),
            next_update: at(START.plus_seconds(86_400)),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: at(START.plus_seconds(-30)),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer()).unwrap().der().to_vec()
    }
}

/// What goes into a client certificate.
#[derive(Clone)]
pub struct Leaf {
    pub common_name: String,
    pub principal_name: Option<String>,
    /// A second principal name (a certificate naming two users).
    pub extra_principal_name: Option<String>,
    pub email: Option<String>,
    pub policy_oids: Vec<Vec<u64>>,
    pub serial: u64,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub client_auth: bool,
}

impl Leaf {
    pub fn for_upn(upn: &str) -> Leaf {
        Leaf {
            common_name: upn.split('@').next().unwrap().to_string(),
            principal_name: Some(upn.to_string()),
            extra_principal_name: None,
            email: None,
            policy_oids: vec![],
            serial: 1001,
            not_before: START.plus_seconds(-86_400),
            not_after: START.plus_seconds(365 * 86_400),
            client_auth: true,
        }
    }

    pub fn issued_by(&self, ca: &Ca) -> PresentedChain {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, self.common_name.as_str());
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Contoso");
        for upn in self.principal_name.iter().chain(&self.extra_principal_name) {
            params.subject_alt_names.push(SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String(upn.clone()),
            )));
        }
        if let Some(email) = &self.email {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(email.as_str().try_into().unwrap()));
        }
        params.serial_number = Some(SerialNumber::from(self.serial));
        params.not_before = at(self.not_before);
        params.not_after = at(self.not_after);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = if self.client_auth {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        params.use_authority_key_identifier_extension = true;
        if !self.policy_oids.is_empty() {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 32],
                    certificate_policies(&self.policy_oids),
                ));
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.issuer()).unwrap();
        PresentedChain {
            leaf: cert.der().to_vec(),
            intermediates: vec![],
        }
    }
}

/// DER of `certificatePolicies`: SEQUENCE OF SEQUENCE { OID }.
fn certificate_policies(oids: &[Vec<u64>]) -> Vec<u8> {
    let infos: Vec<u8> = oids
        .iter()
        .flat_map(|oid| tlv(0x30, &tlv(0x06, &oid_body(oid))))
        .collect();
    tlv(0x30, &infos)
}

fn oid_body(arcs: &[u64]) -> Vec<u8> {
    let mut out = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut bytes = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            bytes.push(((rest & 0x7f) as u8) | 0x80);
            rest >>= 7;
        }
        bytes.reverse();
        out.extend(bytes);
    }
    out
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128, "short test structures only");
    let mut out = vec![tag, body.len() as u8];
    out.extend_from_slice(body);
    out
}

/// Revocation lists served from memory, counting fetches; an unknown URL cannot be had.
#[derive(Default)]
pub struct MemoryCrls {
    pub lists: Mutex<HashMap<String, Vec<u8>>>,
    pub fetches: Mutex<u32>,
}

impl MemoryCrls {
    pub fn serve(&self, url: &str, der: Vec<u8>) {
        self.lists.lock().unwrap().insert(url.to_string(), der);
    }
}

#[async_trait]
impl CrlSource for MemoryCrls {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        *self.fetches.lock().unwrap() += 1;
        self.lists
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .ok_or_else(|| "not found".to_string())
    }
}
