//! Browser applications (CORS), a refresh that narrows the scope, and signing-key rotation
//! that no client notices.

use std::collections::HashMap;

use latchkey_domain::log::Actor;
use latchkey_domain::service::{
    JWKS_MAX_AGE_SECONDS, KEY_PUBLICATION_LEAD_SECONDS, NewApplication,
};
use serde_json::Value;

use crate::support::{TestServer, authorize_url, code_for, manual_clock, pkce, token_request};

/// The origin of the support apps' redirect URI (`http://localhost:9/callback`).
const APP_ORIGIN: &str = "http://localhost:9";

async fn register(server: &TestServer, redirect: &str, allowed: &[&str]) -> String {
    let (app, _) = server
        .latchkey
        .applications
        .register_application(
            &Actor::system(),
            NewApplication {
                display_name: "Fabrikam SPA".into(),
                redirect_uris: vec![redirect.into()],
                post_logout_redirect_uris: vec![],
                public_client: true,
                id_token_signing_alg: Some("ES256".into()),
                home_url: None,
                required_strength: None,
                allowed_origins: allowed.iter().map(|o| o.to_string()).collect(),
                groups_claim: None,
                assignment_required: false,
                backchannel_logout_uri: None,
            },
        )
        .await
        .expect("register app");
    app.client_id.to_string()
}

async fn preflight(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight")
}

async fn get_from(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .header("Origin", origin)
        .send()
        .await
        .expect("get")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A public client's tokens, with a Temporary Access Pass through the real pages.
async fn public_tokens(server: &TestServer) -> (String, Value) {
    let client = server.public_app().await;
    let (verifier, challenge) = pkce();
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let authorize = authorize_url(&server.base, &client, Some(&challenge), &[]);
    let code = code_for(&browser, &authorize, "bobby@contoso.example", &pass).await;
    let (status, body) = token_request(
        &server.base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9/callback"),
            ("code_verifier", &verifier),
            ("client_id", &client),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (client, body)
}

async fn refresh(
    server: &TestServer,
    client: &str,
    token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    token_request(&server.base, &form, None).await
}

async fn userinfo(server: &TestServer, access: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_registered_apps_origin_gets_cors_on_discovery_jwks_token_userinfo_and_revocation() {
    let server = TestServer::start().await;
    server.public_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/jwks",
        "/token",
        "/userinfo",
        "/revoke",
    ] {
        let answer = preflight(&server, path, APP_ORIGIN).await;
        assert_eq!(answer.status(), 204, "{path}");
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            Some(APP_ORIGIN)
        );
        assert_eq!(
            header(&answer, "access-control-allow-methods"),
            Some("GET, POST")
        );
        assert_eq!(
            header(&answer, "access-control-allow-headers"),
            Some("Authorization, Content-Type")
        );
        assert_eq!(header(&answer, "access-control-max-age"), Some("600"));
        assert_eq!(header(&answer, "access-control-allow-credentials"), None);
        assert_eq!(header(&answer, "vary"), Some("Origin"));
    }
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        let answer = get_from(&server, path, APP_ORIGIN).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            Some(APP_ORIGIN)
        );
        assert_eq!(header(&answer, "access-control-allow-credentials"), None);
        assert!(
            answer
                .headers()
                .get_all("vary")
                .iter()
                .any(|v| v == "Origin")
        );
    }
    // An explicitly allowed origin counts as well.
    register(
        &server,
        "https://spa.fabrikam.example/cb",
        &["http://127.0.0.1:7"],
    )
    .await;
    let answer = get_from(&server, "/jwks", "http://127.0.0.1:7").await;
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some("http://127.0.0.1:7")
    );
    let answer = get_from(&server, "/jwks", "https://spa.fabrikam.example").await;
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some("https://spa.fabrikam.example")
    );
}

