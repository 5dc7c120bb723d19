//! Browser sessions, cookies and CSRF (issue 13, items 2, 6 and 7): each test reproduces an
//! attack or a rule as the review described it, over HTTP against a real server.

use latchkey_domain::ids::SignInId;
use latchkey_domain::secret::base64url;

use crate::support::{Browser, Page, TestServer, hidden, manual_clock, text_of};

/// The `Set-Cookie` value a response gave cookie `name`, if any.
async fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
        })
}

/// Signs `upn` in to `path` (a page of this server) with a pass; returns the page reached.
async fn sign_in_to(browser: &Browser, path: &str, upn: &str, pass: &str) -> Page {
    let login = browser.follow(browser.get(path).await).await;
    let answer = browser.sign_in_with_pass(login, upn, pass).await;
    browser.follow(answer).await
}

// ----- item 2: a forged My Apps session ---------------------------------------------------

#[tokio::test]
async fn a_forged_my_apps_cookie_made_from_a_csrf_token_is_refused() {
    let server = TestServer::start().await;
    server.confidential_app("ES256").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The review's forgery: a CSRF cookie the client chose, whose token was My Apps' seal.
    let body = base64url(br#"["","","","",9999999999]"#);
    let login = text_of(
        http.get(format!("{}/login", server.base))
            .header("cookie", format!("lk_csrf=myapps:{body}")),
    )
    .await;
    let field = hidden(&login, "csrf").expect("the sign-in page has a CSRF token");
    for name in ["lk_myapps", "__Host-lk_myapps"] {
        let portal = http
            .get(format!("{}/myapps", server.base))
            .header("cookie", format!("{name}={body}.{field}"))
            .send()
            .await
            .unwrap();
        let status = portal.status().as_u16();
        let text = portal.text().await.unwrap();
        assert_ne!(status, 200, "My Apps opened for a forged cookie: {text}");
        assert!(
            !text.contains("Contoso Expenses"),
            "the forged session saw the applications"
        );
    }
}

#[tokio::test]
async fn a_console_form_token_minted_in_one_browser_is_refused_in_another_browsers_session() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let pass_of = |name: &str| {
        people
            .iter()
            .find(|p| p.user.display_name == name)
            .unwrap()
            .pass
            .expose()
            .to_string()
    };
    let (admin, admin_jar) = server.browser_with_jar();
    let console = sign_in_to(
        &admin,
        "/login?return_to=/admin/groups",
        "admin@latchkey.test",
        &pass_of("Avery Admin"),
    )
    .await;
    assert!(console.body.contains("Groups"), "{}", console.body);

    // The attacker mints cookie-and-token pairs in a browser of their own: once anonymously
    // (the sign-in page) and once signed in as themselves (security info).
    let (attacker, attacker_jar) = server.browser_with_jar();
    let anonymous = attacker.get("/login").await;
    let bobby_info = sign_in_to(
        &attacker,
        "/mysecurityinfo",
        "bobby@latchkey.test",
        &pass_of("Bobby Smith"),
    )
    .await;
    assert!(bobby_info.body.contains("Security info"));
    let url: url::Url = server.base.parse().unwrap();
    let attacker_cookies = reqwest::cookie::CookieStore::cookies(&*attacker_jar, &url)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    for (i, token) in [anonymous.csrf(), bobby_info.csrf()].iter().enumerate() {
        // The attacker plants every cookie of theirs except the session into the
        // administrator's browser, then makes it post the console's create-group form.
        for cookie in attacker_cookies.split("; ") {
            if !cookie.contains("lk_session") {
                admin_jar.add_cookie_str(&format!("{cookie}; Path=/"), &url);
            }
        }
        let name = format!("Planted group {i}");
        let answer = admin
            .post(
                "/admin/groups",
                &[
                    ("csrf", token),
                    ("display_name", &name),
                    ("description", "made by a replayed token"),
                ],
            )
            .await;
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert!(
            server.latchkey.directory.find_group(&name).await.is_err(),
            "the replayed token created a group"
        );
    }
    // The administrator's own token still works in their own session.
    let own = admin.get("/admin/groups").await;
    let made = admin
        .post(
            "/admin/groups",
            &[
                ("csrf", &own.csrf()),
                ("display_name", "Made by the administrator"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    // A token from the administrator's browser is refused once that session has ended.
    let stale = own.csrf();
    admin
        .post(
            "/signout",
            &[("csrf", &admin.get("/mysecurityinfo").await.csrf())],
        )
        .await;
    let again = sign_in_to(
        &admin,
        "/login?return_to=/admin/groups",
        "admin@latchkey.test",
        &pass_of("Avery Admin"),
    )
    .await;
    assert!(again.body.contains("Groups"));
    let replayed = admin
        .post(
            "/admin/groups",
            &[
                ("csrf", &stale),
                ("display_name", "From an old session"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(replayed.status, 403, "{}", replayed.body);
}

#[tokio::test]
async fn cookies_carry_the_host_prefix_only_over_tls() {
    // Over plain HTTP (tests) the names are bare; the TLS test in admin.rs sees `__Host-`.
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .get(format!("{}/login", server.base))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&response, "lk_signin").await.is_some());
    assert!(set_cookie(&response, "__Host-lk_signin").await.is_none());
}

// ----- item 6: sessions as Entra does them ------------------------------------------------

#[tokio::test]
async fn a_session_started_with_a_temporary_access_pass_ends_when_the_pass_does() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    // The shortest pass the default rules allow: 60 minutes; sessions last 12 hours.
    let pass = server.pass(&bobby).await;
    let browser = server.browser();
    let page = sign_in_to(&browser, "/mysecurityinfo", "bobby@contoso.example", &pass).await;
    assert!(page.body.contains("Security info"));
    clock.advance(59 * 60);
    assert_eq!(browser.get("/mysecurityinfo").await.status, 200);
    clock.advance(60);
    let after = browser.get("/mysecurityinfo").await;
    assert_eq!(after.status, 303, "the session outlived its pass");
    assert!(after.location.unwrap().starts_with("/login"));
}

#[tokio::test]
async fn adding_a_method_needs_a_sign_in_within_ten_minutes() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let info = sign_in_to(&browser, "/mysecurityinfo", "bobby@contoso.example", &pass).await;
    clock.advance(11 * 60);
    // The page is still open, the session still good: but adding a method asks to sign in.
    let add = browser
        .post("/mysecurityinfo/authenticator", &[("csrf", &info.csrf())])
        .await;
    assert_eq!(
        add.status, 303,
        "a stale sign-in added a method: {}",
        add.body
    );
    let location = add.location.clone().unwrap();
    assert!(
        location.starts_with("/login?return_to=%2Fmysecurityinfo%2Fauthenticator"),
        "{location}"
    );
    let back = sign_in_to(&browser, &location, "bobby@contoso.example", &pass).await;
    assert!(back.body.contains("You signed in again"), "{}", back.body);
    let added = browser
        .post("/mysecurityinfo/authenticator", &[("csrf", &back.csrf())])
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.contains("<svg"), "{}", added.body);
    // Ten minutes is the edge: at 10:00 it is not asked again, at 10:01 it is.
    clock.advance(10 * 60);
    let edge = browser
        .post("/mysecurityinfo/authenticator", &[("csrf", &back.csrf())])
        .await;
    assert_ne!(edge.status, 303, "{:?}", edge.location);
    clock.advance(1);
    let past = browser
        .post("/mysecurityinfo/authenticator", &[("csrf", &back.csrf())])
        .await;
    assert_eq!(past.status, 303);
}

#[tokio::test]
async fn my_apps_stops_showing_a_user_who_was_disabled() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let portal = sign_in_to(&browser, "/myapps", "bobby@contoso.example", &pass).await;
    assert!(portal.body.contains("Bobby Smith"), "{}", portal.body);
    server.disable_user(&bobby).await;
    let after = browser.get("/myapps").await;
    assert_ne!(after.status, 200, "{}", after.body);
    let landed = browser.follow(after).await;
    assert!(!landed.body.contains("Bobby Smith"), "{}", landed.body);
}

