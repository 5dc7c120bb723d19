//! Certificate-based sign-in end to end (docs/certificates.md): the sign-in page's "Use a
//! certificate or smart card", Latchkey's certificate listener (a real TLS handshake with a
//! client certificate made by rcgen), the way back to the main host, the session, the sign-in
//! log, and a trusted proxy's certificate header.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use super::certificate_pki::{
    Ca, CertificateHost, CrlServer, Issued, Leaf, certificate_host_url, choose_certificate,
    principal_name_binding, walk,
};
use super::support::{Browser, Page, TestServer, assert_signed_in_as, authorize_url, query_param};

const BOBBY: &str = "bobby@contoso.example";

async fn sign_ins(server: &TestServer) -> Vec<Value> {
    let (status, body) = server
        .api_call(Method::GET, "/auditLogs/signIns", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["value"].as_array().unwrap().clone()
}

/// The newest sign-in log entry.
async fn last_sign_in(server: &TestServer) -> Value {
    sign_ins(server)
        .await
        .into_iter()
        .max_by_key(|r| {
            r["createdDateTime"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .expect("a sign-in record")
}

/// My Apps, through the sign-in page and the certificate host, in `browser`.
async fn sign_in_to_my_apps(browser: &Browser) -> Page {
    let login = browser.follow(browser.get("/myapps").await).await;
    let (_, answer) = choose_certificate(browser, &login).await;
    walk(browser, answer).await
}

/// The certificate host's refusal page for `issued`, and the sign-in log's entry for it.
async fn refused(host: &CertificateHost, issued: &Issued) -> (Page, Value) {
    let browser = host.browser(Some(issued));
    let login = browser.follow(browser.get("/myapps").await).await;
    let (_, answer) = choose_certificate(&browser, &login).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(
        answer.body.contains(&format!("{}/login", host.server.base)),
        "a way back to sign in: {}",
        answer.body
    );
    (answer, last_sign_in(&host.server).await)
}

fn id_token_claims(tokens: &Value) -> Value {
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_good_certificate_signs_in_to_my_apps_through_the_certificate_host() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let bobby = Leaf::for_upn(BOBBY).issued_by(&ca);

    let page = sign_in_to_my_apps(&host.browser(Some(&bobby))).await;

    assert_signed_in_as(&page, "Bobby Smith");
}

#[tokio::test]
async fn a_multi_factor_certificate_gives_amr_sc_mfa_and_meets_phishing_resistant_mfa() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let (client, secret) = host.server.confidential_app("RS256").await;
    let browser = host.browser(Some(&Leaf::for_upn(BOBBY).issued_by(&ca)));
    let authorize = authorize_url(
        &host.server.base,
        &client,
        None,
        &[("acr_values", "urn:latchkey:acr:phishing-resistant-mfa")],
    );

    let login = browser.follow(browser.get(&authorize).await).await;
    let (_, answer) = choose_certificate(&browser, &login).await;
    let back = browser.get(answer.location.as_deref().unwrap()).await;
    let location = back.location.expect("back to the application");

    assert!(
        location.starts_with("http://localhost:9/callback"),
        "{location}"
    );
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = host.server.redeem_code(&client, &secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = id_token_claims(&tokens);
    assert_eq!(claims["amr"], json!(["sc", "mfa"]));
    assert_eq!(claims["acr"], "urn:latchkey:acr:phishing-resistant-mfa");
}

#[tokio::test]
async fn a_single_factor_certificate_for_an_app_requiring_mfa_asks_for_a_second_factor() {
    let host = CertificateHost::start().await;
    let bobby = super::phone::Person::new(&host.server, "bobby", "Bobby Smith").await;
    let _phone = super::phone::Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable(
        &[(&ca, None)],
        principal_name_binding(),
        json!([]),
        "x509CertificateSingleFactor",
        false,
    )
    .await;
    let (client, _) = host.server.confidential_app("RS256").await;
    let browser = host.browser(Some(&Leaf::for_upn(BOBBY).issued_by(&ca)));
    let authorize = authorize_url(
        &host.server.base,
        &client,
        None,
        &[("acr_values", "urn:latchkey:acr:mfa")],
    );

    let login = browser.follow(browser.get(&authorize).await).await;
    let (_, answer) = choose_certificate(&browser, &login).await;
    let next = walk(&browser, answer).await;

    assert_eq!(next.status, 200, "{}", next.body);
    assert!(
        next.body.contains("Approve sign in request") || next.body.contains("number"),
        "the Authenticator app's number page: {}",
        next.body
    );
    assert!(
        !next.body.contains("Signed in as"),
        "not signed in on the certificate alone"
    );
}

#[tokio::test]
async fn a_single_factor_certificate_without_a_requirement_signs_in_with_amr_sc() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable(
        &[(&ca, None)],
        principal_name_binding(),
        json!([]),
        "x509CertificateSingleFactor",
        false,
    )
    .await;
    let (client, secret) = host.server.confidential_app("RS256").await;
    let browser = host.browser(Some(&Leaf::for_upn(BOBBY).issued_by(&ca)));
    let authorize = authorize_url(&host.server.base, &client, None, &[]);

    let login = browser.follow(browser.get(&authorize).await).await;
    let (_, answer) = choose_certificate(&browser, &login).await;
    let back = browser.get(answer.location.as_deref().unwrap()).await;
    let code = query_param(back.location.as_deref().unwrap(), "code").unwrap();
    let (_, tokens) = host.server.redeem_code(&client, &secret, &code).await;

    let claims = id_token_claims(&tokens);
    assert_eq!(claims["amr"], json!(["sc"]));
    assert_eq!(claims["acr"], "urn:latchkey:acr:sfa");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_with_a_page_and_a_log_entry() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let trusted = Ca::new("Contoso Issuing CA");
    host.enable_default(&trusted).await;
    let stranger = Ca::new("Fabrikam CA");

    let (page, record) = refused(&host, &Leaf::for_upn(BOBBY).issued_by(&stranger)).await;

    assert!(
        page.body.contains("Certificate validation failed"),
        "{}",
        page.body
    );
    assert_eq!(record["status"]["errorCode"], 50017, "{record}");
    assert_eq!(record["authenticationMethod"], "x509Certificate");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let mut leaf = Leaf::for_upn(BOBBY);
    leaf.not_before -= 400 * 86_400;
    leaf.not_after = leaf.not_before + 30 * 86_400;

    let (page, record) = refused(&host, &leaf.issued_by(&ca)).await;

    assert!(
        page.body.contains("Your certificate has expired."),
        "{}",
        page.body
    );
    assert_eq!(
        record["status"]["failureReason"],
        "Your certificate has expired."
    );
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_and_the_log_says_revoked() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    let mut leaf = Leaf::for_upn(BOBBY);
    leaf.serial = 4242;
    let crl = CrlServer::start(ca.crl(&[4242])).await;
    host.enable(
        &[(&ca, Some(&crl.url))],
        principal_name_binding(),
        json!([]),
        "x509CertificateMultiFactor",
        false,
    )
    .await;

    let (page, record) = refused(&host, &leaf.issued_by(&ca)).await;

    assert!(page.body.contains("revoked"), "{}", page.body);
    assert_eq!(
        record["status"]["failureReason"],
        "Your certificate has been revoked."
    );
    let detail = record["authenticationDetails"][0]["authenticationMethodDetail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("Serial: 1092"), "{record}");
    // Another certificate of the same CA, not on the list, signs in.
    leaf.serial = 4243;
    let page = sign_in_to_my_apps(&host.browser(Some(&leaf.issued_by(&ca)))).await;
    assert_signed_in_as(&page, "Bobby Smith");
    crl.replace(ca.crl(&[]));
}

#[tokio::test]
async fn binding_priority_picks_the_user_of_the_first_binding_that_matches() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    host.server.user("amy", "Amy Ray").await;
    let ca = Ca::new("Contoso Issuing CA");
    // The certificate names Bobby in its principal name and Amy in its email name; the
    // RFC822 binding comes first.
    host.enable(
        &[(&ca, None)],
        json!([
            {"x509CertificateField": "PrincipalName", "userProperty": "userPrincipalName", "priority": 2, "trustAffinityLevel": "low"},
            {"x509CertificateField": "RFC822Name", "userProperty": "userPrincipalName", "priority": 1, "trustAffinityLevel": "low"},
        ]),
        json!([]),
        "x509CertificateMultiFactor",
        false,
    )
    .await;
    let mut leaf = Leaf::for_upn(BOBBY);
    leaf.email = Some("amy@contoso.example".into());

    let page = sign_in_to_my_apps(&host.browser(Some(&leaf.issued_by(&ca)))).await;

    assert_signed_in_as(&page, "Amy Ray");
}

#[tokio::test]
async fn high_affinity_ignores_a_subject_only_match() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable(
        &[(&ca, None)],
        principal_name_binding(),
        json!([]),
        "x509CertificateMultiFactor",
        true,
    )
    .await;

    let (page, record) = refused(&host, &Leaf::for_upn(BOBBY).issued_by(&ca)).await;

    assert!(
        page.body.contains("find an account for your certificate"),
        "{}",
        page.body
    );
    assert_eq!(record["status"]["errorCode"], 1_001_003, "{record}");
}

#[tokio::test]
async fn a_certificate_matching_two_users_is_refused() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    host.server.user("amy", "Amy Ray").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    // One certificate whose principal names are Bobby's and Amy's: the binding finds both.
    let mut leaf = Leaf::for_upn(BOBBY);
    leaf.more_principal_names = vec!["amy@contoso.example".into()];

    let (page, record) = refused(&host, &leaf.issued_by(&ca)).await;

    assert!(page.body.contains("more than one account"), "{}", page.body);
    assert_eq!(record["status"]["errorCode"], 900_067, "{record}");
}

#[tokio::test]
async fn the_sign_in_log_records_subject_issuer_serial_binding_and_rule() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable(
        &[(&ca, None)],
        principal_name_binding(),
        json!([{"authenticationMode": "x509CertificateMultiFactor", "policyOid": "1.2.3.4"}]),
        "x509CertificateSingleFactor",
        false,
    )
    .await;
    let mut leaf = Leaf::for_upn(BOBBY);
    leaf.policy_oids = vec![vec![1, 2, 3, 4]];
    leaf.serial = 0x1234;

    sign_in_to_my_apps(&host.browser(Some(&leaf.issued_by(&ca)))).await;

    let record = sign_ins(&host.server)
        .await
        .into_iter()
        .find(|r| r["authenticationMethod"] == "x509Certificate")
        .expect("the certificate sign-in");
    assert_eq!(record["status"]["errorCode"], 0, "{record}");
    assert_eq!(record["userPrincipalName"], BOBBY);
    let detail = record["authenticationDetails"][0]["authenticationMethodDetail"]
        .as_str()
        .unwrap();
    for expected in [
        "Subject: ",
        "CN=bobby",
        "Issuer: ",
        "CN=Contoso Issuing CA",
        "Serial: 1234",
        "Binding: PrincipalName -> UserPrincipalName",
        "Rule: policyOid: policy OID 1.2.3.4 (multi-factor)",
    ] {
        assert!(detail.contains(expected), "{expected:?} in {detail}");
    }
}

