//! Groups in tokens and application assignment (issue 18): the `groups` claim an application
//! asks for, users and groups assigned to an application, the refusal of everyone else on every
//! path to a code or tokens, My Apps showing only assigned applications, and
//! `PATCH /api/v1/applications/{clientId}`.

use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AdditionalClaims, ClientId, ClientSecret, IdToken, IssuerUrl, Nonce, RedirectUrl,
    UserInfoClaims,
};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::phone::{Person, Phone, number_on};
use crate::support::{
    Browser, Page, TestServer, assert_signed_in_as, authorize_url, code_for, query_param,
    token_request,
};

/// The one claim these tests read beyond the standard ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GroupsClaim {
    #[serde(default)]
    groups: Option<Vec<String>>,
}

impl AdditionalClaims for GroupsClaim {}

type GroupsIdToken = IdToken<
    GroupsClaim,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// `openidconnect`'s HTTP client trait, served by reqwest (no redirects).
async fn http(
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let mut outgoing = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).expect("response"))
}

/// Registers a confidential application through the admin API with `settings` added to a
/// loopback redirect; returns (client id, secret).
async fn app_with(server: &TestServer, name: &str, settings: Value) -> (String, String) {
    let mut body = json!({
        "displayName": name,
        "redirectUris": ["http://localhost:9/callback"],
    });
    for (key, value) in settings.as_object().expect("settings") {
        body[key] = value.clone();
    }
    let (status, app) = server
        .api_call(Method::POST, "/applications", Some(body))
        .await;
    assert_eq!(status, 201, "{app}");
    (
        app["appId"].as_str().expect("appId").to_string(),
        app["clientSecret"].as_str().expect("secret").to_string(),
    )
}

async fn assign(server: &TestServer, app: &str, principal_type: &str, principal: &str) {
    server
        .admin()
        .assign(app, principal_type, principal)
        .await
        .expect("assign");
}

/// Tokens for a code of `app`, through the token endpoint.
async fn tokens_for(server: &TestServer, app: &(String, String), code: &str) -> Value {
    let (status, tokens) = token_request(
        &server.base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://localhost:9/callback"),
        ],
        Some((&app.0, &app.1)),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// The sign-in page a browser with no session reaches from `/authorize` for `app`.
async fn sign_in_page(browser: &Browser, server: &TestServer, app: &str) -> Page {
    browser
        .follow(
            browser
                .get(&authorize_url(&server.base, app, None, &[]))
                .await,
        )
        .await
}

/// The authorization for `app` in a browser that is already signed in: where it was sent.
async fn authorize_again(browser: &Browser, server: &TestServer, app: &str) -> (u16, String) {
    let page = browser
        .get(&authorize_url(&server.base, app, None, &[]))
        .await;
    (page.status, page.location.unwrap_or(page.body))
}

async fn refresh(server: &TestServer, app: &(String, String), token: &str) -> (u16, Value) {
    token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        Some((&app.0, &app.1)),
    )
    .await
}

/// The sign-in log's records for `app`, newest first.
async fn sign_ins_of(server: &TestServer, app: &str) -> Vec<Value> {
    let (status, list) = server
        .api_call(Method::GET, &format!("/auditLogs/signIns?app={app}"), None)
        .await;
    assert_eq!(status, 200, "{list}");
    list["value"].as_array().expect("records").clone()
}

