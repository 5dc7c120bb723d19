//! The administrator role and stored passes: who may use the console is decided by a bound
//! group id, not a display name; a stored pass is a keyed hash, useless without the server key.

use reqwest::Method;
use serde_json::json;

use latchkey_domain::ids::UserId;
use latchkey_domain::secret::TokenHash;

use crate::support::{Browser, TestServer};

/// Signs `upn` in with `pass` on the way to the console; returns the browser and the console's
/// answer.
async fn console_as(server: &TestServer, upn: &str, pass: &str) -> (Browser, u16) {
    let browser = server.browser();
    let answer = browser
        .sign_in_at("/login?return_to=/admin", upn, pass)
        .await;
    assert_eq!(
        answer.location.as_deref(),
        Some("/admin"),
        "{}",
        answer.body
    );
    let console = browser.get("/admin").await;
    (browser, console.status)
}

#[tokio::test]
async fn a_group_created_with_the_administrators_name_does_not_grant_the_console() {
    let server = TestServer::start().await;
    let mallory = server.user("mallory", "Mallory").await;
    let pass = server.pass(&mallory).await;
    // Every spelling an attacker might try; whichever the server lets them create, they join.
    for name in [
        "Latchkey Administrators",
        "latchkey administrators",
        "LATCHKEY ADMINISTRATORS",
    ] {
        let (status, group) = server
            .api_call(Method::POST, "/groups", Some(json!({"displayName": name})))
            .await;
        assert!(status == 201 || status == 409, "{status} {group}");
        if status == 201 {
            let id = group["id"].as_str().unwrap();
            let (status, _) = server
                .api_call(
                    Method::POST,
                    &format!("/groups/{id}/members"),
                    Some(json!({"userId": mallory.as_str()})),
                )
                .await;
            assert_eq!(status, 204);
        }
    }
    let (_, status) = console_as(&server, "mallory@contoso.example", &pass).await;
    assert_eq!(
        status, 403,
        "a look-alike group is not the administrator role"
    );
}

#[tokio::test]
async fn a_stored_pass_is_a_keyed_hash_not_the_sha256_of_the_pass() {
    let server = TestServer::start().await;
    let bobby = server.user("bobby", "Bobby Smith").await;
    let (status, answer) = server
        .api_call(
            Method::POST,
            &format!("/users/{bobby}/temporaryAccessPass"),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let pass = answer["temporaryAccessPass"].as_str().unwrap().to_string();
    let stored = server
        .latchkey
        .directory
        .pass_for_user(&UserId::from_string(bobby.as_str()))
        .await
        .unwrap()
        .expect("a stored pass");
    assert_ne!(
        stored.hash.as_str(),
        TokenHash::of(&pass).as_str(),
        "a copy of the database must not let anyone test guesses offline"
    );
    assert!(!stored.hash.as_str().contains(&pass));
    // The pass still works.
    let browser = server.browser();
    let answer = browser
        .sign_in_at(
            "/login?return_to=/mysecurityinfo",
            "bobby@contoso.example",
            &pass,
        )
        .await;
    assert_eq!(
        answer.location.as_deref(),
        Some("/mysecurityinfo"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn the_administrator_role_follows_the_bound_group_id_not_its_name() {
    use latchkey_domain::log::Actor;

    let server = TestServer::start().await;
    let alice = server.user("alice", "Alice").await;
    let alice_pass = server.pass(&alice).await;
    let mallory = server.user("mallory", "Mallory").await;
    let mallory_pass = server.pass(&mallory).await;
    let named = server
        .latchkey
        .governance
        .administrators_group()
        .await
        .unwrap()
        .expect("bound at first start");
    assert_eq!(named.display_name, "Latchkey Administrators");
    let ops = server
        .latchkey
        .directory
        .create_group(&Actor::system(), "Operations", "")
        .await
        .unwrap();
    server
        .latchkey
        .directory
        .add_group_member(&Actor::system(), &ops.id, &alice)
        .await
        .unwrap();
    server
        .latchkey
        .directory
        .add_group_member(&Actor::system(), &named.id, &mallory)
        .await
        .unwrap();
    let (_, status) = console_as(&server, "mallory@contoso.example", &mallory_pass).await;
    assert_eq!(status, 200, "the bound group grants the console");

    // By name, or with anything but a group id, the role does not move.
    for body in [
        json!({"groupId": "Operations"}),
        json!({"groupId": ""}),
        json!({"groupId": "x".repeat(300)}),
    ] {
        let (status, _) = server
            .api_call(Method::PUT, "/administratorRole", Some(body))
            .await;
        assert_eq!(status, 404);
    }
    let (status, _) = server
        .api_call(
            Method::PUT,
            "/administratorRole",
            Some(json!({"groupId": ops.id, "role": "all"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, role) = server
        .api_call(
            Method::PUT,
            "/administratorRole",
            Some(json!({"groupId": ops.id})),
        )
        .await;
    assert_eq!(status, 200, "{role}");
    let (_, role) = server
        .api_call(Method::GET, "/administratorRole", None)
        .await;
    assert_eq!(role["displayName"], "Operations");
    let (_, status) = console_as(&server, "mallory@contoso.example", &mallory_pass).await;
    assert_eq!(
        status, 403,
        "the group still called Latchkey Administrators no longer grants it"
    );
    let (_, status) = console_as(&server, "alice@contoso.example", &alice_pass).await;
    assert_eq!(
        status, 200,
        "the group the role is bound to does, whatever its name"
    );
}
