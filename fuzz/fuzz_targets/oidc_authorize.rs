//! `/authorize` query strings (and form bodies, which axum reads the same way), checked against
//! a public and a confidential application; PKCE verifiers; redirect URIs an administrator
//! registers.
//!
//! Properties: nothing is accepted for an unknown client; an accepted request, and every error
//! that is sent back by redirect, goes to a registered redirect URI exactly, and the error
//! redirect keeps the registered address and echoes `state` unchanged; an accepted request
//! asks for `openid` and at most 20 scopes, carries an S256 challenge of the right shape (always
//! for a public client) and no over-long parameter; a PKCE verifier matches only the challenge
//! computed from it; a registered redirect URI is absolute, https (http only for loopback),
//! without fragment or credentials.

#![no_main]

use latchkey_domain::application::{Application, ClientKind, SigningAlg, validate_redirect_uri};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::ClientId;
use latchkey_domain::oidc::{
    AuthorizeError, AuthorizeParams, MAX_PARAM_LEN, pkce_matches, validate_authorize,
    validate_client_and_redirect,
};
use latchkey_domain::secret::{TokenHash, base64url, sha256};
use latchkey_domain::service::error_redirect;
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://id.example";

fn app(kind: ClientKind) -> Application {
    Application {
        client_id: ClientId::from_string("app"),
        display_name: "App".into(),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://localhost:3000/cb?x=1".into(),
        ],
        post_logout_redirect_uris: vec![],
        kind,
        id_token_alg: SigningAlg::ES256,
        home_url: None,
        required_strength: None,
        created_at: Timestamp(0),
        allowed_origins: vec![],
        groups_claim: Default::default(),
        assignment_required: false,
        backchannel_logout_uri: None,
    }
}

fn base64url_sha256(text: &str) -> String {
    base64url(&sha256(text.as_bytes()))
}

fn check_against(params: &AuthorizeParams, app: &Application) {
    let registered = |uri: &str| app.redirect_uris.iter().any(|r| r == uri);
    match validate_authorize(params, app) {
        Ok(request) => {
            assert!(registered(&request.redirect_uri), "{request:?}");
            assert_eq!(
                params.redirect_uri.as_deref(),
                Some(request.redirect_uri.as_str())
            );
            assert_eq!(request.client_id, app.client_id);
            assert!(request.scopes.iter().any(|s| s == "openid"));
            assert!(request.scopes.len() <= 20);
            assert!(
                request
                    .scopes
                    .iter()
                    .all(|s| !s.is_empty() && !s.contains(' '))
            );
            if app.is_public() {
                assert!(
                    request.code_challenge.is_some(),
                    "a public client without PKCE"
                );
            }
            if let Some(challenge) = &request.code_challenge {
                assert_eq!(params.code_challenge_method.as_deref(), Some("S256"));
                assert_eq!(challenge.len(), 43);
            }
            assert!(request.max_age.is_none_or(|age| age >= 0));
            assert!(params.request.is_none() && params.request_uri.is_none());
            for value in [&request.state, &request.nonce, &request.login_hint] {
                assert!(
                    value
                        .as_ref()
                        .is_none_or(|v| !v.is_empty() && v.len() <= MAX_PARAM_LEN)
                );
            }
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            error,
            description,
            state,
        }) => {
            assert!(
                registered(&redirect_uri),
                "an error sent to {redirect_uri:?}"
            );
            assert!(state.as_ref().is_none_or(|s| s.len() <= MAX_PARAM_LEN));
            let target =
                error_redirect(&redirect_uri, error, &description, state.as_deref(), ISSUER);
            let sent = url::Url::parse(&target).expect("the error redirect is a URL");
            let registered_url = url::Url::parse(&redirect_uri).expect("registered URIs parse");
            assert_eq!(sent.origin(), registered_url.origin());
            assert_eq!(sent.path(), registered_url.path());
            assert!(
                target.starts_with(&redirect_uri),
                "{target:?} is not under {redirect_uri:?}"
            );
            let echoed: Vec<String> = sent
                .query_pairs()
                .filter(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .collect();
            assert_eq!(echoed, state.into_iter().collect::<Vec<_>>());
        }
        Err(AuthorizeError::NoRedirect(_)) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // Everything after the first line break is a redirect URI an administrator registers.
    let (query, registering) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    if let Ok(params) = serde_urlencoded::from_bytes::<AuthorizeParams>(query) {
        assert!(matches!(
            validate_client_and_redirect(&params, None),
            Err(AuthorizeError::NoRedirect(_))
        ));
        check_against(&params, &app(ClientKind::Public));
        check_against(
            &params,
            &app(ClientKind::Confidential {
                secret_hash: TokenHash::of("secret"),
            }),
        );
        // The challenge field doubles as a verifier: it matches its own digest exactly when it
        // has a verifier's shape, and a challenge computed from something else never.
        if let Some(verifier) = &params.code_challenge {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            assert_eq!(
                pkce_matches(&base64url_sha256(verifier), verifier),
                well_formed
            );
            if let Some(challenge) = &params.nonce {
                if pkce_matches(challenge, verifier) {
                    assert_eq!(challenge, &base64url_sha256(verifier));
                }
            }
        }
    }
    if let Some(Ok(uri)) = registering.map(std::str::from_utf8) {
        if let Ok(accepted) = validate_redirect_uri("redirect_uris", uri) {
            assert_eq!(accepted, uri);
            let url = url::Url::parse(uri).expect("accepted redirect URIs are absolute URLs");
            assert!(url.fragment().is_none());
            assert!(url.username().is_empty() && url.password().is_none());
            let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            assert!(
                url.scheme() == "https" || (url.scheme() == "http" && loopback),
                "{uri:?}"
            );
        }
    }
});
