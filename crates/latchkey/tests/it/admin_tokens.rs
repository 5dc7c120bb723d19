//! Administrator API tokens: named, expiring, revocable, audited; and recovery on the data
//! directory when every token is lost.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, manual_clock, run_latchkey};

async fn create_token(server: &TestServer, body: Value) -> (u16, Value) {
    server
        .api_call_as(
            &server.admin_token,
            Method::POST,
            "/adminTokens",
            Some(body),
        )
        .await
}

async fn users_status(server: &TestServer, token: &str) -> u16 {
    server
        .api_call_as(token, Method::GET, "/users", None)
        .await
        .0
}

fn token_named(list: &Value, name: &str) -> Value {
    list["value"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["displayName"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no token named {name} in {list}"))
}

/// Revokes the token named `name`, listing and revoking with `token`; returns the status.
async fn revoke_named(server: &TestServer, token: &str, name: &str) -> u16 {
    let (_, list) = server
        .api_call_as(token, Method::GET, "/adminTokens", None)
        .await;
    let id = token_named(&list, name)["id"]
        .as_str()
        .expect("a token id")
        .to_string();
    let path = format!("/adminTokens/{id}/revoke");
    server.api_call_as(token, Method::POST, &path, None).await.0
}

#[tokio::test]
async fn a_revoked_admin_token_gets_401_on_its_next_request() {
    let server = TestServer::start().await;
    let (status, created) = create_token(&server, json!({"displayName": "ci pipeline"})).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"]
        .as_str()
        .expect("the token, shown once")
        .to_string();
    assert_eq!(users_status(&server, &secret).await, 200);

    let id = created["id"].as_str().unwrap();
    let (status, revoked) = server
        .api_call_as(
            &server.admin_token,
            Method::POST,
            &format!("/adminTokens/{id}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert!(
        revoked["token"].is_null(),
        "the secret is never shown again"
    );
    assert_eq!(users_status(&server, &secret).await, 401);

    let (_, list) = server
        .api_call_as(&server.admin_token, Method::GET, "/adminTokens", None)
        .await;
    assert_eq!(token_named(&list, "ci pipeline")["status"], "revoked");
    assert!(token_named(&list, "ci pipeline")["lastUsedDateTime"].is_string());
    assert_eq!(token_named(&list, "initial")["status"], "active");
    assert!(
        list.to_string().find("lk_admin_").is_none(),
        "no secret or hash in a listing: {list}"
    );

    let (_, audit) = server
        .api_call(
            Method::GET,
            "/auditLogs/directoryAudits?category=KeyManagement",
            None,
        )
        .await;
    let activities: Vec<&str> = audit["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["activity"].as_str())
        .collect();
    assert!(
        activities.contains(&"Create administrator API token")
            && activities.contains(&"Revoke administrator API token"),
        "{audit}"
    );
}

#[tokio::test]
async fn an_expired_admin_token_gets_401() {
    let clock = manual_clock();
    let server = TestServer::builder().clock(clock.clone()).start().await;
    let soon = latchkey_domain::clock::Timestamp(server.latchkey.now().0 + 2).to_rfc3339();
    let (status, created) = create_token(
        &server,
        json!({"displayName": "short-lived", "expiresDateTime": soon}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    assert_eq!(users_status(&server, &secret).await, 200);
    clock.advance(3);
    assert_eq!(users_status(&server, &secret).await, 401);
    let (_, list) = server
        .api_call_as(&server.admin_token, Method::GET, "/adminTokens", None)
        .await;
    assert_eq!(token_named(&list, "short-lived")["status"], "expired");
}

#[tokio::test]
async fn deleting_the_token_file_and_restarting_neither_revives_a_revoked_token_nor_mints_a_new_one()
 {
    let server = TestServer::start().await;
    let initial = server.admin_token.clone();
    let (_, created) = create_token(&server, json!({"displayName": "second"})).await;
    let second = created["token"].as_str().unwrap().to_string();
    let status = revoke_named(&server, &second, "initial").await;
    assert_eq!(status, 200);
    assert_eq!(users_status(&server, &initial).await, 401);

    let file = server.data_dir.path().join("admin-token");
    std::fs::remove_file(&file).unwrap();
    let server = server.restart().await;
    assert!(!file.exists(), "no new token is minted at start");
    assert_eq!(users_status(&server, &initial).await, 401);
    assert_eq!(users_status(&server, &second).await, 200);
}

fn latchkey_offline(data_dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let data_dir = data_dir.to_str().expect("a UTF-8 path");
    let offline = ["admin", "--offline", "--data-dir", data_dir];
    run_latchkey(offline.iter().chain(args))
}

// Multi-threaded: the command line blocks this test's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_token_is_lost_an_offline_command_on_the_data_directory_makes_one_that_works() {
    if crate::support::skipped_unless_sqlite(
        "this test gives `latchkey admin --offline` only the data directory, which names SQLite (first_hour covers --offline on PostgreSQL)",
    ) {
        return;
    }
    let mut server = TestServer::start().await;
    let initial = server.admin_token.clone();
    // The last token revokes itself: nothing can reach the admin API any more.
    let status = revoke_named(&server, &initial, "initial").await;
    assert_eq!(status, 200);
    assert_eq!(users_status(&server, &initial).await, 401);

    server.stop().await;
    let dir = server.data_dir.path().to_path_buf();
    let (code, out, err) = latchkey_offline(&dir, &["tokens", "create", "recovery"]);
    assert_eq!(code, 0, "{err}");
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("lk_admin_"))
        .unwrap_or_else(|| panic!("the new token is printed: {out}"))
        .to_string();
    let (code, out, err) = latchkey_offline(&dir, &["tokens", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("recovery") && out.contains("revoked"), "{out}");
    assert!(!out.contains(&secret));

    let server = server.restart().await;
    assert_eq!(users_status(&server, &secret).await, 200);
    assert_eq!(users_status(&server, &initial).await, 401);
    let (_, audit) = server
        .api_call_as(
            &secret,
            Method::GET,
            "/auditLogs/directoryAudits?category=KeyManagement",
            None,
        )
        .await;
    assert!(
        audit["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["activity"] == "Create administrator API token"
                && e["target"].to_string().contains("recovery")
                && e["actor"].to_string().contains("command-line")),
        "{audit}"
    );

    // An empty directory is not a data directory: nothing is created there.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = latchkey_offline(empty.path(), &["tokens", "create", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn admin_token_requests_with_bad_input_are_refused() {
    let server = TestServer::start().await;
    let long = "n".repeat(65);
    let past = latchkey_domain::clock::Timestamp(server.latchkey.now().0 - 60).to_rfc3339();
    for body in [
        json!({"displayName": ""}),
        json!({"displayName": "   "}),
        json!({"displayName": long}),
        json!({"displayName": "line\nbreak"}),
        json!({"displayName": "bidi\u{202e}txt"}),
        json!({"displayName": "x", "expiresDateTime": "tomorrow-ish"}),
        json!({"displayName": "x", "expiresDateTime": past}),
        json!({"displayName": "x", "expiresDateTime": "9999-01-01T00:00:00Z"}),
        json!({"displayName": "x", "scopes": ["all"]}),
        json!({}),
    ] {
        let (status, answer) = create_token(&server, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
    }
    let (status, _) = server
        .api()
        .post(format!("{}/api/v1/adminTokens", server.base))
        .bearer_auth(&server.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 400);

    let (_, created) = create_token(&server, json!({"displayName": "twice"})).await;
    let id = created["id"].as_str().unwrap();
    let revoke = |id: String| {
        let server = &server;
        async move {
            server
                .api_call_as(
                    &server.admin_token,
                    Method::POST,
                    &format!("/adminTokens/{id}/revoke"),
                    None,
                )
                .await
        }
    };
    assert_eq!(revoke(id.to_string()).await.0, 200);
    let (status, answer) = revoke(id.to_string()).await;
    assert_eq!(status, 409, "revoking twice: {answer}");
    assert_eq!(
        revoke("0123456789abcdef0123456789abcdef".into()).await.0,
        404
    );
    assert_eq!(revoke("x".repeat(300)).await.0, 404);
    let (status, _) = server
        .api_call_as(
            &server.admin_token,
            Method::GET,
            "/adminTokens/unknown",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Bearer values that are not tokens at all.
    for bad in ["", "lk_admin_", &"a".repeat(5000)] {
        assert_eq!(users_status(&server, bad).await, 401);
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_token_and_role_routes() {
    let server = TestServer::start().await;
    let doc: Value = server
        .api()
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/adminTokens",
        "/adminTokens/{id}",
        "/adminTokens/{id}/revoke",
        "/administratorRole",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "openapi.json documents {path}"
        );
    }
}

#[tokio::test]
async fn an_administrator_makes_and_revokes_a_token_in_the_console() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let admin = crate::console::admin_browser(&server, &people).await;
    let page = admin.get("/admin/tokens").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("initial") && page.body.contains("API tokens"));
    let csrf = page.csrf();

    let made = admin
        .post(
            "/admin/tokens",
            &[
                ("csrf", &csrf),
                ("name", "deploy bot"),
                ("lifetime_days", "30"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let made_page = admin
        .http
        .post(format!("{}/admin/tokens", server.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "cache probe"),
            ("lifetime_days", "7"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        made_page.headers().get("cache-control").unwrap(),
        "no-store",
        "a page showing a token is never cached"
    );
    let secret = made
        .body
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| w.starts_with("lk_admin_") && w.len() > 20)
        .expect("the new token is shown once")
        .to_string();
    assert_eq!(users_status(&server, &secret).await, 200);
    let again = admin.get("/admin/tokens").await;
    assert!(
        !again.body.contains(&secret),
        "shown only on the answer to the form"
    );

    let (_, list) = server
        .api_call_as(&server.admin_token, Method::GET, "/adminTokens", None)
        .await;
    let made_row = token_named(&list, "deploy bot");
    assert!(made_row["expiresDateTime"].is_string());
    assert!(
        made_row["createdBy"]
            .as_str()
            .unwrap()
            .contains("admin@latchkey.test")
    );
    let id = made_row["id"].as_str().unwrap();
    let revoked = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(users_status(&server, &secret).await, 401);

    // Bad input: refused on the page, nothing made.
    for (name, lifetime, status) in [
        ("", "30", 400),
        (&"n".repeat(65)[..], "30", 400),
        ("ok", "9999", 400),
        ("ok", "-1", 400),
    ] {
        let page = admin
            .post(
                "/admin/tokens",
                &[("csrf", &csrf), ("name", name), ("lifetime_days", lifetime)],
            )
            .await;
        assert_eq!(page.status, status, "{name} {lifetime}: {}", page.body);
        assert!(!page.body.contains("lk_admin_"));
    }
    let twice = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(twice.status, 409);
    let forged = admin
        .post(
            "/admin/tokens",
            &[("csrf", "forged"), ("name", "x"), ("lifetime_days", "30")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let (_, list) = server
        .api_call_as(&server.admin_token, Method::GET, "/adminTokens", None)
        .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 3, "{list}");
}