#[tokio::test]
async fn the_groups_claim_carries_group_ids_or_names_in_the_id_token_and_userinfo() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    let payroll = server
        .group_with(
            json!({"displayName": "Payroll Team", "description": "pays"}),
            &[bobby.as_str()],
        )
        .await;
    let auditors = server
        .group_with(
            json!({"displayName": "Auditors", "description": "checks"}),
            &[bobby.as_str()],
        )
        .await;
    server
        .group_with(
            json!({"displayName": "Not Bobby's", "description": "other"}),
            &[],
        )
        .await;
    let by_ids = app_with(&server, "By Ids", json!({"groupsClaim": "ids"})).await;
    let by_names = app_with(&server, "By Names", json!({"groupsClaim": "names"})).await;
    let mut ids = vec![
        payroll["id"].as_str().unwrap().to_string(),
        auditors["id"].as_str().unwrap().to_string(),
    ];
    ids.sort();
    let names = vec!["Auditors".to_string(), "Payroll Team".to_string()];

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .expect("discovery document validates");
    let claims_supported: Vec<String> = metadata
        .claims_supported()
        .expect("claims_supported")
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(
        claims_supported.contains(&"groups".to_string()),
        "discovery lists the groups claim"
    );

    let browser = server.browser();
    let mut signed_in = false;
    for (app, expected) in [(&by_ids, &ids), (&by_names, &names)] {
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(app.0.clone()),
            Some(ClientSecret::new(app.1.clone())),
        )
        .set_redirect_uri(RedirectUrl::new("http://localhost:9/callback".into()).unwrap());
        let authorize = authorize_url(&server.base, &app.0, None, &[]);
        let code = if signed_in {
            let (status, location) = authorize_again(&browser, &server, &app.0).await;
            assert_eq!(status, 303, "{location}");
            query_param(&location, "code").expect("a code for the signed-in session")
        } else {
            signed_in = true;
            code_for(&browser, &authorize, "bobby@contoso.example", &pass).await
        };
        let tokens = tokens_for(&server, app, &code).await;
        let id_token: GroupsIdToken = tokens["id_token"]
            .as_str()
            .expect("an ID token")
            .parse()
            .expect("a JWT");
        let claims = id_token
            .claims(
                &client.id_token_verifier(),
                &Nonce::new("n0nce".to_string()),
            )
            .expect("the ID token validates against the JWKS");
        assert_eq!(
            claims.additional_claims().groups.as_ref(),
            Some(expected),
            "the ID token carries the user's groups, and only theirs, sorted"
        );
        let userinfo: UserInfoClaims<GroupsClaim, CoreGenderClaim> = client
            .user_info(
                AccessToken::new(tokens["access_token"].as_str().unwrap().to_string()),
                None,
            )
            .expect("userinfo endpoint known")
            .request_async(&http)
            .await
            .expect("userinfo");
        assert_eq!(
            userinfo.additional_claims().groups.as_ref(),
            Some(expected),
            "userinfo carries the same groups"
        );
    }
}

/// The claim part of a JWT, undecoded but unverified (only for asserting absence).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn an_application_gets_no_groups_claim_unless_it_asks_for_one() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    server
        .group_with(
            json!({"displayName": "Payroll Team", "description": "pays"}),
            &[bobby.as_str()],
        )
        .await;
    let app = app_with(&server, "Plain", json!({})).await;
    let browser = server.browser();
    let code = code_for(
        &browser,
        &authorize_url(&server.base, &app.0, None, &[]),
        "bobby@contoso.example",
        &pass,
    )
    .await;
    let tokens = tokens_for(&server, &app, &code).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert!(claims.get("groups").is_none(), "{claims}");
    assert!(claims.get("_claim_names").is_none(), "{claims}");
    let userinfo: Value = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo.get("groups").is_none(), "{userinfo}");
    let (_, listed) = server
        .api_call(Method::GET, &format!("/applications/{}", app.0), None)
        .await;
    assert_eq!(listed["groupsClaim"], "none");
    assert_eq!(listed["assignmentRequired"], false);
}

#[tokio::test]
async fn a_user_in_more_groups_than_an_id_token_holds_gets_an_overage_signal_and_all_at_userinfo() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    for n in 0..201 {
        let group = server
            .latchkey
            .directory
            .create_group(
                &latchkey_domain::log::Actor::system(),
                &format!("Group {n:03}"),
                "one of many",
            )
            .await
            .expect("group");
        server
            .latchkey
            .directory
            .add_group_member(&latchkey_domain::log::Actor::system(), &group.id, &bobby)
            .await
            .expect("member");
    }
    let app = app_with(&server, "Many Groups", json!({"groupsClaim": "names"})).await;
    let browser = server.browser();
    let code = code_for(
        &browser,
        &authorize_url(&server.base, &app.0, None, &[]),
        "bobby@contoso.example",
        &pass,
    )
    .await;
    let tokens = tokens_for(&server, &app, &code).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert!(
        claims.get("groups").is_none(),
        "past 200 groups, no groups claim"
    );
    assert_eq!(claims["_claim_names"], json!({"groups": "src1"}));
    assert_eq!(
        claims["_claim_sources"],
        json!({"src1": {"endpoint": format!("{}/userinfo", server.base)}})
    );
    let userinfo: Value = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        userinfo["groups"].as_array().map(Vec::len),
        Some(201),
        "userinfo carries every group"
    );
}

