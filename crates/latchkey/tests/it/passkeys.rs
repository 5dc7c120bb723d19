//! Passkeys over HTTP: registration on Security info and sign-in, with webauthn-rs's software
//! authenticator making real WebAuthn answers. What these tests defend is the HTTP edge's
//! input rules: every out-of-order, replayed, foreign, malformed or oversized answer is refused
//! with a page (or JSON) that says so, and none of them signs anyone in.

use latchkey_api::AuthenticationMethodConfigurationPatch;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::support::{Browser, Page, TestServer, manual_clock};

pub const BOBBY: &str = "bobby@contoso.example";

/// The server's public URL on `localhost` (a WebAuthn relying-party id must be a domain, and
/// browsers treat localhost as a secure context). It still listens on 127.0.0.1.
pub fn on_localhost(config: &mut latchkey::config::Config) {
    config.public_url = config.public_url.replace("127.0.0.1", "localhost");
}

/// The origin browsers use for the server: its public URL.
pub fn origin(server: &TestServer) -> url::Url {
    url::Url::parse(&server.base.replace("127.0.0.1", "localhost")).expect("origin")
}

/// Changes the FIDO2 method's configuration as an administrator does, over the admin API.
pub async fn fido2_policy(server: &TestServer, patch: Value) {
    let patch = AuthenticationMethodConfigurationPatch(patch.as_object().expect("object").clone());
    server
        .admin()
        .patch_configuration("fido2", &patch)
        .await
        .expect("FIDO2 policy changed");
}

/// Passkeys on for everyone (they are off by default).
pub async fn passkeys_enabled(server: &TestServer) {
    fido2_policy(server, json!({"state": "enabled"})).await;
}

/// A server on `localhost` with passkeys on, whose time is `clock`'s.
async fn server_on(clock: &std::sync::Arc<latchkey_domain::clock::ManualClock>) -> TestServer {
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(on_localhost)
        .start()
        .await;
    passkeys_enabled(&server).await;
    server
}

/// Adele, created with a pass that works once; returns the pass.
pub async fn adele_with_a_one_time_pass(server: &TestServer) -> String {
    let adele = server.user("adele", "Adele Vance").await;
    server
        .pass_with(
            &adele,
            latchkey_domain::credential::PassRequest {
                is_usable_once: Some(true),
                ..Default::default()
            },
        )
        .await
}

/// Opens the sign-in page in `browser` and types `upn`; returns the page that follows.
async fn after_the_name(browser: &Browser, upn: &str) -> Page {
    let login = browser.get("/login").await;
    let after_name = browser
        .post(
            "/login/username",
            &[("csrf", &login.csrf()), ("username", upn)],
        )
        .await;
    browser.follow(after_name).await
}

/// The value of `attribute="..."` in a page (the scripts' data-* attributes).
fn attribute(body: &str, attribute: &str) -> String {
    let marker = format!("{attribute}=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {attribute} in:\n{body}"))
        + marker.len();
    let end = body[start..].find('"').expect("attribute ends") + start;
    body[start..end].to_string()
}

fn json_of(page: &Page) -> Value {
    serde_json::from_str(&page.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", page.status, page.body))
}

fn session_cookie_in(browser_jar: &reqwest::cookie::Jar, server: &TestServer) -> bool {
    use reqwest::cookie::CookieStore;
    let url = url::Url::parse(&server.base).expect("base");
    browser_jar
        .cookies(&url)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .is_some_and(|cookies| cookies.contains("lk_session="))
}

/// A started registration: the page's CSRF token and the server's challenge.
struct Registration {
    csrf: String,
    ceremony: String,
    options: CreationChallengeResponse,
}

async fn begin_registration(browser: &Browser) -> Registration {
    let page = browser.get("/mysecurityinfo/passkey").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = attribute(&page.body, "data-csrf");
    let begun = browser
        .post("/mysecurityinfo/passkey/begin", &[("csrf", &csrf)])
        .await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    let begun = json_of(&begun);
    let mut options: CreationChallengeResponse =
        serde_json::from_value(json!({"publicKey": begun["publicKey"]}))
            .expect("creation options webauthn-rs reads");
    // The server asks for a discoverable credential; the software key cannot store one and
    // refuses when it is required. Residency is only a request (nothing in the answer proves
    // it), so the test lets the key make an ordinary one.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.require_resident_key = false;
        selection.resident_key = None;
    }
    Registration {
        csrf,
        ceremony: begun["ceremony"].as_str().expect("ceremony").to_string(),
        options,
    }
}

