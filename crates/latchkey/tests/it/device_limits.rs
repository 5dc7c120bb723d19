//! The limits on adding the authenticator app: at most ten apps per user, even when many
//! activation codes are redeemed at the same moment, and at most five activations open at once.

use latchkey_domain::authenticator::{ACTIVATION_LIFETIME_SECONDS, Activation};
use latchkey_domain::ids::ActivationId;
use latchkey_domain::secret::{TokenHash, random_token};
use latchkey_domain::service::{MAX_DEVICES_PER_USER, MAX_OPEN_ACTIVATIONS_PER_USER};
use latchkey_protocol::ActivationLink;
use reqwest::Method;

use crate::phone::{Person, unescape};
use crate::support::TestServer;

#[tokio::test]
async fn thirteen_activations_redeemed_in_parallel_give_at_most_ten_devices() {
    let server = TestServer::start().await;
    let user = server.user("bobby", "Bobby Smith").await;
    // Thirteen codes already open (as thirteen activation pages were before the limit on open
    // activations): written straight to the store, so only the device limit stands between
    // them and thirteen devices.
    let now = server.latchkey.now();
    let store = server.store_to_plant().await;
    let mut links = Vec::new();
    for _ in 0..13 {
        let code = random_token();
        store
            .put_activation(&Activation {
                id: ActivationId::random(),
                code_hash: TokenHash::of(code.expose()),
                user_id: user.clone(),
                created_at: now,
                expires_at: now.plus_seconds(ACTIVATION_LIFETIME_SECONDS),
                device_id: None,
                test_approval: None,
            })
            .await
            .unwrap();
        links.push(ActivationLink {
            server: server.base.clone(),
            code: code.expose().to_string(),
        });
    }
    let mut redemptions = tokio::task::JoinSet::new();
    for (i, link) in links.into_iter().enumerate() {
        redemptions.spawn(async move {
            let home = tempfile::tempdir().unwrap();
            let mut app = latchkey_authenticator::Authenticator::open(home.path()).unwrap();
            app.add(&link, &format!("Phone {i}"))
                .await
                .map(|_| ())
                .map_err(|e| (e.code().map(str::to_string), e.to_string()))
        });
    }
    let (mut added, mut refused) = (0, Vec::new());
    while let Some(result) = redemptions.join_next().await {
        match result.unwrap() {
            Ok(()) => added += 1,
            Err(why) => refused.push(why),
        }
    }
    let devices = server.latchkey.devices.devices(&user).await.unwrap();
    assert!(
        devices.len() <= MAX_DEVICES_PER_USER,
        "{} devices registered",
        devices.len()
    );
    assert_eq!(added, devices.len(), "every success is a device");
    assert_eq!(refused.len(), 13 - added);
    for (code, message) in &refused {
        assert_eq!(code.as_deref(), Some("too_many_devices"), "{message}");
        assert!(
            message.contains("already has 10 authenticator apps"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_sixth_open_activation_is_refused_with_a_clear_message() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    for _ in 0..MAX_OPEN_ACTIVATIONS_PER_USER {
        bobby.start_adding_the_app().await;
    }
    // The security-info page says why and what to do.
    let info = bobby.browser.get("/mysecurityinfo").await;
    let sixth = bobby
        .browser
        .post("/mysecurityinfo/authenticator", &[("csrf", &info.csrf())])
        .await;
    assert_eq!(sixth.status, 400, "{}", sixth.body);
    let text = unescape(&sixth.body);
    assert!(
        text.contains("You already have 5 authenticator app activations waiting to be used"),
        "{text}"
    );
    assert!(!text.contains("activation-link"), "no new code is shown");
    // So does the admin API, for the same user.
    let (status, body) = server
        .api_call(
            Method::POST,
            &format!("/users/{}/authenticatorActivations", bobby.upn),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wait 10 minutes for them to expire"),
        "{body}"
    );
    // Another user is not affected.
    let (_, adele) = server
        .api_call(
            Method::POST,
            "/users",
            Some(serde_json::json!({"userPrincipalName": "adele@contoso.example", "displayName": "Adele"})),
        )
        .await;
    let (status, body) = server
        .api_call(
            Method::POST,
            &format!(
                "/users/{}/authenticatorActivations",
                adele["userPrincipalName"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
