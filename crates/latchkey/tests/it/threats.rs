//! Each test names the attack or mistake it defends against.

use latchkey_domain::credential::PassRequest;
use latchkey_domain::secret::base64url;
use serde_json::json;

use crate::support::{
    Browser, TestServer, authorize_url, code_for, hidden, manual_clock, pkce, query_param, text_of,
    token_request,
};

#[tokio::test]
async fn redirect_uri_mismatch_shows_an_error_page_and_never_redirects() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let (_, challenge) = pkce();
    let url = authorize_url(&server.base, &client, Some(&challenge), &[])
        .replace("localhost%3A9%2Fcallback", "evil.example%2Fcallback");
    let page = server.browser().get(&url).await;
    assert_eq!(page.status, 400);
    assert!(
        page.location.is_none(),
        "must not redirect to an unregistered address"
    );
    assert!(page.body.contains("does not match"), "{}", page.body);
}

#[tokio::test]
async fn unknown_client_shows_an_error_page_and_never_redirects() {
    let server = TestServer::start().await;
    let url = authorize_url(&server.base, "no-such-client", None, &[]);
    let page = server.browser().get(&url).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
}

#[tokio::test]
async fn open_redirect_through_return_to_is_refused() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let login = browser.get("/login?return_to=https://evil.example/").await;
    let answer = browser
        .sign_in_with_pass(login, "bobby@contoso.example", &pass)
        .await;
    assert_eq!(
        answer.location.as_deref(),
        Some("/myapps"),
        "an outside address is replaced by My Apps"
    );
    let login = server
        .browser()
        .get("/login?return_to=//evil.example/")
        .await;
    assert!(login.body.contains("Sign in"));
}

#[tokio::test]
async fn code_replay_is_refused_and_revokes_the_tokens_it_issued() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("RS256").await;
    let browser = server.browser();
    let (_, code) = server.bobby_signs_in_to(&browser, &client, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:9/callback"),
    ];
    let (status, first) = token_request(&server.base, &form, Some((&client, &secret))).await;
    assert_eq!(status, 200, "{first}");
    let (status, replay) = token_request(&server.base, &form, Some((&client, &secret))).await;
    assert_eq!(status, 400);
    assert_eq!(replay["error"], "invalid_grant");
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        userinfo.status(),
        401,
        "the access token from the replayed code is revoked"
    );
    let refresh = first["refresh_token"].as_str().unwrap();
    let (status, _) = token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(
        status, 400,
        "the refresh token from the replayed code is revoked"
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let (_, challenge) = pkce();
    let (other_verifier, _) = pkce();
    let (_, code) = server
        .bobby_signs_in_to(&server.browser(), &client, Some(&challenge))
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:9/callback"),
        ("client_id", client.as_str()),
        ("code_verifier", other_verifier.as_str()),
    ];
    let (status, body) = token_request(&server.base, &form, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn missing_pkce_on_a_public_client_is_refused() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let page = server
        .browser()
        .get(&authorize_url(&server.base, &client, None, &[]))
        .await;
    let location = page
        .location
        .expect("an error redirect to the registered address");
    assert!(location.starts_with("http://localhost:9/callback"));
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
}