/// Bobby, signed in with a pass just now (fresh enough to add a method), and his browser.
async fn bobby_signed_in(server: &TestServer) -> (Browser, std::sync::Arc<reqwest::cookie::Jar>) {
    let (_, pass) = server.bobby_with_pass().await;
    bobby_signs_in_with(server, &pass).await
}

/// Bobby signs in with `pass` in a new browser.
async fn bobby_signs_in_with(
    server: &TestServer,
    pass: &str,
) -> (Browser, std::sync::Arc<reqwest::cookie::Jar>) {
    let (browser, jar) = server.browser_with_jar();
    let signed_in = browser.sign_in_at("/login", BOBBY, pass).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    (browser, jar)
}

/// The soft key's answer to a started registration.
fn attestation(server: &TestServer, key: &mut SoftPasskey, started: &Registration) -> String {
    let credential = key
        .do_registration(origin(server), started.options.clone())
        .expect("the soft key registers");
    serde_json::to_string(&credential).expect("JSON")
}

/// Posts a registration's answer, as the page's script does.
async fn finish_registration(
    browser: &Browser,
    csrf: &str,
    ceremony: &str,
    response: &str,
    name: &str,
) -> Page {
    browser
        .post(
            "/mysecurityinfo/passkey/finish",
            &[
                ("csrf", csrf),
                ("ceremony", ceremony),
                ("response", response),
                ("name", name),
            ],
        )
        .await
}

/// Registers a software passkey for the signed-in browser's user.
pub async fn register(server: &TestServer, browser: &Browser, key: &mut SoftPasskey, name: &str) {
    let started = begin_registration(browser).await;
    let response = attestation(server, key, &started);
    let finished =
        finish_registration(browser, &started.csrf, &started.ceremony, &response, name).await;
    assert_eq!(
        finished.location.as_deref(),
        Some("/mysecurityinfo?added=passkey"),
        "{}",
        finished.body
    );
}

/// A sign-in at the passkey step: the page's CSRF token and the server's challenge.
struct SignIn {
    browser: Browser,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    csrf: String,
    ceremony: String,
    options: RequestChallengeResponse,
}

/// A fresh browser types `upn` and begins "Sign in with a passkey or security key".
async fn begin_sign_in(server: &TestServer, upn: &str) -> SignIn {
    let (browser, jar) = server.browser_with_jar();
    let page = after_the_name(&browser, upn).await;
    let csrf = attribute(&page.body, "data-csrf");
    begin_with(browser, jar, csrf, "named").await
}

/// A fresh browser begins "Sign in with a passkey" on the first page, without a user name.
async fn begin_discoverable(server: &TestServer) -> SignIn {
    let (browser, jar) = server.browser_with_jar();
    let login = browser.get("/login").await;
    let csrf = login.csrf();
    begin_with(browser, jar, csrf, "discoverable").await
}

async fn begin_with(
    browser: Browser,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    csrf: String,
    mode: &str,
) -> SignIn {
    let begun = browser
        .post("/login/passkey/begin", &[("csrf", &csrf), ("mode", mode)])
        .await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    let begun = json_of(&begun);
    let options = serde_json::from_value(json!({"publicKey": begun["publicKey"]}))
        .expect("request options webauthn-rs reads");
    SignIn {
        browser,
        jar,
        csrf,
        ceremony: begun["ceremony"].as_str().expect("ceremony").to_string(),
        options,
    }
}

impl SignIn {
    async fn finish(&self, ceremony: &str, response: &str) -> Page {
        self.browser
            .post(
                "/login/passkey/finish",
                &[
                    ("csrf", &self.csrf),
                    ("ceremony", ceremony),
                    ("response", response),
                ],
            )
            .await
    }

    fn signed_in(&self, server: &TestServer) -> bool {
        session_cookie_in(&self.jar, server)
    }

