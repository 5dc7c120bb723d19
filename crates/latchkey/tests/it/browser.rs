//! The lab, end to end, in a real browser: headless Chromium, driven over WebDriver by
//! chromedriver, walks the admin console, the security-info page, My Apps and the number page
//! the way people do, with the authenticator library as the phone. Every step leaves a
//! screenshot in `artifacts/e2e/` at the repository root, at desktop size and, for the pages
//! people read, at phone size too. Without Chromium the tests say they are skipped; under CI
//! they fail instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use latchkey::demo::DemoPerson;
use latchkey_authenticator::Authenticator;
use latchkey_domain::policy::AuthenticationMode;
use latchkey_protocol::ActivationLink;
use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, ApprovalRequest, Decision};
use serde_json::{Value, json};

use crate::phone::{PIN, Person, Phone, another_number};
use crate::support::{TestServer, geoip_databases, manual_clock};

const DESKTOP: (u32, u32) = (1280, 900);
pub(crate) const PHONE: (u32, u32) = (390, 844);
/// How long a page may take to get where its own script or refresh takes it.
const PAGE_MOVES_ON: Duration = Duration::from_secs(20);
/// An address the DB-IP database places in London.
pub(crate) const LONDON: &str = "81.2.69.160";

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A chromedriver of our own on a free loopback port; the browsers it starts end with it.
pub(crate) struct Chromedriver {
    child: Child,
    url: String,
    chromium: PathBuf,
}

impl Chromedriver {
    /// `None` (with a note) outside CI when Chromium or chromedriver is missing; in CI their
    /// absence fails the test.
    pub(crate) async fn start() -> Option<Chromedriver> {
        let (Some(chromium), Some(driver)) = (on_path("chromium"), on_path("chromedriver")) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "Chromium not found: install chromium and chromium-driver (.ci/run does)"
            );
            eprintln!("skipped: Chromium not found (install chromium and chromium-driver)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .expect("chromedriver starts");
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(status) = reqwest::get(format!("{}/status", driver.url)).await
                && status.status().is_success()
            {
                return Some(driver);
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {}",
                driver.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A fresh browser context (its own Chromium and profile) for one person.
    pub(crate) async fn window(
        &self,
        server: &TestServer,
        shots: &str,
        proxy: Option<SocketAddr>,
    ) -> Window {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--lang=en-US",
            "--window-size=1280,900",
        ]
        .map(String::from)
        .into();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        if let Some(proxy) = proxy {
            // Chromium never proxies loopback unless told to.
            args.push(format!("--proxy-server=http://{proxy}"));
            args.push("--proxy-bypass-list=<-loopback>".into());
        }
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": self.chromium, "args": args}),
        );
        let client = ClientBuilder::rustls()
            .expect("connector")
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        let window = Window {
            client,
            base: server.base.clone(),
            shots: shots.to_string(),
            _profile: profile,
        };
        window.emulate(DESKTOP, false).await;
        window
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // chromedriver leads its own process group, which holds the browsers it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `artifacts/e2e/` at the repository root.
pub(crate) fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/e2e");
    std::fs::create_dir_all(&dir).expect("artifacts/e2e");
    dir
}

/// A Chrome DevTools command through chromedriver, for what WebDriver has no word for:
/// phone-sized viewports, full-page screenshots, time zones.
#[derive(Debug)]
struct DevTools(&'static str, Value);

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"cmd": self.0, "params": self.1}).to_string()),
        )
    }
}

/// One browser context, with the screenshots it takes named after the test.
pub(crate) struct Window {
    pub(crate) client: Client,
    pub(crate) base: String,
    /// What this window's screenshots are called, before the step's name.
    shots: String,
    _profile: tempfile::TempDir,
}