#[tokio::test]
async fn certificate_reference_replayed_is_refused() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let browser = host.browser(Some(&Leaf::for_upn(BOBBY).issued_by(&ca)));
    let login = browser.follow(browser.get("/myapps").await).await;
    let (reference_url, first) = choose_certificate(&browser, &login).await;
    assert_eq!(first.status, 303, "{}", first.body);

    let again = browser.get(&reference_url).await;

    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.body.contains("already used"), "{}", again.body);
}

#[tokio::test]
async fn certificate_reference_raced_by_eight_requests_at_once_is_used_once() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let browser = host.browser(Some(&Leaf::for_upn(BOBBY).issued_by(&ca)));
    let login = browser.follow(browser.get("/myapps").await).await;
    let reference_url = certificate_host_url(&browser, &login).await;

    let answers = futures_util::future::join_all((0..8).map(|_| browser.get(&reference_url))).await;

    let accepted = answers.iter().filter(|page| page.status == 303).count();
    assert_eq!(
        accepted,
        1,
        "{:?}",
        answers.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    assert!(
        answers
            .iter()
            .all(|page| page.status == 303 || page.status == 401)
    );
}

#[tokio::test]
async fn certificate_reference_forged_malformed_or_oversized_is_refused() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let browser = host.browser(Some(&Leaf::for_upn(BOBBY).issued_by(&ca)));
    let login = browser.follow(browser.get("/myapps").await).await;
    let reference_url = certificate_host_url(&browser, &login).await;
    let reference = query_param(&reference_url, "ref").unwrap();
    let mut flipped = reference.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();

    for bad in [
        flipped.as_str(),
        "not-base64!",
        "",
        &"A".repeat(600),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let page = browser
            .get(&format!("{}/login/certificate?ref={bad}", host.url))
            .await;
        assert_eq!(page.status, 401, "{bad}: {}", page.body);
        assert!(
            page.body.contains("Start your sign-in again"),
            "{}",
            page.body
        );
    }
    // The real reference still works once.
    let page = walk(&browser, browser.get(&reference_url).await).await;
    assert_signed_in_as(&page, "Bobby Smith");
}