    /// Asserts that `answer` (to `what`) is a refusal, and that this browser is not signed in.
    #[track_caller]
    fn assert_refused(&self, server: &TestServer, answer: &Page, what: &str) {
        assert!(
            (400..500).contains(&answer.status),
            "{what}: {} {}",
            answer.status,
            answer.body
        );
        assert!(!self.signed_in(server), "{what} signed in");
    }
}

/// A fresh browser signs in as `upn` with `key` after typing the name; returns the answer
/// to the key's assertion and whether the browser now has a session.
pub async fn sign_in_with_passkey(
    server: &TestServer,
    upn: &str,
    key: &mut SoftPasskey,
) -> (Page, bool) {
    let sign_in = begin_sign_in(server, upn).await;
    let response = assertion(server, key, &sign_in);
    let done = sign_in.finish(&sign_in.ceremony, &response).await;
    let signed_in = sign_in.signed_in(server);
    (done, signed_in)
}

fn assertion(server: &TestServer, key: &mut SoftPasskey, sign_in: &SignIn) -> String {
    let credential = key
        .do_authentication(origin(server), sign_in.options.clone())
        .expect("the soft key signs");
    serde_json::to_string(&credential).expect("JSON")
}

async fn server_with_bobbys_passkey() -> (TestServer, SoftPasskey) {
    let server = TestServer::start_with(on_localhost).await;
    passkeys_enabled(&server).await;
    let (browser, _) = bobby_signed_in(&server).await;
    let mut key = SoftPasskey::new(true);
    register(&server, &browser, &mut key, "Soft key").await;
    (server, key)
}

#[tokio::test]
async fn a_registered_passkey_is_listed_and_signs_in_to_my_apps_after_the_user_name() {
    let (server, mut key) = server_with_bobbys_passkey().await;
    let sign_in = begin_sign_in(&server, BOBBY).await;
    let response = assertion(&server, &mut key, &sign_in);
    let done = sign_in.finish(&sign_in.ceremony, &response).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/myapps"));
    assert!(sign_in.signed_in(&server));

    let info = sign_in.browser.get("/mysecurityinfo").await;
    assert!(info.body.contains("Soft key"), "{}", info.body);
    assert!(info.body.contains("Last used"), "{}", info.body);
}

#[tokio::test]
async fn replayed_assertion_is_refused_and_signs_nobody_in() {
    let (server, mut key) = server_with_bobbys_passkey().await;
    let first = begin_sign_in(&server, BOBBY).await;
    let captured = assertion(&server, &mut key, &first);
    let done = first.finish(&first.ceremony, &captured).await;
    assert_eq!(done.status, 303, "{}", done.body);

    // An attacker who captured the answer replays it into a sign-in of their own: against
    // their ceremony (another challenge) and against the used one.
    let attacker = begin_sign_in(&server, BOBBY).await;
    for ceremony in [attacker.ceremony.as_str(), first.ceremony.as_str()] {
        let replayed = attacker.finish(ceremony, &captured).await;
        attacker.assert_refused(&server, &replayed, &format!("a replay into {ceremony}"));
    }
}

#[tokio::test]
async fn finish_without_begin_is_refused() {
    let (server, mut key) = server_with_bobbys_passkey().await;
    let sign_in = begin_sign_in(&server, BOBBY).await;
    let response = assertion(&server, &mut key, &sign_in);
    let forged = sign_in
        .finish("0123456789abcdef0123456789abcdef", &response)
        .await;
    sign_in.assert_refused(&server, &forged, "a finish without begin");
}

#[tokio::test]
async fn finish_of_another_sign_ins_ceremony_is_refused() {
    let (server, mut key) = server_with_bobbys_passkey().await;
    let victim = begin_sign_in(&server, BOBBY).await;
    let response = assertion(&server, &mut key, &victim);
    // Another browser, with its own sign-in, posts the victim's ceremony and answer.
    let thief = begin_sign_in(&server, BOBBY).await;
    let stolen = thief.finish(&victim.ceremony, &response).await;
    thief.assert_refused(&server, &stolen, "another sign-in's ceremony");
}

