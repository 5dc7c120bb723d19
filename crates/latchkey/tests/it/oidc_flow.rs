//! The whole OpenID Connect flow, driven by an independent client library (`openidconnect`),
//! signing in with a Temporary Access Pass through the real pages.

use latchkey_domain::log::Actor;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};

use crate::support::{TestServer, assert_signed_in_as, query_param};

/// `openidconnect`'s HTTP client trait, served by reqwest (no redirects, like a careful RP).
pub(crate) async fn http(
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let mut outgoing = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).expect("response"))
}

async fn run_flow_with(alg: &str) {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    let (client_id, secret) = server.confidential_app(alg).await;

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .expect("discovery document validates");
    let algs: Vec<String> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .map(|a| {
            serde_json::to_value(a)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        algs,
        ["RS256", "ES256"],
        "discovery lists both ID-token algorithms"
    );
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new("http://localhost:9/callback".into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(
            openidconnect::AuthenticationFlow::<openidconnect::core::CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = server.browser();
    let login = browser.follow(browser.get(auth_url.as_str()).await).await;
    assert!(
        login.body.contains("Contoso Expenses"),
        "the sign-in page names the application"
    );
    let answer = browser
        .sign_in_with_pass(login, "Bobby@Contoso.example", &pass)
        .await;
    let callback = answer.location.expect("redirect back to the application");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(csrf_state.secret().as_str())
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(server.base.as_str())
    );
    let code = query_param(&callback, "code").expect("code");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token validates against the JWKS");
    assert_eq!(claims.subject().as_str(), bobby.as_str());
    assert_eq!(
        claims.preferred_username().unwrap().as_str(),
        "bobby@contoso.example"
    );
    assert_eq!(claims.email().unwrap().as_str(), "bobby@contoso.example");
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(amr, vec!["otp"]);
    assert!(claims.auth_time().is_some());
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert_eq!(
        serde_json::to_value(id_token.signing_alg().unwrap()).unwrap(),
        alg
    );

    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject().as_str(), bobby.as_str());
    assert_eq!(
        userinfo
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Bobby Smith")
    );

    let refresh = tokens
        .refresh_token()
        .expect("a refresh token with offline_access")
        .clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .expect("token endpoint known")
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let rotated = refreshed
        .refresh_token()
        .expect("a rotated refresh token")
        .clone();

    // RP-initiated logout with the ID token as hint: back to the registered address, with state.
    let mut logout = url::Url::parse(&format!("{}/logout", server.base)).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", &id_token.to_string())
        .append_pair("post_logout_redirect_uri", "http://localhost:9/bye")
        .append_pair("state", "bye-state");
    let page = browser.get(logout.as_str()).await;
    assert_eq!(
        page.location.as_deref(),
        Some("http://localhost:9/bye?state=bye-state")
    );

    // Signing out ended the session: the tokens issued through it no longer work.
    let after = client
        .exchange_refresh_token(&RefreshToken::new(rotated.secret().clone()))
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after.is_err(), "refresh after logout must fail");
    let again = browser.get(auth_url.as_str()).await;
    assert_eq!(
        again.status, 200,
        "signed out: the next authorization asks to sign in"
    );
    assert!(again.body.contains("User name"), "{}", again.body);
}

#[tokio::test]
async fn openid_connect_flow_with_rs256_id_tokens() {
    run_flow_with("RS256").await;
}

#[tokio::test]
async fn openid_connect_flow_with_es256_id_tokens() {
    run_flow_with("ES256").await;
}

#[tokio::test]
async fn demo_user_signs_in_with_a_pass_and_reaches_my_apps() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let bobby = people
        .iter()
        .find(|p| p.user.display_name == "Bobby Smith")
        .unwrap();
    let browser = server.browser();
    let login = browser.follow(browser.get("/myapps").await).await;
    assert!(
        login.body.contains("My Apps"),
        "the sign-in page names My Apps"
    );
    let answer = browser
        .sign_in_with_pass(login, bobby.user.upn.as_str(), bobby.pass.expose())
        .await;
    let portal = browser.follow(answer).await;
    assert_eq!(portal.status, 200, "{}", portal.body);
    assert_signed_in_as(&portal, "Bobby Smith");

    // A second visit uses the session without asking again.
    let again = browser.follow(browser.get("/myapps").await).await;
    assert!(again.body.contains("Bobby Smith"));

    // Security info lists the pass.
    let info = browser.get("/mysecurityinfo").await;
    assert!(info.body.contains("Temporary Access Pass"), "{}", info.body);

    // Signing out of My Apps signs out of Latchkey too.
    let signout = browser
        .post("/myapps/signout", &[("csrf", &again.csrf())])
        .await;
    let done = browser.follow(signout).await;
    assert!(done.body.contains("signed out"), "{}", done.body);
    let info = browser.get("/mysecurityinfo").await;
    assert!(
        info.location.unwrap().starts_with("/login"),
        "the session ended"
    );
}

#[tokio::test]
async fn running_the_demo_again_keeps_data_and_makes_new_passes() {
    let server = TestServer::start().await;
    let first = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let second = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.user.id, b.user.id, "the same people");
        assert_ne!(a.pass.expose(), b.pass.expose(), "a fresh pass each start");
    }
    assert_eq!(
        server.latchkey.directory.list_users().await.unwrap().len(),
        3
    );
}

#[tokio::test]
async fn rotated_keys_stay_published_and_new_tokens_use_the_new_key() {
    let server = TestServer::start().await;
    let before: serde_json::Value = reqwest::get(format!("{}/jwks", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = server
        .latchkey
        .tokens
        .rotate_signing_keys(&Actor::system())
        .await
        .unwrap();
    let after: serde_json::Value = reqwest::get(format!("{}/jwks", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids = |v: &serde_json::Value| {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    for kid in kids(&before) {
        assert!(
            kids(&after).contains(&kid),
            "retired key {kid} is still published"
        );
    }
    for key in fresh {
        assert!(kids(&after).contains(&key.kid.to_string()));
    }
}
