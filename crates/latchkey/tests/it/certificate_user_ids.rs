//! The admin API for certificate user ids: `GET`/`PUT /api/v1/users/{id}/certificateUserIds`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

const PATH: &str = "/users/alice@contoso.example/certificateUserIds";

async fn put(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.api_call(Method::PUT, path, Some(body)).await
}

#[tokio::test]
async fn certificate_user_ids_are_set_read_normalised_and_audited() {
    let server = TestServer::start().await;
    server.user("alice", "Alice").await;
    let (status, empty) = server.api_call(Method::GET, PATH, None).await;
    assert_eq!((status, empty), (200, json!({"certificateUserIds": []})));
    let (status, saved) = put(
        &server,
        PATH,
        json!({"certificateUserIds": ["X509:<PN>Alice@Contoso.example", "X509:<SKI>ABCDEF01"]}),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let expected = json!({"certificateUserIds":
        ["X509:<PN>alice@contoso.example", "X509:<SKI>abcdef01"]});
    assert_eq!(saved, expected);
    assert_eq!(server.api_call(Method::GET, PATH, None).await.1, expected);
    let typed = server
        .admin()
        .certificate_user_ids("alice@contoso.example")
        .await
        .unwrap();
    assert_eq!(typed.certificate_user_ids.len(), 2);
    let audits = server
        .admin()
        .directory_audits(&Default::default())
        .await
        .unwrap();
    let audit = audits
        .iter()
        .find(|a| a.activity == "Update certificate user ids")
        .expect("the change is audited");
    assert_eq!(audit.after.as_ref().unwrap(), &expected);
}

#[tokio::test]
async fn malformed_certificate_user_ids_are_refused_with_nothing_saved() {
    let server = TestServer::start().await;
    server.user("alice", "Alice").await;
    let too_long = format!("X509:<PN>{}@contoso.example", "a".repeat(1024));
    let six: Vec<String> = (0..6)
        .map(|i| format!("X509:<PN>u{i}@contoso.example"))
        .collect();
    for body in [
        json!({"certificateUserIds": ["alice@contoso.example"]}),
        json!({"certificateUserIds": ["X509:<SKI>not-hex"]}),
        json!({"certificateUserIds": [too_long]}),
        json!({"certificateUserIds": six}),
        json!({"certificateUserIds": ["X509:<PN>a@b.example", "X509:<PN>A@B.example"]}),
        json!({"certificateUserIds": "X509:<PN>a@b.example"}),
        json!({"certificateUserIds": [], "extra": true}),
        json!({}),
    ] {
        let (status, answer) = put(&server, PATH, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
    }
    assert_eq!(
        server.api_call(Method::GET, PATH, None).await.1,
        json!({"certificateUserIds": []})
    );
}

#[tokio::test]
async fn an_oversized_certificate_user_ids_body_is_refused() {
    let server = TestServer::start().await;
    server.user("alice", "Alice").await;
    let huge = "a".repeat(3 * 1024 * 1024);
    let (status, _) = put(&server, PATH, json!({"certificateUserIds": [huge]})).await;
    assert!(status == 413 || status == 400, "status {status}");
}

/// One id on two accounts would let one certificate sign in as either.
#[tokio::test]
async fn a_certificate_user_id_taken_by_another_user_is_a_conflict() {
    let server = TestServer::start().await;
    server.user("alice", "Alice").await;
    server.user("bobby", "Bobby").await;
    let body = json!({"certificateUserIds": ["X509:<SKI>abcd"]});
    assert_eq!(put(&server, PATH, body.clone()).await.0, 200);
    let (status, answer) = put(
        &server,
        "/users/bobby@contoso.example/certificateUserIds",
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    // Replaying the same PUT for its owner changes nothing and succeeds.
    assert_eq!(put(&server, PATH, body).await.0, 200);
}

#[tokio::test]
async fn certificate_user_ids_of_an_unknown_user_are_not_found() {
    let server = TestServer::start().await;
    let path = "/users/nobody@contoso.example/certificateUserIds";
    assert_eq!(server.api_call(Method::GET, path, None).await.0, 404);
    let (status, _) = put(&server, path, json!({"certificateUserIds": []})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_administrator_edits_certificate_user_ids_on_the_user_page() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let admin = crate::console::admin_browser(&server, &people).await;
    let bobby = crate::support::demo_person(&people, "Bobby Smith");
    let page_path = format!("/admin/users/{}", bobby.user.id);
    let page = admin.get(&page_path).await;
    assert!(page.body.contains("Certificate user ids"), "{}", page.body);
    let form = format!("{page_path}/certificateUserIds");
    let saved = admin
        .post(
            &form,
            &[
                ("csrf", &page.csrf()),
                (
                    "certificate_user_ids",
                    "X509:<PN>Bobby@Contoso.example\n\nX509:<SKI>AB12\n",
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = admin.get(&page_path).await;
    assert!(
        page.body.contains("X509:&#60;PN&#62;bobby@contoso.example")
            && page.body.contains("X509:&#60;SKI&#62;ab12"),
        "{}",
        page.body
    );
    let refused = admin
        .post(
            &form,
            &[
                ("csrf", &page.csrf()),
                ("certificate_user_ids", "bobby@contoso.example"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("is not a certificate user id"),
        "{}",
        refused.body
    );
    assert_eq!(
        server
            .latchkey
            .directory
            .certificate_user_ids(&bobby.user.id)
            .await
            .unwrap(),
        vec!["X509:<PN>bobby@contoso.example", "X509:<SKI>ab12"],
        "the refused form changed nothing"
    );
}
