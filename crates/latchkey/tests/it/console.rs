//! The admin console over HTTP: lab Steps 1 and 4 as an administrator does them.

use latchkey::demo::DemoPerson;

use crate::support::{Browser, TestServer, demo_person, placed_server};

pub async fn admin_browser(server: &TestServer, people: &[DemoPerson]) -> Browser {
    let admin = demo_person(people, "Avery Admin");
    let browser = server.browser();
    let answer = browser
        .sign_in_at(
            "/login?return_to=/admin",
            "admin@latchkey.test",
            admin.pass.expose(),
        )
        .await;
    assert_eq!(answer.location.as_deref(), Some("/admin"));
    browser
}

#[tokio::test]
async fn an_administrator_does_lab_steps_1_and_4_in_the_console() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let admin = admin_browser(&server, &people).await;
    let bobby = demo_person(&people, "Bobby Smith");

    let policies = admin.get("/admin/policies").await;
    assert_eq!(policies.status, 200);
    assert!(
        policies.body.contains("Authenticator app")
            && policies.body.contains("Temporary Access Pass")
    );

    // Step 1: Enable, all users, Authentication mode Any (starting from push-only to see it change).
    let page = admin.get("/admin/policies/authenticator").await;
    let csrf = page.csrf();
    let push_only = admin
        .post(
            "/admin/policies/authenticator",
            &[
                ("csrf", &csrf),
                ("enabled", "true"),
                ("include_target", "all_users"),
                ("include_mode", "push"),
            ],
        )
        .await;
    assert_eq!(push_only.status, 303, "{}", push_only.body);
    let user_page = admin.get(&format!("/admin/users/{}", bobby.user.id)).await;
    assert!(
        user_page.body.contains("Push"),
        "effective policy shows Push: {}",
        user_page.body
    );
    let saved = admin
        .post(
            "/admin/policies/authenticator",
            &[
                ("csrf", &csrf),
                ("enabled", "true"),
                ("include_target", "all_users"),
                ("include_mode", "any"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    let policy = server.latchkey.governance.policy().await.unwrap();
    let include = &policy.authenticator.targeting.include_targets;
    assert_eq!(include.len(), 1);
    assert_eq!(
        include[0].authentication_mode,
        Some(latchkey_domain::policy::AuthenticationMode::Any)
    );

    // Step 4: number matching, application name and location for all users.
    let mut form = vec![("csrf".to_string(), csrf.clone())];
    for feature in [
        "numberMatching",
        "displayAppInformation",
        "displayLocationInformation",
    ] {
        form.push((format!("{feature}.state"), "enabled".into()));
        form.push((format!("{feature}.include"), "all_users".into()));
        form.push((format!("{feature}.exclude"), String::new()));
    }
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = admin
        .post("/admin/policies/authenticator/configure", &fields)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let evaluation = server
        .latchkey
        .governance
        .effective_policy(&bobby.user.id)
        .await
        .unwrap();
    // Everything a notification shows is on; holding back unusual ones stays opt-in (off).
    assert!(evaluation[0].features.iter().all(|f| f.enabled
        != (f.feature == latchkey_domain::policy::Feature::SuppressAnomalousNotifications)));
    assert!(
        evaluation[0]
            .features
            .iter()
            .any(|f| f.reason.contains("enabled for all users"))
    );

    // Number matching cannot be turned off: the page says why and nothing changes.
    let before = server.latchkey.governance.policy().await.unwrap();
    let refused = admin
        .post(
            "/admin/policies/authenticator/configure",
            &[
                ("csrf", &csrf),
                ("numberMatching.state", "disabled"),
                ("numberMatching.include", "all_users"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("cannot be disabled"),
        "{}",
        refused.body
    );
    assert_eq!(server.latchkey.governance.policy().await.unwrap(), before);

    // A form without its CSRF token changes nothing.
    let forged = admin
        .post(
            "/admin/policies/authenticator",
            &[
                ("enabled", "false"),
                ("include_target", "all_users"),
                ("include_mode", "any"),
            ],
        )
        .await;
    assert!(
        forged.status == 403 || forged.status == 422,
        "{}",
        forged.status
    );
    assert_eq!(server.latchkey.governance.policy().await.unwrap(), before);

    // The audit log page shows the changes and who made them.
    let audit = admin.get("/admin/logs/audit").await;
    assert!(
        audit.body.contains("user:admin@latchkey.test"),
        "{}",
        audit.body
    );
}

#[tokio::test]
async fn the_console_is_closed_to_people_who_are_not_administrators() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let anonymous = server.browser().get("/admin/policies").await;
    assert!(anonymous.location.unwrap().starts_with("/login"));
    let bobby = demo_person(&people, "Bobby Smith");
    let browser = server.browser();
    browser
        .sign_in_at(
            "/login?return_to=/admin/policies",
            "bobby@latchkey.test",
            bobby.pass.expose(),
        )
        .await;
    for path in [
        "/admin",
        "/admin/policies",
        "/admin/users",
        "/admin/logs/signins",
    ] {
        assert_eq!(browser.get(path).await.status, 403, "{path}");
    }
}

#[tokio::test]
async fn the_sign_in_log_page_shows_attempts_with_location_and_attribution() {
    let Some(server) = placed_server().await else {
        return;
    };
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let bobby = demo_person(&people, "Bobby Smith");
    let london = server.browser_from("81.2.69.160");
    london
        .sign_in_to_my_apps("bobby@latchkey.test", bobby.pass.expose())
        .await;
    let wrong = server.browser_from("81.2.69.160");
    wrong
        .sign_in_at("/login", "bobby@latchkey.test", "WRONGpass")
        .await;

    let admin = admin_browser(&server, &people).await;
    let page = admin.get("/admin/logs/signins").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("London"), "{}", page.body);
    assert!(page.body.contains("bobby@latchkey.test"));
    assert!(
        page.body.contains("https://db-ip.com"),
        "DB-IP attribution on pages that show a location"
    );
    assert!(
        page.body.contains("<svg"),
        "the chart of sign-ins over time"
    );
    let failures = admin.get("/admin/logs/signins?status=failure").await;
    assert!(
        failures.body.contains("50126") || failures.body.contains("Invalid user name"),
        "{}",
        failures.body
    );
    let bad = admin.get("/admin/logs/signins?since=yesterday").await;
    assert_eq!(bad.status, 400);
}
