//! "Don't push notifications for unusual sign-ins" (`suppressAnomalousNotificationsState`):
//! an attacker who has a user name and signs in from somewhere the user never signs in from,
//! or keeps trying after the user said no, should not get a notification onto the phone for
//! the user to tap away. The request still waits; the person at the browser opens the app and
//! pulls it.
//!
//! Places come from the DB-IP test databases through a trusted proxy: 81.2.69.160 is London
//! (GB), 1.1.1.1 is Sydney (AU); a browser without X-Forwarded-For is on a private network
//! (no country).

use std::time::Duration;

use latchkey_authenticator::EventStream as Stream;
use latchkey_protocol::wire::{AnswerOutcome, ApprovalRequest, Decision, DeviceEvent};
use reqwest::Method;
use serde_json::{Value, json};

use crate::phone::{
    AUTHENTICATOR, Person, Phone, number_on, reload, sign_in_log, start_sign_in, unescape,
};
use crate::support::{Browser, Page, TestServer, assert_signed_in_as, geoip_databases};

const LONDON: &str = "81.2.69.160";
const SYDNEY: &str = "1.1.1.1";
const PULL_INSTRUCTION: &str =
    "Open your authenticator app, check for pending requests, and enter the number shown";
const PUSHED_INSTRUCTION: &str =
    "Open your authenticator app, and enter the number shown to sign in.";

/// A server that places addresses, and Bobby with phone sign-in on and the live channel open.
/// `None` (the test is skipped) where the GeoIP databases are missing outside CI.
async fn bobby_with_a_placed_server() -> Option<(TestServer, Person, Phone, Stream)> {
    let databases = geoip_databases()?;
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.geoip.databases = databases;
    })
    .await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let stream = phone.app.connect(phone.account).await.unwrap();
    Some((server, bobby, phone, stream))
}

async fn set_switch(server: &TestServer, setting: Value) {
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"featureSettings": {"suppressAnomalousNotificationsState": setting}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn switch_on(server: &TestServer) {
    set_switch(
        server,
        json!({"state": "enabled", "includeTarget": {"targetType": "group", "id": "all_users"}}),
    )
    .await;
}

/// The request the live channel delivers within a few seconds.
async fn pushed(stream: &mut Stream) -> ApprovalRequest {
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(DeviceEvent::Request { request })) => request,
        other => panic!("expected a pushed request, got {other:?}"),
    }
}

/// Asserts the live channel stays quiet: nothing was pushed.
async fn nothing_pushed(stream: &mut Stream) {
    let event = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
    assert!(event.is_err(), "nothing is pushed: {event:?}");
}

/// Starts a phone sign-in from `place` (`None`: a private network); returns the browser and
/// its number page.
async fn sign_in_from(server: &TestServer, upn: &str, place: Option<&str>) -> (Browser, Page) {
    let browser = match place {
        Some(address) => server.browser_from(address),
        None => server.browser(),
    };
    let page = start_sign_in(&browser, upn).await;
    assert!(
        page.body.contains("Approve sign in request"),
        "{}",
        page.body
    );
    (browser, page)
}

