//! A single-page application on another origin signs in with Latchkey in real Chromium: it
//! reads discovery and the JWKS, sends the user to `/authorize` with PKCE (WebCrypto), the user
//! signs in on Latchkey's pages with a Temporary Access Pass, and the page exchanges the code
//! with `fetch` and shows the name `/userinfo` gives. The same page on an origin no application
//! registered is blocked by the browser.

use latchkey_domain::log::Actor;
use latchkey_domain::service::NewApplication;

use latchkey_protocol::wire::{AnswerOutcome, Decision};

use crate::browser::{Chromedriver, Window, demo_bobby_with_phone_sign_in, request_on};
use crate::phone::Phone;
use crate::sign_in_wait::{WAITS_FINISHED, metric};
use crate::support::TestServer;

/// The single-page app: one HTML page with its script, for `issuer` and `client_id`.
fn spa_page(issuer: &str, client_id: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Fabrikam Board</title></head>
<body><h1>Fabrikam Board</h1><p id="out">Starting</p>
<script>
const issuer = {issuer:?};
const clientId = {client_id:?};
const redirect = location.origin + "/";
const out = document.getElementById("out");
function b64url(bytes) {{
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}}
async function main() {{
  const discovery = await (await fetch(issuer + "/.well-known/openid-configuration")).json();
  const jwks = await (await fetch(discovery.jwks_uri)).json();
  if (!jwks.keys.length) throw new Error("no keys");
  const params = new URLSearchParams(location.search);
  if (!params.get("code")) {{
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
    const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
    sessionStorage.setItem("verifier", verifier);
    sessionStorage.setItem("state", state);
    const url = new URL(discovery.authorization_endpoint);
    url.search = new URLSearchParams({{
      client_id: clientId, response_type: "code", scope: "openid profile",
      redirect_uri: redirect, state, code_challenge: challenge, code_challenge_method: "S256",
    }});
    out.textContent = "Signing in";
    location.assign(url.toString());
    return;
  }}
  if (params.get("state") !== sessionStorage.getItem("state")) throw new Error("state mismatch");
  const answer = await fetch(discovery.token_endpoint, {{
    method: "POST",
    headers: {{ "Content-Type": "application/x-www-form-urlencoded" }},
    body: new URLSearchParams({{
      grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirect,
      client_id: clientId, code_verifier: sessionStorage.getItem("verifier"),
    }}),
  }});
  const tokens = await answer.json();
  if (!answer.ok) throw new Error("token endpoint: " + JSON.stringify(tokens));
  const info = await (await fetch(discovery.userinfo_endpoint, {{
    headers: {{ Authorization: "Bearer " + tokens.access_token }},
  }})).json();
  out.textContent = "Signed in as " + info.name;
}}
main().catch((e) => {{ out.textContent = "Failed: " + e; }});
</script></body></html>"#
    )
}

/// Whether and how the SPA is registered.
#[derive(Clone, Copy, PartialEq)]
enum Registered {
    No,
    /// Open to every user.
    Open,
    /// Assignment required, and nobody assigned.
    AssignedToNobody,
}

/// The app's origin must be known before its page exists: reserve the port, register, serve.
async fn spa_on_free_port(
    server: &TestServer,
    registered: Registered,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://localhost:{port}");
    let client_id = if registered != Registered::No {
        let (app, _) = server
            .latchkey
            .applications
            .register_application(
                &Actor::system(),
                NewApplication {
                    display_name: "Fabrikam Board".into(),
                    redirect_uris: vec![format!("{origin}/")],
                    post_logout_redirect_uris: vec![],
                    public_client: true,
                    id_token_signing_alg: Some("ES256".into()),
                    home_url: None,
                    required_strength: None,
                    allowed_origins: vec![],
                    groups_claim: None,
                    assignment_required: registered == Registered::AssignedToNobody,
                    backchannel_logout_uri: None,
                },
            )
            .await
            .expect("register the SPA");
        app.client_id.to_string()
    } else {
        "unregistered".to_string()
    };
    drop(listener);
    let page = spa_page(&server.base, &client_id);
    let (served, task) = serve_spa_on(port, page).await;
    assert_eq!(served, origin);
    (origin, task)
}

async fn serve_spa_on(port: u16, page: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://localhost:{port}"), task)
}

/// The form token of the sign-in page in `window`: one per sign-in.
async fn form_token(window: &Window) -> String {
    window
        .find("input[name=csrf]")
        .await
        .attr("value")
        .await
        .unwrap()
        .expect("a form token")
}

