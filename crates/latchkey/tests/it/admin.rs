//! The admin API and the `latchkey admin` command line against a running server.

use serde_json::{Value, json};

use crate::support::{SelfSignedTls, TestServer, run_latchkey};

#[tokio::test]
async fn admin_api_without_a_valid_token_is_refused() {
    let server = TestServer::start().await;
    let none = server
        .api()
        .get(format!("{}/api/v1/users", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let wrong = server
        .api()
        .get(format!("{}/api/v1/users", server.base))
        .bearer_auth("lk_admin_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let token_file = server.data_dir.path().join("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(token_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test]
async fn admin_api_manages_users_groups_apps_and_passes() {
    let server = TestServer::start().await;
    let (status, user) = server
        .api_call(
            reqwest::Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "Guy@Contoso.example", "displayName": "Guy Oz"})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["userPrincipalName"], "guy@contoso.example");
    let (status, dup) = server
        .api_call(
            reqwest::Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "GUY@contoso.example", "displayName": "Again"})),
        )
        .await;
    assert_eq!(
        (status, dup["error"]["code"].as_str()),
        (409, Some("conflict")),
        "UPNs are unique regardless of case"
    );
    let (status, group) = server
        .api_call(
            reqwest::Method::POST,
            "/groups",
            Some(json!({"displayName": "Pilot"})),
        )
        .await;
    assert_eq!(status, 201);
    let gid = group["id"].as_str().unwrap();
    let (status, _) = server
        .api_call(
            reqwest::Method::POST,
            &format!("/groups/{gid}/members"),
            Some(json!({"userId": "guy@contoso.example"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, members) = server
        .api_call(
            reqwest::Method::GET,
            &format!("/groups/{gid}/members"),
            None,
        )
        .await;
    assert_eq!(members["value"][0]["displayName"], "Guy Oz");
    let (status, pass) = server
        .api_call(
            reqwest::Method::POST,
            "/users/guy@contoso.example/temporaryAccessPass",
            None,
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(pass["temporaryAccessPass"].as_str().unwrap().len(), 8);
    let (_, shown) = server
        .api_call(
            reqwest::Method::GET,
            "/users/guy@contoso.example/temporaryAccessPass",
            None,
        )
        .await;
    assert!(
        shown.get("temporaryAccessPass").is_none(),
        "the pass is shown only when created"
    );
    let (status, app) = server
        .api_call(
            reqwest::Method::POST,
            "/applications",
            Some(json!({"displayName": "Wiki", "redirectUris": ["https://wiki.example/cb"]})),
        )
        .await;
    assert_eq!(status, 201);
    assert!(
        app["clientSecret"].as_str().unwrap().len() >= 40,
        "a confidential client's secret, shown once"
    );
    let (_, again) = server
        .api_call(
            reqwest::Method::GET,
            &format!("/applications/{}", app["appId"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(again.get("clientSecret").is_none());
}

#[tokio::test]
async fn admin_api_refuses_malformed_and_invalid_input_and_changes_nothing() {
    let server = TestServer::start().await;
    let response = server
        .api()
        .post(format!("{}/api/v1/users", server.base))
        .bearer_auth(&server.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    for bad in [
        json!({"userPrincipalName": "no-at-sign", "displayName": "X"}),
        json!({"userPrincipalName": "x@y.example", "displayName": ""}),
        json!({"userPrincipalName": "x@y.example", "displayName": "X", "surprise": 1}),
        json!({"userPrincipalName": 5, "displayName": "X"}),
    ] {
        let (status, body) = server
            .api_call(reqwest::Method::POST, "/users", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    let (_, users) = server.api_call(reqwest::Method::GET, "/users", None).await;
    assert_eq!(
        users["value"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    let (status, body) = server
        .api_call(
            reqwest::Method::POST,
            "/applications",
            Some(json!({"displayName": "Evil", "redirectUris": ["http://evil.example/cb"]})),
        )
        .await;
    assert_eq!(
        status, 400,
        "plain http redirect URIs are refused outside localhost: {body}"
    );
    let (status, _) = server
        .api_call(
            reqwest::Method::POST,
            "/users/nobody@x.example/temporaryAccessPass",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, user) = server
        .api_call(
            reqwest::Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "a@b.example", "displayName": "A"})),
        )
        .await;
    let (status, body) = server
        .api_call(
            reqwest::Method::POST,
            &format!(
                "/users/{}/temporaryAccessPass",
                user["id"].as_str().unwrap()
            ),
            Some(json!({"lifetimeInMinutes": 5})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lifetimeInMinutes")
    );
}

#[tokio::test]
async fn openapi_document_lists_every_admin_route() {
    let server = TestServer::start().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/users",
        "/users/{id}",
        "/users/{id}/password",
        "/users/{id}/temporaryAccessPass",
        "/users/{id}/authenticatorActivations",
        "/users/{id}/authenticatorActivations/{activation}",
        "/groups",
        "/groups/{id}/members",
        "/groups/{id}/members/{user}",
        "/applications",
        "/applications/{id}",
        "/identityProtection/riskyUsers",
        "/identityProtection/riskyUsers/{id}",
        "/identityProtection/riskyUsers/dismiss",
    ] {
        assert!(paths.contains_key(path), "openapi.json documents {path}");
    }
}

/// The router and the document agree: at every documented path, the methods the router
/// allows (its `Allow` answer to a method it has no route for) are the documented ones.
#[tokio::test]
async fn every_routed_method_is_documented() {
    let server = TestServer::start().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let mut documented: Vec<String> = item
            .as_object()
            .expect("path item")
            .keys()
            .filter(|m| *m != "parameters")
            .map(|m| m.to_uppercase())
            .collect();
        let concrete = path.replace("{id}", "x").replace("{user}", "y");
        let concrete = concrete
            .replace("{activation}", "z")
            .replace("{method}", "fido2");
        let response = http
            .request(
                reqwest::Method::TRACE,
                format!("{}/api/v1{concrete}", server.base),
            )
            .bearer_auth(&server.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path} is routed");
        let allow = response.headers()["allow"].to_str().unwrap().to_string();
        let mut routed: Vec<String> = allow
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        routed.sort();
        documented.sort();
        assert_eq!(routed, documented, "{path}: routed methods are documented");
    }
}

fn latchkey(server: &TestServer, args: &[&str]) -> (i32, String, String) {
    let url = ["admin", "--url", &server.base, "--data-dir"];
    let data_dir = server.data_dir.path().to_str().expect("a UTF-8 path");
    run_latchkey(url.iter().chain(&[data_dir]).chain(args))
}

// Multi-threaded: the command line blocks this test's thread while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_command_line_creates_users_and_passes_with_clear_exit_codes() {
    let server = TestServer::start().await;
    let (code, out, err) = latchkey(
        &server,
        &[
            "users",
            "create",
            "bobby@contoso.example",
            "--name",
            "Bobby Smith",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bobby@contoso.example"));
    let (code, out, _) = latchkey(&server, &["passes", "create", "bobby@contoso.example"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.split('\t').next().unwrap().len() == 8),
        "{out}"
    );
    let (code, _, err) = latchkey(
        &server,
        &[
            "users",
            "create",
            "bobby@contoso.example",
            "--name",
            "Again",
        ],
    );
    assert_eq!(code, 1, "a refused request exits 1");
    assert!(err.contains("already exists"), "{err}");
    let (code, _, _) = run_latchkey([
        "admin",
        "--url",
        "http://127.0.0.1:1",
        "--token",
        "x",
        "users",
        "list",
    ]);
    assert_eq!(Some(code), Some(3), "an unreachable server exits 3");
}

#[tokio::test]
async fn validate_config_refuses_a_bad_file_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"not an address\"\n").unwrap();
    let (code, _, stderr) = run_latchkey(["--config", bad.to_str().unwrap(), "validate-config"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("listen"));
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let (code, _, _) = run_latchkey(["--config", unknown.to_str().unwrap(), "validate-config"]);
    assert_eq!(code, 2, "unknown keys are refused");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:9999\"\npublic_url = \"https://login.example\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_latchkey(["--config", good.to_str().unwrap(), "validate-config"]);
    assert_eq!(Some(code), Some(0), "{}", stderr);
}

#[tokio::test]
async fn the_example_configuration_in_the_repository_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../latchkey.example.toml");
    let (code, _, stderr) = run_latchkey(["--config", example, "validate-config"]);
    assert_eq!(Some(code), Some(0), "{}", stderr);
}

#[tokio::test]
async fn tls_from_pem_files_serves_https_with_secure_cookies() {
    let tls = SelfSignedTls::new();
    let server = TestServer::start_with(|config| {
        tls.apply(config);
    })
    .await;
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(tls.cert_pem.as_bytes()).unwrap())
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let health = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let login = client
        .get(format!("https://localhost:{port}/login"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("Secure")),
        "{cookies:?}"
    );
    assert_eq!(
        login.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS under TLS, so a later visit cannot be downgraded"
    );
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.map(|r| r.status() != 200).unwrap_or(true),
        "no plain HTTP on the TLS port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_steps_1_and_4_with_the_command_line() {
    let server = TestServer::start().await;
    latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let (code, _, err) = latchkey(
        &server,
        &[
            "policy",
            "set",
            "authenticator",
            "--state",
            "enabled",
            "--target",
            "Passwordless Pilot",
            "--mode",
            "passwordless",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = latchkey(
        &server,
        &["users", "effective-policy", "bobby@latchkey.test"],
    );
    assert!(out.contains("Passwordless"), "{out}");
    let (code, _, err) = latchkey(
        &server,
        &[
            "policy",
            "set",
            "authenticator",
            "--state",
            "enabled",
            "--target",
            "all",
            "--mode",
            "any",
        ],
    );
    assert_eq!(code, 0, "step 1: {err}");
    let (code, _, err) = latchkey(
        &server,
        &[
            "policy",
            "set",
            "authenticator",
            "--number-matching",
            "enabled",
            "--show-app-name",
            "enabled",
            "--show-location",
            "enabled",
        ],
    );
    assert_eq!(code, 0, "step 4: {err}");
    let evaluation = server
        .latchkey
        .governance
        .effective_policy(
            &server
                .latchkey
                .directory
                .find_user("bobby@latchkey.test")
                .await
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert_eq!(
        evaluation[0].mode,
        Some(latchkey_domain::policy::AuthenticationMode::Any)
    );
    let features = &evaluation[0].features;
    // Everything a notification shows is on; holding back unusual ones stays opt-in (off).
    assert!(
        features.iter().all(|f| f.enabled
            != (f.feature == latchkey_domain::policy::Feature::SuppressAnomalousNotifications)),
        "{features:?}"
    );
    let shown = features
        .iter()
        .filter(|f| f.reason == "enabled for all users")
        .count();
    assert_eq!(
        shown, 2,
        "application name and location enabled by step 4: {features:?}"
    );
    let (code, out, _) = latchkey(&server, &["logs", "audit", "--category", "Policy"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().count(),
        4,
        "a header and three policy changes: {out}"
    );
    let (code, _, err) = latchkey(
        &server,
        &[
            "policy",
            "set",
            "authenticator",
            "--number-matching",
            "disabled",
        ],
    );
    assert_eq!(code, 1, "refused by the server: {err}");
    assert!(err.contains("cannot be disabled"), "{err}");
}

#[tokio::test]
async fn admin_issued_activation_registers_a_device_once_and_shows_its_test_number() {
    use latchkey_api::{AuthenticationMethodConfigurationPatch, AuthenticatorActivation, NewUser};
    use latchkey_protocol::wire::{AnswerOutcome, Decision};

    let server = TestServer::start().await;
    let admin = server.admin();
    for (upn, name) in [
        ("bobby@contoso.example", "Bobby"),
        ("adele@contoso.example", "Adele"),
    ] {
        let new = NewUser {
            user_principal_name: upn.into(),
            display_name: name.into(),
            mail: None,
            account_enabled: true,
        };
        admin.create_user(&new).await.expect("created");
    }
    let missing = admin
        .create_activation("nobody@contoso.example")
        .await
        .unwrap_err();
    assert_eq!(missing.status().map(|s| s.as_u16()), Some(404), "{missing}");

    let issued = admin
        .create_activation("bobby@contoso.example")
        .await
        .expect("issued");
    let progress = || admin.activation("bobby@contoso.example", &issued.id);
    let waiting = progress().await.unwrap();
    assert!(
        matches!(waiting, AuthenticatorActivation::WaitingForDevice { .. }),
        "{waiting:?}"
    );

    // Another user's activation, and ids that are not one, are not found.
    let other = admin
        .activation("adele@contoso.example", &issued.id)
        .await
        .unwrap_err();
    assert_eq!(other.status().map(|s| s.as_u16()), Some(404));
    for bad in ["x", &"a".repeat(2000), "..%2F..%2Fusers"] {
        let (status, _) = server
            .api_call(
                reqwest::Method::GET,
                &format!("/users/bobby@contoso.example/authenticatorActivations/{bad}"),
                None,
            )
            .await;
        assert!(status == 404 || status == 400, "{bad}: {status}");
    }

    let link =
        latchkey_protocol::ActivationLink::parse(&issued.activation_link).expect("the link parses");
    assert_eq!(link.code, issued.code);
    let home = tempfile::tempdir().unwrap();
    let mut app = latchkey_authenticator::Authenticator::open(home.path()).unwrap();
    let (account, test) = app.add(&link, "Bobby's phone").await.expect("activates");
    let AuthenticatorActivation::WaitingForTest {
        device_name,
        test_number,
        ..
    } = progress().await.unwrap()
    else {
        panic!("the activation waits for its test");
    };
    assert_eq!(device_name, "Bobby's phone");
    let outcome = app
        .respond(account, &test, Decision::Approve, Some(test_number), None)
        .await
        .unwrap();
    assert_eq!(outcome, AnswerOutcome::Approved);
    let registered = progress().await.unwrap();
    assert!(
        matches!(registered, AuthenticatorActivation::Registered { .. }),
        "{registered:?}"
    );

    // Replay: the code worked once.
    let home2 = tempfile::tempdir().unwrap();
    let mut thief = latchkey_authenticator::Authenticator::open(home2.path()).unwrap();
    let replayed = thief.add(&link, "Copied link").await;
    assert!(replayed.is_err(), "a used activation link registers again");

    // Who issued it is in the audit log.
    let audit = admin
        .directory_audits(&latchkey_api::LogParameters {
            category: Some("UserAuthenticationMethods".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.activity == "Issue authenticator activation"),
        "{audit:?}"
    );

    // The policy can say no: then no link is issued.
    let disabled = json!({"state": "disabled"});
    let patch = AuthenticationMethodConfigurationPatch(disabled.as_object().unwrap().clone());
    admin
        .patch_configuration("authenticator", &patch)
        .await
        .expect("disabled");
    let refused = admin
        .create_activation("adele@contoso.example")
        .await
        .unwrap_err();
    match refused {
        latchkey_api::ClientError::Refused { status, error } => {
            assert_eq!(status.as_u16(), 422);
            assert_eq!(error.code, "rejected");
        }
        other => panic!("{other}"),
    }
}
