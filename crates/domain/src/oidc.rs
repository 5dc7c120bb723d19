//! OpenID Connect rules: validating an authorization request, codes, grants, tokens and claims.
//!
//! Pure functions over plain data; the service persists what they decide.

use serde::{Deserialize, Serialize};

use crate::application::{Application, MAX_GROUPS_IN_ID_TOKEN};
use crate::clock::Timestamp;
use crate::ids::{ClientId, GrantId, SessionId, UserId};
use crate::secret::{TokenHash, base64url, constant_time_eq, sha256};
use crate::session::AuthMethod;
use crate::strength::AuthStrength;
use crate::user::User;

/// The longest value we accept for any single authorization parameter.
pub const MAX_PARAM_LEN: usize = 2048;

/// Raw `/authorize` parameters, as received.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub max_age: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Space-separated `acr` values the client would like, most preferred first (OpenID
    /// Connect Core §3.1.2.1): the first one Latchkey defines is required.
    pub acr_values: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// Use an existing session if there is one.
    Default,
    /// Always ask the user to sign in again.
    Login,
    /// Never show a page: answer `login_required` if there is no session.
    None,
}

/// A validated authorization request, kept while the user signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub login_hint: Option<String>,
    pub max_age: Option<i64>,
    /// The strength a session must meet to answer this request: the stronger of the
    /// application's requirement and the one `acr_values` asked for. Requests stored before
    /// strengths existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_strength: Option<AuthStrength>,
}

/// The OAuth 2.0 and OpenID Connect error codes Latchkey answers with (RFC 6749 §4.1.2.1 and
/// §5.2, RFC 6750 §3.1, OpenID Connect Core §3.1.2.6). The serde names are the wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    InvalidToken,
    UnsupportedGrantType,
    UnsupportedResponseType,
    RequestNotSupported,
    RequestUriNotSupported,
    LoginRequired,
    /// `prompt=none`, but the session does not meet the strength the request requires.
    InteractionRequired,
    /// The user may not use the application (it requires assignment and they are not assigned).
    AccessDenied,
    ServerError,
    /// RFC 6749 §5.2: the client may not make this request (here: from this browser origin).
    UnauthorizedClient,
    /// RFC 8628 §3.5: the user has not decided yet; poll again after the interval.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling faster than the interval; it grows by 5 seconds.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; start again.
    ExpiredToken,
}

impl OAuthErrorCode {
    /// The code as sent on the wire, e.g. `invalid_grant`.
    pub fn as_str(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

crate::display_as_serde_name!(OAuthErrorCode);

/// Why an authorization request failed, and whether it is safe to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI can't be trusted: show an error page, never redirect.
    NoRedirect(String),
    /// Redirect back to the (validated) client with an OAuth error.
    Redirect {
        redirect_uri: String,
        error: OAuthErrorCode,
        description: String,
        state: Option<String>,
    },
}

fn checked(name: &'static str, value: &Option<String>) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.len() > MAX_PARAM_LEN => {
            Err(format!("{name} is longer than {MAX_PARAM_LEN} characters"))
        }
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Ok(Some(v.clone())),
        None => Ok(None),
    }
}

/// The first step of `/authorize`: who is asking and where the answer may go.
/// Only once both are trusted may errors be sent back to the client by redirect.
pub fn validate_client_and_redirect(
    params: &AuthorizeParams,
    app: Option<&Application>,
) -> Result<String, AuthorizeError> {
    let no_redirect = AuthorizeError::NoRedirect;
    let client_id = checked("client_id", &params.client_id).map_err(no_redirect)?;
    if client_id.is_none() {
        return Err(AuthorizeError::NoRedirect(
            "The request has no client_id.".into(),
        ));
    }
    let Some(app) = app else {
        return Err(AuthorizeError::NoRedirect(
            "The application that sent you here is not registered.".into(),
        ));
    };
    let redirect_uri = checked("redirect_uri", &params.redirect_uri).map_err(no_redirect)?;
    match redirect_uri {
        Some(uri) if app.accepts_redirect_uri(&uri) => Ok(uri),
        Some(_) => Err(AuthorizeError::NoRedirect(format!(
            "The redirect address does not match any address registered for {}.",
            app.display_name
        ))),
        None => Err(AuthorizeError::NoRedirect(
            "The request has no redirect_uri.".into(),
        )),
    }
}