#[tokio::test]
async fn my_apps_stops_showing_a_user_whose_sessions_were_revoked() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let portal = sign_in_to(&browser, "/myapps", "bobby@contoso.example", &pass).await;
    assert!(portal.body.contains("Bobby Smith"));
    server
        .store_to_plant()
        .await
        .revoke_user_sessions_and_grants(&bobby)
        .await
        .unwrap();
    let after = browser.get("/myapps").await;
    assert_ne!(after.status, 200, "{}", after.body);
    let landed = browser.follow(after).await;
    assert!(landed.body.contains("Sign in"), "{}", landed.body);
    assert!(!landed.body.contains("Bobby Smith"));
}

// ----- item 7: logout redirects and anonymous sign-in pages ---------------------------------

#[tokio::test]
async fn the_logout_confirmation_checks_the_redirect_against_the_application_it_names() {
    let server = TestServer::start().await;
    // Contoso Expenses registers http://localhost:9/bye; Contoso Mobile registers nothing.
    let (expenses, _) = server.confidential_app("ES256").await;
    let mobile = server.public_app().await;
    let browser = server.browser();
    let confirm = browser
        .get(&format!(
            "/logout?client_id={expenses}&post_logout_redirect_uri=http://localhost:9/bye"
        ))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let csrf = confirm.csrf();
    for named in [Some(mobile.as_str()), None, Some("nobody")] {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("post_logout_redirect_uri", "http://localhost:9/bye"),
            ("state", "s"),
        ];
        if let Some(client) = named {
            form.push(("client_id", client));
        }
        let answer = browser.post("/logout", &form).await;
        assert_eq!(
            answer.status, 400,
            "redirected for {named:?}: {:?}",
            answer.location
        );
    }
    // The application the request names, with its own address, still works.
    let answer = browser
        .post(
            "/logout",
            &[
                ("csrf", &csrf),
                ("client_id", &expenses),
                ("post_logout_redirect_uri", "http://localhost:9/bye"),
                ("state", "s"),
            ],
        )
        .await;
    assert_eq!(
        answer.location.as_deref(),
        Some("http://localhost:9/bye?state=s")
    );
}

