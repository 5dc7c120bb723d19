//! What the server gives away: nothing in its logs, and nothing about who has an account
//! beyond the phone sign-in page the product deliberately shows.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::phone::{PIN, Person, Phone, activation_link, reload, start_sign_in};
use crate::support::TestServer;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs_of_a_full_run() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("this test owns its process's logger (run it with nextest)");

    let server = TestServer::start().await;
    let user = server.user("bobby", "Bobby Smith").await;
    let pass = server.pass(&user).await;
    let bobby = Person {
        upn: "bobby@contoso.example".into(),
        browser: server.browser(),
    };
    let login = bobby
        .browser
        .follow(bobby.browser.get("/mysecurityinfo").await)
        .await;
    let signed_in = bobby
        .browser
        .sign_in_with_pass(login, &bobby.upn, &pass)
        .await;
    let session_cookie = bobby
        .browser
        .follow(signed_in)
        .await
        .body
        .contains("Security info");
    assert!(session_cookie);
    let add_page = bobby.start_adding_the_app().await;
    let code = activation_link(&add_page).code;
    drop(add_page);
    let mut phone = Phone::with_phone_sign_in(&bobby, "phone").await;

    let app = crate::phone::phone_sign_in_to_app(&server, &mut phone, &bobby.upn).await;
    let (secret, auth_code, tokens, request) = (app.secret, app.code, app.tokens, app.request);
    let start = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(start.body.contains("Approve sign in request"));
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("signed in"), "the run was logged at all");
    let secrets = [
        ("pass", pass.as_str()),
        ("activation code", code.as_str()),
        ("client secret", secret.as_str()),
        ("authorization code", auth_code.as_str()),
        ("access token", tokens["access_token"].as_str().unwrap()),
        ("refresh token", tokens["refresh_token"].as_str().unwrap()),
        ("ID token", tokens["id_token"].as_str().unwrap()),
        ("request nonce", request.nonce.as_str()),
    ];
    for (what, value) in secrets {
        assert!(value.len() >= 8, "{what} is a real value");
        assert!(!logs.contains(value), "the {what} appears in the logs");
    }
    assert!(
        !logs.contains(&format!("{PIN}\n")),
        "the PIN appears in the logs"
    );
}

/// The credential page with what is expected to differ blanked out.
pub(crate) fn normalised(body: &str, upn: &str) -> String {
    let csrf = crate::support::hidden(body, "csrf").unwrap_or_default();
    body.replace(&csrf, "CSRF").replace(upn, "UPN")
}

#[tokio::test]
async fn the_user_name_step_looks_the_same_for_unknown_users_and_users_without_phone_sign_in() {
    let server = TestServer::start().await;
    let user = server.user("guy", "Guy Oz").await;
    server.pass(&user).await;
    let known = start_sign_in(&server.browser(), "guy@contoso.example").await;
    let unknown = start_sign_in(&server.browser(), "nobody@contoso.example").await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        normalised(&known.body, "guy@contoso.example"),
        normalised(&unknown.body, "nobody@contoso.example"),
        "the page gives away nothing about whether the account exists"
    );
    // What the product deliberately shows: a user with phone sign-in gets the number page.
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let _phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    assert!(page.body.contains("Approve sign in request"));
    assert!(
        reload(&browser)
            .await
            .body
            .contains("Approve sign in request")
    );
}