/// Approves `request` with the page's number and checks the browser is signed in.
async fn approve_and_land(
    phone: &mut Phone,
    request: &ApprovalRequest,
    browser: &Browser,
    page: &Page,
) {
    assert_eq!(
        phone
            .answer(request, Decision::Approve, Some(number_on(page)))
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    let apps = reload(browser).await;
    assert_signed_in_as(&apps, "Bobby Smith");
}

/// A first, pushed and approved sign-in from `place`, so the place becomes familiar.
async fn usual_sign_in(
    server: &TestServer,
    bobby: &Person,
    phone: &mut Phone,
    stream: &mut Stream,
    place: Option<&str>,
) {
    let (browser, page) = sign_in_from(server, &bobby.upn, place).await;
    let request = pushed(stream).await;
    approve_and_land(phone, &request, &browser, &page).await;
}

/// The newest sign-in log record's `status`.
async fn newest_status(server: &TestServer, upn: &str) -> Value {
    let log = sign_in_log(server, upn).await;
    log.first().expect("a sign-in record")["status"].clone()
}

#[tokio::test]
async fn with_the_switch_off_a_sign_in_from_a_new_country_is_pushed_as_before() {
    let Some((server, bobby, mut phone, mut stream)) = bobby_with_a_placed_server().await else {
        return;
    };
    usual_sign_in(&server, &bobby, &mut phone, &mut stream, Some(LONDON)).await;
    let (browser, page) = sign_in_from(&server, &bobby.upn, Some(SYDNEY)).await;
    assert!(page.body.contains(PUSHED_INSTRUCTION), "{}", page.body);
    let request = pushed(&mut stream).await;
    assert!(request.location.clone().unwrap().contains("Australia"));
    approve_and_land(&mut phone, &request, &browser, &page).await;
    assert!(
        newest_status(&server, &bobby.upn).await["additionalDetails"].is_null(),
        "nothing to add when the request was pushed"
    );
}

#[tokio::test]
async fn a_sign_in_from_an_unfamiliar_country_is_not_pushed_but_can_be_pulled_and_approved() {
    let Some((server, bobby, mut phone, mut stream)) = bobby_with_a_placed_server().await else {
        return;
    };
    switch_on(&server).await;
    usual_sign_in(&server, &bobby, &mut phone, &mut stream, Some(LONDON)).await;

    // Someone in Sydney types Bobby's name: the phone stays quiet.
    let (browser, page) = sign_in_from(&server, &bobby.upn, Some(SYDNEY)).await;
    nothing_pushed(&mut stream).await;
    let text = unescape(&page.body);
    assert!(text.contains(PULL_INSTRUCTION), "{text}");
    assert!(text.contains("We haven't sent a notification"), "{text}");
    assert!((10..=99).contains(&number_on(&page)), "the number is shown");

    // Bobby (it was him, travelling) opens the app, finds it, and signs in.
    let request = phone.only_request().await;
    assert!(request.location.clone().unwrap().contains("Australia"));
    approve_and_land(&mut phone, &request, &browser, &page).await;
    let status = newest_status(&server, &bobby.upn).await;
    assert_eq!(status["errorCode"], 0, "{status}");
    assert_eq!(
        status["additionalDetails"],
        "Notification not pushed: unfamiliar country"
    );

    // Having signed in from there, Australia is familiar now.
    let (browser, page) = sign_in_from(&server, &bobby.upn, Some(SYDNEY)).await;
    assert!(page.body.contains(PUSHED_INSTRUCTION), "{}", page.body);
    let request = pushed(&mut stream).await;
    approve_and_land(&mut phone, &request, &browser, &page).await;
}

#[tokio::test]
async fn a_sign_in_from_a_country_seen_before_is_pushed() {
    let Some((server, bobby, mut phone, mut stream)) = bobby_with_a_placed_server().await else {
        return;
    };
    switch_on(&server).await;
    usual_sign_in(&server, &bobby, &mut phone, &mut stream, Some(LONDON)).await;
    let (browser, page) = sign_in_from(&server, &bobby.upn, Some(LONDON)).await;
    assert!(page.body.contains(PUSHED_INSTRUCTION), "{}", page.body);
    let request = pushed(&mut stream).await;
    approve_and_land(&mut phone, &request, &browser, &page).await;
    // A place the database cannot put in a country says nothing about the user either.
    usual_sign_in(&server, &bobby, &mut phone, &mut stream, None).await;
}

#[tokio::test]
async fn a_users_first_sign_in_is_pushed_even_with_the_switch_on() {
    let Some((server, bobby, mut phone, mut stream)) = bobby_with_a_placed_server().await else {
        return;
    };
    switch_on(&server).await;
    // Bobby's pass sign-in to security info came from a private network: no country yet.
    let (browser, page) = sign_in_from(&server, &bobby.upn, Some(SYDNEY)).await;
    assert!(page.body.contains(PUSHED_INSTRUCTION), "{}", page.body);
    let request = pushed(&mut stream).await;
    approve_and_land(&mut phone, &request, &browser, &page).await;
    assert!(newest_status(&server, &bobby.upn).await["additionalDetails"].is_null());
}

#[tokio::test]
async fn after_a_denial_the_next_sign_in_is_not_pushed() {
    let Some((server, bobby, mut phone, mut stream)) = bobby_with_a_placed_server().await else {
        return;
    };
    switch_on(&server).await;
    // An attacker's attempt; Bobby denies it.
    sign_in_from(&server, &bobby.upn, None).await;
    let request = pushed(&mut stream).await;
    assert_eq!(
        phone.answer(&request, Decision::Deny, None).await.unwrap(),
        AnswerOutcome::Denied
    );
    // The attacker tries again at once: nothing is pushed for Bobby to tap by mistake.
    let (browser, page) = sign_in_from(&server, &bobby.upn, None).await;
    nothing_pushed(&mut stream).await;
    assert!(
        unescape(&page.body).contains(PULL_INSTRUCTION),
        "{}",
        page.body
    );
    // A real sign-in by Bobby still works: he opens the app and approves.
    let request = phone.only_request().await;
    approve_and_land(&mut phone, &request, &browser, &page).await;
    assert_eq!(
        newest_status(&server, &bobby.upn).await["additionalDetails"],
        "Notification not pushed: recent denial"
    );
}

#[tokio::test]
async fn members_of_an_excluded_group_are_pushed_even_from_a_new_country() {
    let Some((server, bobby, mut phone, mut stream)) = bobby_with_a_placed_server().await else {
        return;
    };
    let user = server
        .latchkey
        .directory
        .find_user(&bobby.upn)
        .await
        .unwrap();
    let group = server
        .group_with(
            json!({"displayName": "Travellers", "description": "Always on the move"}),
            &[user.id.as_str()],
        )
        .await;
    set_switch(
        &server,
        json!({"state": "enabled", "includeTarget": {"targetType": "group", "id": "all_users"},
               "excludeTarget": {"targetType": "group", "id": group["id"]}}),
    )
    .await;
    usual_sign_in(&server, &bobby, &mut phone, &mut stream, Some(LONDON)).await;
    let (browser, page) = sign_in_from(&server, &bobby.upn, Some(SYDNEY)).await;
    assert!(page.body.contains(PUSHED_INSTRUCTION), "{}", page.body);
    let request = pushed(&mut stream).await;
    approve_and_land(&mut phone, &request, &browser, &page).await;
    let (_, effective) = server
        .api_call(
            Method::GET,
            &format!("/users/{}/effectivePolicy", bobby.upn),
            None,
        )
        .await;
    let feature = effective["value"][0]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "suppressAnomalousNotifications")
        .cloned()
        .unwrap();
    assert_eq!(feature["enabled"], false, "{feature}");
    assert!(
        feature["reason"]
            .as_str()
            .unwrap()
            .contains("excluded by group Travellers"),
        "{feature}"
    );
}

