//! The phone app's notifications: Web Push to its service worker in headless Chromium, which
//! turns a push into an "Approve sign in?" notification (split from `phone_app.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use crate::browser::{Chromedriver, ForwardingProxy, LONDON, Window, artifacts};
use crate::passkeys::on_localhost;
use crate::phone::number_on;
use crate::phone_app::*;
use crate::support::{Browser, TestServer, geoip_databases};
use crate::virtual_authenticator::{Kind, VirtualAuthenticator};

// ---- notifications ----

/// WebDriver's Permissions command: grants `name` to the page's origin.
#[derive(Debug)]
struct Grant(&'static str);

impl WebDriverCompatibleCommand for Grant {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/permissions",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"descriptor": {"name": self.0}, "state": "granted"}).to_string()),
        )
    }
}

/// A DevTools session of our own on the page (its events do not come back through
/// chromedriver): the service worker's registration id, and a push delivered to it.
struct DevToolsSocket {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl DevToolsSocket {
    async fn open(window: &Window) -> DevToolsSocket {
        let capabilities = window.client.capabilities().expect("capabilities");
        let address = capabilities["goog:chromeOptions"]["debuggerAddress"]
            .as_str()
            .expect("a debugger address")
            .to_string();
        let targets: Value = reqwest::get(format!("http://{address}/json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        DevToolsSocket { socket, next_id: 1 }
    }

    async fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(
                json!({"id": id, "method": method, "params": params}).to_string(),
            ))
            .await
            .unwrap();
        id
    }

    /// The next message that `wanted` accepts, within 20 s.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, self.socket.next())
                .await
                .expect("DevTools answered in time")
                .expect("DevTools still open")
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if wanted(&value) {
                    return value;
                }
            }
        }
    }

    /// The id of the active registration whose scope is `scope`.
    async fn registration(&mut self, scope: &str) -> String {
        self.send("ServiceWorker.enable", json!({})).await;
        let event = self
            .until(|m| {
                m["method"] == "ServiceWorker.workerRegistrationUpdated"
                    && m["params"]["registrations"].as_array().is_some_and(|r| {
                        r.iter()
                            .any(|r| r["scopeURL"] == scope && r["isDeleted"] == false)
                    })
            })
            .await;
        event["params"]["registrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["scopeURL"] == scope)
            .unwrap()["registrationId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn push(&mut self, origin: &str, registration: &str, data: &str) {
        let id = self
            .send(
                "ServiceWorker.deliverPushMessage",
                json!({"origin": origin, "registrationId": registration, "data": data}),
            )
            .await;
        let answer = self.until(|m| m["id"] == id).await;
        assert!(answer.get("error").is_none(), "{answer}");
    }
}

#[tokio::test]
async fn the_service_worker_turns_a_push_into_an_approve_sign_in_notification() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = server_with(Arc::new(AheadClock(AtomicI64::new(0))), 90).await;
    let guy = person(&server, "guy", "Guy Oz").await;
    let window = phone(&chromium, &server, "push").await;
    add_account(&window, &guy, "Guy's phone", false).await;
    window
        .client
        .issue_cmd(Grant("notifications"))
        .await
        .expect("notifications granted");
    let mut devtools = DevToolsSocket::open(&window).await;
    let scope = format!("{}{APP}", window.base);
    let registration = devtools.registration(&scope).await;

    let (_browser, _) = password_sign_in(&server, &guy.upn).await;
    request_shown(&window, "mfa_push").await;
    let id = window
        .find("dl.request")
        .await
        .attr("data-request")
        .await
        .unwrap()
        .unwrap();
    // What the server pushes: the request id only; the worker asks for the rest.
    devtools
        .push(
            &window.base,
            &registration,
            &json!({"type": "request", "id": id}).to_string(),
        )
        .await;
    let shown = notifications(&window, 1).await;
    assert_eq!(shown[0]["title"], "Approve sign-in?");
    assert_eq!(shown[0]["tag"], json!(id));
    let body = shown[0]["body"].as_str().unwrap();
    assert!(
        body.contains(&guy.upn) && body.contains("My Apps"),
        "{body}"
    );
    std::fs::write(
        artifacts().join("phone-app-push-notification.txt"),
        format!("{}\n{body}\n", shown[0]["title"].as_str().unwrap()),
    )
    .unwrap();
    snap(&window, "01-request-and-notification").await;

    window.close().await;
}

