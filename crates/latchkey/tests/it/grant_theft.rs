//! Stolen codes and refresh tokens at the token endpoint: whoever presents one without being
//! its client (or without its secret or PKCE verifier) must neither spend it nor make replay
//! detection revoke the real client's grant, which would sign the user out of the application.

use crate::support::{TestServer, pkce, token_request};

const REDIRECT: &str = "http://localhost:9/callback";

/// A second public client, registered by the attacker (any tenant may have one).
async fn attackers_app(server: &TestServer) -> String {
    server.public_app().await
}

/// Signs Bobby in to the public client `client` and redeems the code; returns the tokens.
async fn signed_in_public_client(server: &TestServer, client: &str) -> serde_json::Value {
    let (verifier, challenge) = pkce();
    let (_, code) = server
        .bobby_signs_in_to(&server.browser(), client, Some(&challenge))
        .await;
    let (status, tokens) = token_request(
        &server.base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", client),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn refresh(server: &TestServer, client: &str, token: &str) -> (u16, serde_json::Value) {
    token_request(
        &server.base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn a_leaked_refresh_token_presented_by_another_client_neither_spends_it_nor_signs_the_user_out()
 {
    let server = TestServer::start().await;
    let real = server.public_app().await;
    let attacker = attackers_app(&server).await;
    let tokens = signed_in_public_client(&server, &real).await;
    let leaked = tokens["refresh_token"].as_str().expect("refresh token");

    // Twice: the second would be a "replay" if the first had spent it.
    for _ in 0..2 {
        let (status, body) = refresh(&server, &attacker, leaked).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    let (status, body) = refresh(&server, &real, leaked).await;
    assert_eq!(
        status, 200,
        "the real client still refreshes with its token: {body}"
    );
    let access = body["access_token"].as_str().unwrap();
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200, "the user is still signed in");
}

#[tokio::test]
async fn a_spent_refresh_token_replayed_by_another_client_does_not_revoke_the_real_clients_grant() {
    let server = TestServer::start().await;
    let real = server.public_app().await;
    let attacker = attackers_app(&server).await;
    let tokens = signed_in_public_client(&server, &real).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, rotated) = refresh(&server, &real, &first).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_string();

    // The spent token leaks (from a log, a backup); someone replays it as another client.
    let (status, body) = refresh(&server, &attacker, &first).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    let (status, body) = refresh(&server, &real, &second).await;
    assert_eq!(
        status, 200,
        "the real client's grant was not revoked by a stranger's replay: {body}"
    );
}

#[tokio::test]
async fn a_stolen_code_presented_with_a_wrong_pkce_verifier_or_by_another_client_is_not_spent() {
    let server = TestServer::start().await;
    let real = server.public_app().await;
    let attacker = attackers_app(&server).await;
    let (verifier, challenge) = pkce();
    let (_, code) = server
        .bobby_signs_in_to(&server.browser(), &real, Some(&challenge))
        .await;
    let (wrong_verifier, _) = pkce();
    for (client, verifier) in [
        (real.as_str(), wrong_verifier.as_str()),
        (attacker.as_str(), verifier.as_str()),
        (real.as_str(), ""),
    ] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", client),
        ];
        if !verifier.is_empty() {
            form.push(("code_verifier", verifier));
        }
        let (status, body) = token_request(&server.base, &form, None).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    let (status, body) = token_request(
        &server.base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &real),
        ],
        None,
    )
    .await;
    assert_eq!(
        status, 200,
        "the real client still redeems its code: {body}"
    );
}

#[tokio::test]
async fn a_confidential_clients_refresh_token_presented_without_its_secret_is_not_spent() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("RS256").await;
    let (_, code) = server
        .bobby_signs_in_to(&server.browser(), &client, None)
        .await;
    let (status, tokens) = token_request(
        &server.base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let leaked = tokens["refresh_token"].as_str().unwrap();
    for basic in [Some((client.as_str(), "wrong secret")), None] {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", leaked)];
        if basic.is_none() {
            form.push(("client_id", &client));
        }
        let (status, body) = token_request(&server.base, &form, basic).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
    }
    let (status, body) = token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", leaked)],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
