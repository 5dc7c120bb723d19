//! The authentication methods policy, the sign-in log and the audit log, over the admin API and
//! through real sign-ins.

use latchkey_domain::credential::PassRequest;
use latchkey_domain::log::Actor;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, geoip_databases, text_of};

const AUTHENTICATOR: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/authenticator";
const PASS_CONFIG: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass";

async fn sign_ins(server: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = server
        .api_call(Method::GET, &format!("/auditLogs/signIns?{query}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["value"].as_array().unwrap().clone()
}

#[tokio::test]
async fn lab_steps_1_and_4_through_the_api_change_bobbys_effective_policy() {
    let server = TestServer::start().await;
    latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let (status, policy) = server
        .api_call(Method::GET, "/policies/authenticationMethodsPolicy", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        policy["authenticationMethodConfigurations"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Before: the pilot group is excluded and the authenticator is push-only for everyone else.
    let (_, groups) = server.api_call(Method::GET, "/groups", None).await;
    let pilot = groups["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == "Passwordless Pilot")
        .unwrap()["id"]
        .clone();
    let (status, body) = server
        .api_call(Method::PATCH, AUTHENTICATOR, Some(json!({"excludeTargets": [{"targetType": "group", "id": pilot}],
            "includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "push"}]})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, effective) = server
        .api_call(
            Method::GET,
            "/users/bobby@latchkey.test/effectivePolicy",
            None,
        )
        .await;
    let authenticator = &effective["value"][0];
    assert_eq!(authenticator["allowed"], false);
    assert!(
        authenticator["reason"]
            .as_str()
            .unwrap()
            .contains("Passwordless Pilot"),
        "{authenticator}"
    );

    // Step 1: Enable, Target all users, Authentication mode Any.
    let step1 = json!({"state": "enabled", "excludeTargets": [],
        "includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "any"}]});
    let (status, body) = server
        .api_call(Method::PATCH, AUTHENTICATOR, Some(step1))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, effective) = server
        .api_call(
            Method::GET,
            "/users/bobby@latchkey.test/effectivePolicy",
            None,
        )
        .await;
    assert_eq!(effective["value"][0]["allowed"], true);
    assert_eq!(effective["value"][0]["mode"], "any");

    // Step 4: number matching, application name and location, enabled for all users.
    let enabled =
        json!({"state": "enabled", "includeTarget": {"targetType": "group", "id": "all_users"}});
    let step4 = json!({"featureSettings": {
        "numberMatchingRequiredState": enabled,
        "displayAppInformationRequiredState": enabled,
        "displayLocationInformationRequiredState": enabled}});
    let (status, body) = server
        .api_call(Method::PATCH, AUTHENTICATOR, Some(step4))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["featureSettings"]["displayLocationInformationRequiredState"]["state"],
        "enabled"
    );
    let (_, effective) = server
        .api_call(
            Method::GET,
            "/users/bobby@latchkey.test/effectivePolicy",
            None,
        )
        .await;
    let features = effective["value"][0]["features"].as_array().unwrap();
    // Everything a notification shows is on; holding back unusual ones stays opt-in (off).
    assert!(
        features
            .iter()
            .all(|f| (f["enabled"] == true) != (f["feature"] == "suppressAnomalousNotifications")),
        "{features:?}"
    );
    assert!(features.iter().any(|f| {
        f["reason"]
            .as_str()
            .unwrap()
            .contains("enabled for all users")
    }));

    // Every change is in the audit log with before and after.
    let (_, audit) = server
        .api_call(
            Method::GET,
            "/auditLogs/directoryAudits?category=Policy",
            None,
        )
        .await;
    let events = audit["value"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[0]["actor"], "api-token:initial",
        "the token used is named in the audit log"
    );
    assert_eq!(
        events[0]["after"]["featureSettings"]["displayAppInformationRequiredState"]["state"],
        "enabled"
    );
    assert_eq!(
        events[0]["before"]["featureSettings"]["displayAppInformationRequiredState"]["state"],
        "default"
    );
}

#[tokio::test]
async fn refused_policy_changes_leave_the_stored_policy_byte_for_byte_unchanged() {
    let server = TestServer::start().await;
    let (_, before) = server
        .api_call(Method::GET, "/policies/authenticationMethodsPolicy", None)
        .await;
    let refusals = [
        (
            AUTHENTICATOR,
            json!({"includeTargets": [{"targetType": "group", "id": "no-such-group", "authenticationMode": "any"}]}),
            "group",
        ),
        (
            AUTHENTICATOR,
            json!({"featureSettings": {"numberMatchingRequiredState": {"state": "disabled", "includeTarget": {"targetType": "group", "id": "all_users"}}}}),
            "numberMatching",
        ),
        (AUTHENTICATOR, json!({"surprise": true}), "surprise"),
        (AUTHENTICATOR, json!({"state": "maybe"}), "maybe"),
        (
            PASS_CONFIG,
            json!({"minimumLifetimeInMinutes": 500}),
            "minimumLifetimeInMinutes",
        ),
        (PASS_CONFIG, json!({"defaultLength": "eight"}), "eight"),
    ];
    for (path, patch, names) in refusals {
        let (status, body) = server
            .api_call(Method::PATCH, path, Some(patch.clone()))
            .await;
        assert_eq!(status, 400, "{patch} → {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(names),
            "{patch} → {body}"
        );
    }
    let (status, _) = server
        .api_call(
            Method::PATCH,
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/sms",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400, "unknown methods are refused");
    let (_, after) = server
        .api_call(Method::GET, "/policies/authenticationMethodsPolicy", None)
        .await;
    assert_eq!(before.to_string(), after.to_string());
    let (_, audit) = server
        .api_call(
            Method::GET,
            "/auditLogs/directoryAudits?category=Policy",
            None,
        )
        .await;
    assert_eq!(
        audit["value"].as_array().unwrap().len(),
        0,
        "refused changes are not audited as changes"
    );
}

#[tokio::test]
async fn resetting_a_method_restores_its_documented_default() {
    let server = TestServer::start().await;
    let (_, default) = server.api_call(Method::GET, PASS_CONFIG, None).await;
    let (status, _) = server
        .api_call(
            Method::PATCH,
            PASS_CONFIG,
            Some(json!({"isUsableOnce": true, "defaultLength": 12})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, reset) = server.api_call(Method::DELETE, PASS_CONFIG, None).await;
    assert_eq!(status, 200);
    assert_eq!(reset, default);
}

#[tokio::test]
async fn policy_is_enforced_at_sign_in_and_when_issuing_passes() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    let group = server
        .group_with(
            json!({"displayName": "Contractors"}),
            &["bobby@contoso.example"],
        )
        .await;
    let (status, body) = server
        .api_call(
            Method::PATCH,
            PASS_CONFIG,
            Some(json!({"excludeTargets": [{"targetType": "group", "id": group["id"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let browser = server.browser();
    let answer = browser
        .sign_in_at("/login", "bobby@contoso.example", &pass)
        .await;
    assert_eq!(answer.status, 401);
    assert!(
        answer.body.contains("doesn&#39;t let your account")
            || answer.body.contains("doesn't let your account"),
        "{}",
        answer.body
    );
    let records = sign_ins(&server, "user=bobby@contoso.example").await;
    assert_eq!(records[0]["status"]["errorCode"], 900010);

    // The pass rules come from the policy.
    server.api_call(Method::DELETE, PASS_CONFIG, None).await;
    server
        .api_call(
            Method::PATCH,
            PASS_CONFIG,
            Some(json!({"defaultLength": 12})),
        )
        .await;
    let (_, secret) = server
        .latchkey
        .directory
        .issue_pass(&Actor::system(), &bobby, &PassRequest::default())
        .await
        .unwrap();
    assert_eq!(secret.expose().len(), 12);
}

#[tokio::test]
async fn every_sign_in_outcome_is_in_the_sign_in_log_with_its_location() {
    let Some(databases) = geoip_databases() else {
        return;
    };
    let server = TestServer::start_with(|config| {
        config.geoip.databases = databases;
        config.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    let guy = server.user("guy", "Guy Oz").await;
    let pass = server.pass(&bobby).await;
    // Success, from Sydney (1.1.1.1 through the trusted proxy).
    let sydney = server.browser_from("1.1.1.1");
    let through_my_apps = sydney.follow(sydney.get("/myapps").await).await;
    let ok = sydney
        .sign_in_with_pass(through_my_apps, "bobby@contoso.example", &pass)
        .await;
    assert_eq!(ok.status, 303);
    // Wrong pass for a known user, and for a name that matches nobody.
    let b = server.browser_from("8.8.8.8");
    b.sign_in_at("/login", "bobby@contoso.example", "WRONGpass")
        .await;
    let b = server.browser();
    b.sign_in_at("/login", "nobody@contoso.example", "WRONGpass")
        .await;
    // A pass that is not valid yet.
    let start = server.latchkey.now().0 + 3600;
    let later = server
        .pass_with(
            &guy,
            PassRequest {
                start_date_time: Some(start),
                ..Default::default()
            },
        )
        .await;
    let b = server.browser();
    b.sign_in_at("/login", "guy@contoso.example", &later).await;
    // A disabled user with the right pass.
    let guy_pass = server.pass(&guy).await;
    server.disable_user(&guy).await;
    let b = server.browser();
    b.sign_in_at("/login", "guy@contoso.example", &guy_pass)
        .await;

    let records = sign_ins(&server, "").await;
    assert_eq!(records.len(), 5, "{records:#?}");
    let codes: Vec<u64> = records
        .iter()
        .map(|r| r["status"]["errorCode"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, vec![50057, 900002, 50126, 50126, 0], "newest first");
    let success = &records[4];
    assert_eq!(success["userPrincipalName"], "bobby@contoso.example");
    assert_eq!(success["appDisplayName"], "My Apps");
    assert_eq!(success["ipAddress"], "1.1.1.1");
    assert_eq!(success["location"]["city"], "Sydney");
    assert_eq!(success["authenticationMethod"], "temporaryAccessPass");
    assert_eq!(success["authenticationDetails"][0]["succeeded"], true);
    assert_eq!(records[3]["location"]["city"], "Mountain View");
    assert_eq!(records[2]["userPrincipalName"], "nobody@contoso.example");
    assert!(records[2]["userId"].is_null());
    assert!(
        records[2]["ipAddress"]
            .as_str()
            .unwrap()
            .starts_with("127."),
        "no proxy header: the peer address"
    );

    // Filters, paging and exports.
    assert_eq!(sign_ins(&server, "status=failure").await.len(), 4);
    assert_eq!(
        sign_ins(&server, "status=success&user=BOBBY@contoso.example")
            .await
            .len(),
        1
    );
    assert_eq!(sign_ins(&server, "top=2&skip=4").await.len(), 1);
    assert_eq!(sign_ins(&server, "since=1h").await.len(), 5);
    assert_eq!(sign_ins(&server, "until=2000-01-01").await.len(), 0);
    let csv = server
        .api()
        .get(format!(
            "{}/api/v1/auditLogs/signIns?format=csv",
            server.base
        ))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 6);
    assert!(csv.contains("\"Sydney\""));
    let jsonl = text_of(
        server
            .api()
            .get(format!(
                "{}/api/v1/auditLogs/signIns?format=jsonl",
                server.base
            ))
            .bearer_auth(&server.admin_token),
    )
    .await;
    assert_eq!(
        jsonl
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok())
            .count(),
        5
    );
    for bad in [
        "since=yesterday",
        "status=maybe",
        "format=xml",
        "top=5000",
        "colour=blue",
    ] {
        let (status, body) = server
            .api_call(Method::GET, &format!("/auditLogs/signIns?{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_client_cannot_spoof_its_location_without_a_trusted_proxy() {
    let Some(databases) = geoip_databases() else {
        return;
    };
    let server = TestServer::start_with(|config| config.geoip.databases = databases).await;
    let (_, pass) = server.bobby_with_pass().await;
    let b = server.browser_from("1.1.1.1");
    b.sign_in_at("/login", "bobby@contoso.example", &pass).await;
    let records = sign_ins(&server, "").await;
    assert!(
        records[0]["ipAddress"]
            .as_str()
            .unwrap()
            .starts_with("127."),
        "the header is ignored: {}",
        records[0]
    );
    assert!(records[0]["location"].is_null());
}

#[tokio::test]
async fn administrative_changes_are_audited_without_secrets() {
    let server = TestServer::start().await;
    let (_, user) = server
        .api_call(
            Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "ann@contoso.example", "displayName": "Ann"})),
        )
        .await;
    let (_, pass) = server
        .api_call(
            Method::POST,
            "/users/ann@contoso.example/temporaryAccessPass",
            None,
        )
        .await;
    let (_, app) = server
        .api_call(
            Method::POST,
            "/applications",
            Some(json!({"displayName": "Wiki", "redirectUris": ["https://wiki.example/cb"]})),
        )
        .await;
    server
        .api_call(
            Method::PATCH,
            &format!("/users/{}", user["id"].as_str().unwrap()),
            Some(json!({"accountEnabled": false})),
        )
        .await;
    let response = server
        .api()
        .get(format!(
            "{}/api/v1/auditLogs/directoryAudits?format=jsonl",
            server.base
        ))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let activities: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["activity"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        activities[..4],
        [
            "Disable user",
            "Add application",
            "Create Temporary Access Pass",
            "Add user"
        ]
    );
    // First start: the administrators group and the token named "initial".
    let mut first_start = activities[4..].to_vec();
    first_start.sort();
    assert_eq!(first_start, ["Add group", "Create administrator API token"]);
    assert!(
        !text.contains(&server.admin_token),
        "nor the administrator token"
    );
    assert!(
        !text.contains(pass["temporaryAccessPass"].as_str().unwrap()),
        "the pass never reaches the audit log"
    );
    assert!(
        !text.contains(app["clientSecret"].as_str().unwrap()),
        "nor the client secret"
    );
}

#[tokio::test]
async fn a_change_based_on_an_old_version_is_refused_with_412() {
    let server = TestServer::start().await;
    let response = server
        .api()
        .get(format!("{}/api/v1{AUTHENTICATOR}", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let patch = |tag: &str| {
        server
            .api()
            .patch(format!("{}/api/v1{AUTHENTICATOR}", server.base))
            .bearer_auth(&server.admin_token)
            .header("if-match", tag.to_string())
            .json(&json!({"state": "disabled"}))
            .send()
    };
    assert_eq!(
        patch(&etag).await.unwrap().status(),
        200,
        "the first change based on the current version"
    );
    let stale = patch(&etag).await.unwrap();
    assert_eq!(
        stale.status(),
        412,
        "a second change based on the same, now old, version"
    );
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"]["code"], "precondition_failed");
}