#[tokio::test]
async fn the_switch_round_trips_through_the_policy_api_and_older_clients_still_save() {
    let server = TestServer::start().await;
    let (status, config) = server.api_call(Method::GET, AUTHENTICATOR, None).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(
        config["featureSettings"]["suppressAnomalousNotificationsState"],
        json!({"state": "default", "includeTarget": {"targetType": "group", "id": "all_users"}}),
        "opt-in: `default`, which is off"
    );
    switch_on(&server).await;
    let (_, config) = server.api_call(Method::GET, AUTHENTICATOR, None).await;
    assert_eq!(
        config["featureSettings"]["suppressAnomalousNotificationsState"]["state"],
        "enabled"
    );
    // A client that knows nothing of the switch PUTs the configuration without it: accepted,
    // and the switch goes back to its default.
    let mut older = config.clone();
    older["featureSettings"]
        .as_object_mut()
        .unwrap()
        .remove("suppressAnomalousNotificationsState");
    let (status, saved) = server
        .api_call(Method::PUT, AUTHENTICATOR, Some(older))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        saved["featureSettings"]["suppressAnomalousNotificationsState"]["state"],
        "default"
    );
    // And the saved policy loads again after a restart.
    let server = server.restart().await;
    let (status, config) = server.api_call(Method::GET, AUTHENTICATOR, None).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(
        config["featureSettings"]["suppressAnomalousNotificationsState"]["state"],
        "default"
    );
}

#[tokio::test]
async fn a_malformed_switch_value_is_refused_naming_the_field_and_nothing_changes() {
    let server = TestServer::start().await;
    let before = server.latchkey.governance.policy().await.unwrap();
    for (setting, expected) in [
        (
            json!({"state": "sometimes"}),
            "featureSettings.suppressAnomalousNotificationsState",
        ),
        (
            json!({"state": "enabled", "excludeTarget": {"targetType": "group", "id": "all_users"}}),
            "featureSettings.excludeTarget",
        ),
        (
            json!({"state": "enabled", "includeTarget": {"targetType": "group", "id": "no-such-group"}}),
            "featureSettings.includeTarget",
        ),
        (json!("on"), "suppressAnomalousNotificationsState"),
    ] {
        let (status, body) = server
            .api_call(
                Method::PATCH,
                AUTHENTICATOR,
                Some(json!({"featureSettings": {"suppressAnomalousNotificationsState": setting}})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid_input", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{message} should name {expected}"
        );
    }
    assert_eq!(server.latchkey.governance.policy().await.unwrap(), before);
}

#[tokio::test]
async fn an_administrator_turns_the_switch_on_in_the_console() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let admin = crate::console::admin_browser(&server, &people).await;
    let page = admin.get("/admin/policies/authenticator/configure").await;
    assert_eq!(page.status, 200);
    let text = unescape(&page.body);
    assert!(
        text.contains("Don't push notifications for unusual sign-ins"),
        "{text}"
    );
    assert!(text.contains("A user's first sign-in is always pushed."));
    for field in ["state", "include", "exclude"] {
        assert!(
            page.body
                .contains(&format!("name=\"suppressAnomalousNotifications.{field}\"")),
            "the switch has a {field} select"
        );
    }
    let contractors = server
        .latchkey
        .directory
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the demo tenant has a group");
    let saved = admin
        .post(
            "/admin/policies/authenticator/configure",
            &[
                ("csrf", &page.csrf()),
                ("suppressAnomalousNotifications.state", "enabled"),
                ("suppressAnomalousNotifications.include", "all_users"),
                (
                    "suppressAnomalousNotifications.exclude",
                    contractors.id.as_str(),
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let setting = server
        .latchkey
        .governance
        .policy()
        .await
        .unwrap()
        .authenticator
        .feature_settings
        .suppress_anomalous_notifications_state;
    assert_eq!(
        setting.state,
        latchkey_domain::policy::FeatureState::Enabled
    );
    assert_eq!(
        setting.exclude_target,
        Some(latchkey_domain::policy::Target::Group(contractors.id))
    );
}