#[tokio::test]
async fn an_unknown_origin_gets_no_cors_headers() {
    let server = TestServer::start().await;
    server.public_app().await;
    for origin in [
        "https://evil.example",
        "http://localhost:9.evil.example",
        "http://localhost:90",
        "null",
        "*",
        &"x".repeat(600),
    ] {
        let answer = preflight(&server, "/token", origin).await;
        assert_eq!(answer.status(), 403, "{origin}");
        assert_eq!(header(&answer, "access-control-allow-origin"), None);
        assert_eq!(header(&answer, "access-control-allow-methods"), None);
        let answer = get_from(&server, "/.well-known/openid-configuration", origin).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
    // Routes that are not for browser apps never get CORS, even from a known origin.
    let answer = get_from(&server, "/login", APP_ORIGIN).await;
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_follows_an_application_being_added_and_removed() {
    let server = TestServer::start().await;
    let origin = "https://spa.northwind.example";
    assert_eq!(
        header(
            &get_from(&server, "/jwks", origin).await,
            "access-control-allow-origin"
        ),
        None
    );
    let client = register(&server, "https://spa.northwind.example/cb", &[]).await;
    assert_eq!(
        header(
            &get_from(&server, "/jwks", origin).await,
            "access-control-allow-origin"
        ),
        Some(origin)
    );
    server
        .latchkey
        .applications
        .delete_application(
            &Actor::system(),
            &latchkey_domain::ids::ClientId::from_string(client),
        )
        .await
        .unwrap();
    assert_eq!(
        header(
            &get_from(&server, "/jwks", origin).await,
            "access-control-allow-origin"
        ),
        None
    );
}

#[tokio::test]
async fn another_registered_apps_page_cannot_spend_this_clients_code() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    register(&server, "http://localhost:8/cb", &[]).await;
    let (verifier, challenge) = pkce();
    let (_, pass) = server.bobby_with_pass().await;
    let authorize = authorize_url(&server.base, &client, Some(&challenge), &[]);
    let code = code_for(
        &server.browser(),
        &authorize,
        "bobby@contoso.example",
        &pass,
    )
    .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:9/callback"),
        ("code_verifier", verifier.as_str()),
        ("client_id", client.as_str()),
    ];
    let post = |origin: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/token", server.base))
            .header("Origin", origin)
            .form(&form)
            .send()
    };
    let stolen = post("http://localhost:8").await.unwrap();
    assert_eq!(stolen.status(), 400);
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    // Nothing was spent: the app's own page redeems the code, and can read the answer.
    let own = post(APP_ORIGIN).await.unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(
        header(&own, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    let tokens: Value = own.json().await.unwrap();
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_and_userinfo_follows() {
    let server = TestServer::start().await;
    let (client, tokens) = public_tokens(&server).await;
    assert_eq!(tokens["scope"], "openid profile email offline_access");
    assert_eq!(
        userinfo(&server, tokens["access_token"].as_str().unwrap()).await["email"],
        "bobby@contoso.example"
    );
    let (status, narrow) = refresh(
        &server,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        Some("openid profile"),
    )
    .await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "openid profile");
    let claims = userinfo(&server, narrow["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["name"], "Bobby Smith");
    assert!(claims.get("email").is_none(), "{claims}");
    // The new refresh token keeps the whole grant.
    let (status, full) = refresh(
        &server,
        &client,
        narrow["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["scope"], "openid profile email offline_access");
    assert_eq!(
        userinfo(&server, full["access_token"].as_str().unwrap()).await["email"],
        "bobby@contoso.example"
    );
}

#[tokio::test]
async fn a_refresh_cannot_widen_the_scope_and_spends_nothing_trying() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let (verifier, challenge) = pkce();
    let (_, pass) = server.bobby_with_pass().await;
    let authorize = authorize_url(
        &server.base,
        &client,
        Some(&challenge),
        &[("scope", "openid profile offline_access")],
    );
    // `extra` appends a second scope; build the narrower request explicitly instead.
    let authorize = authorize.replace("scope=openid+profile+email+offline_access&", "");
    let code = code_for(
        &server.browser(),
        &authorize,
        "bobby@contoso.example",
        &pass,
    )
    .await;
    let (status, tokens) = token_request(
        &server.base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9/callback"),
            ("code_verifier", &verifier),
            ("client_id", &client),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid profile offline_access");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    for (scope, why) in [
        ("openid profile email", "a scope never granted"),
        ("profile", "openid dropped"),
        (&*"openid ".repeat(300), "oversized"),
    ] {
        let (status, body) = refresh(&server, &client, refresh_token, Some(scope)).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"], "invalid_scope", "{why}");
    }
    // The refresh token was not spent by the refused attempts (no family revocation).
    let (status, body) = refresh(
        &server,
        &client,
        refresh_token,
        Some("openid offline_access"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid offline_access");
}

/// A relying party that caches the JWKS as libraries do: it honours max-age and does not
/// refetch on an unknown kid (the strict case).
struct StrictJwksCache {
    fetched_at: i64,
    max_age: i64,
    kids: Vec<String>,
}

impl StrictJwksCache {
    async fn kids_at(&mut self, server: &TestServer, now: i64) -> &[String] {
        if self.kids.is_empty() || now - self.fetched_at >= self.max_age {
            let response = reqwest::get(format!("{}/jwks", server.base)).await.unwrap();
            let cache = header(&response, "cache-control")
                .unwrap_or_default()
                .to_string();
            self.max_age = cache
                .split("max-age=")
                .nth(1)
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
                .expect("a max-age");
            let jwks: Value = response.json().await.unwrap();
            self.kids = kid_list(&jwks);
            self.fetched_at = now;
        }
        &self.kids
    }
}

fn kid_list(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn kid_of(id_token: &str) -> String {
    let header = id_token.split('.').next().unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_client_caching_the_jwks_strictly_never_meets_an_unknown_kid_across_a_rotation() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let (client, tokens) = public_tokens(&server).await;
    let mut cache = StrictJwksCache {
        fetched_at: 0,
        max_age: 0,
        kids: Vec::new(),
    };
    let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    let mut kids_seen = HashMap::new();
    let mut now = 0;
    let mut rotated = false;
    // Refresh every 5 seconds for longer than the lead and two JWKS lifetimes, rotating
    // after 20 seconds (the client's JWKS is then fresh: the worst case).
    while now < KEY_PUBLICATION_LEAD_SECONDS + 3 * JWKS_MAX_AGE_SECONDS {
        if now >= 20 && !rotated {
            server
                .latchkey
                .tokens
                .rotate_signing_keys(&Actor::system())
                .await
                .unwrap();
            rotated = true;
        }
        let (status, body) = refresh(&server, &client, &refresh_token, None).await;
        assert_eq!(status, 200, "refresh at +{now}s: {body}");
        let kid = kid_of(body["id_token"].as_str().unwrap());
        let known = cache.kids_at(&server, now).await;
        assert!(
            known.contains(&kid),
            "at +{now}s the ID token's kid {kid} is not in the client's cached JWKS {known:?}"
        );
        *kids_seen.entry(kid).or_insert(0) += 1;
        refresh_token = body["refresh_token"].as_str().unwrap().to_string();
        clock.advance(5);
        now += 5;
    }
    assert_eq!(kids_seen.len(), 2, "the new key took over: {kids_seen:?}");
}

#[tokio::test]
async fn a_retired_key_stays_published_until_its_tokens_expire_and_disappears_after() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let (client, tokens) = public_tokens(&server).await;
    let old_kid = kid_of(tokens["id_token"].as_str().unwrap());
    let jwks = || async {
        kid_list(
            &reqwest::get(format!("{}/jwks", server.base))
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap(),
        )
    };
    server
        .latchkey
        .tokens
        .rotate_signing_keys(&Actor::system())
        .await
        .unwrap();
    // The old key signs until the handover, then stays published for an ID token's lifetime.
    clock.advance(KEY_PUBLICATION_LEAD_SECONDS - 1);
    let (status, before_handover) = refresh(
        &server,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{before_handover}");
    assert_eq!(
        kid_of(before_handover["id_token"].as_str().unwrap()),
        old_kid
    );
    clock.advance(1);
    let (status, after_handover) = refresh(
        &server,
        &client,
        before_handover["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{after_handover}");
    assert_ne!(
        kid_of(after_handover["id_token"].as_str().unwrap()),
        old_kid
    );
    // Every instance reloads its keyring within 30 s; step past that each time.
    clock.advance(3600 - 31);
    assert!(
        jwks().await.contains(&old_kid),
        "a token signed just before the handover is still valid"
    );
    clock.advance(31 + 31);
    let published = jwks().await;
    assert!(
        !published.contains(&old_kid),
        "a retired key whose tokens have all expired is withdrawn"
    );
    assert_eq!(published.len(), 2, "{published:?}");
}

#[tokio::test]
async fn scheduled_rotation_rotates_once_however_many_instances_ask() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let tokens = &server.latchkey.tokens;
    assert!(
        tokens
            .rotate_signing_keys_if_due(86_400)
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
    clock.advance(86_400);
    let (a, b, c) = tokio::join!(
        tokens.rotate_signing_keys_if_due(86_400),
        tokens.rotate_signing_keys_if_due(86_400),
        tokens.rotate_signing_keys_if_due(86_400)
    );
    let rotations = [a.unwrap(), b.unwrap(), c.unwrap()]
        .into_iter()
        .flatten()
        .count();
    assert_eq!(rotations, 1);
    // The new keys are published at once, and the next rotation is a period after they start.
    assert_eq!(
        kid_list(
            &reqwest::get(format!("{}/jwks", server.base))
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        )
        .len(),
        4
    );
    clock.advance(86_400);
    assert!(
        tokens
            .rotate_signing_keys_if_due(86_400)
            .await
            .unwrap()
            .is_none()
    );
    clock.advance(KEY_PUBLICATION_LEAD_SECONDS);
    assert!(
        tokens
            .rotate_signing_keys_if_due(86_400)
            .await
            .unwrap()
            .is_some()
    );
}
