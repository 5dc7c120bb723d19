//! Passkeys in a real browser: headless Chromium with WebDriver's virtual authenticators as
//! the security key and the platform authenticator. People register on Security info and sign
//! in to My Apps with and without typing their name; the policy, a cloned key, a key that
//! cannot verify its user and a foreign origin are refused with a page that says so. Every
//! step leaves a screenshot in `artifacts/e2e/passkeys-*`.

use serde_json::json;

use crate::browser::{Chromedriver, Window, demo_bobby_with_phone_sign_in, request_on};
use crate::passkeys::{
    BOBBY, adele_with_a_one_time_pass, fido2_policy, on_localhost, passkeys_enabled,
};
use crate::support::TestServer;
use crate::virtual_authenticator::{Kind, VirtualAuthenticator};

/// An AAGUID that is not the virtual key's (webauthn-authenticator-rs's SoftToken).
const OTHER_MODEL: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";

/// A window on the server's public address (localhost). The browser offers no passkey
/// autofill (see [`without_autofill`]) until a test turns it on again.
async fn window_on_localhost(chromium: &Chromedriver, server: &TestServer, shots: &str) -> Window {
    let mut window = chromium.window(server, shots, None).await;
    window.base = server.base.replace("127.0.0.1", "localhost");
    without_autofill(&window).await;
    window
}

/// A server on `localhost` with passkeys on for everyone, and a window on its public address
/// signed in as Bobby with his pass, on Security info, with a virtual authenticator of `kind`
/// plugged in.
async fn bobby_on_security_info(
    chromium: &Chromedriver,
    shots: &str,
    kind: Kind,
) -> (TestServer, Window, VirtualAuthenticator) {
    let server = TestServer::start_with(on_localhost).await;
    passkeys_enabled(&server).await;
    let (_, pass) = server.bobby_with_pass().await;
    let window = window_on_localhost(chromium, &server, shots).await;
    window.goto("/mysecurityinfo").await;
    window.sign_in_with_pass(BOBBY, &pass, None).await;
    window.wait_for_text("Security info").await;
    let authenticator = VirtualAuthenticator::add(&window.client, kind).await;
    (server, window, authenticator)
}

/// Add method › Security key or passkey, named `name`; ends back on the list.
async fn add_passkey(window: &Window, name: &str, shot: &str) {
    window.click("#add-passkey").await;
    window.find("#passkey-create").await;
    window.type_into("#passkey-name", name).await;
    window.shots(&format!("{shot}-add")).await;
    window.click("#passkey-create").await;
    window.wait_for_text("was added").await;
    window.shots(&format!("{shot}-listed")).await;
}

/// As [`bobby_on_security_info`], where Bobby registered a security key named "Blue key"
/// (screenshots `01-*`) and then signed out.
async fn bobby_signed_out_with_a_key(
    chromium: &Chromedriver,
    shots: &str,
) -> (TestServer, Window, VirtualAuthenticator) {
    let (server, window, key) = bobby_on_security_info(chromium, shots, Kind::SecurityKey).await;
    add_passkey(&window, "Blue key", "01").await;
    sign_out(&window).await;
    (server, window, key)
}

async fn sign_out(window: &Window) {
    window.goto("/mysecurityinfo").await;
    window.click("form[action='/signout'] button").await;
    window.wait_for_text("signed out").await;
}

/// Waits for My Apps to say who is signed in, and takes the screenshot `shot`.
async fn signed_in(window: &Window, shot: &str) {
    window.wait_for_text("Signed in as").await;
    window.shots(shot).await;
}

/// Asserts that the page is not My Apps signed in.
async fn assert_not_signed_in(window: &Window) {
    let page = window.text().await;
    assert!(!page.contains("Signed in as"), "{page}");
}

/// The page's error (see [`problem_shown`]), after the screenshot `shot`.
async fn refusal(window: &Window, shot: &str) -> String {
    let problem = problem_shown(window).await;
    window.shots(shot).await;
    problem
}

