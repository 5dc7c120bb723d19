//! The server on PostgreSQL: `database_url` chooses it, `/readyz` names it, `latchkey migrate`
//! prepares it, and two instances on one database share one set of data, single-use codes
//! included. Each test works in a scratch schema of its own (`LATCHKEY_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`; `.ci/run` starts PostgreSQL if needed).

use std::sync::Arc;

use latchkey::config::Config;
use latchkey::server;
use latchkey_domain::Latchkey;
use latchkey_store::postgres::scratch::ScratchSchema;
use tokio::sync::oneshot;

use crate::support::{
    TestServer, TestStore, authorize_url, code_for, token_request, userinfo_status,
};

pub(crate) async fn scratch_schema() -> ScratchSchema {
    ScratchSchema::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A second server instance on the database `database_url` names, with a data directory of
/// its own, serving until dropped.
pub(crate) struct Instance {
    pub base: String,
    pub latchkey: Arc<Latchkey>,
    _stop: oneshot::Sender<()>,
    _data_dir: tempfile::TempDir,
}

impl Instance {
    /// A cookie-keeping browser speaking to this instance.
    pub fn browser(&self) -> crate::support::Browser {
        crate::support::Browser {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }
}

pub(crate) async fn second_instance(database_url: &str) -> Instance {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://127.0.0.1:{}", addr.port());
    let config = Config {
        listen: addr.to_string(),
        public_url: base.clone(),
        data_dir: data_dir.path().to_path_buf(),
        database_url: Some(database_url.to_string()),
        ..Config::default()
    };
    let latchkey = server::open(&config).await.expect("open instance B");
    let running = server::serve_on(&config, latchkey.clone(), listener)
        .await
        .expect("serve instance B");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(running.run(async move {
        let _ = stopped.await;
    }));
    Instance {
        base,
        latchkey,
        _stop: stop,
        _data_dir: data_dir,
    }
}

async fn readyz(base: &str) -> (u16, String) {
    let response = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("/readyz answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn readyz_names_the_database_each_server_uses() {
    let sqlite = TestServer::start_with(|c| c.database_url = Some("sqlite:".into())).await;
    let (status, body) = readyz(&sqlite.base).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("database: sqlite"), "{body}");

    let schema = scratch_schema().await;
    let url = schema.url();
    let postgres = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    let (status, body) = readyz(&postgres.base).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("database: postgresql"), "{body}");
    assert!(
        !postgres.data_dir.path().join("latchkey.db").exists(),
        "with database_url set, no SQLite file is made in the data directory"
    );
    drop(postgres);
    schema.drop_schema().await.expect("drop");
}

/// The whole sign-in on PostgreSQL: a pass at the sign-in page, the code at the token
/// endpoint, and the code's replay refused.
#[tokio::test]
async fn a_person_signs_in_to_an_application_on_a_server_backed_by_postgresql() {
    let schema = scratch_schema().await;
    let url = schema.url();
    let server = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    let (client, secret) = server.confidential_app("RS256").await;
    let browser = server.browser();
    let (_bobby, code) = server.bobby_signs_in_to(&browser, &client, None).await;
    let (status, tokens) = server.redeem_code(&client, &secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let (status, replay) = server.redeem_code(&client, &secret, &code).await;
    assert_eq!(status, 400, "a code is spent once: {replay}");
    drop(server);
    schema.drop_schema().await.expect("drop");
}

/// Two instances on one database: a user and application made through A exist for B, a code
/// issued by A is exchanged at B, and the same code is then refused at A (stolen-code replay
/// across instances).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_issued_by_one_instance_is_exchanged_once_across_two_instances() {
    let schema = scratch_schema().await;
    let url = schema.url();
    let a = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    let b = second_instance(&url).await;

    let (client, secret) = a.confidential_app("ES256").await;
    let browser = a.browser();
    let (bobby, code) = a.bobby_signs_in_to(&browser, &client, None).await;
    assert!(
        b.latchkey.directory.user(&bobby).await.is_ok(),
        "instance B sees the user made through A"
    );

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:9/callback"),
    ];
    let (status, tokens) = token_request(&b.base, &form, Some((&client, &secret))).await;
    assert_eq!(status, 200, "the code from A is good at B: {tokens}");
    let (status, replay) = token_request(&a.base, &form, Some((&client, &secret))).await;
    assert_eq!(status, 400, "and then spent at A too: {replay}");

    // And the other way round, with a fresh sign-in started at B.
    let pass = a.pass(&bobby).await;
    let browser_b = b.browser();
    let authorize = authorize_url(&b.base, &client, None, &[]);
    let code = code_for(&browser_b, &authorize, "bobby@contoso.example", &pass).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:9/callback"),
    ];
    let (first, second) = tokio::join!(
        token_request(&a.base, &form, Some((&client, &secret))),
        token_request(&b.base, &form, Some((&client, &secret))),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 400],
        "a code raced at both instances is exchanged exactly once: {first:?} {second:?}"
    );
    // The loser was a replay, which revokes what the code issued (RFC 6749 section 4.1.2):
    // the winner's tokens are stored with the spend, so the revocation always reaches them.
    let tokens = if first.0 == 200 { &first.1 } else { &second.1 };
    let access = tokens["access_token"].as_str().expect("access_token");
    for base in [&a.base, &b.base] {
        assert_eq!(
            userinfo_status(base, access).await,
            401,
            "the replay revoked the tokens the raced code issued"
        );
    }
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

