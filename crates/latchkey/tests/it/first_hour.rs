//! A new user's first hour: one setting to change the port, `latchkey admin` finding the
//! server from the server's own configuration, list settings from the environment, and the
//! pages' small stumbles (a notice shown as a mistake, a throttle that does not say how long,
//! a faint focus ring, "1 applications", a bare 404).

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use latchkey_domain::clock::{Clock, ManualClock, SystemClock, Timestamp};
use latchkey_domain::throttle::Limit;
use reqwest::Method;

use crate::console::admin_browser;
use crate::phone::{Person, Phone, start_sign_in, unescape};
use crate::support::TestServer;

/// `latchkey` with `args` and only the given `LATCHKEY_*` variables (none inherited);
/// returns its exit code, standard output and standard error.
fn latchkey_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run latchkey");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn with_only_listen_set_the_demo_links_to_that_port_and_says_the_url_was_derived() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("demo")
        .env("LATCHKEY_LISTEN", &listen)
        .env("LATCHKEY_DATA_DIR", dir.path())
        .env_remove("LATCHKEY_PUBLIC_URL")
        .env_remove("LATCHKEY_CONFIG")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let done = line.contains("/mysecurityinfo");
            seen.push(line);
            if done {
                break;
            }
        }
        seen.join("\n")
    });
    let output = tokio::time::timeout(Duration::from_secs(30), lines).await;
    // SAFETY: a signal to the child this test started, by its own id.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
    let output = output.expect("the demo starts in time").unwrap();
    let url = format!("http://localhost:{port}");
    assert!(
        output.contains(&format!("The public URL {url} was derived from listen")),
        "{output}"
    );
    assert!(output.contains(&format!("{url}/myapps")), "{output}");
    assert!(!output.contains("localhost:8080"), "{output}");

    // Any address → localhost; TLS → https (validate-config shows it too).
    let (code, out, err) = latchkey_with(
        &["validate-config"],
        &[
            ("LATCHKEY_LISTEN", "0.0.0.0:9000"),
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap()),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("http://localhost:9000"), "{out}");
    assert!(out.contains("derived from listen"), "{out}");
    let (code, out, err) = latchkey_with(
        &["validate-config"],
        &[
            ("LATCHKEY_LISTEN", "0.0.0.0:9000"),
            ("LATCHKEY_PUBLIC_URL", "https://id.contoso.example"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("https://id.contoso.example"), "{out}");
    assert!(!out.contains("derived"), "a set public_url is kept: {out}");
}

#[tokio::test]
async fn list_settings_take_comma_separated_environment_values_and_validate_config_shows_every_setting_but_no_secret()
 {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.mmdb"), dir.path().join("b.mmdb"));
    std::fs::write(&a, b"placeholder").unwrap();
    std::fs::write(&b, b"placeholder").unwrap();
    let geoip = format!("{}, {}", a.display(), b.display());
    let metrics_token = "metrics-token-Qe81-not-for-eyes";
    let password = "pw-Lr55-not-for-eyes";
    let database_url = format!("postgres://latchkey:{password}@db.internal:5432/latchkey");
    let (code, out, err) = latchkey_with(
        &["validate-config"],
        &[
            ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32,10.0.0.0/8"),
            ("LATCHKEY_GEOIP__DATABASES", &geoip),
            ("LATCHKEY_METRICS__TOKEN", metrics_token),
            ("LATCHKEY_DATABASE_URL", &database_url),
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap()),
        ],
    );
    assert_eq!(code, 0, "comma-separated lists are accepted: {err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("{key} is shown: {out}"))
            .to_string()
    };
    assert!(
        line("trusted_proxies").contains("127.0.0.1/32, 10.0.0.0/8"),
        "{out}"
    );
    assert!(
        line("geoip.databases").contains(&a.display().to_string())
            && line("geoip.databases").contains(&b.display().to_string()),
        "{out}"
    );
    assert!(line("metrics.token").ends_with("set"), "{out}");
    assert!(line("webhooks.secret").ends_with("not set"), "{out}");
    assert!(line("database_url").contains("db.internal"), "{out}");
    for setting in [
        "listen",
        "public_url",
        "data_dir",
        "log_format",
        "throttle.notifications_per_user.limit",
        "limits.max_connections",
        "web_push.root_certificates",
        "passkeys.attestation_roots",
        "lifetimes.session_seconds",
    ] {
        line(setting);
    }
    assert!(
        !out.contains(metrics_token) && !out.contains(password) && !err.contains(password),
        "no secret is printed: {out}{err}"
    );

    // A JSON array works as before, and a bad item is named.
    let (code, out, err) = latchkey_with(
        &["validate-config"],
        &[("LATCHKEY_TRUSTED_PROXIES", r#"["192.0.2.0/24"]"#)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(line_of(&out, "trusted_proxies").contains("192.0.2.0/24"));
    let (code, _, err) = latchkey_with(
        &["validate-config"],
        &[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32,not-an-address")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not-an-address"), "{err}");
}

fn line_of(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.trim_start().starts_with(&format!("{key} ")))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latchkey_admin_finds_the_server_and_its_token_from_the_servers_configuration() {
    let server = TestServer::start().await;
    let listen = server.base.trim_start_matches("http://").to_string();
    let data_dir = server.data_dir.path().to_str().unwrap().to_string();
    let file = server.data_dir.path().join("latchkey.toml");
    std::fs::write(
        &file,
        format!("listen = {listen:?}\ndata_dir = {data_dir:?}\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_string();
    // Multi-threaded runtime: the server keeps serving while the command line blocks here.
    let run = |args: Vec<&str>, env: Vec<(&str, &str)>| latchkey_with(&args, &env);

    // The configuration file: its listen and its data directory's token.
    let (code, out, err) = run(vec!["--config", &file, "admin", "users", "list"], vec![]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("userPrincipalName"), "{out}");
    assert!(
        err.contains(&format!(
            "Calling {} (from the configuration's listen)",
            server.base
        )) && err.contains(&format!("{data_dir}/admin-token")),
        "{err}"
    );
    assert!(!err.contains(&server.admin_token) && !out.contains(&server.admin_token));

    // The environment, as the server reads it; an unspecified address is called on loopback.
    let port = listen.rsplit(':').next().unwrap().to_string();
    let any = format!("0.0.0.0:{port}");
    let (code, _, err) = run(
        vec!["admin", "groups", "list"],
        vec![("LATCHKEY_LISTEN", &any), ("LATCHKEY_DATA_DIR", &data_dir)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("Calling http://127.0.0.1:{port}")),
        "{err}"
    );

    // LATCHKEY_URL and LATCHKEY_ADMIN_TOKEN win, and are named as the sources.
    let (code, _, err) = run(
        vec!["admin", "users", "list"],
        vec![
            ("LATCHKEY_URL", &server.base),
            ("LATCHKEY_ADMIN_TOKEN", &server.admin_token),
            ("LATCHKEY_LISTEN", "127.0.0.1:9"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("(from LATCHKEY_URL)") && err.contains("token from LATCHKEY_ADMIN_TOKEN"),
        "{err}"
    );

    // No token anywhere: a clear error naming where it looked.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run(
        vec!["admin", "users", "list"],
        vec![
            ("LATCHKEY_LISTEN", &listen),
            ("LATCHKEY_DATA_DIR", empty.path().to_str().unwrap()),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no token saved in"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latchkey_admin_offline_opens_the_postgresql_database_the_configuration_names() {
    let schema = latchkey_store::postgres::scratch::ScratchSchema::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = schema.url();
    let mut server = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    server.stop().await;
    let empty = tempfile::tempdir().unwrap();
    let data_dir = empty.path().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        latchkey_with(
            args,
            &[
                ("LATCHKEY_DATABASE_URL", &url),
                ("LATCHKEY_DATA_DIR", &data_dir),
            ],
        )
    };
    let (code, out, err) = run(&["admin", "--offline", "tokens", "create", "recovery"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("PostgreSQL"), "{err}");
    assert!(
        !err.contains(&url) && !out.contains(&url),
        "the URL is not printed"
    );
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("lk_admin_"))
        .unwrap_or_else(|| panic!("the new token is printed: {out}"))
        .to_string();
    let (code, out, err) = run(&["admin", "--offline", "tokens", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("recovery") && out.contains("initial"), "{out}");
    assert!(
        std::fs::read_dir(empty.path()).unwrap().next().is_none(),
        "nothing is written to the data directory: the database is PostgreSQL"
    );

    let server = server.restart().await;
    let (status, _) = server
        .api_call_as(&secret, Method::GET, "/users", None)
        .await;
    assert_eq!(status, 200, "the token made offline works on the server");
    drop(server);
    schema.drop_schema().await.expect("drop");
}

#[tokio::test]
async fn a_request_already_waiting_is_a_notice_on_the_pass_page_not_a_mistake_in_the_pass_field() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let _phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    let first = server.browser();
    start_sign_in(&first, &bobby.upn).await;
    let second = server.browser();
    let page = start_sign_in(&second, &bobby.upn).await;
    assert_eq!(page.status, 200);
    let body = unescape(&page.body);
    assert!(
        body.contains(
            r#"<p role="status" class="notice" id="notice">A sign-in request is already waiting"#
        ),
        "{body}"
    );
    assert!(
        !body.contains("aria-invalid"),
        "the pass field is not marked: {body}"
    );
    assert!(!body.contains(r#"class="problem" id="error""#), "{body}");
    assert!(body.contains("Temporary Access Pass"));
}

/// A clock at `seconds_into_window` of a fixed 15-minute throttle window, near the real time.
fn clock_in_window(seconds_into_window: i64) -> std::sync::Arc<ManualClock> {
    let now = SystemClock.now().0;
    let start = now - now.rem_euclid(900);
    std::sync::Arc::new(ManualClock::new(Timestamp(start + seconds_into_window)))
}

#[tokio::test]
async fn a_throttled_sign_in_says_how_long_to_wait_from_the_throttles_window() {
    let clock = clock_in_window(900 - 200);
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| {
            c.throttle.failed_credentials_per_user_unfamiliar = Limit::new(1, 900);
        })
        .start()
        .await;
    let (_, _) = server.bobby_with_pass().await;
    let browser = server.browser();
    let login = browser.follow(browser.get("/myapps").await).await;
    let first = browser
        .sign_in_with_pass(login, "bobby@contoso.example", "WRONG-pass-1")
        .await;
    assert!(
        unescape(&first.body).contains("isn't right"),
        "{}",
        first.body
    );
    let second = browser
        .post(
            "/login/credential",
            &[
                ("csrf", &first.csrf()),
                ("method", "pass"),
                ("secret", "WRONG-pass-2"),
            ],
        )
        .await;
    let body = unescape(&second.body);
    assert!(body.contains("too many sign-in attempts"), "{body}");
    assert!(
        body.contains("Try again in 4 minutes"),
        "200 s left of the window: {body}"
    );
    assert!(!body.contains("a few minutes"), "{body}");
}

fn relative_luminance(hex: &str) -> f64 {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex colour")) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (x, y) = (relative_luminance(a), relative_luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The colour a stylesheet gives `--name` in its `:root`, as six hex digits.
fn custom_property(css: &str, name: &str) -> String {
    let at = css
        .find(&format!("{name}:"))
        .unwrap_or_else(|| panic!("{name} is defined"));
    let value = css[at + name.len() + 1..]
        .trim_start()
        .trim_start_matches('#');
    value[..6].to_string()
}

#[tokio::test]
async fn the_focus_ring_has_at_least_3_to_1_contrast_against_the_pages_backgrounds() {
    let server = TestServer::start().await;
    for path in ["/static/style.css", "/authenticator/app/static/app.css"] {
        let css = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            css.contains(":focus-visible { outline: 3px solid var(--focus)"),
            "{path}: the ring uses --focus"
        );
        let focus = custom_property(&css, "--focus");
        let surface = custom_property(&css, "--surface");
        for (background, name) in [("ffffff", "white"), (surface.as_str(), "the surface")] {
            let ratio = contrast(&focus, background);
            assert!(
                ratio >= 3.0,
                "{path}: #{focus} against {name} is {ratio:.2}:1 (WCAG 2.2 1.4.11 needs 3:1)"
            );
        }
    }
    // The computation itself: the old amber was 1.72:1.
    assert!((contrast("ffb900", "ffffff") - 1.72).abs() < 0.01);
}

#[tokio::test]
async fn the_console_overview_counts_in_the_singular_and_plural() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let admin = admin_browser(&server, &people).await;
    let page = admin.get("/admin").await;
    assert_eq!(page.status, 200);
    // A new server has one application (My Apps); the demo has three people and two groups.
    assert!(page.body.contains(">1 application<"), "{}", page.body);
    assert!(page.body.contains(">3 users<") && page.body.contains(">2 groups<"));
    assert!(!page.body.contains("1 applications"));
}

#[tokio::test]
async fn an_unknown_address_gets_a_page_with_a_way_home_and_the_apis_keep_json_errors() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let page = browser.get("/no-such-page").await;
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains("<h1>Page not found</h1>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"href="/myapps""#),
        "a link home: {}",
        page.body
    );
    assert!(
        page.body.contains(r#"href="/static/style.css""#),
        "the product's layout"
    );

    let (status, body) = server
        .api_call(Method::GET, "/no-such-resource", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found", "{body}");

    let answer = reqwest::get(format!("{}/authenticator/v1/no-such-call", server.base))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "not_found", "{body}");
}