/// The page's error, from the server (`#error`) or from the script (`#passkey-error`).
async fn problem_shown(window: &Window) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        for css in ["#error", "#passkey-error:not([hidden])"] {
            if let Ok(found) = window.client.find(fantoccini::Locator::Css(css)).await {
                let text = found.text().await.unwrap_or_default();
                if !text.is_empty() {
                    return text;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no error on the page:\n{}",
            window.text().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Whether the browser says it has passkey autofill is the test's to choose: headless Chromium
/// says no, and its virtual authenticators would answer an autofill request at once, without
/// UI, signing in before a test could type a name or press the button. So the page hears "no"
/// until the tab is named `autofill` (see [`with_autofill`]); then "yes", and its conditional
/// ceremony runs against the virtual authenticator.
const NO_AUTOFILL: &str = "PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(window.name === 'autofill');";

async fn without_autofill(window: &Window) {
    window
        .devtools(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": NO_AUTOFILL }),
        )
        .await;
}

/// Autofill on again for this tab (its window name survives navigation).
async fn with_autofill(window: &Window) {
    window
        .client
        .execute("window.name = 'autofill';", vec![])
        .await
        .expect("window name");
}

/// Signs in from My Apps by typing the name and choosing "Sign in with a passkey or security
/// key" on the next page.
async fn sign_in_after_the_name(window: &Window, shot: &str) {
    window.goto("/myapps").await;
    window.type_and_enter("#username", BOBBY).await;
    window.find("#passkey-sign-in").await;
    window.shots(&format!("{shot}-after-name")).await;
    window.click("#passkey-sign-in").await;
}

#[tokio::test]
async fn a_security_key_registers_on_security_info_and_signs_in_with_and_without_a_name() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let (_server, window, _key) =
        bobby_on_security_info(&chromium, "passkeys-security-key", Kind::SecurityKey).await;
    window.shots("01-security-info").await;
    add_passkey(&window, "Blue key", "02").await;
    assert_eq!(
        window.text_of(".passkey .method-label").await,
        "Security key"
    );
    assert!(
        window
            .text_of(".passkey .method-detail")
            .await
            .contains("Blue key")
    );

    // With the user name.
    sign_out(&window).await;
    sign_in_after_the_name(&window, "03").await;
    signed_in(&window, "04-my-apps-after-name").await;

    // Without: the button on the first page.
    sign_out(&window).await;
    window.goto("/myapps").await;
    window.find("#passkey-sign-in").await;
    window.shots("05-first-page").await;
    window.click("#passkey-sign-in").await;
    signed_in(&window, "06-my-apps-without-name").await;

    // Without, by autofill: the first page signs in as the browser offers the passkey.
    sign_out(&window).await;
    with_autofill(&window).await;
    window.goto("/myapps").await;
    signed_in(&window, "07-my-apps-by-autofill").await;

    let info = {
        window.goto("/mysecurityinfo").await;
        window.wait_for_text("Last used").await
    };
    assert!(info.contains("Blue key"), "{info}");
    window.close().await;
}

#[tokio::test]
async fn a_platform_passkey_registers_and_signs_in_without_a_name() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let (_server, window, _key) =
        bobby_on_security_info(&chromium, "passkeys-platform", Kind::Platform).await;
    add_passkey(&window, "This laptop", "01").await;
    let label = window.text_of(".passkey .method-label").await;
    assert_eq!(
        label, "Passkey",
        "a platform authenticator is a (device-bound) passkey"
    );

    sign_out(&window).await;
    window.goto("/myapps").await;
    window.click("#passkey-sign-in").await;
    signed_in(&window, "02-my-apps").await;

    sign_out(&window).await;
    sign_in_after_the_name(&window, "03").await;
    signed_in(&window, "04-my-apps-after-name").await;
    window.close().await;
}

#[tokio::test]
async fn a_key_model_the_policy_stops_allowing_after_registration_cannot_sign_in() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let (server, window, _key) =
        bobby_signed_out_with_a_key(&chromium, "passkeys-blocked-aaguid").await;

    // Only another model from now on. (Chromium reports an all-zero AAGUID under attestation
    // "none", so the virtual key's own AAGUID is never stored and a block list of it would not
    // match: an allow list is what reaches keys that do not say what they are.)
    fido2_policy(
        &server,
        json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [OTHER_MODEL]}}),
    )
    .await;
    sign_in_after_the_name(&window, "02").await;
    let problem = refusal(&window, "03-refused").await;
    assert!(
        problem.contains("doesn't allow this model"),
        "the page says the key is not allowed: {problem}"
    );
    assert_not_signed_in(&window).await;
    window.close().await;
}

#[tokio::test]
async fn attestation_enforced_without_trusted_roots_refuses_the_key_clearly() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let (server, window, _key) =
        bobby_on_security_info(&chromium, "passkeys-attestation", Kind::SecurityKey).await;
    fido2_policy(&server, json!({"isAttestationEnforced": true})).await;
    window.click("#add-passkey").await;
    window.click("#passkey-create").await;
    let problem = refusal(&window, "01-refused").await;
    assert!(
        problem.to_lowercase().contains("attest"),
        "the page says attestation is required: {problem}"
    );
    window.goto("/mysecurityinfo").await;
    assert!(
        !window
            .wait_for_text("Security info")
            .await
            .contains("Last used")
    );
    window.close().await;
}

#[tokio::test]
async fn a_cloned_key_whose_counter_went_backwards_is_refused() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let (server, window, key) = bobby_signed_out_with_a_key(&chromium, "passkeys-cloned-key").await;
    sign_in_after_the_name(&window, "02").await;
    signed_in(&window, "02-my-apps").await;
    sign_out(&window).await;

    // A copy of the key made before it was used: its counter is behind the server's.
    key.rewind_counters(&window.client, 0).await;
    sign_in_after_the_name(&window, "03").await;
    let problem = refusal(&window, "04-refused").await;
    assert!(problem.contains("wasn't accepted"), "{problem}");
    assert_not_signed_in(&window).await;
    // The page tells the person no more; the administrator's sign-in log says why.
    let log = server
        .admin()
        .sign_ins(&latchkey_api::LogParameters::default())
        .await
        .expect("sign-in log");
    let details: Vec<&str> = log
        .iter()
        .flat_map(|r| &r.authentication_details)
        .map(|step| step.authentication_step_result_detail.as_str())
        .collect();
    assert!(
        details.contains(&"counter went backwards"),
        "the log records the counter: {details:?}"
    );
    window.close().await;
}

