//! Token revocation (RFC 7009) and introspection (RFC 7662), as a client sees them.
//!
//! Introspection is driven through the `openidconnect` crate. Its `revoke_token` refuses any
//! revocation endpoint that is not https (RFC 7009 §2), and the test server speaks plain http on
//! loopback, so revocation is driven with raw form posts.

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessToken, ClientId, ClientSecret, IntrospectionUrl, IssuerUrl, TokenIntrospectionResponse,
};
use serde_json::Value;

use crate::support::{
    Browser, TestServer, authorize_url, manual_clock, query_param, token_request, userinfo_status,
};

/// The token endpoint's answer for Bobby signing in to the confidential app `client`.
async fn tokens_for(server: &TestServer, browser: &Browser, client: &str, secret: &str) -> Value {
    let (_, code) = server.bobby_signs_in_to(browser, client, None).await;
    let (status, tokens) = server.redeem_code(client, secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// The token endpoint's answer for a second sign-in to `client` in a browser already signed in.
async fn tokens_again(server: &TestServer, browser: &Browser, client: &str, secret: &str) -> Value {
    let answer = browser
        .get(&authorize_url(&server.base, client, None, &[]))
        .await;
    let location = answer.location.expect("straight back to the application");
    let code = query_param(&location, "code").expect("code");
    let (status, tokens) = server.redeem_code(client, secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn field(tokens: &Value, name: &str) -> String {
    tokens[name].as_str().expect(name).to_string()
}

/// POSTs `form` to `path` with Basic credentials when given; returns the status, the
/// Cache-Control header and the body.
async fn post(
    server: &TestServer,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, String, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, cache, response.text().await.unwrap_or_default())
}

async fn introspect(server: &TestServer, token: &str, client: (&str, &str)) -> Value {
    let (status, cache, body) =
        post(server, "/introspect", &[("token", token)], Some(client)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache, "no-store");
    serde_json::from_str(&body).expect("json")
}

async fn refresh(server: &TestServer, client: (&str, &str), token: &str) -> (u16, Value) {
    token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        Some(client),
    )
    .await
}

#[tokio::test]
async fn oidc_discovery_lists_revocation_and_introspection() {
    let server = TestServer::start().await;
    let discovery: Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        discovery["revocation_endpoint"],
        format!("{}/revoke", server.base)
    );
    assert_eq!(
        discovery["introspection_endpoint"],
        format!("{}/introspect", server.base)
    );
    assert_eq!(
        discovery["revocation_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        discovery["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);
}

#[tokio::test]
async fn oidc_introspection_through_openidconnect_describes_a_live_access_token() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let tokens = tokens_for(&server, &browser, &client, &secret).await;
    let access = field(&tokens, "access_token");

    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.base.clone()).unwrap(),
        &crate::oidc_flow::http,
    )
    .await
    .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.clone()),
        Some(ClientSecret::new(secret.clone())),
    )
    .set_introspection_url(IntrospectionUrl::new(format!("{}/introspect", server.base)).unwrap());
    let answer = rp
        .introspect(&AccessToken::new(access.clone()))
        .request_async(&crate::oidc_flow::http)
        .await
        .expect("introspection");
    assert!(answer.active());
    assert_eq!(
        answer.client_id().map(|c| c.as_str()),
        Some(client.as_str())
    );
    let scopes: Vec<String> = answer
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(scopes, ["openid", "profile", "email", "offline_access"]);
    assert_eq!(answer.iss(), Some(server.base.as_str()));
    assert_eq!(answer.aud(), Some(&vec![client.clone()]));
    assert!(answer.exp().unwrap() > answer.iat().unwrap());

    // The raw answer carries the subject the ID token names and the token type.
    let raw = introspect(&server, &access, (&client, &secret)).await;
    let userinfo: Value = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["sub"], userinfo["sub"]);
    assert_eq!(raw["token_type"], "Bearer");
}

