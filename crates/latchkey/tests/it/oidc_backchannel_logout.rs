//! OpenID Connect Back-Channel Logout 1.0, as a relying party sees it: a test application (axum
//! on loopback) registers a back-channel logout URI and receives a signed logout token when
//! the session it got tokens in ends.

use std::time::Duration;

use axum::extract::{Form, State};
use axum::routing::post;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use latchkey_domain::log::Actor;
use latchkey_domain::service::NewApplication;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::support::{Browser, TestServer};

/// A relying party's back-channel logout endpoint on loopback; every POSTed form arrives on
/// the receiver.
async fn relying_party() -> (String, mpsc::UnboundedReceiver<Vec<(String, String)>>) {
    let (sent, received) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/backchannel-logout",
            post(
                |State(sent): State<mpsc::UnboundedSender<Vec<(String, String)>>>,
                 Form(form): Form<Vec<(String, String)>>| async move {
                    let _ = sent.send(form);
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(sent);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("http://127.0.0.1:{port}/backchannel-logout"),
        received,
    )
}

/// A confidential application with a back-channel logout URI; returns (client_id, secret).
async fn app_with_backchannel(server: &TestServer, uri: &str, alg: &str) -> (String, String) {
    let (app, secret) = server
        .latchkey
        .applications
        .register_application(
            &Actor::system(),
            NewApplication {
                display_name: "Contoso Payroll".into(),
                redirect_uris: vec!["http://localhost:9/callback".into()],
                post_logout_redirect_uris: vec![],
                public_client: false,
                id_token_signing_alg: Some(alg.into()),
                home_url: None,
                required_strength: None,
                backchannel_logout_uri: Some(uri.into()),
                allowed_origins: vec![],
                groups_claim: None,
                assignment_required: false,
            },
        )
        .await
        .expect("register app");
    (
        app.client_id.to_string(),
        secret.expect("secret").expose().to_string(),
    )
}

/// The next logout token the relying party receives (waiting at most a minute, so that a
/// missing delivery fails the test instead of hanging it).
async fn next_logout_token(
    received: &mut mpsc::UnboundedReceiver<Vec<(String, String)>>,
) -> String {
    let form = tokio::time::timeout(Duration::from_secs(60), received.recv())
        .await
        .expect("a logout token arrives")
        .expect("channel open");
    assert_eq!(form.len(), 1, "only logout_token is sent: {form:?}");
    assert_eq!(form[0].0, "logout_token");
    form[0].1.clone()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// Verifies a logout token as an RP must (§2.6): signature by a key of the JWKS, `typ`,
/// `iss`, `aud`, `iat`/`exp`, `events`, `sid`, and no `nonce`. Returns its claims.
async fn verify_logout_token(server: &TestServer, token: &str, client: &str, alg: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(format!("{:?}", header.alg), alg);
    let jwks: JwkSet = reqwest::get(format!("{}/jwks", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the signing key is published");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[server.base.as_str()]);
    validation.set_audience(&[client]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("the signature and the standard claims hold")
    .claims;
    assert_eq!(
        claims["events"],
        serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none(), "never a nonce: {claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp > iat && exp - iat <= 120, "short-lived: {claims}");
    claims
}

/// Bobby signs in to `client` through `browser`; returns his id and the ID token.
async fn bobby_gets_an_id_token(
    server: &TestServer,
    browser: &Browser,
    client: &str,
    secret: &str,
) -> (latchkey_domain::ids::UserId, String) {
    let (bobby, code) = server.bobby_signs_in_to(browser, client, None).await;
    let (status, tokens) = server.redeem_code(client, secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    (bobby, tokens["id_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn backchannel_signing_out_sends_the_application_a_signed_logout_token_for_the_id_tokens_sid()
{
    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "ES256").await;
    let browser = server.browser();
    let (bobby, id_token) = bobby_gets_an_id_token(&server, &browser, &client, &secret).await;
    let id_claims = claims_of(&id_token);

    // RP-initiated logout with the ID token as hint ends the session at once.
    let answer = browser
        .get(&format!("/logout?id_token_hint={id_token}"))
        .await;
    assert!(answer.status < 400, "{}", answer.body);

    let token = next_logout_token(&mut received).await;
    let claims = verify_logout_token(&server, &token, &client, "ES256").await;
    assert_eq!(claims["sid"], id_claims["sid"], "the sid of the ID token");
    assert_eq!(claims["sub"], bobby.as_str());
    assert_eq!(claims["sub"], id_claims["sub"]);
}

#[tokio::test]
async fn backchannel_disabling_a_user_sends_a_logout_token_for_each_of_their_sessions() {
    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "RS256").await;
    let browser = server.browser();
    let (bobby, id_token) = bobby_gets_an_id_token(&server, &browser, &client, &secret).await;

    server.disable_user(&bobby).await;

    let token = next_logout_token(&mut received).await;
    let claims = verify_logout_token(&server, &token, &client, "RS256").await;
    assert_eq!(claims["sid"], claims_of(&id_token)["sid"]);
}

#[tokio::test]
async fn a_logout_token_is_never_mistaken_for_an_id_token() {
    // A logout token carries `typ: logout+jwt`, `events` and no nonce; an ID token carries
    // none of these markers, so an RP checking `typ`/`events` tells them apart.
    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "ES256").await;
    let browser = server.browser();
    let (_, id_token) = bobby_gets_an_id_token(&server, &browser, &client, &secret).await;
    let id_header = jsonwebtoken::decode_header(&id_token).unwrap();
    assert_ne!(id_header.typ.as_deref(), Some("logout+jwt"));
    assert!(claims_of(&id_token).get("events").is_none());
    browser
        .get(&format!("/logout?id_token_hint={id_token}"))
        .await;
    let token = next_logout_token(&mut received).await;
    assert!(claims_of(&token).get("nonce").is_none());
    assert!(claims_of(&token).get("at_hash").is_none());
}

#[tokio::test]
async fn a_backchannel_logout_uri_must_be_https_or_loopback() {
    let server = TestServer::start().await;
    for bad in [
        "http://rp.example/logout",
        "https://rp.example/logout#frag",
        "not a url",
    ] {
        let result = server
            .latchkey
            .applications
            .register_application(
                &Actor::system(),
                NewApplication {
                    display_name: "Bad".into(),
                    redirect_uris: vec!["http://localhost:9/callback".into()],
                    post_logout_redirect_uris: vec![],
                    public_client: false,
                    id_token_signing_alg: None,
                    home_url: None,
                    required_strength: None,
                    backchannel_logout_uri: Some(bad.into()),
                    allowed_origins: vec![],
                    groups_claim: None,
                    assignment_required: false,
                },
            )
            .await;
        assert!(result.is_err(), "{bad} is refused");
    }
    // Through the admin API: set at creation and shown on the application.
    let (status, created) = server
        .api_call(
            reqwest::Method::POST,
            "/applications",
            Some(serde_json::json!({
                "displayName": "Contoso Wiki",
                "redirectUris": ["https://wiki.contoso.example/cb"],
                "backchannelLogoutUri": "https://wiki.contoso.example/backchannel-logout",
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["backchannelLogoutUri"],
        "https://wiki.contoso.example/backchannel-logout"
    );
    let (status, refused) = server
        .api_call(
            reqwest::Method::POST,
            "/applications",
            Some(serde_json::json!({
                "displayName": "Contoso Wiki",
                "redirectUris": ["https://wiki.contoso.example/cb"],
                "backchannelLogoutUri": "http://wiki.contoso.example/backchannel-logout",
            })),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
}
