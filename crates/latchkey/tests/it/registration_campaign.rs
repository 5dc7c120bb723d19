//! The registration campaign (Entra's `authenticationMethodsRegistrationCampaign`): the nudge
//! after a pass or password sign-in, its snoozes, who never sees it, and the threats to its
//! forms (forged, replayed and out-of-order posts, and open redirects through the continuation).

use reqwest::Method;
use serde_json::{Value, json};

use crate::phone::{Person, Phone};
use crate::support::{
    Browser, Page, TestServer, authorize_url, query_param, run_latchkey, token_request,
};

const CAMPAIGN: &str = "/policies/authenticationMethodsPolicy/registrationEnforcement";
const INTERRUPT: &str = "/login/registration-campaign";
const NOT_NOW: &str = "/login/registration-campaign/not-now";

async fn set_campaign(server: &TestServer, campaign: Value) -> Value {
    let (status, body) = server
        .api_call(
            Method::PUT,
            CAMPAIGN,
            Some(json!({"authenticationMethodsRegistrationCampaign": campaign})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn campaign(days: u32, limited: bool) -> Value {
    json!({
        "state": "enabled",
        "snoozeDurationInDays": days,
        "enforceRegistrationAfterAllowedSnoozes": limited,
        "includeTargets": [{"targetType": "group", "id": "all_users",
                            "targetedAuthenticationMethod": "microsoftAuthenticator"}],
        "excludeTargets": []
    })
}

/// A fresh browser signs in with the pass at `path`; returns it and the server's answer.
async fn sign_in(server: &TestServer, path: &str, upn: &str, pass: &str) -> (Browser, Page) {
    let browser = server.browser();
    let login = browser.follow(browser.get(path).await).await;
    let answer = browser.sign_in_with_pass(login, upn, pass).await;
    (browser, answer)
}

async fn audits(server: &TestServer, activity: &str) -> Vec<Value> {
    let (_, log) = server
        .api_call(
            Method::GET,
            "/auditLogs/directoryAudits?category=UserAuthenticationMethods",
            None,
        )
        .await;
    log["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["activity"] == activity)
        .collect()
}

#[tokio::test]
async fn a_targeted_user_is_nudged_after_a_pass_and_snoozes_count_down_until_the_app_is_required() {
    let server = TestServer::start().await;
    set_campaign(&server, campaign(0, true)).await;
    let (_, pass) = server.bobby_with_pass().await;
    let upn = "bobby@contoso.example";
    let notes = [
        "You can skip this 2 more times after this one.",
        "You can skip this 1 more time after this one.",
        "This is the last time you can skip this.",
    ];
    for note in notes {
        let (browser, answer) =
            sign_in(&server, "/login?return_to=/mysecurityinfo", upn, &pass).await;
        assert_eq!(
            answer.location.as_deref(),
            Some(INTERRUPT),
            "{}",
            answer.body
        );
        let page = browser.get(INTERRUPT).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("Set up the authenticator app"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Set it up now"));
        assert!(page.body.contains("Not now"));
        assert!(page.body.contains(note), "{note}\n{}", page.body);
        let skipped = browser.post(NOT_NOW, &[("csrf", &page.csrf())]).await;
        assert_eq!(skipped.status, 303, "{}", skipped.body);
        assert_eq!(skipped.location.as_deref(), Some("/mysecurityinfo"));
    }
    // Snoozes used up: the nudge stays, without "Not now", and a forged "Not now" is refused.
    let (browser, answer) = sign_in(&server, "/login", upn, &pass).await;
    assert_eq!(answer.location.as_deref(), Some(INTERRUPT));
    let page = browser.get(INTERRUPT).await;
    assert!(!page.body.contains("id=\"not-now\""), "{}", page.body);
    assert!(
        page.body
            .contains("requires you to set up the authenticator app now")
    );
    let refused = browser.post(NOT_NOW, &[("csrf", &page.csrf())]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    assert_eq!(
        audits(&server, "Registration campaign: snoozed")
            .await
            .len(),
        3
    );
    let shown = audits(&server, "Registration campaign: prompt shown").await;
    assert_eq!(shown.len(), 4);
    assert_eq!(shown[0]["actor"], format!("user:{upn}"));
    assert_eq!(shown[0]["target"], upn);
    let snoozed = audits(&server, "Registration campaign: snoozed").await;
    assert_eq!(snoozed[0]["after"]["snoozesUsed"], 3, "{}", snoozed[0]);
    assert_eq!(snoozed[0]["after"]["snoozesAllowed"], 3);
}

#[tokio::test]
async fn unlimited_snoozes_never_run_out_and_snooze_days_hold_the_nudge_back() {
    let server = TestServer::start().await;
    set_campaign(&server, campaign(0, false)).await;
    let (_, pass) = server.bobby_with_pass().await;
    let upn = "bobby@contoso.example";
    for _ in 0..4 {
        let (browser, answer) = sign_in(&server, "/login", upn, &pass).await;
        assert_eq!(answer.location.as_deref(), Some(INTERRUPT));
        let page = browser.get(INTERRUPT).await;
        assert!(
            !page.body.contains("id=\"snoozes\""),
            "no count when unlimited"
        );
        let skipped = browser.post(NOT_NOW, &[("csrf", &page.csrf())]).await;
        assert_eq!(skipped.location.as_deref(), Some("/myapps"));
    }
    // With a day's snooze, the next sign-in goes straight on.
    set_campaign(&server, campaign(1, false)).await;
    let (browser, answer) = sign_in(&server, "/login", upn, &pass).await;
    let page = browser.get(INTERRUPT).await;
    browser.post(NOT_NOW, &[("csrf", &page.csrf())]).await;
    assert_eq!(answer.location.as_deref(), Some(INTERRUPT));
    let (_, answer) = sign_in(&server, "/login", upn, &pass).await;
    assert_eq!(answer.location.as_deref(), Some("/myapps"));
}

#[tokio::test]
async fn excluded_users_users_with_the_app_and_users_without_it_allowed_are_never_nudged() {
    let server = TestServer::start().await;
    // Off by default.
    let (_, pass) = server.bobby_with_pass().await;
    let (_, answer) = sign_in(&server, "/login", "bobby@contoso.example", &pass).await;
    assert_eq!(answer.location.as_deref(), Some("/myapps"));

    let contractor = server.user("carol", "Carol Contractor").await;
    let group = server
        .group_with(
            json!({"displayName": "Contractors"}),
            &[contractor.as_str()],
        )
        .await;
    let mut settings = campaign(0, true);
    settings["excludeTargets"] = json!([{"targetType": "group", "id": group["id"]}]);
    set_campaign(&server, settings).await;

    // An excluded user.
    let carol_pass = server.pass(&contractor).await;
    let (_, answer) = sign_in(&server, "/login", "carol@contoso.example", &carol_pass).await;
    assert_eq!(answer.location.as_deref(), Some("/myapps"));

    // A user with the authenticator app registered (Person::new signs in with a pass first:
    // that sign-in is nudged, which the person skips).
    let dana = server.user("dana", "Dana").await;
    let dana_pass = server.pass(&dana).await;
    let (browser, answer) = sign_in(&server, "/login", "dana@contoso.example", &dana_pass).await;
    assert_eq!(answer.location.as_deref(), Some(INTERRUPT));
    let person = Person {
        upn: "dana@contoso.example".into(),
        browser,
    };
    Phone::register(&person, "Dana's phone").await;
    let (_, answer) = sign_in(&server, "/login", "dana@contoso.example", &dana_pass).await;
    assert_eq!(answer.location.as_deref(), Some("/myapps"), "has the app");

    // A user the policy does not let use the authenticator app.
    let (status, body) = server
        .api_call(
            Method::PATCH,
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/authenticator",
            Some(json!({"excludeTargets": [{"targetType": "group", "id": group["id"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut settings = campaign(0, true);
    settings["excludeTargets"] = json!([]);
    set_campaign(&server, settings).await;
    let (_, answer) = sign_in(&server, "/login", "carol@contoso.example", &carol_pass).await;
    assert_eq!(
        answer.location.as_deref(),
        Some("/myapps"),
        "app not allowed"
    );
    // Everyone else targeted still is.
    let (_, answer) = sign_in(&server, "/login", "bobby@contoso.example", &pass).await;
    assert_eq!(answer.location.as_deref(), Some(INTERRUPT));
}

/// Threat: a page elsewhere makes a signed-in browser skip the nudge (CSRF), or a captured
/// "Not now" is posted again to use up snoozes or skip a later nudge.
#[tokio::test]
async fn forged_and_replayed_not_now_posts_are_refused() {
    let server = TestServer::start().await;
    set_campaign(&server, campaign(0, true)).await;
    let (_, pass) = server.bobby_with_pass().await;
    let upn = "bobby@contoso.example";
    let (browser, _) = sign_in(&server, "/login", upn, &pass).await;
    let page = browser.get(INTERRUPT).await;
    let csrf = page.csrf();

    // No token, a made-up token, and a token from another signed-in browser.
    let missing = browser.post(NOT_NOW, &[]).await;
    assert!(
        missing.status >= 400 && missing.status < 500,
        "{}",
        missing.status
    );
    let forged = browser
        .post(NOT_NOW, &[("csrf", "0".repeat(43).as_str())])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let (other, _) = sign_in(&server, "/login", upn, &pass).await;
    let foreign = other.get(INTERRUPT).await.csrf();
    let crossed = browser.post(NOT_NOW, &[("csrf", &foreign)]).await;
    assert_eq!(crossed.status, 403, "{}", crossed.body);
    // Without a session at all: to sign-in, nothing skipped.
    let stranger = server.browser();
    let anonymous = stranger.post(NOT_NOW, &[("csrf", &csrf)]).await;
    assert_ne!(anonymous.status, 200);
    assert_eq!(
        audits(&server, "Registration campaign: snoozed")
            .await
            .len(),
        0
    );

    // The real one, then the same post again.
    let first = browser.post(NOT_NOW, &[("csrf", &csrf)]).await;
    assert_eq!(first.location.as_deref(), Some("/myapps"));
    let replayed = browser.post(NOT_NOW, &[("csrf", &csrf)]).await;
    assert_eq!(replayed.status, 409, "{}", replayed.body);
    assert_eq!(
        audits(&server, "Registration campaign: snoozed")
            .await
            .len(),
        1,
        "a replay counts no second snooze"
    );
    // An oversized form is refused before anything is read.
    let huge = "a".repeat(2 * 1024 * 1024);
    let oversized = other
        .http
        .post(format!("{}{NOT_NOW}", server.base))
        .form(&[("csrf", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        oversized.status().is_client_error(),
        "{}",
        oversized.status()
    );
}

/// Threat: "Not now" posted when no nudge is waiting (out of order), to skip one that comes
/// later or to reach the continuation of another sign-in.
#[tokio::test]
async fn not_now_without_a_pending_nudge_is_refused() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let (browser, answer) = sign_in(&server, "/login", "bobby@contoso.example", &pass).await;
    assert_eq!(answer.location.as_deref(), Some("/myapps"));
    let info = browser.get("/mysecurityinfo").await;
    assert!(!info.body.contains("campaign-continue"));
    let out_of_order = browser.post(NOT_NOW, &[("csrf", &info.csrf())]).await;
    assert_eq!(out_of_order.status, 409, "{}", out_of_order.body);
    assert!(out_of_order.body.contains("Nothing to skip"));
    let set_up = browser
        .post(
            "/login/registration-campaign/set-up",
            &[("csrf", &info.csrf())],
        )
        .await;
    assert_eq!(set_up.status, 409);
    // The page itself, with nothing pending, just goes on.
    let page = browser.get(INTERRUPT).await;
    assert_eq!(page.location.as_deref(), Some("/myapps"));
    // Campaign turned on later: a session signed in before it has nothing pending either.
    set_campaign(&server, campaign(0, true)).await;
    let again = browser.post(NOT_NOW, &[("csrf", &info.csrf())]).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        audits(&server, "Registration campaign: snoozed")
            .await
            .len(),
        0
    );
}

/// Threat: the nudge's continuation turned into an open redirect, by a `return_to` elsewhere
/// or by fields added to the "Not now" form. Where the browser goes is the server's record of
/// the sign-in: a local path, or the application's registered redirect URI with a code.
#[tokio::test]
async fn the_continuation_cannot_be_turned_into_an_open_redirect() {
    let server = TestServer::start().await;
    set_campaign(&server, campaign(0, false)).await;
    let (_, pass) = server.bobby_with_pass().await;
    let upn = "bobby@contoso.example";
    for hostile in ["https://evil.example/", "//evil.example", "/\\evil.example"] {
        let path = format!("/login?return_to={}", urlencode(hostile));
        let (browser, answer) = sign_in(&server, &path, upn, &pass).await;
        assert_eq!(answer.location.as_deref(), Some(INTERRUPT));
        let csrf = browser.get(INTERRUPT).await.csrf();
        let skipped = browser
            .post(
                NOT_NOW,
                &[
                    ("csrf", &csrf),
                    ("return_to", "https://evil.example/"),
                    ("redirect_uri", "https://evil.example/"),
                    ("next", "//evil.example"),
                ],
            )
            .await;
        assert_eq!(skipped.location.as_deref(), Some("/myapps"), "{hostile}");
    }

    // Through an application: on to its registered redirect URI, with a code that works.
    let (client, secret) = server.confidential_app("RS256").await;
    let authorize = authorize_url(&server.base, &client, None, &[]);
    let (browser, answer) = sign_in(&server, &authorize, upn, &pass).await;
    assert_eq!(
        answer.location.as_deref(),
        Some(INTERRUPT),
        "no code before the nudge"
    );
    let csrf = browser.get(INTERRUPT).await.csrf();
    let skipped = browser
        .post(
            NOT_NOW,
            &[("csrf", &csrf), ("redirect_uri", "https://evil.example/cb")],
        )
        .await;
    let location = skipped.location.expect("a redirect");
    assert!(
        location.starts_with("http://localhost:9/callback?"),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
    let code = query_param(&location, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:9/callback"),
    ];
    let (status, tokens) = token_request(&server.base, &form, Some((&client, &secret))).await;
    assert_eq!(status, 200, "{tokens}");
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn set_it_up_now_leads_to_security_info_and_on_to_the_application_once_the_app_is_added() {
    let server = TestServer::start().await;
    set_campaign(&server, campaign(0, true)).await;
    let (_, pass) = server.bobby_with_pass().await;
    let upn = "bobby@contoso.example";
    let (client, _) = server.confidential_app("RS256").await;
    let authorize = authorize_url(&server.base, &client, None, &[]);
    let (browser, answer) = sign_in(&server, &authorize, upn, &pass).await;
    assert_eq!(answer.location.as_deref(), Some(INTERRUPT));
    let csrf = browser.get(INTERRUPT).await.csrf();
    let set_up = browser
        .post("/login/registration-campaign/set-up", &[("csrf", &csrf)])
        .await;
    assert_eq!(set_up.location.as_deref(), Some("/mysecurityinfo"));
    let info = browser.get("/mysecurityinfo").await;
    assert!(info.body.contains("campaign-continue"), "{}", info.body);
    let person = Person {
        upn: upn.into(),
        browser,
    };
    Phone::register(&person, "Bobby's phone").await;
    let go_on = person
        .browser
        .post("/login/registration-campaign/continue", &[("csrf", &csrf)])
        .await;
    let location = go_on.location.expect("a redirect");
    assert!(
        location.starts_with("http://localhost:9/callback?"),
        "{location}"
    );
    assert!(query_param(&location, "code").is_some());
    assert_eq!(
        audits(&server, "Registration campaign: chose to set up")
            .await
            .len(),
        1
    );
    assert_eq!(
        audits(&server, "Registration campaign: snoozed")
            .await
            .len(),
        0
    );
    // Continued once: the form again finds nothing.
    let again = person
        .browser
        .post("/login/registration-campaign/continue", &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 409);
}

#[tokio::test]
async fn the_admin_api_reads_validates_audits_and_resets_the_campaign() {
    let server = TestServer::start().await;
    let (status, body) = server.api_call(Method::GET, CAMPAIGN, None).await;
    assert_eq!(status, 200);
    let c = &body["authenticationMethodsRegistrationCampaign"];
    assert_eq!(c["state"], "default");
    assert_eq!(c["snoozeDurationInDays"], 1);
    assert_eq!(c["enforceRegistrationAfterAllowedSnoozes"], true);
    let (_, policy) = server
        .api_call(Method::GET, "/policies/authenticationMethodsPolicy", None)
        .await;
    assert_eq!(
        policy["registrationEnforcement"]["authenticationMethodsRegistrationCampaign"]["state"],
        "default"
    );

    let (status, body) = server
        .api_call(
            Method::PATCH,
            CAMPAIGN,
            Some(json!({"authenticationMethodsRegistrationCampaign": {"state": "enabled", "snoozeDurationInDays": 14}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["authenticationMethodsRegistrationCampaign"]["state"],
        "enabled"
    );
    assert_eq!(
        body["authenticationMethodsRegistrationCampaign"]["snoozeDurationInDays"],
        14
    );

    for (bad, field) in [
        (
            json!({"authenticationMethodsRegistrationCampaign": {"snoozeDurationInDays": 15}}),
            "snoozeDurationInDays",
        ),
        (
            json!({"authenticationMethodsRegistrationCampaign": {"snoozeDurationInDays": -1}}),
            "snoozeDurationInDays",
        ),
        (
            json!({"authenticationMethodsRegistrationCampaign": {"colour": "red"}}),
            "colour",
        ),
        (
            json!({"authenticationMethodsRegistrationCampaign": {"state": "sometimes"}}),
            "state",
        ),
        (
            json!({"authenticationMethodsRegistrationCampaign": {"excludeTargets": [{"targetType": "group", "id": "all_users"}]}}),
            "excludeTargets",
        ),
        (
            json!({"authenticationMethodsRegistrationCampaign": {"includeTargets": [{"targetType": "group", "id": "0123456789abcdef0123456789abcdef"}]}}),
            "includeTargets",
        ),
        (json!({"somethingElse": {}}), "somethingElse"),
    ] {
        let (status, body) = server
            .api_call(Method::PATCH, CAMPAIGN, Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert!(body.to_string().contains(field), "{bad} → {body}");
    }
    // A stale If-Match is a failed precondition.
    let stale = server
        .api()
        .put(format!("{}/api/v1{CAMPAIGN}", server.base))
        .bearer_auth(&server.admin_token)
        .header("If-Match", "\"0\"")
        .json(&json!({"authenticationMethodsRegistrationCampaign": campaign(1, true)}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);

    let (status, body) = server.api_call(Method::DELETE, CAMPAIGN, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["authenticationMethodsRegistrationCampaign"]["state"],
        "default"
    );
    let (_, log) = server
        .api_call(
            Method::GET,
            "/auditLogs/directoryAudits?category=Policy",
            None,
        )
        .await;
    let activities: Vec<&str> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == "registrationCampaign")
        .map(|e| e["activity"].as_str().unwrap())
        .collect();
    assert_eq!(
        activities,
        [
            "Reset registration campaign",
            "Update registration campaign"
        ],
        "newest first"
    );
}

// Multi-threaded: the command line blocks this test's thread while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_shows_and_sets_the_campaign() {
    let server = TestServer::start().await;
    let data_dir = server.data_dir.path().to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["admin", "--url", &server.base, "--data-dir", &data_dir];
        all.extend_from_slice(args);
        run_latchkey(all)
    };
    let (code, out, err) = cli(&[
        "policy",
        "campaign",
        "set",
        "--state",
        "enabled",
        "--snooze-days",
        "3",
        "--snoozes",
        "unlimited",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("enabled") && out.contains("unlimited"),
        "{out}"
    );
    let (_, body) = server.api_call(Method::GET, CAMPAIGN, None).await;
    let c = &body["authenticationMethodsRegistrationCampaign"];
    assert_eq!(c["snoozeDurationInDays"], 3);
    assert_eq!(c["enforceRegistrationAfterAllowedSnoozes"], false);
    let (code, _, err) = cli(&["policy", "campaign", "set", "--snooze-days", "30"]);
    assert_eq!(code, 1, "the server refuses 30 days: {err}");
    assert!(err.contains("snoozeDurationInDays"), "{err}");
    let (code, out, _) = cli(&["policy", "campaign", "reset"]);
    assert_eq!(code, 0);
    assert!(out.contains("default"), "{out}");
}

#[tokio::test]
async fn the_console_shows_and_saves_the_campaign_and_refuses_a_stale_form() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let admin = crate::console::admin_browser(&server, &people).await;
    let list = admin.get("/admin/policies").await;
    assert!(list.body.contains("campaign-link"), "{}", list.body);
    let page = admin.get("/admin/policies/registration-campaign").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Registration campaign"));
    let csrf = page.csrf();
    let version = crate::support::hidden(&page.body, "version").unwrap();
    let saved = admin
        .post(
            "/admin/policies/registration-campaign",
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("state", "enabled"),
                ("snooze_days", "2"),
                ("limited", "true"),
                ("include_target", "all_users"),
                ("exclude", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, body) = server.api_call(Method::GET, CAMPAIGN, None).await;
    assert_eq!(
        body["authenticationMethodsRegistrationCampaign"]["state"],
        "enabled"
    );
    assert_eq!(
        body["authenticationMethodsRegistrationCampaign"]["snoozeDurationInDays"],
        2
    );
    // The same form again is from an older version now.
    let stale = admin
        .post(
            "/admin/policies/registration-campaign",
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("state", "disabled"),
                ("snooze_days", "2"),
                ("include_target", "all_users"),
            ],
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    let bad = admin
        .post(
            "/admin/policies/registration-campaign",
            &[
                ("csrf", &csrf),
                ("state", "enabled"),
                ("snooze_days", "99"),
                ("include_target", "all_users"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("snoozeDurationInDays"));
    let forged = admin
        .post(
            "/admin/policies/registration-campaign",
            &[
                ("csrf", "forged"),
                ("state", "disabled"),
                ("snooze_days", "1"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
}

/// In a real browser at phone size: the nudge after a pass, "Not now", and on to My Apps.
#[tokio::test]
async fn chromium_shows_the_nudge_and_not_now_goes_on_to_my_apps() {
    let Some(driver) = crate::browser::Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start().await;
    set_campaign(&server, campaign(1, true)).await;
    let (_, pass) = server.bobby_with_pass().await;
    let window = driver.window(&server, "registration-campaign", None).await;
    window.goto("/myapps").await;
    window
        .sign_in_with_pass("bobby@contoso.example", &pass, None)
        .await;
    let text = window.wait_for_text("Set up the authenticator app").await;
    assert!(
        text.contains("You can skip this 2 more times after this one."),
        "{text}"
    );
    window.shots("nudge").await;
    window.click("#not-now").await;
    window.wait_for_text("Bobby Smith").await;
    window.shots("after-not-now").await;
    window.close().await;
    assert_eq!(
        audits(&server, "Registration campaign: snoozed")
            .await
            .len(),
        1
    );
}