#[tokio::test]
async fn a_revoked_access_token_is_inactive_and_refused_at_userinfo_but_its_refresh_token_lives() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("RS256").await;
    let browser = server.browser();
    let tokens = tokens_for(&server, &browser, &client, &secret).await;
    let access = field(&tokens, "access_token");
    let auth = (client.as_str(), secret.as_str());
    assert_eq!(userinfo_status(&server.base, &access).await, 200);

    let (status, cache, body) = post(
        &server,
        "/revoke",
        &[("token", &access), ("token_type_hint", "access_token")],
        Some(auth),
    )
    .await;
    assert_eq!(
        (status, cache.as_str(), body.as_str()),
        (200, "no-store", "")
    );
    assert_eq!(
        introspect(&server, &access, auth).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(userinfo_status(&server.base, &access).await, 401);
    let (status, _) = refresh(&server, auth, &field(&tokens, "refresh_token")).await;
    assert_eq!(
        status, 200,
        "revoking an access token leaves the client's refresh token"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_whole_family() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let tokens = tokens_for(&server, &browser, &client, &secret).await;
    let auth = (client.as_str(), secret.as_str());
    // A rotation first: the family has two access tokens and a spent refresh token.
    let (status, rotated) = refresh(&server, auth, &field(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{rotated}");

    // The form-post client authentication works as at the token endpoint.
    let (status, _, _) = post(
        &server,
        "/revoke",
        &[
            ("token", &field(&rotated, "refresh_token")),
            ("token_type_hint", "refresh_token"),
            ("client_id", &client),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200);
    for access in [
        field(&tokens, "access_token"),
        field(&rotated, "access_token"),
    ] {
        assert_eq!(introspect(&server, &access, auth).await["active"], false);
        assert_eq!(userinfo_status(&server.base, &access).await, 401);
    }
    let (status, answer) = refresh(&server, auth, &field(&rotated, "refresh_token")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_client_cannot_revoke_or_read_another_clients_tokens() {
    let server = TestServer::start().await;
    let (victim, victim_secret) = server.confidential_app("ES256").await;
    let (thief, thief_secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let tokens = tokens_for(&server, &browser, &victim, &victim_secret).await;
    let access = field(&tokens, "access_token");
    let refresh_token = field(&tokens, "refresh_token");
    let thief_auth = (thief.as_str(), thief_secret.as_str());

    assert_eq!(
        introspect(&server, &access, thief_auth).await,
        serde_json::json!({"active": false}),
        "another client's token looks like an unknown one"
    );
    for token in [&access, &refresh_token] {
        let (status, _, body) =
            post(&server, "/revoke", &[("token", token)], Some(thief_auth)).await;
        assert_eq!(
            (status, body.as_str()),
            (200, ""),
            "indistinguishable from unknown"
        );
    }
    assert_eq!(userinfo_status(&server.base, &access).await, 200);
    assert_eq!(
        introspect(&server, &access, (&victim, &victim_secret)).await["active"],
        true
    );
    let (status, _) = refresh(&server, (&victim, &victim_secret), &refresh_token).await;
    assert_eq!(status, 200, "the victim's family was not revoked");
}

#[tokio::test]
async fn revocation_and_introspection_refuse_unauthenticated_and_public_clients() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let public = server.public_app().await;
    let browser = server.browser();
    let tokens = tokens_for(&server, &browser, &client, &secret).await;
    let access = field(&tokens, "access_token");

    for path in ["/revoke", "/introspect"] {
        let (status, _, body) = post(&server, path, &[("token", &access)], None).await;
        assert_eq!(status, 401, "{path} without credentials: {body}");
        assert!(body.contains("invalid_client"), "{body}");
        let (status, _, _) = post(
            &server,
            path,
            &[("token", &access)],
            Some((&client, "wrong-secret")),
        )
        .await;
        assert_eq!(status, 401, "{path} with a wrong secret");
        let (status, _, _) = post(
            &server,
            path,
            &[("token", &access), ("client_id", "no-such-client")],
            None,
        )
        .await;
        assert_eq!(status, 401, "{path} for an unknown client");
    }
    let (status, _, body) = post(
        &server,
        "/introspect",
        &[("token", &access), ("client_id", &public)],
        None,
    )
    .await;
    assert_eq!(status, 401, "a public client cannot introspect: {body}");
    // A public client may revoke (its tokens are its own to drop), but not another's.
    let (status, _, _) = post(
        &server,
        "/revoke",
        &[("token", &access), ("client_id", &public)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(userinfo_status(&server.base, &access).await, 200);
}

#[tokio::test]
async fn malformed_oversized_unknown_hinted_and_replayed_revocations_are_harmless() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let tokens = tokens_for(&server, &browser, &client, &secret).await;
    let access = field(&tokens, "access_token");
    let auth = (client.as_str(), secret.as_str());

    // No token, or no form at all.
    for path in ["/revoke", "/introspect"] {
        let (status, _, body) = post(
            &server,
            path,
            &[("token_type_hint", "access_token")],
            Some(auth),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("invalid_request"), "{body}");
        let response = reqwest::Client::new()
            .post(format!("{}{path}", server.base))
            .basic_auth(&client, Some(&secret))
            .header("content-type", "application/json")
            .body(format!("{{\"token\":\"{access}\"}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
    }
    let oversized = "A".repeat(10_000);
    for token in [oversized.as_str(), "not-a-token", "\u{0}\u{1}%%"] {
        let (status, _, _) = post(&server, "/revoke", &[("token", token)], Some(auth)).await;
        assert_eq!(status, 200, "an unknown token is no error (RFC 7009 §2.2)");
        assert_eq!(
            introspect(&server, token, auth).await,
            serde_json::json!({"active": false})
        );
    }
    // A wrong or unknown hint does not stop the search.
    let (status, _, _) = post(
        &server,
        "/revoke",
        &[("token", &access), ("token_type_hint", "refresh_token")],
        Some(auth),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(userinfo_status(&server.base, &access).await, 401);
    let second = tokens_again(&server, &browser, &client, &secret).await;
    let (status, _, _) = post(
        &server,
        "/revoke",
        &[
            ("token", &field(&second, "refresh_token")),
            ("token_type_hint", "id_token"),
        ],
        Some(auth),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        userinfo_status(&server.base, &field(&second, "access_token")).await,
        401
    );
    // A replayed revocation answers as the first did and changes nothing more.
    let (status, _, body) = post(&server, "/revoke", &[("token", &access)], Some(auth)).await;
    assert_eq!((status, body.as_str()), (200, ""));
}

#[tokio::test]
async fn an_expired_access_token_is_inactive() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let tokens = tokens_for(&server, &browser, &client, &secret).await;
    let access = field(&tokens, "access_token");
    let auth = (client.as_str(), secret.as_str());
    assert_eq!(introspect(&server, &access, auth).await["active"], true);
    clock.advance(tokens["expires_in"].as_i64().unwrap());
    assert_eq!(
        introspect(&server, &access, auth).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn a_disabled_users_token_is_inactive() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let (bobby, code) = server.bobby_signs_in_to(&browser, &client, None).await;
    let (_, tokens) = server.redeem_code(&client, &secret, &code).await;
    let access = field(&tokens, "access_token");
    server.disable_user(&bobby).await;
    assert_eq!(
        introspect(&server, &access, (&client, &secret)).await,
        serde_json::json!({"active": false})
    );
}