#[tokio::test]
async fn an_unassigned_user_is_refused_at_authorize_with_a_page_and_a_sign_in_log_entry() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let app = app_with(
        &server,
        "Payroll",
        json!({"assignmentRequired": true, "homeUrl": "http://localhost:9/"}),
    )
    .await;
    let browser = server.browser();
    // A fresh sign-in: the user is signed in, but the application gets no code.
    let login = sign_in_page(&browser, &server, &app.0).await;
    let refused = browser
        .sign_in_with_pass(login, "bobby@contoso.example", &pass)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.location.is_none(), "no redirect to the application");
    for words in [
        "been assigned to this application",
        "specifically granted (&#39;assigned&#39;) access",
        "bobby@contoso.example",
        "Payroll",
    ] {
        assert!(refused.body.contains(words), "{words}: {}", refused.body);
    }
    // The session this browser now has is refused the same way.
    let (status, body) = authorize_again(&browser, &server, &app.0).await;
    assert_eq!(status, 403, "{body}");
    // A silent request hears access_denied at the redirect URI instead of a page.
    let silent = browser
        .get(&authorize_url(
            &server.base,
            &app.0,
            None,
            &[("prompt", "none")],
        ))
        .await;
    let location = silent.location.expect("a redirect for prompt=none");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "code").is_none());

    let refusals: Vec<Value> = sign_ins_of(&server, &app.0)
        .await
        .into_iter()
        .filter(|r| r["status"]["errorCode"] == 50105)
        .collect();
    assert_eq!(refusals.len(), 3, "each refusal is in the sign-in log");
    assert_eq!(
        refusals[0]["status"]["failureReason"],
        "The signed in user is not assigned to a role for the application."
    );
    assert_eq!(refusals[0]["userPrincipalName"], "bobby@contoso.example");
}

#[tokio::test]
async fn a_user_assigned_through_a_group_gets_a_code_and_tokens() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    server
        .group_with(
            json!({"displayName": "Payroll Team", "description": "pays"}),
            &[bobby.as_str()],
        )
        .await;
    let app = app_with(&server, "Payroll", json!({"assignmentRequired": true})).await;
    assign(&server, &app.0, "Group", "Payroll Team").await;
    let listed = server.admin().assignments(&app.0).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].principal_type, "Group");
    assert_eq!(listed[0].principal_display_name, "Payroll Team");
    let browser = server.browser();
    let code = code_for(
        &browser,
        &authorize_url(&server.base, &app.0, None, &[]),
        "bobby@contoso.example",
        &pass,
    )
    .await;
    let tokens = tokens_for(&server, &app, &code).await;
    assert!(tokens["refresh_token"].is_string());
    assert!(
        sign_ins_of(&server, &app.0)
            .await
            .iter()
            .all(|r| r["status"]["errorCode"] != 50105),
        "no refusal is logged"
    );
}

#[tokio::test]
async fn removing_the_assignment_refuses_the_next_refresh_and_authorize() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let app = app_with(&server, "Payroll", json!({"assignmentRequired": true})).await;
    assign(&server, &app.0, "User", "bobby@contoso.example").await;
    let browser = server.browser();
    let code = code_for(
        &browser,
        &authorize_url(&server.base, &app.0, None, &[]),
        "bobby@contoso.example",
        &pass,
    )
    .await;
    let tokens = tokens_for(&server, &app, &code).await;
    let (status, refreshed) =
        refresh(&server, &app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "assigned: the refresh works {refreshed}");

    server
        .admin()
        .unassign(&app.0, "User", "bobby@contoso.example")
        .await
        .expect("unassign");
    let (status, refused) =
        refresh(&server, &app, refreshed["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    // The grant ended with the refusal: its access token no longer reads userinfo.
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
    // And the browser's session gets no new code.
    let (status, body) = authorize_again(&browser, &server, &app.0).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        sign_ins_of(&server, &app.0)
            .await
            .iter()
            .any(|r| r["status"]["errorCode"] == 50105
                && r["authenticationMethod"] == "refreshToken"),
        "the refused refresh is in the sign-in log"
    );
    // Removing it again finds nothing.
    let again = server
        .admin()
        .unassign(&app.0, "User", "bobby@contoso.example")
        .await
        .expect_err("already removed");
    assert_eq!(again.status().map(|s| s.as_u16()), Some(404));
}