/// Validates the rest of an authorization request for a trusted client and redirect URI.
pub fn validate_authorize(
    params: &AuthorizeParams,
    app: &Application,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let redirect_uri = validate_client_and_redirect(params, Some(app))?;
    // A `state` too long to echo is refused without echoing it.
    let state = match checked("state", &params.state) {
        Ok(state) => state,
        Err(description) => {
            return Err(AuthorizeError::Redirect {
                redirect_uri,
                error: OAuthErrorCode::InvalidRequest,
                description,
                state: None,
            });
        }
    };
    let fail = |error: OAuthErrorCode, description: String| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: state.clone(),
    };
    let field = |name: &'static str, value: &Option<String>| {
        checked(name, value).map_err(|d| fail(OAuthErrorCode::InvalidRequest, d))
    };

    if params.request.is_some() {
        return Err(fail(
            OAuthErrorCode::RequestNotSupported,
            "request objects are not supported".into(),
        ));
    }
    if params.request_uri.is_some() {
        return Err(fail(
            OAuthErrorCode::RequestUriNotSupported,
            "request_uri is not supported".into(),
        ));
    }
    match field("response_mode", &params.response_mode)?.as_deref() {
        None | Some("query") => {}
        Some(_) => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "only response_mode=query is supported".into(),
            ));
        }
    }
    match field("response_type", &params.response_type)?.as_deref() {
        Some("code") => {}
        None => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "response_type is required".into(),
            ));
        }
        Some(_) => {
            return Err(fail(
                OAuthErrorCode::UnsupportedResponseType,
                "only response_type=code is supported".into(),
            ));
        }
    }
    let scope = field("scope", &params.scope)?.unwrap_or_default();
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(fail(
            OAuthErrorCode::InvalidScope,
            "the openid scope is required".into(),
        ));
    }
    if scopes.len() > 20 {
        return Err(fail(OAuthErrorCode::InvalidScope, "too many scopes".into()));
    }
    let nonce = field("nonce", &params.nonce)?;
    let code_challenge = field("code_challenge", &params.code_challenge)?;
    let method = field("code_challenge_method", &params.code_challenge_method)?;
    let code_challenge = match (code_challenge, method.as_deref()) {
        (None, None) if app.is_public() => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "PKCE (code_challenge with method S256) is required for this client".into(),
            ));
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (Some(challenge), Some("S256")) => {
            // A base64url SHA-256: 43 characters from the unreserved set (RFC 7636 §4.2).
            let well_formed = challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(fail(
                    OAuthErrorCode::InvalidRequest,
                    "code_challenge must be a base64url SHA-256 (43 characters)".into(),
                ));
            }
            Some(challenge)
        }
        (Some(_), _) => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method must be S256".into(),
            ));
        }
    };
    let prompt = match field("prompt", &params.prompt)?.as_deref() {
        None => Prompt::Default,
        Some("login") => Prompt::Login,
        Some("none") => Prompt::None,
        Some(other) if other.split(' ').any(|p| p == "none") => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other values".into(),
            ));
        }
        Some(_) => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "prompt must be login or none".into(),
            ));
        }
    };
    let max_age = match field("max_age", &params.max_age)? {
        None => None,
        Some(value) => match value.parse::<i64>() {
            Ok(age) if age >= 0 => Some(age),
            _ => {
                return Err(fail(
                    OAuthErrorCode::InvalidRequest,
                    "max_age must be a non-negative number of seconds".into(),
                ));
            }
        },
    };
    let login_hint = field("login_hint", &params.login_hint)?.filter(|h| h.len() <= 254);
    // An oversized `acr_values` is refused like any other oversized parameter; values Latchkey
    // does not define are ignored, as OpenID Connect allows for voluntary acr requests.
    let requested = field("acr_values", &params.acr_values)?
        .as_deref()
        .and_then(requested_strength);
    let required_strength = requested.max(app.required_strength);
    Ok(AuthorizationRequest {
        client_id: app.client_id.clone(),
        redirect_uri,
        scopes,
        state,
        nonce,
        code_challenge,
        prompt,
        login_hint,
        max_age,
        required_strength,
    })
}