/// The notifications the app's worker shows, once there are `count`.
async fn notifications(window: &Window, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = run(
            window,
            r#"const done = arguments[0];
            navigator.serviceWorker.ready
              .then(r => r.getNotifications())
              .then(list => done(list.map(n => ({ title: n.title, body: n.body, tag: n.tag }))));"#,
        )
        .await;
        let shown = shown.as_array().cloned().unwrap_or_default();
        if shown.len() >= count {
            return shown;
        }
        assert!(Instant::now() < deadline, "no notification: {shown:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---- phone sign-in with the phone's own user verification (WebAuthn) ----

#[tokio::test]
async fn phone_sign_in_approved_with_the_number_and_the_phones_user_verification_signs_in_another_browser()
 {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = server_with(Arc::new(AheadClock(AtomicI64::new(0))), 90).await;
    let guy = person(&server, "guy", "Guy Oz").await;
    let window = phone(&chromium, &server, "phone-sign-in").await;
    add_account(&window, &guy, "Guy's phone", false).await;
    // The phone's own authenticator: a platform one whose user verification succeeds.
    let authenticator = VirtualAuthenticator::add(&window.client, Kind::Platform).await;
    window.click("button[data-action=enable]").await;
    status_says(&window, "Phone sign-in is on").await;
    let card = window.text_of("li.account").await;
    assert!(card.contains("Passwordless"), "{card}");
    snap(&window, "01-phone-sign-in-on").await;
    assert_eq!(authenticator.credentials(&window.client).await.len(), 1);
    let info = crate::phone::unescape(&guy.browser.get("/mysecurityinfo").await.body);
    assert!(info.contains("Guy's phone"), "{info}");
    assert!(
        info.contains("Authenticator app (web) — Passwordless"),
        "{info}"
    );

    // The computer, in London (through a trusted proxy, when the DB-IP files are there): the
    // user name only, then the number.
    let london = geoip_databases().is_some();
    let proxy = ForwardingProxy::start(LONDON).await;
    let mut computer = chromium
        .window(
            &server,
            "phone-app-phone-sign-in-computer",
            london.then_some(proxy.addr),
        )
        .await;
    computer.base = window.base.clone();
    computer.goto("/myapps").await;
    computer.type_and_enter("#username", &guy.upn).await;
    let number: u8 = computer.text_of("#number").await.trim().parse().unwrap();
    computer.shot("01-number").await;
    request_shown(&window, "phone_sign_in").await;
    assert_eq!(window.text_of("#request-application").await, "My Apps");
    if london {
        let place = window.text_of("#request-location").await;
        assert!(place.starts_with("London"), "{place}");
        // The offline world map, with its dot.
        window.find("#request-map[data-rendered] svg circle").await;
    }
    snap(&window, "02-request").await;
    window.type_into("#number", &number.to_string()).await;
    window.click("#approve").await;
    answered(&window, "approved").await;
    snap(&window, "03-approved").await;
    let apps = computer.wait_for_text("Signed in as").await;
    assert!(apps.contains("Guy Oz"), "{apps}");
    computer.shot("02-my-apps").await;
    computer.close().await;
    window.click("#done").await;

    // Without the phone's user verification the approval is not sent; the request waits,
    // and can still be denied.
    authenticator.set_user_verified(&window.client, false).await;
    let (browser, number) = phone_sign_in_number(&server, &guy.upn).await;
    request_shown(&window, "phone_sign_in").await;
    window.type_into("#number", &number.to_string()).await;
    window.click("#approve").await;
    let said = shown_text(&window, "#answer-error").await;
    assert!(said.contains("didn't confirm it's you"), "{said}");
    snap(&window, "04-not-verified").await;
    let page = browser.follow(browser.get("/login").await).await;
    assert!(
        page.body.contains("id=\"number\""),
        "still waiting: {}",
        page.body
    );
    window.click("#deny").await;
    answered(&window, "denied").await;
    window.click("#done").await;

    // Turning it off needs the phone's user verification too.
    authenticator.set_user_verified(&window.client, true).await;
    window.click("button[data-action=disable]").await;
    status_says(&window, "Phone sign-in is off").await;
    let card = window.text_of("li.account").await;
    assert!(card.contains("MFA push"), "{card}");
    snap(&window, "05-phone-sign-in-off").await;
    window.close().await;
}

/// A phone sign-in started over HTTP (the user name only), up to the number page.
async fn phone_sign_in_number(server: &TestServer, upn: &str) -> (Browser, u8) {
    let mut browser = server.browser();
    browser.base = server.base.replace("127.0.0.1", "localhost");
    let page = crate::phone::start_sign_in(&browser, upn).await;
    (browser, number_on(&page))
}

/// Waits until the app's status line says `needle`.
pub(crate) async fn status_says(window: &Window, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let said = match window
            .client
            .find(fantoccini::Locator::Css("#status"))
            .await
        {
            Ok(found) => found.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if said.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the app never said {needle:?}; it says {said:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---- turning notifications on ----

/// `pushManager.subscribe` never settles in headless Chromium without the internet, so the
/// test's page gets one that answers at once with a subscription of its own making (a real
/// P-256 key and auth secret, an https endpoint on loopback), and remembers the options.
const SUBSCRIBE_STUB: &str = r#"
PushManager.prototype.getSubscription = function () { return Promise.resolve(null); };
PushManager.prototype.subscribe = async function (options) {
  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  const json = {
    endpoint: "https://127.0.0.1:9/push/phone-app-test",
    expirationTime: null,
    keys: { p256dh: b64(await crypto.subtle.exportKey("raw", pair.publicKey)),
            auth: b64(crypto.getRandomValues(new Uint8Array(16))) }
  };
  sessionStorage.setItem("subscribed-with", JSON.stringify({
    userVisibleOnly: options.userVisibleOnly, key: b64(options.applicationServerKey) }));
  return { endpoint: json.endpoint, toJSON: () => json };
};
"#;

#[tokio::test]
async fn turning_notifications_on_subscribes_with_the_servers_vapid_key_and_registers_the_subscription()
 {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::builder()
        .config(on_localhost)
        .config(|c| c.web_push.allow_private_endpoints = true)
        .start()
        .await;
    let guy = person(&server, "guy", "Guy Oz").await;
    let window = phone(&chromium, &server, "notifications").await;
    window
        .devtools(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": SUBSCRIBE_STUB }),
        )
        .await;
    add_account(&window, &guy, "Guy's phone", false).await;
    window
        .client
        .issue_cmd(Grant("notifications"))
        .await
        .expect("notifications granted");
    snap(&window, "01-turn-on").await;
    window.click("#notifications").await;
    status_says(&window, "Notifications are on").await;
    window.find("#notifications-on").await;
    snap(&window, "02-on").await;
    let seen = run(
        &window,
        r#"const done = arguments[0];
        Latchkey.listAccounts().then(([account]) => Latchkey.signed(account, "GET", "/push", ""))
          .then(push => done({ push: push.body, subscribed: JSON.parse(sessionStorage.getItem("subscribed-with")) }));"#,
    )
    .await;
    assert_eq!(seen["push"]["subscribed"], json!(true), "{seen}");
    assert_eq!(seen["subscribed"]["userVisibleOnly"], json!(true), "{seen}");
    assert_eq!(
        seen["subscribed"]["key"], seen["push"]["vapid_public_key"],
        "subscribed with the server's VAPID key"
    );
    window.close().await;
}

// ---- turning phone sign-in on long after adding the app ----

#[tokio::test]
async fn an_account_added_long_ago_turns_phone_sign_in_on_after_allow_phone_sign_in_with_the_number()
 {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let clock = Arc::new(AheadClock(AtomicI64::new(0)));
    // A short enable window: the browser signs with the real time, so the server's clock may
    // move ahead by less than a minute.
    let server = server_adjusted(clock.clone(), 90, |c| {
        c.lifetimes.phone_sign_in_enable_seconds = 20;
    })
    .await;
    let guy = person(&server, "guy", "Guy Oz").await;
    let window = phone(&chromium, &server, "allow-phone-sign-in").await;
    add_account(&window, &guy, "Guy's phone", false).await;
    let _authenticator = VirtualAuthenticator::add(&window.client, Kind::Platform).await;
    clock.0.store(21, Ordering::SeqCst);
    window.click("button[data-action=enable]").await;
    status_says(&window, "Allow phone sign-in").await;

    let info = guy.browser.get("/mysecurityinfo").await;
    let marker = "/phone-sign-in-consent\"";
    let end = info
        .body
        .find(marker)
        .expect("Allow phone sign-in is offered");
    let start = info.body[..end].rfind('/').unwrap() + 1;
    let device = &info.body[start..end];
    let waiting = crate::phone_sign_in_consent::allow_phone_sign_in(&guy, device).await;
    request_shown(&window, "phone_sign_in_consent").await;
    assert_eq!(
        window.text_of("#request-application").await,
        "Security info"
    );
    snap(&window, "01-allow-phone-sign-in").await;
    window
        .type_into("#number", &number_on(&waiting.page).to_string())
        .await;
    window.click("#approve").await;
    answered(&window, "approved").await;
    assert!(
        window
            .text_of("#outcome")
            .await
            .contains("Phone sign-in allowed"),
        "{}",
        window.text().await
    );
    window.click("#done").await;
    window.click("button[data-action=enable]").await;
    status_says(&window, "Phone sign-in is on").await;
    snap(&window, "02-phone-sign-in-on").await;
    window.close().await;
}