#[tokio::test]
async fn a_single_page_app_on_another_origin_signs_in_with_pkce_and_fetch() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let (_, pass) = server.bobby_with_pass().await;
    let (origin, spa) = spa_on_free_port(&server, Registered::Open).await;
    let window = chromium.window(&server, "spa", None).await;
    window
        .client
        .goto(&format!("{origin}/"))
        .await
        .expect("open the SPA");
    // The SPA sends the browser to Latchkey's sign-in pages. The authorization endpoint shows
    // the first one itself; the address bar then says /login, and a reload there shows the
    // same sign-in (the same form token), not a new one.
    let before = form_token(&window).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let url = window.client.current_url().await.unwrap();
        if url.path() == "/login" {
            assert_eq!(url.query(), None, "{url}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still at {url}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    window.client.refresh().await.unwrap();
    assert_eq!(
        form_token(&window).await,
        before,
        "a reload keeps the sign-in"
    );
    window
        .sign_in_with_pass("bobby@contoso.example", &pass, None)
        .await;
    let text = window.wait_for_text("Signed in as").await;
    assert!(text.contains("Signed in as Bobby Smith"), "{text}");
    let url = window.client.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&origin), "{url}");
    window.close().await;
    spa.abort();
}

#[tokio::test]
async fn the_browser_blocks_a_page_on_an_unknown_origin() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let (origin, spa) = spa_on_free_port(&server, Registered::No).await;
    let window = chromium.window(&server, "spa-unknown", None).await;
    window
        .client
        .goto(&format!("{origin}/"))
        .await
        .expect("open the page");
    let text = window.wait_for_text("Failed").await;
    assert!(text.contains("Failed to fetch"), "{text}");
    window.close().await;
    spa.abort();
}

/// The number page comes in the answer to the user name's post, and its long-poll brings the
/// next step with it (issue 20): when the phone approves, Chromium goes from the number page straight to the application with its code,
/// without reloading `/login` first. When that step is a page instead (an application assigned
/// to nobody refuses the user), the number page shows it in its own place.
#[tokio::test]
async fn the_number_page_goes_straight_to_the_app_when_the_phone_approves_and_shows_a_refusal_in_place()
 {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let mut phone = demo_bobby_with_phone_sign_in(&server).await;
    let (origin, spa) = spa_on_free_port(&server, Registered::Open).await;
    let window = chromium.window(&server, "spa-phone", None).await;
    // The number page comes in the answer to the user name's post; its address is /login, so
    // a reload shows the same number and sends no second notification.
    let shown = number_for_bobby(&window, &origin).await;
    let url = window.client.current_url().await.unwrap();
    assert_eq!((url.path(), url.query()), ("/login", None), "{url}");
    window.client.refresh().await.unwrap();
    assert_eq!(
        window.number().await,
        shown,
        "a reload shows the same sign-in"
    );
    approve(&mut phone, shown).await;
    let text = window.wait_for_text("Signed in as").await;
    assert!(text.contains("Signed in as Bobby"), "{text}");
    assert_eq!(
        metric(&server.base, WAITS_FINISHED).await,
        1,
        "the long-poll's answer finished the sign-in"
    );
    window.close().await;
    spa.abort();

    let (origin, spa) = spa_on_free_port(&server, Registered::AssignedToNobody).await;
    let window = chromium.window(&server, "spa-phone-refused", None).await;
    let number = number_for_bobby(&window, &origin).await;
    approve(&mut phone, number).await;
    let text = window.wait_for_text("assigned to this application").await;
    assert!(!text.contains("Signed in as"), "{text}");
    let url = window.client.current_url().await.unwrap();
    assert!(
        url.as_str().starts_with(&server.base),
        "stays with Latchkey: {url}"
    );
    assert_eq!(metric(&server.base, WAITS_FINISHED).await, 2);
    window.shots("01-refused-in-place").await;
    window.close().await;
    spa.abort();
}

/// Opens the SPA at `origin`, which sends the browser to sign in, and types Bobby's name;
/// returns the number the page shows.
async fn number_for_bobby(window: &Window, origin: &str) -> u8 {
    window.client.goto(&format!("{origin}/")).await.unwrap();
    window
        .type_and_enter("#username", "bobby@latchkey.test")
        .await;
    window.number().await
}

/// Bobby's phone approves its one request with `number`.
async fn approve(phone: &mut Phone, number: u8) {
    let request = request_on(phone).await;
    assert_eq!(
        phone
            .answer(&request, Decision::Approve, Some(number))
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
}
