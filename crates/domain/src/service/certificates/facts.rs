//! Reading a certificate: the fields the sign-in log shows and the bindings and rules use.

use x509_parser::der_parser::asn1_rs::Any;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use crate::clock::Timestamp;

/// The OID of the SAN otherName that carries a Microsoft user principal name.
const UPN_OTHER_NAME: &str = "1.3.6.1.4.1.311.20.2.3";

/// What the sign-in log and pages show of a certificate, and the inputs of the bindings and
/// rules. Names are RFC 4514 strings (most specific first, `CN=Bob,O=Contoso,C=US`); hex is
/// lower case, big-endian as in the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    /// The serial number in hex.
    pub serial: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// The SAN otherName user principal names (OID 1.3.6.1.4.1.311.20.2.3).
    pub principal_names: Vec<String>,
    /// The SAN RFC 822 (email) names.
    pub rfc822_names: Vec<String>,
    /// The subject key identifier extension, in hex, when present.
    pub subject_key_identifier: Option<String>,
    /// SHA-1 of the DER SubjectPublicKeyInfo, in hex.
    pub sha1_public_key: String,
    /// The certificate policy OIDs, dotted.
    pub policy_oids: Vec<String>,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a DER certificate. `None` when it is not one.
pub(crate) fn read(der: &[u8]) -> Option<CertificateFacts> {
    let (rest, cert) = X509Certificate::from_der(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let mut facts = CertificateFacts {
        subject: rfc4514(cert.subject()),
        issuer: rfc4514(cert.issuer()),
        serial: hex(strip_sign_byte(cert.raw_serial())),
        not_before: Timestamp(cert.validity().not_before.timestamp()),
        not_after: Timestamp(cert.validity().not_after.timestamp()),
        principal_names: vec![],
        rfc822_names: vec![],
        subject_key_identifier: None,
        sha1_public_key: hex(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            cert.public_key().raw,
        )
        .as_ref()),
        policy_oids: vec![],
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::RFC822Name(email) => {
                            facts.rfc822_names.push(email.to_string())
                        }
                        GeneralName::OtherName(oid, value)
                            if oid.to_id_string() == UPN_OTHER_NAME =>
                        {
                            if let Some(upn) = other_name_utf8(value) {
                                facts.principal_names.push(upn);
                            }
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => {
                facts.subject_key_identifier = Some(hex(ski.0));
            }
            ParsedExtension::CertificatePolicies(policies) => {
                facts
                    .policy_oids
                    .extend(policies.iter().map(|p| p.policy_id.to_id_string()));
            }
            _ => {}
        }
    }
    Some(facts)
}

/// The serial as a positive integer: DER adds a leading zero byte when the top bit is set.
fn strip_sign_byte(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

/// `[0] EXPLICIT UTF8String` (or another string type) of an otherName.
fn other_name_utf8(value: &[u8]) -> Option<String> {
    let (_, tagged) = Any::from_der(value).ok()?;
    let (_, inner) = Any::from_der(tagged.data).ok()?;
    std::str::from_utf8(inner.data).ok().map(str::to_string)
}

/// An RFC 4514 string: RDNs most specific first, `+` inside a multi-valued RDN, values escaped.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let key = short_name(&oid).map(str::to_string).unwrap_or(oid);
                    match atv.as_str() {
                        Ok(value) => format!("{key}={}", escape(value)),
                        Err(_) => format!("{key}=#{}", hex(atv.attr_value().data)),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "E",
        _ => return None,
    })
}

/// RFC 4514 section 2.4 escaping.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// A distinguished name as rules compare it: RDNs trimmed, case folded.
pub(crate) fn comparable_dn(dn: &str) -> String {
    dn.split(',')
        .map(|part| part.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}