#[tokio::test]
async fn certificate_result_of_another_browser_or_replayed_is_refused() {
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let victim = host.browser(Some(&Leaf::for_upn(BOBBY).issued_by(&ca)));
    let login = victim.follow(victim.get("/myapps").await).await;
    let (_, answer) = choose_certificate(&victim, &login).await;
    let result_url = answer.location.expect("the way back");

    // An attacker's browser, with a sign-in of its own, brings the victim's result.
    let attacker = host.browser(None);
    let _ = attacker.follow(attacker.get("/myapps").await).await;
    let stolen = attacker.get(&result_url).await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert!(
        stolen.body.contains("Start your sign-in again"),
        "{}",
        stolen.body
    );

    // The victim's own browser completes, once.
    let page = walk(&victim, victim.get(&result_url).await).await;
    assert_signed_in_as(&page, "Bobby Smith");
    let replayed = victim.get(&result_url).await;
    assert_ne!(replayed.status, 303, "{}", replayed.body);
}

#[tokio::test]
async fn the_certificate_listener_refuses_a_connection_without_a_client_certificate() {
    let host = CertificateHost::start().await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let browser = host.browser(None);

    let answer = browser
        .http
        .get(format!("{}/login/certificate?ref=x", host.url))
        .send()
        .await;

    assert!(answer.is_err(), "the handshake requires a certificate");
}