#[tokio::test]
async fn my_apps_lists_only_the_applications_assigned_to_the_user() {
    let server = TestServer::start().await;
    let (bobby, pass) = server.bobby_with_pass().await;
    server
        .group_with(
            json!({"displayName": "Payroll Team", "description": "pays"}),
            &[bobby.as_str()],
        )
        .await;
    let home = |name: &str| json!({"homeUrl": format!("https://{name}.contoso.example/")});
    let through_group = app_with(&server, "Payroll Portal", home("payroll")).await;
    let direct = app_with(&server, "Expenses Portal", home("expenses")).await;
    app_with(&server, "Secret Portal", home("secret")).await;
    assign(&server, &through_group.0, "Group", "Payroll Team").await;
    assign(&server, &direct.0, "User", bobby.as_str()).await;

    let browser = server.browser();
    let answer = browser
        .sign_in_to_my_apps("bobby@contoso.example", &pass)
        .await;
    let portal = browser.follow(answer).await;
    assert_signed_in_as(&portal, "Bobby Smith");
    assert!(portal.body.contains("Payroll Portal"), "{}", portal.body);
    assert!(portal.body.contains("Expenses Portal"), "{}", portal.body);
    assert!(
        !portal.body.contains("Secret Portal"),
        "an application not assigned to the user is not shown: {}",
        portal.body
    );
}

