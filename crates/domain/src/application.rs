//! Applications (OpenID Connect relying parties) an administrator registers.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::{ClientId, GroupId, UserId};
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
    /// Origins (`scheme://host[:port]`) besides those of the redirect URIs from which a browser
    /// may call the token endpoints (CORS).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Whether ID tokens and userinfo carry a `groups` claim, and with what in it.
    #[serde(default)]
    pub groups_claim: GroupsClaim,
    /// Only users assigned to the application (directly or through a group) may get a code or
    /// tokens for it.
    #[serde(default)]
    pub assignment_required: bool,
    /// Where a logout token is POSTed when a session this application got a code or tokens
    /// in ends (OpenID Connect Back-Channel Logout 1.0); `None` for no back-channel logout.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
}

/// What an application's `groups` claim holds: nothing (the default), the ids of the user's
/// groups (stable, as Entra sends them), or their display names (readable, but a renamed group
/// changes what the application sees).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupsClaim {
    #[default]
    None,
    Ids,
    Names,
}

impl GroupsClaim {
    /// The name the admin API and the store spell it with (`none`, `ids`, `names`).
    pub fn as_str(self) -> &'static str {
        crate::names::serde_name(&self)
    }

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        crate::names::from_serde_name(value)
            .ok_or_else(|| DomainError::invalid("groupsClaim", "must be none, ids or names"))
    }
}

/// At most this many groups go into an ID token's `groups` claim (Entra's limit for JWTs). A
/// user in more groups gets no `groups` claim in the ID token but an overage signal (OpenID
/// Connect distributed claims naming the userinfo endpoint), and userinfo carries them all.
pub const MAX_GROUPS_IN_ID_TOKEN: usize = 200;

/// Who an application is assigned to: one user, or every member of one group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    tag = "principalType",
    content = "principalId",
    rename_all = "camelCase"
)]
pub enum AssignedPrincipal {
    User(UserId),
    Group(GroupId),
}

/// One assignment of an application (Entra's app role assignment, with the default role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAssignment {
    pub client_id: ClientId,
    pub principal: AssignedPrincipal,
    pub created_at: Timestamp,
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

    /// The browser origins this application's pages run on: those of its redirect URIs and
    /// its explicitly allowed origins, as browsers write them in `Origin`.
    pub fn browser_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = Vec::new();
        let from_redirects = self.redirect_uris.iter().filter_map(|uri| origin_of(uri));
        for origin in from_redirects.chain(self.allowed_origins.iter().cloned()) {
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        origins
    }

    /// Whether a browser page on `origin` (the `Origin` header) is one of this application's.
    pub fn accepts_origin(&self, origin: &str) -> bool {
        self.browser_origins().iter().any(|o| o == origin)
    }
}

/// The origin of an absolute http(s) URL as a browser serializes it (`https://host[:port]`,
/// default port left out); `None` for other schemes.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    matches!(url.scheme(), "https" | "http").then(|| url.origin().ascii_serialization())
}

/// An allowed origin: `scheme://host[:port]` exactly as a browser sends it (no path, no
/// trailing slash, lower-case host, default port left out), https unless loopback.
pub fn validate_origin(field: &'static str, value: &str) -> Result<String, DomainError> {
    validate_redirect_uri(field, value)?;
    match origin_of(value) {
        Some(origin) if origin == value => Ok(origin),
        Some(origin) => Err(DomainError::invalid(
            field,
            format!(
                "{:?} is not an origin as browsers send it; write {origin:?}",
                value.chars().take(64).collect::<String>()
            ),
        )),
        None => Err(DomainError::invalid(field, "must be an http(s) origin")),
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
    fn allowed_origins_are_written_as_browsers_send_them() {
        assert_eq!(
            validate_origin("o", "https://spa.example").unwrap(),
            "https://spa.example"
        );
        assert!(validate_origin("o", "http://localhost:5173").is_ok());
        assert!(validate_origin("o", "https://spa.example/").is_err());
        assert!(validate_origin("o", "https://spa.example/app").is_err());
        assert!(validate_origin("o", "https://spa.example:443").is_err());
        assert!(validate_origin("o", "https://SPA.example").is_err());
        assert!(validate_origin("o", "http://spa.example").is_err());
        assert!(validate_origin("o", "null").is_err());
        assert!(validate_origin("o", "*").is_err());
    }

    #[test]
    fn an_application_runs_on_its_redirect_origins_and_its_allowed_ones() {
        let app = Application {
            client_id: ClientId::from_string("spa"),
            display_name: "SPA".into(),
            redirect_uris: vec![
                "https://spa.example/cb".into(),
                "https://spa.example:8443/other".into(),
                "http://127.0.0.1:3000/cb".into(),
            ],
            post_logout_redirect_uris: vec![],
            kind: ClientKind::Public,
            id_token_alg: SigningAlg::ES256,
            home_url: None,
            required_strength: None,
            created_at: Timestamp(0),
            allowed_origins: vec!["https://app.example".into()],
            groups_claim: Default::default(),
            assignment_required: false,
            backchannel_logout_uri: None,
        };
        assert_eq!(
            app.browser_origins(),
            [
                "https://spa.example",
                "https://spa.example:8443",
                "http://127.0.0.1:3000",
                "https://app.example"
            ]
        );
        assert!(app.accepts_origin("https://spa.example"));
        assert!(!app.accepts_origin("https://spa.example.evil"));
        assert!(!app.accepts_origin("null"));
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