#[tokio::test]
async fn assertion_made_for_another_origin_is_refused() {
    let (server, mut key) = server_with_bobbys_passkey().await;
    let sign_in = begin_sign_in(&server, BOBBY).await;
    // A phishing page relays the challenge; the browser there signs for its own origin. (The
    // soft key, like a browser, only signs where the relying-party id fits the page's host:
    // here another port of the same host, which is still another origin.)
    let phishing = url::Url::parse("http://localhost:1").unwrap();
    let credential = key
        .do_authentication(phishing, sign_in.options.clone())
        .expect("the soft key signs for that origin");
    let response = serde_json::to_string(&credential).unwrap();
    let refused = sign_in.finish(&sign_in.ceremony, &response).await;
    sign_in.assert_refused(&server, &refused, "an answer for another origin");
}

#[tokio::test]
async fn malformed_or_oversized_answers_are_refused_with_a_message() {
    let (server, mut key) = server_with_bobbys_passkey().await;
    let sign_in = begin_sign_in(&server, BOBBY).await;

    let not_json = sign_in.finish(&sign_in.ceremony, "{not json").await;
    assert_eq!(not_json.status, 400, "{}", not_json.body);
    assert!(
        not_json.body.contains("not in the expected format"),
        "{}",
        not_json.body
    );

    let oversized = format!("{{\"id\":\"{}\"}}", "A".repeat(20 * 1024));
    let too_large = sign_in.finish(&sign_in.ceremony, &oversized).await;
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert!(too_large.body.contains("16 KiB"), "{}", too_large.body);

    // Past the server's 64 KiB cap on every body, nothing reads the form at all.
    let huge = "A".repeat(70 * 1024);
    let refused = sign_in.finish(&sign_in.ceremony, &huge).await;
    assert_eq!(refused.status, 413, "{}", refused.body);

    let no_ceremony = sign_in.finish("", "{}").await;
    assert_eq!(no_ceremony.status, 400, "{}", no_ceremony.body);
    assert!(!sign_in.signed_in(&server));

    // Those refusals changed nothing: the ceremony still finishes with the real answer.
    let response = assertion(&server, &mut key, &sign_in);
    let done = sign_in.finish(&sign_in.ceremony, &response).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(sign_in.signed_in(&server));
}