/// The strength an `acr_values` parameter asks for: the first value Latchkey defines, in the
/// client's order of preference; `None` when it names none.
pub fn requested_strength(acr_values: &str) -> Option<AuthStrength> {
    acr_values
        .split(' ')
        .filter(|v| !v.is_empty())
        .find_map(AuthStrength::from_acr)
}

/// RFC 7636: BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed
        && constant_time_eq(
            base64url(&sha256(verifier.as_bytes())).as_bytes(),
            challenge.as_bytes(),
        )
}

/// What one successful authorization granted; codes, access and refresh tokens belong to one
/// grant, and revoking it revokes all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub user_id: UserId,
    pub client_id: ClientId,
    pub session_id: SessionId,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub auth_time: Timestamp,
    pub method: AuthMethod,
    pub created_at: Timestamp,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub hash: TokenHash,
    pub grant_id: GrantId,
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub hash: TokenHash,
    pub grant_id: GrantId,
    pub expires_at: Timestamp,
    /// What this token grants when a refresh asked for less than the grant (RFC 6749 §6);
    /// `None`: the grant's scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub hash: TokenHash,
    pub grant_id: GrantId,
    pub expires_at: Timestamp,
}

/// What redeeming a code or a refresh token issues. The store writes it in the transaction
/// that spends the code or token, and only when that one was unspent: a client holds tokens
/// only once they are stored, and a replay racing the first use issues nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access: AccessToken,
    /// Only when the grant holds `offline_access`.
    pub refresh: Option<RefreshToken>,
}

/// The outcome of taking a single-use secret out of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// First use: here it is, and it is now spent.
    Fresh(T),
    /// It was spent before: a replay. The caller revokes what it issued.
    Replayed(T),
    Unknown,
}