#[tokio::test]
async fn anonymous_sign_in_page_loads_do_not_write_rows() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut drafted = Vec::new();
    for _ in 0..300 {
        let response = http
            .get(format!("{}/login", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let cookie = set_cookie(&response, "lk_signin")
            .await
            .expect("a sign-in id");
        drafted.push(cookie.split('.').next().unwrap().to_string());
    }
    for id in &drafted {
        assert!(
            server
                .latchkey
                .sign_in
                .sign_in(&SignInId::from_string(id.clone()))
                .await
                .is_err(),
            "loading the sign-in page stored a sign-in"
        );
    }
    // Posting the user name stores it, and the sign-in goes on as before.
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let login = browser.get("/login?return_to=/mysecurityinfo").await;
    let username = browser
        .post(
            "/login/username",
            &[
                ("csrf", &login.csrf()),
                ("username", "bobby@contoso.example"),
                ("return_to", "/mysecurityinfo"),
            ],
        )
        .await;
    assert_eq!(username.status, 303, "{}", username.body);
    let credential = browser.follow(username).await;
    let done = browser
        .post(
            "/login/credential",
            &[
                ("csrf", &credential.csrf()),
                ("method", "pass"),
                ("secret", &pass),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/mysecurityinfo"));
}

#[tokio::test]
async fn a_drafted_sign_in_refuses_foreign_malformed_and_replayed_posts() {
    let server = TestServer::start().await;
    let one = server.browser();
    let other = server.browser();
    let page = one.get("/login").await;
    let theirs = other.get("/login").await;
    // Another browser's token, an empty one, an oversized one: refused.
    for csrf in [theirs.csrf(), String::new(), "x".repeat(5000)] {
        let answer = one
            .post(
                "/login/username",
                &[("csrf", &csrf), ("username", "bobby@contoso.example")],
            )
            .await;
        assert_eq!(answer.status, 403, "{}", answer.body);
    }
    // No sign-in cookie at all: nothing the token could be bound to.
    let bare = reqwest::Client::new()
        .post(format!("{}/login/username", server.base))
        .form(&[("csrf", page.csrf()), ("username", "a@b.example".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    // A replayed post is out of order and changes nothing.
    let form = [
        ("csrf", page.csrf()),
        ("username", "bobby@contoso.example".to_string()),
        ("return_to", "https://evil.example/".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(one.post("/login/username", &form).await.status, 303);
    let replay = one.post("/login/username", &form).await;
    assert_eq!(replay.location.as_deref(), Some("/login"));
    let credential = one.get("/login").await;
    assert!(credential.body.contains("bobby@contoso.example"));
    // Out of order: a credential before any user name, in a fresh draft.
    let fresh = server.browser();
    let draft = fresh.get("/login").await;
    let early = fresh
        .post(
            "/login/credential",
            &[("csrf", &draft.csrf()), ("method", "pass"), ("secret", "x")],
        )
        .await;
    assert_eq!(early.location.as_deref(), Some("/login"), "{}", early.body);
    assert!(fresh.get("/login").await.body.contains("User name"));
    // Reloading a drafted page keeps its sign-in: the first page's form still works.
    let reloaded = fresh.get("/login").await;
    assert_eq!(reloaded.csrf(), draft.csrf());
}
