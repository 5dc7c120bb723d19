//! Applications (OpenID Connect relying parties) an administrator registers.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::ClientId;
use crate::secret::TokenHash;
use crate::strength::AuthStrength;

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientKind {
    /// Cannot keep a secret (browser or native app): PKCE S256 is mandatory.
    Public,
    /// Holds a secret, stored here only as a hash.
    Confidential { secret_hash: TokenHash },
}

/// The algorithm an application's ID tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
}

impl SigningAlg {
    /// The JOSE name (`RS256`), which is also the serde name.
    pub fn as_str(self) -> &'static str {
        crate::names::serde_name(&self)
    }

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        crate::names::from_serde_name(value)
            .ok_or_else(|| DomainError::invalid("idTokenSigningAlg", "must be RS256 or ES256"))
    }

    pub const ALL: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub client_id: ClientId,
    /// Shown to users: on consent-free sign-in pages, in My Apps, and in phone sign-in
    /// notifications when the "show application name" feature is on.
    pub display_name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub kind: ClientKind,
    pub id_token_alg: SigningAlg,
    /// Where My Apps sends a user who picks this application; empty to hide it there.
    pub home_url: Option<String>,
    /// The authentication strength a session must meet before this application gets a code;
    /// `None` accepts any sign-in.
    #[serde(default)]
    pub required_strength: Option<AuthStrength>,
    pub created_at: Timestamp,
    /// Where a logout token is POSTed when a session this application got a code or tokens
    /// in ends (OpenID Connect Back-Channel Logout 1.0); `None` for no back-channel logout.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
}

impl Application {
    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }

    /// Exact, character-for-character match, as OpenID Connect Core requires.
    pub fn accepts_redirect_uri(&self, candidate: &str) -> bool {
        self.redirect_uris.iter().any(|uri| uri == candidate)
    }

    pub fn accepts_post_logout_redirect_uri(&self, candidate: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|uri| uri == candidate)
    }
}

/// Redirect URIs must be absolute, without fragment or credentials, and use https unless they
/// point at this machine (loopback development setups).
pub fn validate_redirect_uri(field: &'static str, value: &str) -> Result<String, DomainError> {
    if value.len() > 2000 {
        return Err(DomainError::invalid(
            field,
            "is longer than 2000 characters",
        ));
    }
    let url = Url::parse(value)
        .map_err(|_| DomainError::invalid(field, format!("{value:?} is not an absolute URL")))?;
    if url.fragment().is_some() {
        return Err(DomainError::invalid(
            field,
            "must not contain a fragment (#)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(field, "must not contain credentials"));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(DomainError::invalid(
                field,
                "must use https (http is allowed only for localhost)",
            ));
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback() {
        assert!(validate_redirect_uri("r", "https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("r", "http://localhost:3000/cb").is_ok());
        assert!(validate_redirect_uri("r", "http://app.example/cb").is_err());
        assert!(validate_redirect_uri("r", "https://app.example/cb#x").is_err());
        assert!(validate_redirect_uri("r", "https://u:p@app.example/cb").is_err());
        assert!(validate_redirect_uri("r", "/relative").is_err());
        assert!(validate_redirect_uri("r", "javascript:alert(1)").is_err());
    }

    #[test]
    fn signing_algs_keep_their_jose_names() {
        assert_eq!(SigningAlg::RS256.as_str(), "RS256");
        assert_eq!(SigningAlg::ES256.as_str(), "ES256");
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()).unwrap(), alg);
        }
        assert!(SigningAlg::parse("rs256").is_err());
        assert!(SigningAlg::parse("HS256").is_err());
    }
}