impl Window {
    pub(crate) async fn devtools(&self, command: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(DevTools(command, params))
            .await
            .unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    pub(crate) async fn emulate(&self, (width, height): (u32, u32), mobile: bool) {
        self.devtools(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    async fn time_zone(&self, zone: &str) {
        self.devtools("Emulation.setTimezoneOverride", json!({"timezoneId": zone}))
            .await;
    }

    /// The whole page as a PNG at the current viewport width.
    pub(crate) async fn full_page(&self, (width, height): (u32, u32)) -> Vec<u8> {
        // Let the page lay itself out at the new size first.
        let _ = self
            .client
            .execute_async(
                "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()));",
                vec![],
            )
            .await;
        let metrics = self.devtools("Page.getLayoutMetrics", json!({})).await;
        let content = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(0.0)
            .max(f64::from(height))
            .ceil();
        let shot = self
            .devtools(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": width, "height": content, "scale": 1}}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG")
    }

    pub(crate) fn save(&self, name: &str, size: &str, png: &[u8]) {
        let file = artifacts().join(format!("{}-{name}-{size}.png", self.shots));
        std::fs::write(file, png).expect("screenshot saved");
    }

    /// Saves the page at desktop size.
    pub(crate) async fn shot(&self, name: &str) {
        let png = self.full_page(DESKTOP).await;
        self.save(name, "desktop", &png);
    }

    /// Saves the page at desktop and at phone size.
    pub(crate) async fn shots(&self, name: &str) {
        self.shot(name).await;
        self.emulate(PHONE, true).await;
        let png = self.full_page(PHONE).await;
        self.save(name, "phone", &png);
        self.emulate(DESKTOP, false).await;
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Looks for an element until the page shows it. A look that lands while the page is
    /// navigating (a click that submits a form, a script moving on) is refused by
    /// chromedriver as "aborted by navigation": that is no answer either, so look again.
    pub(crate) async fn find(&self, css: &str) -> fantoccini::elements::Element {
        use fantoccini::error::{CmdError, ErrorStatus};
        let deadline = Instant::now() + PAGE_MOVES_ON;
        loop {
            let error = match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(error) => error,
            };
            let look_again = match &error {
                CmdError::Standard(e) => e.error == ErrorStatus::NoSuchElement,
                CmdError::NotW3C(Value::String(said)) => said.contains("navigation"),
                _ => false,
            };
            if !look_again || Instant::now() >= deadline {
                panic!("no {css} on the page: {error}\n{}", self.text().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Types into a field and presses Enter, as people do.
    pub(crate) async fn type_and_enter(&self, css: &str, text: &str) {
        self.type_into(
            css,
            &format!("{text}{}", char::from(fantoccini::key::Key::Enter)),
        )
        .await;
    }

    pub(crate) async fn click(&self, css: &str) {
        // A page that replaces the element between finding and clicking it (a script
        // re-rendering, a reload) leaves a stale reference: find it again, as a person would
        // look again, a few times at most.
        for _ in 0..3 {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        panic!("click {css}: the element went stale three times");
    }

    pub(crate) async fn text_of(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// What the page shows, as a person reads it.
    pub(crate) async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the page says `needle`, however it gets there (its script, its refresh).
    pub(crate) async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + PAGE_MOVES_ON;
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the page never said {needle:?}; it says:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Signs in with a Temporary Access Pass from the page the browser is at.
    pub(crate) async fn sign_in_with_pass(&self, upn: &str, pass: &str, prefix: Option<&str>) {
        self.find("#username").await;
        if let Some(prefix) = prefix {
            self.shots(&format!("{prefix}-user-name")).await;
        }
        self.type_and_enter("#username", upn).await;
        self.find("#secret").await;
        if let Some(prefix) = prefix {
            self.shots(&format!("{prefix}-pass")).await;
        }
        self.type_and_enter("#secret", pass).await;
    }

    /// Opens My Apps and types the user name; returns the number the page shows.
    pub(crate) async fn start_phone_sign_in(&self, upn: &str) -> u8 {
        self.goto("/myapps").await;
        self.type_and_enter("#username", upn).await;
        self.number().await
    }

    pub(crate) async fn number(&self) -> u8 {
        let text = self.text_of("#number").await;
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {text:?}"))
    }
}

fn person<'a>(people: &'a [DemoPerson], upn: &str) -> &'a DemoPerson {
    people
        .iter()
        .find(|p| p.user.upn.as_str() == upn)
        .unwrap_or_else(|| panic!("{upn} is in the demo tenant"))
}

/// The one request waiting for the phone, once it has arrived.
pub(crate) async fn request_on(phone: &Phone) -> ApprovalRequest {
    let deadline = Instant::now() + PAGE_MOVES_ON;
    loop {
        let pending = phone.app.pending(phone.account).await.expect("pending");
        if let [request] = pending.as_slice() {
            return request.clone();
        }
        assert!(pending.is_empty(), "one request at a time: {pending:?}");
        assert!(Instant::now() < deadline, "no request reached the phone");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the authenticator shows for a request, as a text artefact beside the screenshots.
fn save_notification(name: &str, request: &ApprovalRequest) {
    let mut lines = vec![format!("Approve sign-in? {}", request.user_principal_name)];
    if let Some(app) = &request.application {
        lines.push(format!("Application: {app}"));
    }
    if let Some(place) = &request.location {
        lines.push(format!("Location:    {place}"));
    }
    if let Some(credit) = &request.location_attribution {
        lines.push(format!("             ({credit})"));
    }
    lines.push("Enter the number shown on the sign-in page, then your PIN.".into());
    std::fs::write(artifacts().join(name), lines.join("\n") + "\n").expect("notification saved");
}

/// A forward HTTP proxy on loopback that adds `X-Forwarded-For`, as a trusted reverse proxy in
/// front of the server would: the only way to make a browser's sign-in come from elsewhere.
pub(crate) struct ForwardingProxy {
    pub(crate) addr: SocketAddr,
    forwarded: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ForwardingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that describe one hop, not the request.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

impl ForwardingProxy {
    pub(crate) async fn start(client: &'static str) -> ForwardingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let forwarded = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let count = forwarded.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let http = http.clone();
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                forward(&http, client, request).await
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ForwardingProxy {
            addr,
            forwarded,
            task,
        }
    }
}

async fn forward(
    http: &reqwest::Client,
    client: &str,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    // A browser talking to a proxy names the whole URL.
    let mut out = http.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let answer = match out.header("x-forwarded-for", client).send().await {
        Ok(answer) => answer,
        Err(e) => return (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = axum::response::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response
        .body(axum::body::Body::from(body))
        .expect("response")
}

#[tokio::test]
async fn the_lab_in_chromium_policy_registration_phone_sign_in_and_context_from_london() {
    let Some(databases) = geoip_databases() else {
        return;
    };
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start_with(|config| {
        config.geoip.databases = databases;
        config.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();

    // Step 1: the administrator enables the authenticator for all users, mode Any.
    let admin = chromium
        .window(&server, "lab-steps-1-and-4-admin", None)
        .await;
    admin.goto("/login?return_to=/admin").await;
    admin
        .sign_in_with_pass(
            "admin@latchkey.test",
            person(&people, "admin@latchkey.test").pass.expose(),
            Some("01"),
        )
        .await;
    admin.wait_for_text("Admin console").await;
    admin.shots("02-console").await;
    admin.goto("/admin/policies").await;
    admin.wait_for_text("Authentication methods").await;
    admin.shots("03-policies").await;
    admin
        .find("a[href='/admin/policies/authenticator']")
        .await
        .follow()
        .await
        .expect("open the authenticator's settings");
    let enable = admin.find("input[name=enabled]").await;
    if !enable.is_selected().await.unwrap() {
        enable.click().await.unwrap();
    }
    admin
        .find("select[name=include_target]")
        .await
        .select_by_value("all_users")
        .await
        .unwrap();
    admin
        .find("select[name=include_mode]")
        .await
        .select_by_value("any")
        .await
        .unwrap();
    admin.shots("04-enable-and-target").await;
    admin
        .click("form[action='/admin/policies/authenticator'] button[type=submit]")
        .await;
    let saved = admin.text_of(".notice").await;
    assert!(!saved.is_empty());
    admin.shot("05-enable-and-target-saved").await;
    let policy = server.latchkey.governance.policy().await.unwrap();
    assert_eq!(
        policy.authenticator.targeting.state,
        latchkey_domain::policy::MethodState::Enabled
    );
    let include = &policy.authenticator.targeting.include_targets;
    assert_eq!(include.len(), 1, "{include:?}");
    assert_eq!(
        include[0].authentication_mode,
        Some(AuthenticationMode::Any)
    );

    // Step 2: Bobby adds the authenticator app from the QR code on the rendered page.
    let bobby = chromium.window(&server, "lab-step-2-bobby", None).await;
    bobby.time_zone("Asia/Tokyo").await;
    bobby.goto("/mysecurityinfo").await;
    bobby
        .sign_in_with_pass(
            "bobby@latchkey.test",
            person(&people, "bobby@latchkey.test").pass.expose(),
            Some("01"),
        )
        .await;
    bobby.wait_for_text("Security info").await;
    bobby.shots("02-security-info").await;
    bobby
        .click("form[action='/mysecurityinfo/authenticator'] button")
        .await;
    let qr = bobby.find(".qr svg").await;
    bobby.shots("03-qr-code").await;
    let scanned = qr.screenshot().await.expect("a picture of the QR code");
    std::fs::write(
        artifacts().join("lab-step-2-bobby-03-qr-code-as-scanned.png"),
        &scanned,
    )
    .unwrap();
    let link = ActivationLink::parse(
        &latchkey_authenticator::qr::decode(&scanned).expect("the QR code on the page decodes"),
    )
    .expect("the QR code holds an activation link");
    assert_eq!(
        link,
        ActivationLink::parse(bobby.text_of("#activation-link").await.trim()).unwrap(),
        "the QR code and the text on the page agree"
    );
    // A phone held up to a phone-sized page reads the same code.
    bobby.emulate(PHONE, true).await;
    let small = qr.screenshot().await.expect("a picture of the QR code");
    bobby.emulate(DESKTOP, false).await;
    assert_eq!(
        latchkey_authenticator::qr::decode(&small).expect("the QR code decodes at phone size"),
        link.to_uri()
    );
    let home = tempfile::tempdir().unwrap();
    let mut app = Authenticator::open(home.path()).unwrap();
    let (account, test) = app.add(&link, "Bobby's phone").await.expect("activation");
    assert_eq!(test.kind, ApprovalKind::RegistrationTest);
    // The page moves on by itself to the test notification's number.
    let number = bobby.number().await;
    bobby.shots("04-test-notification").await;
    assert_eq!(
        app.respond(account, &test, Decision::Approve, Some(number), None)
            .await
            .expect("test answered"),
        AnswerOutcome::Approved
    );
    bobby.wait_for_text("Authenticator app registered").await;
    bobby.shots("05-registered").await;
    bobby
        .find("a[href='/mysecurityinfo']")
        .await
        .follow()
        .await
        .unwrap();
    bobby.wait_for_text("Authenticator app — MFA push").await;
    bobby.shots("06-security-info-mfa-push").await;
    app.enable_phone_sign_in(account, PIN)
        .await
        .expect("phone sign-in enabled");
    bobby.client.refresh().await.unwrap();
    let info = bobby
        .wait_for_text("Authenticator app — Passwordless")
        .await;
    assert!(info.contains("Bobby's phone"), "{info}");
    let added = bobby.find("time[datetime]").await;
    let utc = added.attr("datetime").await.unwrap().unwrap();
    let shown = added.text().await.unwrap();
    assert!(
        shown.contains("GMT+9") && !shown.contains(&utc),
        "the date is in the viewer's time zone: {shown:?} for {utc}"
    );
    bobby.shots("07-security-info-passwordless").await;
    // The remove action asks first; Bobby keeps his phone.
    bobby
        .find("a[href^='/mysecurityinfo/devices/']")
        .await
        .follow()
        .await
        .unwrap();
    bobby.wait_for_text("Remove").await;
    bobby.shots("08-remove-confirmation").await;
    bobby
        .find("a[href='/mysecurityinfo']")
        .await
        .follow()
        .await
        .unwrap();
    bobby
        .wait_for_text("Authenticator app — Passwordless")
        .await;
    bobby.close().await;
    let mut phone = Phone { app, account, home };

    // Step 3: a fresh browser, the user name, and a number instead of a password.
    let browser = chromium
        .window(&server, "lab-step-3-phone-sign-in", None)
        .await;
    browser.goto("/myapps").await;
    browser.find("#username").await;
    browser.shots("01-user-name").await;
    browser
        .type_and_enter("#username", "bobby@latchkey.test")
        .await;
    let number = browser.number().await;
    let announced = browser.find(".number").await;
    assert_eq!(
        announced.attr("aria-live").await.unwrap().as_deref(),
        Some("polite")
    );
    let page = browser.text().await;
    assert!(page.contains("Approve sign in request"), "{page}");
    browser.shots("02-number").await;
    let request = request_on(&phone).await;
    assert_eq!(request.kind, ApprovalKind::PhoneSignIn);
    save_notification("lab-step-3-phone-sign-in-02-notification.txt", &request);
    phone.approve(&request, number).await;
    let apps = browser.wait_for_text("Signed in as").await;
    assert!(apps.contains("Signed in as Bobby Smith"), "{apps}");
    browser.shots("03-my-apps").await;
    browser.close().await;

    // Step 4: the administrator turns on application name and location for all users.
    admin.goto("/admin/policies/authenticator/configure").await;
    for feature in [
        "numberMatching",
        "displayAppInformation",
        "displayLocationInformation",
    ] {
        admin
            .find(&format!("select[name='{feature}.state']"))
            .await
            .select_by_value("enabled")
            .await
            .unwrap();
        admin
            .find(&format!("select[name='{feature}.include']"))
            .await
            .select_by_value("all_users")
            .await
            .unwrap();
    }
    admin.shots("06-configure").await;
    admin
        .click("form[action='/admin/policies/authenticator/configure'] button[type=submit]")
        .await;
    admin.text_of(".notice").await;
    admin.shot("07-configure-saved").await;
    let bobby_id = &person(&people, "bobby@latchkey.test").user.id;
    let evaluation = server
        .latchkey
        .governance
        .effective_policy(bobby_id)
        .await
        .unwrap();
    let context: Vec<_> = evaluation[0]
        .features
        .iter()
        .filter(|f| f.reason.contains("enabled for all users"))
        .collect();
    assert_eq!(
        context.len(),
        2,
        "application name and location: {:?}",
        evaluation[0].features
    );

    // Step 5: Bobby signs in from London, through the trusted proxy.
    let proxy = ForwardingProxy::start(LONDON).await;
    let browser = chromium
        .window(&server, "lab-step-5-from-london", Some(proxy.addr))
        .await;
    let number = browser.start_phone_sign_in("bobby@latchkey.test").await;
    browser.shots("01-number").await;
    let request = request_on(&phone).await;
    assert_eq!(request.application.as_deref(), Some("My Apps"));
    let place = request.location.clone().unwrap_or_default();
    assert!(place.starts_with("London"), "{place}");
    save_notification("lab-step-5-from-london-01-notification.txt", &request);
    phone
        .answer(&request, Decision::Approve, Some(number))
        .await
        .unwrap();
    let apps = browser.wait_for_text("Signed in as").await;
    assert!(apps.contains("Bobby Smith"), "{apps}");
    browser.shots("02-my-apps").await;
    browser.close().await;
    assert!(
        proxy.forwarded.load(Ordering::SeqCst) > 3,
        "the browser went through the proxy"
    );

    // The administrator sees where it came from in the sign-in log.
    admin.goto("/admin/logs/signins").await;
    let log = admin.wait_for_text("London").await;
    assert!(log.contains("81.2.69.160"), "{log}");
    admin.shots("08-sign-in-logs").await;
    admin.close().await;
}

/// Bobby from the demo tenant with phone sign-in on, set up over plain HTTP (the lab test
/// above does it in the browser).
pub(crate) async fn demo_bobby_with_phone_sign_in(server: &TestServer) -> Phone {
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let browser = server.browser();
    let login = browser.follow(browser.get("/mysecurityinfo").await).await;
    let pass = person(&people, "bobby@latchkey.test")
        .pass
        .expose()
        .to_string();
    let done = browser
        .sign_in_with_pass(login, "bobby@latchkey.test", &pass)
        .await;
    browser.follow(done).await;
    let bobby = Person {
        upn: "bobby@latchkey.test".into(),
        browser,
    };
    Phone::with_phone_sign_in(&bobby, "Bobby's phone").await
}

/// Asserts that the page says what happened and offers a way on.
async fn ends_with_what_to_do(window: &Window, what_happened: &str) {
    let text = window.wait_for_text(what_happened).await;
    assert!(
        text.to_lowercase().contains("start again"),
        "says what to do: {text}"
    );
    let next = window.find("main a[href]").await;
    assert!(
        !next.text().await.unwrap().trim().is_empty(),
        "offers a link on"
    );
}

#[tokio::test]
async fn a_wrong_number_and_a_denial_end_on_pages_that_say_what_happened_and_what_to_do() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let mut phone = demo_bobby_with_phone_sign_in(&server).await;

    let browser = chromium.window(&server, "fail-wrong-number", None).await;
    let number = browser.start_phone_sign_in("bobby@latchkey.test").await;
    // The keyboard reaches the other ways to sign in, and shows where it is.
    browser
        .find("body")
        .await
        .send_keys(&char::from(fantoccini::key::Key::Tab).to_string())
        .await
        .unwrap();
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(
        focused.text().await.unwrap(),
        "I can't use my authenticator app right now"
    );
    assert_eq!(focused.css_value("outline-style").await.unwrap(), "solid");
    browser.shot("00-keyboard-focus").await;
    // While it waits the page stays put (its script asks; it does not reload every few
    // seconds), so the focus stays where the keyboard left it.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let still = browser.client.active_element().await.unwrap();
    assert_eq!(
        still.text().await.unwrap(),
        "I can't use my authenticator app right now",
        "the waiting page kept the keyboard's place"
    );
    let request = request_on(&phone).await;
    assert_eq!(
        phone
            .answer(&request, Decision::Approve, Some(another_number(number)))
            .await
            .unwrap(),
        AnswerOutcome::WrongNumber
    );
    ends_with_what_to_do(&browser, "didn't match the number on this page").await;
    browser.shots("01-page").await;
    browser.close().await;

    let browser = chromium.window(&server, "fail-denied", None).await;
    browser.start_phone_sign_in("bobby@latchkey.test").await;
    let request = request_on(&phone).await;
    assert_eq!(
        phone.answer(&request, Decision::Deny, None).await.unwrap(),
        AnswerOutcome::Denied
    );
    ends_with_what_to_do(&browser, "You denied the sign-in request").await;
    // The page moved on through its long-poll, not its one-second poll: the long-poll's
    // answer was the page that says what happened, shown in place.
    assert!(
        crate::sign_in_wait::metric(&server.base, crate::sign_in_wait::WAITS_FINISHED).await >= 1,
        "the number page's script waited with GET /login/status?wait=…&finish=1"
    );
    browser.shots("01-page").await;
    browser.close().await;
}

#[tokio::test]
async fn an_unanswered_request_times_out_on_a_page_that_says_how_long_it_waited() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| c.lifetimes.approval_request_seconds = 2)
        .start()
        .await;
    let phone = demo_bobby_with_phone_sign_in(&server).await;
    let browser = chromium.window(&server, "fail-timeout", None).await;
    browser.start_phone_sign_in("bobby@latchkey.test").await;
    request_on(&phone).await;
    browser.shot("01-waiting").await;
    clock.advance(3);
    ends_with_what_to_do(&browser, "within 2 seconds").await;
    browser.shots("02-page").await;
    browser.close().await;
}