#[tokio::test]
async fn a_key_that_cannot_verify_its_user_is_explained_on_the_page() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let (_server, window, key) =
        bobby_signed_out_with_a_key(&chromium, "passkeys-no-user-verification").await;
    key.set_user_verified(&window.client, false).await;
    sign_in_after_the_name(&window, "02").await;
    let problem = refusal(&window, "03-explained").await;
    assert!(problem.contains("couldn't verify you"), "{problem}");
    window.close().await;
}

#[tokio::test]
async fn a_page_on_another_origin_cannot_use_the_passkey() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let (server, mut window, _key) =
        bobby_signed_out_with_a_key(&chromium, "passkeys-wrong-origin").await;
    // The same server at 127.0.0.1: not the relying party's origin (localhost).
    window.base = server.base.clone();
    window.goto("/login").await;
    window.type_and_enter("#username", BOBBY).await;
    window.click("#passkey-sign-in").await;
    let problem = refusal(&window, "03-refused").await;
    assert!(problem.contains("address can't be used"), "{problem}");
    assert_not_signed_in(&window).await;
    window.close().await;
}

/// The hook for the strength tests (an application that requires phishing-resistant MFA):
/// Bobby of the demo tenant, signed in by phone sign-in in a window on the server's public
/// address, with a security key he then registered on Security info (phone sign-in is a
/// strong, fresh sign-in). Returns the window (on Security info), his phone and the key, so a
/// test can start with a phone-signed-in session and step it up with "Sign in with a passkey or
/// security key". The server must be on localhost (`on_localhost`) with passkeys on.
pub(crate) async fn phone_signed_in_with_a_security_key(
    chromium: &Chromedriver,
    server: &TestServer,
    shots: &str,
) -> (Window, crate::phone::Phone, VirtualAuthenticator) {
    let mut phone = demo_bobby_with_phone_sign_in(server).await;
    let window = window_on_localhost(chromium, server, shots).await;
    let number = window.start_phone_sign_in(DEMO_BOBBY).await;
    let request = request_on(&phone).await;
    phone.approve(&request, number).await;
    window.wait_for_text("Signed in as").await;
    window.goto("/mysecurityinfo").await;
    window.wait_for_text("Security info").await;
    let key = VirtualAuthenticator::add(&window.client, Kind::SecurityKey).await;
    add_passkey(&window, "Bobby's key", "01").await;
    (window, phone, key)
}

/// Bobby in the demo tenant (the one with phone sign-in).
const DEMO_BOBBY: &str = "bobby@latchkey.test";

#[tokio::test]
async fn a_phone_signed_in_user_adds_a_security_key_and_then_signs_in_with_it() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start_with(on_localhost).await;
    passkeys_enabled(&server).await;
    let (window, _phone, _key) =
        phone_signed_in_with_a_security_key(&chromium, &server, "passkeys-after-phone").await;
    sign_out(&window).await;
    window.goto("/myapps").await;
    window.type_and_enter("#username", DEMO_BOBBY).await;
    // Phone sign-in starts by itself after the name; the key is one of the other ways.
    window.find("#number").await;
    window.click("button[value='pass']").await;
    window.click("#passkey-sign-in").await;
    signed_in(&window, "02-my-apps-with-the-key").await;
    window.close().await;
}

#[tokio::test]
async fn a_user_with_only_a_passkey_gets_a_page_that_starts_the_ceremony_itself() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start_with(on_localhost).await;
    passkeys_enabled(&server).await;
    let pass = adele_with_a_one_time_pass(&server).await;
    let window = window_on_localhost(&chromium, &server, "passkeys-only-a-passkey").await;
    window.goto("/mysecurityinfo").await;
    window
        .sign_in_with_pass("adele@contoso.example", &pass, None)
        .await;
    window.wait_for_text("Security info").await;
    let key = VirtualAuthenticator::add(&window.client, Kind::Platform).await;
    add_passkey(&window, "Adele's laptop", "01").await;
    sign_out(&window).await;

    // The first attempt fails (the key cannot verify her), so the page stays to be seen.
    key.set_user_verified(&window.client, false).await;
    window.goto("/myapps").await;
    window
        .type_and_enter("#username", "adele@contoso.example")
        .await;
    window
        .wait_for_text("Use your passkey or security key")
        .await;
    let problem = problem_shown(&window).await;
    assert!(problem.contains("couldn't verify you"), "{problem}");
    let page = window.text().await;
    assert!(!page.contains("Temporary Access Pass"), "{page}");
    window.shots("02-passkey-page").await;

    key.set_user_verified(&window.client, true).await;
    window.click("#passkey-sign-in").await;
    signed_in(&window, "03-my-apps").await;
    window.close().await;
}