#[tokio::test]
async fn a_proxy_header_from_an_untrusted_address_is_ignored() {
    let server = TestServer::start_with(|config| {
        config.certificate.public_url = Some("https://certauth.localhost".into());
        config.certificate.trusted_proxies = vec!["10.9.9.9/32".into()];
    })
    .await;
    server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable_on(&server, &ca).await;
    let issued = Leaf::for_upn(BOBBY).issued_by(&ca);
    let browser = server.browser();
    let login = browser.follow(browser.get("/myapps").await).await;
    let reference = query_param(&certificate_host_url(&browser, &login).await, "ref").unwrap();

    // Straight to the main listener, header and all, from 127.0.0.1 (not a trusted proxy).
    let page = Browser::page(
        browser
            .http
            .get(format!("{}/login/certificate?ref={reference}", server.base))
            .header("X-Client-Cert", issued.escaped_pem())
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        page.body.contains("No certificate was presented"),
        "{}",
        page.body
    );
    assert!(
        sign_ins(&server).await.is_empty(),
        "nothing was signed in or tried"
    );
}

#[tokio::test]
async fn a_proxy_header_from_a_trusted_proxy_signs_in() {
    let server = TestServer::start_with(|config| {
        config.certificate.public_url = Some("https://certauth.localhost".into());
        config.certificate.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable_on(&server, &ca).await;
    let issued = Leaf::for_upn(BOBBY).issued_by(&ca);
    let browser = server.browser();
    let login = browser.follow(browser.get("/myapps").await).await;
    let location = certificate_host_url(&browser, &login).await;
    assert!(
        location.starts_with("https://certauth.localhost/login/certificate?ref="),
        "{location}"
    );
    let reference = query_param(&location, "ref").unwrap();

    // The proxy (at 127.0.0.1, trusted) forwards the certificate it verified.
    let back = Browser::page(
        browser
            .http
            .get(format!("{}/login/certificate?ref={reference}", server.base))
            .header("X-Client-Cert", issued.escaped_pem())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let page = browser.follow(back).await;

    assert_signed_in_as(&page, "Bobby Smith");
}

async fn enable_on(server: &TestServer, ca: &Ca) {
    let body = json!({
        "state": "enabled",
        "includeTargets": [{"targetType": "group", "id": "all_users"}],
        "certificateAuthorities": [{"certificate": ca.pem, "displayName": "Test CA"}],
        "certificateUserBindings": principal_name_binding(),
        "rules": [],
        "defaultMode": "x509CertificateMultiFactor",
    });
    let (status, answer) = server
        .api_call(
            Method::PUT,
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate",
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// A real client: curl with the certificate and key, following the whole browser flow from My
/// Apps to the certificate host and back, with a cookie jar. (curl runs on this thread, so the
/// server needs threads of its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_a_client_certificate_signs_in_to_my_apps() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let host = CertificateHost::start().await;
    host.server.user("bobby", "Bobby Smith").await;
    let ca = Ca::new("Contoso Issuing CA");
    host.enable_default(&ca).await;
    let issued = Leaf::for_upn(BOBBY).issued_by(&ca);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(path("bobby.pem"), &issued.cert_pem).unwrap();
    std::fs::write(path("bobby.key"), &issued.key_pem).unwrap();
    std::fs::write(path("certauth.pem"), &host.server_cert_pem).unwrap();
    let resolve = format!("localhost:{}:127.0.0.1", host.addr.port());
    let curl = |args: &[&str]| {
        let output = std::process::Command::new("curl")
            .args([
                "--max-time",
                "20",
                "--silent",
                "--show-error",
                "--cookie-jar",
                &path("jar"),
                "--cookie",
                &path("jar"),
            ])
            .args(["--cert", &path("bobby.pem"), "--key", &path("bobby.key")])
            .args(["--cacert", &path("certauth.pem"), "--resolve", &resolve])
            .args(args)
            .output()
            .expect("curl runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let login = curl(&["--location", &format!("{}/myapps", host.server.base)]);
    let csrf = super::support::hidden(&login, "csrf").expect("the sign-in page");
    let page = curl(&[
        "--location",
        "--data-urlencode",
        &format!("csrf={csrf}"),
        &format!("{}/login/certificate/start", host.server.base),
    ]);

    assert!(
        page.contains("Signed in as <strong>Bobby Smith</strong>"),
        "{page}"
    );
}