#[tokio::test]
async fn code_exchange_with_another_redirect_uri_is_refused() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let (_, code) = server
        .bobby_signs_in_to(&server.browser(), &client, None)
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:9/other"),
    ];
    let (status, body) = token_request(&server.base, &form, Some((&client, &secret))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn wrong_client_secret_is_refused_with_401() {
    let server = TestServer::start().await;
    let (client, _) = server.confidential_app("RS256").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("redirect_uri", "http://localhost:9/callback"),
    ];
    let (status, body) =
        token_request(&server.base, &form, Some((&client, "not-the-secret"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let post = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("client_id", client.as_str()),
        ("client_secret", "nope"),
    ];
    let (status, _) = token_request(&server.base, &post, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_whole_family() {
    let server = TestServer::start().await;
    let (client, secret) = server.confidential_app("ES256").await;
    let (_, code) = server
        .bobby_signs_in_to(&server.browser(), &client, None)
        .await;
    let (_, tokens) = server.redeem_code(&client, &secret, &code).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, rotated) = token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(status, 200);
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(status, 400, "a spent refresh token is refused");
    let (status, _) = token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &second)],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(status, 400, "and its whole family is revoked");
}

#[tokio::test]
async fn forged_id_token_hints_are_rejected_at_logout() {
    let server = TestServer::start().await;
    let kid = {
        let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"][0]["kid"].as_str().unwrap().to_string()
    };
    let claims = base64url(
        json!({"iss": server.base, "sub": "x", "aud": "myapps"})
            .to_string()
            .as_bytes(),
    );
    let unsigned = format!(
        "{}.{claims}.",
        base64url(json!({"alg": "none", "kid": kid}).to_string().as_bytes())
    );
    let foreign_key = latchkey_domain::keys::SigningKey::generate(
        latchkey_domain::application::SigningAlg::ES256,
        server.latchkey.now(),
    )
    .unwrap();
    let mut foreign_key = foreign_key;
    foreign_key.kid = latchkey_domain::ids::KeyId::from_string(kid);
    let wrong_key = foreign_key
        .signer()
        .unwrap()
        .sign_jwt(&json!({"iss": server.base, "sub": "x", "aud": "myapps"}))
        .unwrap();
    for (threat, hint) in [("alg=none", unsigned), ("wrong key", wrong_key)] {
        let mut url = url::Url::parse(&format!("{}/logout", server.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("id_token_hint", &hint)
            .append_pair(
                "post_logout_redirect_uri",
                &format!("{}/myapps/signed-out", server.base),
            );
        let page = server.browser().get(url.as_str()).await;
        assert_eq!(page.status, 400, "{threat}: {}", page.body);
        assert!(page.location.is_none(), "{threat} must not redirect");
    }
}

#[tokio::test]
async fn logout_without_a_hint_asks_the_user_to_confirm() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    browser
        .sign_in_at(
            "/login?return_to=/mysecurityinfo",
            "bobby@contoso.example",
            &pass,
        )
        .await;
    let confirm = browser.get("/logout").await;
    assert_eq!(confirm.status, 200);
    assert_eq!(
        browser.get("/mysecurityinfo").await.status,
        200,
        "a GET alone does not sign out (logout CSRF)"
    );
    let missing_csrf = browser.post("/logout", &[("csrf", "")]).await;
    assert_eq!(missing_csrf.status, 403);
    let done = browser.post("/logout", &[("csrf", &confirm.csrf())]).await;
    assert!(done.body.contains("signed out"));
    assert_eq!(browser.get("/mysecurityinfo").await.status, 303);
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let login = browser.get("/login").await;
    let missing = browser
        .post("/login/username", &[("username", "bobby@contoso.example")])
        .await;
    assert_eq!(
        missing.status, 422,
        "a form without the csrf field is unreadable"
    );
    let wrong = browser
        .post(
            "/login/username",
            &[("csrf", "forged"), ("username", "bobby@contoso.example")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let page = browser.get("/login").await;
    assert!(
        page.body.contains("User name"),
        "still at the user-name step"
    );
    // Another browser's token does not work here either.
    let other = server.browser().get("/login").await;
    let cross = browser
        .post(
            "/login/username",
            &[
                ("csrf", &other.csrf()),
                ("username", "bobby@contoso.example"),
            ],
        )
        .await;
    assert_eq!(cross.status, 403);
    let ok = browser
        .sign_in_with_pass(login, "bobby@contoso.example", &pass)
        .await;
    assert_eq!(ok.status, 303);
}

#[tokio::test]
async fn wrong_pass_is_refused_and_does_not_reveal_whether_the_user_exists() {
    let server = TestServer::start().await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    server.pass(&bobby).await;
    let known = server.browser();
    let answer = known
        .sign_in_at("/login", "bobby@contoso.example", "WRONGpass")
        .await;
    let unknown = server.browser();
    let answer_unknown = unknown
        .sign_in_at("/login", "nobody@contoso.example", "WRONGpass")
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer_unknown.status, 401);
    let strip = |body: &str, upn: &str| {
        body.replace(upn, "UPN")
            .replace(&hidden(body, "csrf").unwrap(), "CSRF")
    };
    assert_eq!(
        strip(&answer.body, "bobby@contoso.example"),
        strip(&answer_unknown.body, "nobody@contoso.example")
    );
    assert!(
        answer.body.contains("isn&#39;t right") || answer.body.contains("isn't right"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn too_many_wrong_passes_end_the_sign_in() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let mut page = browser.get("/login").await;
    let username = browser
        .post(
            "/login/username",
            &[
                ("csrf", &page.csrf()),
                ("username", "bobby@contoso.example"),
            ],
        )
        .await;
    page = browser.follow(username).await;
    for _ in 0..4 {
        page = browser
            .post(
                "/login/credential",
                &[
                    ("csrf", &page.csrf()),
                    ("method", "pass"),
                    ("secret", "guess1234"),
                ],
            )
            .await;
        assert_eq!(page.status, 401);
    }
    let last = browser
        .post(
            "/login/credential",
            &[
                ("csrf", &page.csrf()),
                ("method", "pass"),
                ("secret", "guess1234"),
            ],
        )
        .await;
    assert_eq!(last.status, 400);
    assert!(last.body.contains("Start"), "{}", last.body);
    let after = browser
        .post(
            "/login/credential",
            &[
                ("csrf", &page.csrf()),
                ("method", "pass"),
                ("secret", &pass),
            ],
        )
        .await;
    assert_eq!(
        after.status, 400,
        "the right pass no longer works in the ended sign-in"
    );
}

#[tokio::test]
async fn expired_and_not_yet_valid_passes_get_clear_messages() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    let start = server.latchkey.now().0 + 3600;
    let later = server
        .pass_with(
            &bobby,
            PassRequest {
                start_date_time: Some(start),
                ..Default::default()
            },
        )
        .await;
    let browser = server.browser();
    let answer = browser
        .sign_in_at("/login", "bobby@contoso.example", &later)
        .await;
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("valid yet"), "{}", answer.body);

    // An expired pass: time moves past its start and its whole lifetime.
    let pass = server
        .latchkey
        .directory
        .pass_for_user(&bobby)
        .await
        .unwrap()
        .unwrap();
    clock.advance(3600 + i64::from(pass.lifetime_minutes) * 60);
    let browser = server.browser();
    let answer = browser
        .sign_in_at("/login", "bobby@contoso.example", &later)
        .await;
    assert!(answer.body.contains("expired"), "{}", answer.body);
}

#[tokio::test]
async fn a_one_time_pass_works_once() {
    let server = TestServer::start().await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    let pass = server
        .pass_with(
            &bobby,
            PassRequest {
                is_usable_once: Some(true),
                ..Default::default()
            },
        )
        .await;
    let first = server.browser();
    let ok = first
        .sign_in_at("/login", "bobby@contoso.example", &pass)
        .await;
    assert_eq!(ok.status, 303);
    let second = server.browser();
    let again = second
        .sign_in_at("/login", "bobby@contoso.example", &pass)
        .await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("one use only"), "{}", again.body);
}

#[tokio::test]
async fn a_new_pass_replaces_the_old_one() {
    let server = TestServer::start().await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    let old = server.pass(&bobby).await;
    let new = server.pass(&bobby).await;
    let browser = server.browser();
    assert_eq!(
        browser
            .sign_in_at("/login", "bobby@contoso.example", &old)
            .await
            .status,
        401
    );
    let browser = server.browser();
    assert_eq!(
        browser
            .sign_in_at("/login", "bobby@contoso.example", &new)
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn disabling_a_user_ends_sessions_and_refresh_tokens_and_blocks_sign_in() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    let (client, secret) = server.confidential_app("RS256").await;
    let browser = server.browser();
    let code = code_for(
        &browser,
        &authorize_url(&server.base, &client, None, &[]),
        "bobby@contoso.example",
        &pass,
    )
    .await;
    let (_, tokens) = server.redeem_code(&client, &secret, &code).await;
    server.disable_user(&bobby).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        Some((&client, &secret)),
    )
    .await;
    assert_eq!(status, 400, "refresh tokens of a disabled user fail");
    assert_eq!(
        browser.get("/mysecurityinfo").await.status,
        303,
        "the session ended"
    );
    let fresh = server.browser();
    let answer = fresh
        .sign_in_at("/login", "bobby@contoso.example", &pass)
        .await;
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("disabled"), "{}", answer.body);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let server = TestServer::start().await;
    let big = "a".repeat(70 * 1024);
    let response = reqwest::Client::new()
        .post(format!("{}/token", server.base))
        .form(&[("grant_type", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/users", server.base))
        .bearer_auth(&server.admin_token)
        .header("content-type", "application/json")
        .body(format!("{{\"displayName\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn out_of_order_sign_in_steps_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let login = browser.get("/login").await;
    let early = browser
        .post(
            "/login/credential",
            &[
                ("csrf", &login.csrf()),
                ("method", "pass"),
                ("secret", "abcdefgh"),
            ],
        )
        .await;
    assert_eq!(
        early.location.as_deref(),
        Some("/login"),
        "a credential before the user name goes back to the start"
    );
    let fresh = server.browser();
    let page = fresh.get("/healthz").await;
    assert_eq!(page.status, 200);
    let no_sign_in = fresh
        .post(
            "/login/username",
            &[("csrf", "x"), ("username", "bobby@contoso.example")],
        )
        .await;
    assert_eq!(
        no_sign_in.status, 403,
        "no CSRF cookie, no sign-in: refused"
    );
}

#[tokio::test]
async fn malformed_token_requests_get_oauth_errors() {
    let server = TestServer::start().await;
    let (status, body) = token_request(&server.base, &[("grant_type", "password")], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = token_request(&server.base, &[("code", "x")], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let response = reqwest::Client::new()
        .post(format!("{}/token", server.base))
        .body("{}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("www-authenticate").is_some());
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let (_, challenge) = pkce();
    let page = server
        .browser()
        .get(&authorize_url(
            &server.base,
            &client,
            Some(&challenge),
            &[("prompt", "none")],
        ))
        .await;
    let location = page.location.unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn session_cookies_are_http_only_and_same_site_lax() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .get(format!("{}/login", server.base))
        .send()
        .await
        .unwrap();
    let body = login.text().await.unwrap();
    let csrf = hidden(&body, "csrf").unwrap();
    http.post(format!("{}/login/username", server.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "bobby@contoso.example"),
        ])
        .send()
        .await
        .unwrap();
    let page = text_of(http.get(format!("{}/login", server.base))).await;
    let csrf = hidden(&page, "csrf").unwrap();
    let answer = http
        .post(format!("{}/login/credential", server.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("method", "pass"),
            ("secret", pass.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lk_session="))
        .expect("a session cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "no TLS in this test, so no Secure flag: {cookie}"
    );
}

#[tokio::test]
async fn another_users_id_token_as_hint_does_not_sign_this_browser_out_silently() {
    let server = TestServer::start().await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    let guy = server.user("guy", "Guy Oz").await;
    let (bobby_pass, guy_pass) = (server.pass(&bobby).await, server.pass(&guy).await);
    let (client, secret) = server.confidential_app("ES256").await;
    // The attacker (Guy) gets an ID token of his own.
    let attacker = server.browser();
    let code = code_for(
        &attacker,
        &authorize_url(&server.base, &client, None, &[]),
        "guy@contoso.example",
        &guy_pass,
    )
    .await;
    let (_, tokens) = server.redeem_code(&client, &secret, &code).await;
    let hint = tokens["id_token"].as_str().unwrap();
    // The victim (Bobby) is signed in and follows the attacker's logout link.
    let victim = server.browser();
    victim
        .sign_in_at(
            "/login?return_to=/mysecurityinfo",
            "bobby@contoso.example",
            &bobby_pass,
        )
        .await;
    let mut url = url::Url::parse(&format!("{}/logout", server.base)).unwrap();
    url.query_pairs_mut().append_pair("id_token_hint", hint);
    let page = victim.get(url.as_str()).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Sign out?"),
        "the victim is asked to confirm: {}",
        page.body
    );
    assert_eq!(
        victim.get("/mysecurityinfo").await.status,
        200,
        "still signed in"
    );
}

#[tokio::test]
async fn an_over_long_state_is_refused_rather_than_echoed() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let (_, challenge) = pkce();
    let long = "s".repeat(3000);
    let page = server
        .browser()
        .get(
            &authorize_url(&server.base, &client, Some(&challenge), &[])
                .replace("state=st4te", &format!("state={long}")),
        )
        .await;
    let location = page.location.expect("an error redirect");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state"), None);
}

/// The authorization endpoint shows a new sign-in's first page itself. A cached copy would
/// carry a form token of a sign-in the browser no longer holds, so it is never cached; the
/// page names `/login` as its address, where the same sign-in goes on.
#[tokio::test]
async fn authorize_shows_the_sign_in_page_uncached_and_login_goes_on_with_the_same_sign_in() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let (_, challenge) = pkce();
    let browser = server.browser();
    let url = authorize_url(&server.base, &client, Some(&challenge), &[]);
    let response = browser.http.get(&url).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let shown = Browser::page(response).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.location, None);
    assert!(shown.body.contains("User name"), "{}", shown.body);
    assert!(
        shown
            .body
            .contains(r#"<meta name="latchkey-page" content="/login">"#),
        "{}",
        shown.body
    );
    // At /login (where the page's script puts the address bar) it is the same sign-in.
    let reloaded = browser.get("/login").await;
    assert_eq!(reloaded.csrf(), shown.csrf(), "the same sign-in");
    // And its form goes on from the page the endpoint showed.
    let next = browser
        .post(
            "/login/username",
            &[
                ("csrf", &shown.csrf()),
                ("username", "nobody@contoso.example"),
            ],
        )
        .await;
    assert_eq!(next.location.as_deref(), Some("/login"), "{}", next.body);
}

#[tokio::test]
async fn authorize_accepts_form_post_as_well_as_get() {
    let server = TestServer::start().await;
    let client = server.public_app().await;
    let (_, challenge) = pkce();
    let url = authorize_url(&server.base, &client, Some(&challenge), &[]);
    let query = url::Url::parse(&url).unwrap().query().unwrap().to_string();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/authorize", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("User name"));
}

#[tokio::test]
async fn userinfo_without_a_token_gets_a_bare_bearer_challenge() {
    let server = TestServer::start().await;
    let response = reqwest::get(format!("{}/userinfo", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn the_admin_console_is_only_for_administrators() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let person = |name: &str| people.iter().find(|p| p.user.display_name == name).unwrap();
    let bobby = server.browser();
    let login = bobby.get("/login?return_to=/admin").await;
    let answer = bobby
        .sign_in_with_pass(
            login,
            "bobby@latchkey.test",
            person("Bobby Smith").pass.expose(),
        )
        .await;
    let page = bobby.follow(answer).await;
    assert_eq!(page.status, 403, "Bobby is not an administrator");
    let admin = server.browser();
    let answer = admin
        .sign_in_at(
            "/login?return_to=/admin",
            "admin@latchkey.test",
            person("Avery Admin").pass.expose(),
        )
        .await;
    let page = admin.follow(answer).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("guy@latchkey.test") && page.body.contains("Passwordless Pilot"),
        "{}",
        page.body
    );
}
