//! `latchkey backup FILE`: a copy of the SQLite database taken while the server is busy
//! restores to a server that has everything the backed-up one had acknowledged; a backup
//! never overwrites a file; PostgreSQL is pointed at its own tools.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use reqwest::Method;
use tokio::sync::Mutex;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::passkeys::{on_localhost, passkeys_enabled, register, sign_in_with_passkey};
use crate::support::{Browser, TestServer};

/// Runs `latchkey` with `args` and `LATCHKEY_*` settings `env` on a blocking thread (the
/// test's servers keep running meanwhile); returns its exit code, standard output and error.
pub async fn latchkey_command(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command.args(args).env_remove("LATCHKEY_ADMIN_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().expect("run latchkey"))
        .await
        .expect("the command's thread");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

async fn backup(data_dir: &Path, file: &Path) -> (i32, String, String) {
    latchkey_command(
        &["backup", file.to_str().expect("UTF-8 path")],
        &[("LATCHKEY_DATA_DIR", data_dir.display().to_string())],
    )
    .await
}

/// A sign-in the server answered with a session, and when the answer arrived.
struct SignedIn {
    upn: String,
    display_name: String,
    jar: Arc<reqwest::cookie::Jar>,
    at: Instant,
}

/// A passkey the server said it had added, and when it said so.
struct Registered {
    upn: String,
    key: SoftPasskey,
    at: Instant,
}

#[derive(Default)]
struct Acknowledged {
    sign_ins: Vec<SignedIn>,
    registrations: Vec<Registered>,
}

const WORKERS: usize = 4;
const ROUNDS: usize = 6;
/// A bound on one person's rounds, should the backup never report back.
const MOST_ROUNDS: usize = 100;

/// One person signing in with their pass and adding a passkey, at least `ROUNDS` times over and
/// until a round has begun after the backup ended, recording each answer the server
/// acknowledged.
async fn sign_in_and_register(
    server: Arc<TestServer>,
    worker: usize,
    acknowledged: Arc<Mutex<Acknowledged>>,
    count: Arc<AtomicUsize>,
    backed_up: Arc<AtomicBool>,
) {
    let local = format!("load{worker}");
    let display_name = format!("Load Tester {worker}");
    let upn = format!("{local}@contoso.example");
    let user = server.user(&local, &display_name).await;
    let pass = server.pass(&user).await;
    let mut rounds_after_the_backup = 0;
    for round in 0..MOST_ROUNDS {
        if round >= ROUNDS && rounds_after_the_backup > 0 {
            break;
        }
        if backed_up.load(Ordering::SeqCst) {
            rounds_after_the_backup += 1;
        }
        let (browser, jar) = server.browser_with_jar();
        let answer = browser.sign_in_at("/login", &upn, &pass).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        acknowledged.lock().await.sign_ins.push(SignedIn {
            upn: upn.clone(),
            display_name: display_name.clone(),
            jar,
            at: Instant::now(),
        });
        count.fetch_add(1, Ordering::SeqCst);

        let mut key = SoftPasskey::new(true);
        register(&server, &browser, &mut key, &format!("Key {round}")).await;
        acknowledged.lock().await.registrations.push(Registered {
            upn: upn.clone(),
            key,
            at: Instant::now(),
        });
        count.fetch_add(1, Ordering::SeqCst);
    }
}

/// Threat: losing acknowledged work to a backup taken under load (a torn or stale copy). The
/// copy is one snapshot: everything acknowledged before it began is in it, and the restored
/// server honours it (sessions, passkeys, the sign-in log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_taken_under_load_restores_every_acknowledged_sign_in_and_registration() {
    let server = TestServer::builder()
        .config(on_localhost)
        .config(on_sqlite)
        .start()
        .await;
    passkeys_enabled(&server).await;
    let server = Arc::new(server);
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let count = Arc::new(AtomicUsize::new(0));
    let backed_up = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            tokio::spawn(sign_in_and_register(
                server.clone(),
                worker,
                acknowledged.clone(),
                count.clone(),
                backed_up.clone(),
            ))
        })
        .collect();

    // Mid-load: a third of the answers in, the rest still to come.
    while count.load(Ordering::SeqCst) < WORKERS * ROUNDS * 2 / 3 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("latchkey-backup.db");
    let began = Instant::now();
    let (code, out, err) = backup(server.data_dir.path(), &file).await;
    let ended = Instant::now();
    backed_up.store(true, Ordering::SeqCst);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Backed up the database"), "{out}");
    for worker in workers {
        worker.await.expect("a worker");
    }

    let acknowledged = std::mem::take(&mut *acknowledged.lock().await);
    let before = |at: Instant| at < began;
    let sign_ins_before = acknowledged.sign_ins.iter().filter(|s| before(s.at));
    let registrations_before: Vec<_> = acknowledged
        .registrations
        .into_iter()
        .filter(|r| before(r.at))
        .collect();
    let after_backup = acknowledged
        .sign_ins
        .iter()
        .filter(|s| s.at > ended)
        .count();
    assert!(
        acknowledged
            .sign_ins
            .iter()
            .filter(|s| before(s.at))
            .count()
            >= WORKERS / 2,
        "sign-ins acknowledged before the backup"
    );
    assert!(after_backup > 0, "the load went on after the backup");
    eprintln!(
        "backup in {:?}: {} sign-ins and {} registrations acknowledged before it, {} sign-ins while it ran, {} after",
        ended - began,
        acknowledged
            .sign_ins
            .iter()
            .filter(|s| before(s.at))
            .count(),
        registrations_before.len(),
        acknowledged
            .sign_ins
            .iter()
            .filter(|s| s.at >= began && s.at <= ended)
            .count(),
        after_backup
    );

    // Restored as the README says, into a fresh data directory; the old server is gone.
    let admin_token = server.admin_token.clone();
    let mut old = Arc::try_unwrap(server).unwrap_or_else(|_| panic!("workers are done"));
    old.stop().await;
    let restored = TestServer::builder()
        .config(on_localhost)
        .config(on_sqlite)
        .restored_from(&file, &admin_token)
        .start()
        .await;

    let mut expected_sign_ins = std::collections::HashMap::<String, usize>::new();
    for signed_in in sign_ins_before {
        *expected_sign_ins.entry(signed_in.upn.clone()).or_default() += 1;
        let browser = Browser {
            base: restored.base.clone(),
            http: reqwest::Client::builder()
                .cookie_provider(signed_in.jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        // Security info shows the signed-in person, or sends a stranger to sign in.
        let security_info = browser.get("/mysecurityinfo").await;
        assert_eq!(
            security_info.status, 200,
            "{} is still signed in: {}",
            signed_in.upn, security_info.body
        );
        assert!(
            security_info.body.contains(&signed_in.display_name)
                && security_info.body.contains(&signed_in.upn),
            "{}",
            security_info.body
        );
    }
    for (upn, sign_ins) in &expected_sign_ins {
        let (status, log) = restored
            .api_call(Method::GET, &format!("/auditLogs/signIns?user={upn}"), None)
            .await;
        assert_eq!(status, 200, "{log}");
        let successes = log["value"]
            .as_array()
            .expect("records")
            .iter()
            .filter(|record| record["status"]["errorCode"] == 0)
            .count();
        assert!(
            successes >= *sign_ins,
            "{upn}: {successes} successful sign-ins in the restored log, {sign_ins} acknowledged before the backup"
        );
    }
    assert!(!registrations_before.is_empty());
    for mut registered in registrations_before {
        let (answer, signed_in) =
            sign_in_with_passkey(&restored, &registered.upn, &mut registered.key).await;
        assert_eq!(answer.status, 303, "{}: {}", registered.upn, answer.body);
        assert!(
            signed_in,
            "{} signs in with a passkey added before the backup",
            registered.upn
        );
    }
}

#[tokio::test]
async fn backup_never_overwrites_a_file_and_refuses_a_missing_database() {
    let server = TestServer::start_with(on_sqlite).await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("nightly.db");
    std::fs::write(&file, b"last night's backup").unwrap();
    let (code, _, err) = backup(server.data_dir.path(), &file).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("already exists") && err.contains("never overwrites"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"last night's backup");
    assert_eq!(
        std::fs::read_dir(folder.path()).unwrap().count(),
        1,
        "nothing left beside it"
    );

    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = backup(empty.path(), &folder.path().join("new.db")).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("no database") && err.contains("data_dir"),
        "{err}"
    );
    assert!(!folder.path().join("new.db").exists());

    let (code, _, err) = backup(
        server.data_dir.path(),
        &folder.path().join("no/such/dir.db"),
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn backup_of_a_postgresql_database_points_at_pg_dump_and_writes_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("pg.db");
    let password = "pw-Backup-77";
    let (code, _, err) = latchkey_command(
        &["backup", file.to_str().unwrap()],
        &[
            ("LATCHKEY_DATA_DIR", folder.path().display().to_string()),
            (
                "LATCHKEY_DATABASE_URL",
                format!("postgres://latchkey:{password}@127.0.0.1:5432/test"),
            ),
        ],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("pg_dump") && err.contains("pg_restore"),
        "{err}"
    );
    assert!(!err.contains(password), "the URL is not quoted: {err}");
    assert!(!file.exists());
}

/// `latchkey backup` copies the SQLite database, so these servers are on SQLite whichever store
/// the suite runs on (`LATCHKEY_TEST_STORE`); on PostgreSQL it points at `pg_dump` (tested above).
fn on_sqlite(config: &mut latchkey::config::Config) {
    config.database_url = Some("sqlite:".into());
}