impl<T> Redeemed<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Redeemed<U> {
        match self {
            Redeemed::Fresh(value) => Redeemed::Fresh(f(value)),
            Redeemed::Replayed(value) => Redeemed::Replayed(f(value)),
            Redeemed::Unknown => Redeemed::Unknown,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub sid: String,
    pub amr: Vec<String>,
    pub acr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's groups (ids or names), when the application asks for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Groups overage (OpenID Connect Core §5.6.2 distributed claims): the user is in more
    /// groups than an ID token carries; `{"groups": "src1"}`.
    #[serde(
        rename = "_claim_names",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub claim_names: Option<serde_json::Value>,
    /// `{"src1": {"endpoint": "<issuer>/userinfo"}}`: where the whole list is.
    #[serde(
        rename = "_claim_sources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub claim_sources: Option<serde_json::Value>,
}

impl IdTokenClaims {
    /// Puts the user's groups in the token: all of them up to [`MAX_GROUPS_IN_ID_TOKEN`];
    /// past it no `groups` claim but an overage signal naming the userinfo endpoint, which
    /// carries the whole list. `None` (the application asks for no groups) changes nothing.
    pub fn set_groups(&mut self, groups: Option<Vec<String>>, userinfo_endpoint: &str) {
        match groups {
            None => {}
            Some(groups) if groups.len() <= MAX_GROUPS_IN_ID_TOKEN => self.groups = Some(groups),
            Some(_) => {
                self.claim_names = Some(serde_json::json!({"groups": "src1"}));
                self.claim_sources =
                    Some(serde_json::json!({"src1": {"endpoint": userinfo_endpoint}}));
            }
        }
    }
}

/// Profile claims by scope: `profile` → `name`, `preferred_username`; `email` → `email`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserClaims {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's groups (ids or names), all of them, when the application asks for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

pub fn user_claims(user: &User, scopes: &[String]) -> UserClaims {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    UserClaims {
        sub: user.id.to_string(),
        preferred_username: has("profile").then(|| user.upn.to_string()),
        name: has("profile").then(|| user.display_name.clone()),
        email: if has("email") {
            user.email.clone()
        } else {
            None
        },
        groups: None,
    }
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    base64url(&sha256(access_token.as_bytes())[..16])
}

pub fn id_token_claims(
    issuer: &str,
    user: &User,
    grant: &Grant,
    now: Timestamp,
    lifetime_seconds: i64,
    access_token: &str,
    include_nonce: bool,
) -> IdTokenClaims {
    let profile = user_claims(user, &grant.scopes);
    IdTokenClaims {
        iss: issuer.to_string(),
        sub: profile.sub,
        aud: grant.client_id.to_string(),
        exp: now.0 + lifetime_seconds,
        iat: now.0,
        auth_time: grant.auth_time.0,
        nonce: if include_nonce {
            grant.nonce.clone()
        } else {
            None
        },
        sid: grant.session_id.to_string(),
        amr: grant.method.amr().iter().map(|s| s.to_string()).collect(),
        acr: grant.method.acr().to_string(),
        at_hash: Some(at_hash(access_token)),
        preferred_username: profile.preferred_username,
        name: profile.name,
        email: profile.email,
        groups: None,
        claim_names: None,
        claim_sources: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::{ClientKind, SigningAlg};

    fn app(kind: ClientKind) -> Application {
        Application {
            client_id: ClientId::from_string("app"),
            display_name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            kind,
            id_token_alg: SigningAlg::ES256,
            home_url: None,
            required_strength: None,
            created_at: Timestamp(0),
            allowed_origins: Vec::new(),
            groups_claim: Default::default(),
            assignment_required: false,
            backchannel_logout_uri: None,
        }
    }

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            client_id: Some("app".into()),
            redirect_uri: Some("https://app.example/cb".into()),
            response_type: Some("code".into()),
            scope: Some("openid profile".into()),
            state: Some("xyz".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            ..Default::default()
        }
    }

    #[test]
    fn an_id_token_carries_up_to_200_groups_and_past_that_only_the_overage_signal() {
        let base = || IdTokenClaims {
            iss: "https://id.example".into(),
            sub: "u".into(),
            aud: "app".into(),
            exp: 0,
            iat: 0,
            auth_time: 0,
            nonce: None,
            sid: "s".into(),
            amr: vec![],
            acr: "a".into(),
            at_hash: None,
            preferred_username: None,
            name: None,
            email: None,
            groups: None,
            claim_names: None,
            claim_sources: None,
        };
        let groups = |n: usize| Some((0..n).map(|i| format!("g{i}")).collect::<Vec<_>>());
        let mut none = base();
        none.set_groups(None, "https://id.example/userinfo");
        assert_eq!(
            none,
            base(),
            "an application that asks for no groups gets none"
        );
        let mut full = base();
        full.set_groups(
            groups(MAX_GROUPS_IN_ID_TOKEN),
            "https://id.example/userinfo",
        );
        assert_eq!(full.groups.as_ref().map(Vec::len), Some(200));
        assert!(full.claim_names.is_none());
        let mut over = base();
        over.set_groups(
            groups(MAX_GROUPS_IN_ID_TOKEN + 1),
            "https://id.example/userinfo",
        );
        assert!(over.groups.is_none());
        let json = serde_json::to_value(&over).unwrap();
        assert_eq!(json["_claim_names"], serde_json::json!({"groups": "src1"}));
        assert_eq!(
            json["_claim_sources"]["src1"]["endpoint"],
            "https://id.example/userinfo"
        );
        assert!(json.get("groups").is_none());
    }

    #[test]
    fn oauth_error_codes_keep_their_wire_strings() {
        use OAuthErrorCode::*;
        let wire = [
            (InvalidRequest, "invalid_request"),
            (InvalidClient, "invalid_client"),
            (InvalidGrant, "invalid_grant"),
            (InvalidScope, "invalid_scope"),
            (InvalidToken, "invalid_token"),
            (UnsupportedGrantType, "unsupported_grant_type"),
            (UnsupportedResponseType, "unsupported_response_type"),
            (RequestNotSupported, "request_not_supported"),
            (RequestUriNotSupported, "request_uri_not_supported"),
            (LoginRequired, "login_required"),
            (InteractionRequired, "interaction_required"),
            (ServerError, "server_error"),
            (AuthorizationPending, "authorization_pending"),
            (SlowDown, "slow_down"),
            (AccessDenied, "access_denied"),
            (ExpiredToken, "expired_token"),
        ];
        for (code, text) in wire {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
            assert_eq!(serde_json::to_value(code).unwrap(), text);
        }
    }

    #[test]
    fn acr_values_ask_for_the_first_strength_latchkey_defines_and_ignore_the_rest() {
        use crate::strength::AuthStrength::*;
        let strength = |acr: Option<&str>, required| {
            let mut p = params();
            p.acr_values = acr.map(str::to_string);
            let mut app = app(ClientKind::Public);
            app.required_strength = required;
            validate_authorize(&p, &app).map(|r| r.required_strength)
        };
        assert_eq!(strength(None, None), Ok(None));
        assert_eq!(strength(Some(""), None), Ok(None));
        assert_eq!(strength(Some("urn:other:gold  loa3"), None), Ok(None));
        assert_eq!(
            strength(
                Some("urn:other:gold urn:latchkey:acr:mfa urn:latchkey:acr:phishing-resistant-mfa"),
                None
            ),
            Ok(Some(Mfa))
        );
        // The single-factor acr is one Latchkey issues, not a strength one can ask for.
        assert_eq!(strength(Some("urn:latchkey:acr:sfa"), None), Ok(None));
        // The stronger of the request's and the application's.
        assert_eq!(
            strength(Some("urn:latchkey:acr:mfa"), Some(PhishingResistantMfa)),
            Ok(Some(PhishingResistantMfa))
        );
        assert_eq!(
            strength(Some("urn:latchkey:acr:passwordless-mfa"), Some(Mfa)),
            Ok(Some(PasswordlessMfa))
        );
        let oversized = "urn:latchkey:acr:mfa ".repeat(200);
        assert!(matches!(
            strength(Some(&oversized), None),
            Err(AuthorizeError::Redirect {
                error: OAuthErrorCode::InvalidRequest,
                ..
            })
        ));
    }

    #[test]
    fn a_valid_request_is_accepted() {
        let request = validate_authorize(&params(), &app(ClientKind::Public)).unwrap();
        assert_eq!(request.scopes, vec!["openid", "profile"]);
        assert_eq!(request.state.as_deref(), Some("xyz"));
    }

    #[test]
    fn redirect_uri_mismatch_never_redirects() {
        let mut p = params();
        p.redirect_uri = Some("https://app.example/cb/../evil".into());
        assert!(matches!(
            validate_authorize(&p, &app(ClientKind::Public)),
            Err(AuthorizeError::NoRedirect(_))
        ));
        p.redirect_uri = Some("https://APP.example/cb".into());
        assert!(matches!(
            validate_authorize(&p, &app(ClientKind::Public)),
            Err(AuthorizeError::NoRedirect(_))
        ));
    }

    #[test]
    fn public_client_without_pkce_is_refused() {
        let mut p = params();
        p.code_challenge = None;
        p.code_challenge_method = None;
        let err = validate_authorize(&p, &app(ClientKind::Public)).unwrap_err();
        assert!(matches!(
            err,
            AuthorizeError::Redirect {
                error: OAuthErrorCode::InvalidRequest,
                ..
            }
        ));
    }

    #[test]
    fn plain_pkce_is_refused() {
        let mut p = params();
        p.code_challenge_method = Some("plain".into());
        assert!(validate_authorize(&p, &app(ClientKind::Public)).is_err());
    }

    #[test]
    fn pkce_verifier_must_match_challenge() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            verifier
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"
        ));
    }

    #[test]
    fn oversized_parameters_are_refused() {
        let mut p = params();
        p.nonce = Some("n".repeat(MAX_PARAM_LEN + 1));
        assert!(validate_authorize(&p, &app(ClientKind::Public)).is_err());
    }
}
