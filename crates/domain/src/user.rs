//! Users and groups.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::{GroupId, UserId};

/// A user principal name, normalised to lower case: UPNs are unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Upn(String);

impl Upn {
    pub const MAX_LEN: usize = 254;

    pub fn parse(input: &str) -> Result<Upn, DomainError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(DomainError::invalid(
                "userPrincipalName",
                "enter a user name such as bobby@example.com",
            ));
        }
        if value.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "userPrincipalName",
                "is longer than 254 characters",
            ));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(DomainError::invalid(
                "userPrincipalName",
                "must look like name@domain",
            ));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+'".contains(c));
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(DomainError::invalid(
                "userPrincipalName",
                "must look like name@domain, with letters, digits and . _ - + ' only",
            ));
        }
        Ok(Upn(value.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Upn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub upn: Upn,
    pub display_name: String,
    pub email: Option<String>,
    pub enabled: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub display_name: String,
    pub description: String,
    pub created_at: Timestamp,
}

pub fn validate_display_name(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > 256 {
        return Err(DomainError::invalid(field, "is longer than 256 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    if value.chars().any(reorders_or_breaks_lines) {
        return Err(DomainError::invalid(field, NO_REORDERING_CHARACTERS));
    }
    Ok(value.to_string())
}

/// Why a name with [`reorders_or_breaks_lines`] characters is refused.
pub const NO_REORDERING_CHARACTERS: &str = "must not contain bidirectional embedding, override or isolate characters (U+202A to U+202E, U+2066 to U+2069) or line and paragraph separators (U+2028, U+2029)";

/// Characters that change how the text around them is shown rather than being shown: the
/// bidirectional embeddings, overrides and isolates (a name can then read backwards, so
/// "Contoso\u{202E}nimda" is shown as "Contosoadmin") and the line and paragraph separators
/// (one name drawn as several lines, a fake prompt under it). Names appear in notifications,
/// consoles and logs, where such tricks mislead the person deciding.
pub fn reorders_or_breaks_lines(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
    )
}

pub fn validate_email(value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::invalid("mail", "is not an email address"));
    }
    match value.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(value.to_string()),
        _ => Err(DomainError::invalid("mail", "is not an email address")),
    }
}

/// How many certificate user ids one user may have (Entra's limit).
pub const MAX_CERTIFICATE_USER_IDS: usize = 5;
/// The longest certificate user id, in characters (Entra's limit).
pub const MAX_CERTIFICATE_USER_ID_CHARS: usize = 1024;

/// Checks and normalises a user's certificate user ids: at most
/// [`MAX_CERTIFICATE_USER_IDS`], each at most [`MAX_CERTIFICATE_USER_ID_CHARS`] and in one of
/// Entra's formats: `X509:<PN>name`, `X509:<RFC822>address`, `X509:<I>issuer<S>subject`,
/// `X509:<S>subject`, `X509:<SKI>hex`, `X509:<SHA1-PUKEY>hex`, `X509:<I>issuer<SR>hex`.
/// Principal names and addresses are lower-cased and hex is lower-cased, as certificate
/// bindings compare them; names (`<I>`, `<S>`) are kept as given (RFC 4514 strings, most
/// specific first, as the sign-in log shows them). No duplicates.
pub fn validate_certificate_user_ids(values: &[String]) -> Result<Vec<String>, DomainError> {
    const FIELD: &str = "certificateUserIds";
    if values.len() > MAX_CERTIFICATE_USER_IDS {
        return Err(DomainError::invalid(
            FIELD,
            format!("a user can have at most {MAX_CERTIFICATE_USER_IDS} certificate user ids"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = value.trim();
        if value.chars().count() > MAX_CERTIFICATE_USER_ID_CHARS {
            return Err(DomainError::invalid(
                FIELD,
                format!(
                    "a certificate user id is at most {MAX_CERTIFICATE_USER_ID_CHARS} characters"
                ),
            ));
        }
        let normalised = normalise_certificate_user_id(value).ok_or_else(|| {
            DomainError::invalid(
                FIELD,
                format!(
                    "{value:?} is not a certificate user id; use X509:<PN>, X509:<RFC822>, X509:<I>…<S>…, X509:<S>, X509:<SKI>, X509:<SHA1-PUKEY> or X509:<I>…<SR>…"
                ),
            )
        })?;
        if out.contains(&normalised) {
            return Err(DomainError::invalid(
                FIELD,
                format!("{value:?} is listed twice"),
            ));
        }
        out.push(normalised);
    }
    Ok(out)
}

fn normalise_certificate_user_id(value: &str) -> Option<String> {
    if value.chars().any(char::is_control) {
        return None;
    }
    let rest = value.strip_prefix("X509:")?;
    let text = |v: &str| (!v.trim().is_empty()).then(|| v.to_string());
    let hex = |v: &str| {
        (!v.is_empty() && v.len().is_multiple_of(2) && v.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| v.to_ascii_lowercase())
    };
    if let Some(v) = rest.strip_prefix("<PN>") {
        return text(v).map(|v| format!("X509:<PN>{}", v.to_lowercase()));
    }
    if let Some(v) = rest.strip_prefix("<RFC822>") {
        return text(v).map(|v| format!("X509:<RFC822>{}", v.to_lowercase()));
    }
    if let Some(v) = rest.strip_prefix("<SKI>") {
        return hex(v).map(|v| format!("X509:<SKI>{v}"));
    }
    if let Some(v) = rest.strip_prefix("<SHA1-PUKEY>") {
        return hex(v)
            .filter(|v| v.len() == 40)
            .map(|v| format!("X509:<SHA1-PUKEY>{v}"));
    }
    if let Some(v) = rest.strip_prefix("<S>") {
        return text(v)
            .filter(|v| !v.contains("<S>"))
            .map(|v| format!("X509:<S>{v}"));
    }
    if let Some(v) = rest.strip_prefix("<I>") {
        if let Some((issuer, serial)) = v.split_once("<SR>") {
            let issuer = text(issuer)?;
            return hex(serial).map(|s| format!("X509:<I>{issuer}<SR>{s}"));
        }
        let (issuer, subject) = v.split_once("<S>")?;
        return Some(format!("X509:<I>{}<S>{}", text(issuer)?, text(subject)?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_is_case_insensitive() {
        assert_eq!(
            Upn::parse("Bobby@Contoso.Example").unwrap().as_str(),
            "bobby@contoso.example"
        );
    }

    #[test]
    fn upn_rejects_malformed_input() {
        for bad in [
            "",
            "bobby",
            "@x.com",
            "a@b",
            "a b@x.com",
            "a@x..com",
            "a@.x.com",
        ] {
            assert!(Upn::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(Upn::parse(&format!("{}@x.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn names_that_reorder_or_break_their_text_are_refused() {
        for c in ('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{2028}', '\u{2029}'])
        {
            let name = format!("Contoso{c}nimda");
            let refused = validate_display_name("displayName", &name).unwrap_err();
            assert!(
                refused.to_string().contains("bidirectional"),
                "U+{:04X}: {refused}",
                c as u32
            );
        }
        // Right-to-left scripts themselves are names like any other.
        assert!(validate_display_name("displayName", "שלום עולם").is_ok());
        assert!(validate_display_name("displayName", "Zoë d'Arcy — Ops").is_ok());
    }
}