/// `latchkey migrate` on PostgreSQL, twice at once (two instances rolling out together):
/// both succeed and the server then starts on the prepared schema.
#[tokio::test]
async fn latchkey_migrate_prepares_a_postgresql_database_even_when_run_twice_at_once() {
    let schema = scratch_schema().await;
    let url = schema.url();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("migrate")
            .env("LATCHKEY_DATABASE_URL", &url)
            .env_remove("LATCHKEY_CONFIG")
            .output()
    };
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(spawn);
        let two = s.spawn(spawn);
        (
            one.join().expect("thread").expect("run latchkey"),
            two.join().expect("thread").expect("run latchkey"),
        )
    });
    for output in [&one, &two] {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}{stderr}");
        assert!(
            stdout.contains("The postgresql database's schema is up to date."),
            "{stdout}"
        );
    }
    let server = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    assert_eq!(readyz(&server.base).await.0, 200);
    drop(server);
    schema.drop_schema().await.expect("drop");
}

/// A database URL holds a password: a server that cannot reach its database, or a URL that
/// does not parse, fails to start with an error that never shows it.
#[tokio::test]
async fn a_database_url_password_is_never_printed_when_the_database_cannot_be_used() {
    let password = "pw-Kx27-not-for-eyes";
    for url in [
        format!("postgres://latchkey:{password}@127.0.0.1:1/latchkey"),
        format!("postgres://latchkey:{password}@[oops/latchkey"),
    ] {
        for command in ["migrate", "validate-config"] {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
                .arg(command)
                .env("LATCHKEY_DATABASE_URL", &url)
                .env_remove("LATCHKEY_CONFIG")
                .output()
                .expect("run latchkey");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !stdout.contains(password) && !stderr.contains(password),
                "{command} printed the password: {stdout}{stderr}"
            );
            if command == "migrate" {
                assert!(
                    !output.status.success(),
                    "{command} fails: {stdout}{stderr}"
                );
            }
        }
    }
}

/// The suite's own servers keep their data where `LATCHKEY_TEST_STORE` says (docs/postgres.md
/// "Tests"): `/readyz` names that database, a restart finds the same data, and the store a
/// test plants rows through is the server's.
#[tokio::test]
async fn the_suites_servers_use_the_store_latchkey_test_store_names() {
    let server = TestServer::start().await;
    let (status, body) = readyz(&server.base).await;
    assert_eq!(status, 200, "{body}");
    let on_postgres = TestStore::selected() == TestStore::Postgres;
    let expected = if on_postgres {
        "database: postgresql"
    } else {
        "database: sqlite"
    };
    assert!(body.contains(expected), "{body}");
    assert_eq!(
        server.data_dir.path().join("latchkey.db").exists(),
        !on_postgres,
        "a SQLite file only when the suite runs on SQLite"
    );

    let bobby = server.user("bobby", "Bobby Smith").await;
    let server = server.restart().await;
    assert!(
        server.latchkey.directory.user(&bobby).await.is_ok(),
        "a restart keeps the same database"
    );
    let planted = server.store_to_plant().await;
    assert!(
        planted.user(&bobby).await.expect("a read").is_some(),
        "the planting store opens the server's database"
    );
}