#[tokio::test]
async fn begin_without_the_pages_csrf_token_or_with_an_unknown_mode_is_refused_as_json() {
    let (server, _) = server_with_bobbys_passkey().await;
    let (browser, _) = server.browser_with_jar();
    let login = browser.get("/login").await;

    let forged = browser
        .post(
            "/login/passkey/begin",
            &[("csrf", "forged"), ("mode", "discoverable")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(json_of(&forged)["error"].is_string());

    let unknown = browser
        .post(
            "/login/passkey/begin",
            &[("csrf", &login.csrf()), ("mode", "telepathy")],
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert!(json_of(&unknown)["error"].is_string());
}

#[tokio::test]
async fn discoverable_begin_names_no_credentials_so_it_tells_nobody_who_exists() {
    let (server, _) = server_with_bobbys_passkey().await;
    // Without a user name the options must not list anyone's credentials: the browser offers
    // whichever of its own passkeys are for this site.
    let sign_in = begin_discoverable(&server).await;
    let options = &sign_in.options.public_key;
    assert!(
        options.allow_credentials.is_empty(),
        "a discoverable ceremony names no credentials: {options:?}"
    );
    assert!(!sign_in.signed_in(&server));
}

#[tokio::test]
async fn finish_after_the_sign_in_expired_is_refused() {
    let clock = manual_clock();
    let server = server_on(&clock).await;
    let (browser, _) = bobby_signed_in(&server).await;
    let mut key = SoftPasskey::new(true);
    register(&server, &browser, &mut key, "Soft key").await;

    let sign_in = begin_sign_in(&server, BOBBY).await;
    let response = assertion(&server, &mut key, &sign_in);
    clock.advance(60 * 60);
    let late = sign_in.finish(&sign_in.ceremony, &response).await;
    sign_in.assert_refused(&server, &late, "a late answer");
}

#[tokio::test]
async fn registration_finish_replayed_or_for_an_unknown_ceremony_is_refused() {
    let server = TestServer::start_with(on_localhost).await;
    passkeys_enabled(&server).await;
    let (browser, _) = bobby_signed_in(&server).await;
    let mut key = SoftPasskey::new(true);
    let started = begin_registration(&browser).await;
    let response = attestation(&server, &mut key, &started);
    let unknown = finish_registration(
        &browser,
        &started.csrf,
        "0123456789abcdef0123456789abcdef",
        &response,
        "",
    )
    .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let first =
        finish_registration(&browser, &started.csrf, &started.ceremony, &response, "").await;
    assert_eq!(first.status, 303, "{}", first.body);
    let replayed =
        finish_registration(&browser, &started.csrf, &started.ceremony, &response, "").await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    assert!(
        replayed.body.contains("expired or was already used"),
        "{}",
        replayed.body
    );

    let info = browser.get("/mysecurityinfo").await;
    assert_eq!(
        info.body.matches("/mysecurityinfo/passkeys/").count(),
        2,
        "one passkey (a Rename and a Remove link): {}",
        info.body
    );
}

#[tokio::test]
async fn registration_needs_a_recent_sign_in() {
    let clock = manual_clock();
    let server = server_on(&clock).await;
    let (browser, _) = bobby_signed_in(&server).await;
    clock.advance(11 * 60);
    let page = browser.get("/mysecurityinfo/passkey").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/login")),
        "{:?}",
        page.location
    );
}

#[tokio::test]
async fn a_passkey_is_renamed_and_removed_only_by_its_owner_with_the_pages_token() {
    let (server, _) = server_with_bobbys_passkey().await;
    let (browser, _) = bobby_signed_in_again(&server).await;
    let info = browser.get("/mysecurityinfo").await;
    let marker = "/mysecurityinfo/passkeys/";
    let start = info.body.find(marker).expect("a passkey link") + marker.len();
    let id = info.body[start..].split('/').next().unwrap().to_string();

    let rename_page = browser
        .get(&format!("/mysecurityinfo/passkeys/{id}/rename"))
        .await;
    let renamed = browser
        .post(
            &format!("/mysecurityinfo/passkeys/{id}/rename"),
            &[("csrf", &rename_page.csrf()), ("name", "Blue key")],
        )
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let too_long = browser
        .post(
            &format!("/mysecurityinfo/passkeys/{id}/rename"),
            &[("csrf", &rename_page.csrf()), ("name", &"x".repeat(65))],
        )
        .await;
    assert_eq!(too_long.status, 400, "{}", too_long.body);
    assert!(
        browser
            .get("/mysecurityinfo")
            .await
            .body
            .contains("Blue key")
    );

    // Someone else's session cannot see or remove it.
    let adele = server.user("adele", "Adele Vance").await;
    let pass = server.pass(&adele).await;
    let (other, _) = server.browser_with_jar();
    other
        .sign_in_at("/login", "adele@contoso.example", &pass)
        .await;
    let theirs = other
        .get(&format!("/mysecurityinfo/passkeys/{id}/remove"))
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let info_for_csrf = other.get("/mysecurityinfo").await;
    let removed_by_other = other
        .post(
            &format!("/mysecurityinfo/passkeys/{id}/remove"),
            &[("csrf", &info_for_csrf.csrf())],
        )
        .await;
    assert_eq!(removed_by_other.status, 404, "{}", removed_by_other.body);

    let confirm = browser
        .get(&format!("/mysecurityinfo/passkeys/{id}/remove"))
        .await;
    assert!(confirm.body.contains("Remove"), "{}", confirm.body);
    let forged = browser
        .post(
            &format!("/mysecurityinfo/passkeys/{id}/remove"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let removed = browser
        .post(
            &format!("/mysecurityinfo/passkeys/{id}/remove"),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(
        removed.location.as_deref(),
        Some("/mysecurityinfo?removed=1")
    );
    assert!(
        !browser
            .get("/mysecurityinfo")
            .await
            .body
            .contains("Blue key")
    );
}

/// Bobby (already created) signs in again with a new pass in a new browser.
async fn bobby_signed_in_again(
    server: &TestServer,
) -> (Browser, std::sync::Arc<reqwest::cookie::Jar>) {
    let bobby = server
        .latchkey
        .directory
        .find_user(BOBBY)
        .await
        .expect("bobby exists");
    let pass = server.pass(&bobby.id).await;
    bobby_signs_in_with(server, &pass).await
}

#[tokio::test]
async fn a_user_with_only_a_passkey_never_sees_a_pass_prompt_and_signs_in_with_it() {
    let server = TestServer::start_with(on_localhost).await;
    passkeys_enabled(&server).await;
    let pass = adele_with_a_one_time_pass(&server).await;
    let (browser, _) = server.browser_with_jar();
    let signed_in = browser
        .sign_in_at("/login", "adele@contoso.example", &pass)
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let mut key = SoftPasskey::new(true);
    register(&server, &browser, &mut key, "Adele's key").await;

    // Her pass is spent: the page after her name is the passkey page, which starts by itself.
    let (browser, jar) = server.browser_with_jar();
    let page = after_the_name(&browser, "adele@contoso.example").await;
    assert!(
        page.body.contains("Use your passkey or security key"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-passkey-auto=\"named\""),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("name=\"secret\""),
        "no pass or password field: {}",
        page.body
    );

    let csrf = attribute(&page.body, "data-csrf");
    let sign_in = begin_with(browser, jar, csrf, "named").await;
    let response = assertion(&server, &mut key, &sign_in);
    let done = sign_in.finish(&sign_in.ceremony, &response).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(sign_in.signed_in(&server));
}

#[tokio::test]
async fn the_sign_in_pages_offer_passkeys_only_when_the_policy_has_them_on() {
    let server = TestServer::start_with(on_localhost).await;
    let offered =
        |body: &str| body.contains("/static/passkey.js") || body.contains("username webauthn");
    // Off by default: no button, no autofill, no script.
    let first = server.browser().get("/login").await;
    assert!(!offered(&first.body), "{}", first.body);

    passkeys_enabled(&server).await;
    let first = server.browser().get("/login").await;
    assert!(
        first.body.contains("autocomplete=\"username webauthn\""),
        "{}",
        first.body
    );
    assert!(
        first.body.contains("Sign in with a passkey"),
        "{}",
        first.body
    );
    // After a name, the same offer whoever it names, so it tells nothing about the account.
    let (_, _pass) = server.bobby_with_pass().await;
    let mut pages = Vec::new();
    for name in [BOBBY, "nobody@contoso.example"] {
        let (browser, _) = server.browser_with_jar();
        pages.push(after_the_name(&browser, name).await.body);
    }
    for page in &pages {
        assert!(
            page.contains("Sign in with a passkey or security key"),
            "{page}"
        );
    }
}

#[tokio::test]
async fn with_self_service_registration_off_security_info_offers_no_key_and_refuses_one() {
    let server = TestServer::start_with(on_localhost).await;
    fido2_policy(
        &server,
        json!({"state": "enabled", "isSelfServiceRegistrationAllowed": false}),
    )
    .await;
    let (browser, _) = bobby_signed_in(&server).await;
    let info = browser.get("/mysecurityinfo").await;
    assert!(!info.body.contains("id=\"add-passkey\""), "{}", info.body);

    let page = browser.get("/mysecurityinfo/passkey").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("Ask your administrator"),
        "{}",
        page.body
    );

    // A script that skips the page is refused too, as JSON.
    let begun = browser
        .post("/mysecurityinfo/passkey/begin", &[("csrf", &info.csrf())])
        .await;
    assert_eq!(begun.status, 403, "{}", begun.body);
    assert!(json_of(&begun)["error"].is_string(), "{}", begun.body);
}

#[tokio::test]
async fn registration_begin_from_a_browser_without_a_session_is_refused_as_json_that_says_so() {
    let server = TestServer::start_with(on_localhost).await;
    passkeys_enabled(&server).await;
    let (browser, _) = server.browser_with_jar();
    let begun = browser
        .post("/mysecurityinfo/passkey/begin", &[("csrf", "whatever")])
        .await;
    assert_eq!(begun.status, 401, "{}", begun.body);
    let error = json_of(&begun)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("sign in again"), "{error}");
}
