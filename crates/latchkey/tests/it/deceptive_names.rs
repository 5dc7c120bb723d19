//! Names that reorder or break the text around them: a right-to-left override makes
//! "Contoso\u{202E}nimda" read "Contosoadmin", and a line separator draws one name as two lines
//! (a fake prompt under a device or application name). Such names are refused wherever a name
//! is set: users, groups and applications through the admin API, devices at activation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

/// One name per kind of character refused: an override, an embedding, an isolate and both
/// separators.
const DECEPTIVE: [&str; 5] = [
    "Contoso\u{202E}nimda",
    "Contoso\u{202B}Expenses",
    "Payroll \u{2067}team\u{2069}",
    "Bobby\u{2028}Approve this sign-in",
    "Expenses\u{2029}Type 42 to continue",
];

fn refused_for_reordering(status: u16, body: &Value) {
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("bidirectional") && message.contains("separators"),
        "the error says what is wrong: {body}"
    );
}

#[tokio::test]
async fn display_and_application_names_with_bidi_overrides_or_line_separators_are_refused() {
    let server = TestServer::start().await;
    for name in DECEPTIVE {
        let (status, body) = server
            .api_call(
                Method::POST,
                "/users",
                Some(json!({"userPrincipalName": "mallory@contoso.example", "displayName": name})),
            )
            .await;
        refused_for_reordering(status, &body);
        let (status, body) = server
            .api_call(
                Method::POST,
                "/applications",
                Some(json!({"displayName": name, "redirectUris": ["https://app.contoso.example/cb"]})),
            )
            .await;
        refused_for_reordering(status, &body);
        let (status, body) = server
            .api_call(Method::POST, "/groups", Some(json!({"displayName": name})))
            .await;
        refused_for_reordering(status, &body);
    }
    // Renaming an existing user is checked the same way, and changes nothing.
    let (status, bobby) = server
        .api_call(
            Method::POST,
            "/users",
            Some(
                json!({"userPrincipalName": "bobby@contoso.example", "displayName": "Bobby Smith"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{bobby}");
    let (status, body) = server
        .api_call(
            Method::PATCH,
            "/users/bobby@contoso.example",
            Some(json!({"displayName": "Bobby\u{202E}nimda"})),
        )
        .await;
    refused_for_reordering(status, &body);
    let (_, after) = server
        .api_call(Method::GET, "/users/bobby@contoso.example", None)
        .await;
    assert_eq!(after["displayName"], "Bobby Smith");
    let (_, users) = server.api_call(Method::GET, "/users", None).await;
    assert_eq!(users["value"].as_array().unwrap().len(), 1, "{users}");
    let (_, apps) = server.api_call(Method::GET, "/applications", None).await;
    assert!(
        apps["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["displayName"] == "My Apps"),
        "{apps}"
    );
    // Right-to-left scripts are names like any other.
    let (status, body) = server
        .api_call(
            Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "dana@contoso.example", "displayName": "דנה לוי"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_device_name_with_a_bidi_override_or_line_separator_is_refused_at_activation() {
    let server = TestServer::start().await;
    let (status, body) = server
        .api_call(
            Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "bobby@contoso.example", "displayName": "Bobby"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, issued) = server
        .api_call(
            Method::POST,
            "/users/bobby@contoso.example/authenticatorActivations",
            None,
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let link = latchkey_protocol::ActivationLink::parse(issued["activationLink"].as_str().unwrap())
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut app = latchkey_authenticator::Authenticator::open(home.path()).unwrap();
    for name in DECEPTIVE {
        let refused = app.add(&link, name).await.expect_err("refused");
        assert_eq!(refused.code(), Some("invalid_input"), "{refused}");
        assert!(refused.to_string().contains("bidirectional"), "{refused}");
    }
    let user = server
        .latchkey
        .directory
        .find_user("bobby@contoso.example")
        .await
        .unwrap();
    assert!(
        server
            .latchkey
            .devices
            .devices(&user.id)
            .await
            .unwrap()
            .is_empty()
    );
    // The refusals spent nothing: the same link still registers a plainly named device.
    let (_, test) = app.add(&link, "Bobby's phone").await.expect("activates");
    assert_eq!(
        test.kind,
        latchkey_protocol::wire::ApprovalKind::RegistrationTest
    );
}