#[tokio::test]
async fn the_assignment_api_refuses_malformed_oversized_unknown_and_repeated_input() {
    let server = TestServer::start().await;
    let (bobby, _) = server.bobby_with_pass().await;
    let app = app_with(&server, "Payroll", json!({})).await;
    let path = format!("/applications/{}/assignments", app.0);
    for (body, status) in [
        (
            json!({"principalType": "Robot", "principalId": bobby.as_str()}),
            400,
        ),
        (json!({"principalType": "User"}), 400),
        (
            json!({"principalType": "User", "principalId": bobby.as_str(), "role": "x"}),
            400,
        ),
        (
            json!({"principalType": "User", "principalId": "nobody@contoso.example"}),
            404,
        ),
        (
            json!({"principalType": "Group", "principalId": "No Such Group"}),
            404,
        ),
        (
            json!({"principalType": "User", "principalId": "x".repeat(70_000)}),
            413,
        ),
    ] {
        let (got, answer) = server
            .api_call(Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body:.80}: {answer}");
    }
    let not_json = server
        .api()
        .post(format!("{}/api/v1{path}", server.base))
        .bearer_auth(&server.admin_token)
        .header("content-type", "application/json")
        .body("{principalType")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let unknown_app = server
        .admin()
        .assign("no-such-app", "User", bobby.as_str())
        .await
        .expect_err("unknown application");
    assert_eq!(unknown_app.status().map(|s| s.as_u16()), Some(404));
    let my_apps = server
        .admin()
        .assign("myapps", "User", bobby.as_str())
        .await
        .expect_err("My Apps is for everyone");
    assert_eq!(my_apps.status().map(|s| s.as_u16()), Some(422));

    assign(&server, &app.0, "User", bobby.as_str()).await;
    let twice = server
        .admin()
        .assign(&app.0, "User", "bobby@contoso.example")
        .await
        .expect_err("a second assignment of the same user");
    assert_eq!(twice.status().map(|s| s.as_u16()), Some(409));
    assert_eq!(server.admin().assignments(&app.0).await.unwrap().len(), 1);
    let (status, _) = server
        .api_call(
            Method::DELETE,
            &format!("{path}/groups/No%20Such%20Group"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    let (status, audit) = server
        .api_call(
            Method::GET,
            &format!("/auditLogs/directoryAudits?user={}", app.0),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        audit["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["activityDisplayName"] == "Add app role assignment"
                || e["activity"] == "Add app role assignment"),
        "the assignment is audited: {audit}"
    );
}

#[tokio::test]
async fn patch_changes_an_applications_settings_validated_like_creation_and_audited() {
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let app = app_with(
        &server,
        "Payroll",
        json!({"homeUrl": "https://payroll.example/"}),
    )
    .await;
    let path = format!("/applications/{}", app.0);

    // Refused changes leave everything as it was.
    for (body, status) in [
        (json!({"redirectUris": ["http://evil.example/cb"]}), 400),
        (json!({"redirectUris": []}), 400),
        (json!({"groupsClaim": "all"}), 400),
        (json!({"displayName": ""}), 400),
        (json!({"clientSecret": "mine"}), 400),
        (json!({"publicClient": true}), 400),
        (json!({"displayName": "x".repeat(70_000)}), 413),
    ] {
        let (got, answer) = server
            .api_call(Method::PATCH, &path, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body:.80}: {answer}");
    }
    let (status, _) = server
        .api_call(Method::PATCH, "/applications/no-such-app", Some(json!({})))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .api_call(
            Method::PATCH,
            "/applications/myapps",
            Some(json!({"displayName": "Mine"})),
        )
        .await;
    assert_eq!(status, 422, "My Apps is Latchkey's own");
    let unchanged = server.admin().application(&app.0).await.unwrap();
    assert_eq!(unchanged.display_name, "Payroll");
    assert_eq!(unchanged.redirect_uris, ["http://localhost:9/callback"]);

    let patch = latchkey_api::ApplicationPatch {
        display_name: Some("Payroll 2".into()),
        redirect_uris: Some(vec!["http://localhost:9/new-callback".into()]),
        home_url: Some(String::new()),
        groups_claim: Some("ids".into()),
        assignment_required: Some(true),
        ..Default::default()
    };
    let changed = server
        .admin()
        .update_application(&app.0, &patch)
        .await
        .expect("patch");
    assert_eq!(changed.display_name, "Payroll 2");
    assert_eq!(changed.redirect_uris, ["http://localhost:9/new-callback"]);
    assert_eq!(changed.home_url, None);
    assert_eq!(changed.groups_claim, "ids");
    assert!(changed.assignment_required);
    assert!(!changed.public_client, "the client kind stays");
    assert_eq!(server.admin().application(&app.0).await.unwrap(), changed);

    // At once, not after a cache expires: the old redirect URI is no longer accepted.
    let browser = server.browser();
    let old = browser
        .get(&authorize_url(&server.base, &app.0, None, &[]))
        .await;
    assert_eq!(old.status, 400, "{}", old.body);
    // ...and assignment is now required.
    let login = browser
        .follow(
            browser
                .get(
                    &authorize_url(&server.base, &app.0, None, &[])
                        .replace("%2Fcallback", "%2Fnew-callback"),
                )
                .await,
        )
        .await;
    let refused = browser
        .sign_in_with_pass(login, "bobby@contoso.example", &pass)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let (_, audit) = server
        .api_call(
            Method::GET,
            &format!("/auditLogs/directoryAudits?user={}", app.0),
            None,
        )
        .await;
    let update = audit["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e.to_string().contains("Update application"))
        .unwrap_or_else(|| panic!("the change is audited: {audit}"))
        .clone();
    let text = update.to_string();
    assert!(
        text.contains("Payroll 2") && text.contains("\"Payroll\""),
        "{text}"
    );
    assert!(
        !text.contains(&app.1),
        "the secret never appears in the audit log"
    );
}

/// Phone sign-in stores the application's code with the session, in one write; the assignment
/// check must still come first on that path. An unassigned user approving on the phone is
/// signed in, the application gets no code, and the refusal is logged once; once assigned, the
/// same sign-in ends in a code that redeems.
#[tokio::test]
async fn an_unassigned_user_signing_in_by_phone_gets_no_code_and_one_log_entry() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let app = app_with(
        &server,
        "Payroll",
        json!({"assignmentRequired": true, "homeUrl": "http://localhost:9/"}),
    )
    .await;
    let by_phone = async |phone: &mut Phone| {
        let browser = server.browser();
        let login = sign_in_page(&browser, &server, &app.0).await;
        let next = browser
            .post(
                "/login/username",
                &[("csrf", &login.csrf()), ("username", bobby.upn.as_str())],
            )
            .await;
        let number_page = browser.follow(next).await;
        let request = phone.only_request().await;
        phone.approve(&request, number_on(&number_page)).await;
        browser.get("/login").await
    };

    let refused = by_phone(&mut phone).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.location.is_none(), "no redirect to the application");
    assert!(
        refused.body.contains("been assigned to this application"),
        "{}",
        refused.body
    );
    let logged = sign_ins_of(&server, &app.0).await;
    let refusals = logged
        .iter()
        .filter(|r| r["status"]["errorCode"] == 50105)
        .count();
    assert_eq!(refusals, 1, "the refusal is logged once: {logged:?}");

    assign(&server, &app.0, "User", &bobby.upn).await;
    let signed_in = by_phone(&mut phone).await;
    let location = signed_in.location.expect("a redirect to the application");
    let code = query_param(&location, "code").expect("a code");
    let tokens = tokens_for(&server, &app, &code).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
}
