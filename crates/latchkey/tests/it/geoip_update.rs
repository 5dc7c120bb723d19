//! `latchkey geoip update` against a local stand-in for DB-IP's download site: a fresh install
//! gets locations with one command and a running server uses them without a restart; a bad,
//! cut-short, oversized or stalled download is refused with a message and changes nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::backup::latchkey_command;
use crate::console::admin_browser;
use crate::phone::sign_in_log;
use crate::support::{TestServer, demo_person, geoip_databases};

/// An address the DB-IP database places in London.
const LONDON: &str = "81.2.69.160";

/// A stand-in for download.db-ip.com: answers every path with what `answer` makes of it, and
/// remembers the paths asked for.
struct DownloadSite {
    base: String,
    asked: Arc<Mutex<Vec<String>>>,
}

impl DownloadSite {
    async fn start(answer: impl Fn(&str) -> Response + Send + Sync + 'static) -> DownloadSite {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let log = asked.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (answer, log) = (answer.clone(), log.clone());
            async move {
                log.lock().unwrap().push(uri.path().to_string());
                answer(uri.path())
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/free/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        DownloadSite { base, asked }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// The file names of this month's and last month's DB-IP Lite City downloads.
fn this_and_last_month() -> (String, String) {
    let today = time::OffsetDateTime::now_utc().date();
    let (year, month) = (today.year(), u8::from(today.month()));
    let (last_year, last_month) = if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    (
        format!("dbip-city-lite-{year:04}-{month:02}.mmdb.gz"),
        format!("dbip-city-lite-{last_year:04}-{last_month:02}.mmdb.gz"),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Runs `latchkey geoip update` for `data_dir` against `site`, with more `LATCHKEY_*` settings.
async fn update(
    data_dir: &Path,
    site: &DownloadSite,
    more: &[(&str, String)],
) -> (i32, String, String) {
    let mut env = vec![
        ("LATCHKEY_DATA_DIR", data_dir.display().to_string()),
        ("LATCHKEY_GEOIP__DOWNLOAD_URL", site.base.clone()),
    ];
    env.extend(more.iter().cloned());
    latchkey_command(&["geoip", "update"], &env).await
}

/// The city the sign-in log gives for the newest record that has a location.
async fn placed_city(server: &TestServer, upn: &str) -> Option<String> {
    sign_in_log(server, upn)
        .await
        .iter()
        .find_map(|record| record["location"]["city"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geoip_update_gives_a_running_server_locations_without_a_restart() {
    let Some(databases) = geoip_databases() else {
        return;
    };
    let ipv4 = std::fs::read(&databases[0]).unwrap();
    let size = ipv4.len() as u64;
    let compressed = Bytes::from(
        tokio::task::spawn_blocking(move || gzip(&ipv4))
            .await
            .unwrap(),
    );
    // This month's file is not out yet; last month's is.
    let (this_month, last_month) = this_and_last_month();
    let site = {
        let last_month = format!("/free/{last_month}");
        DownloadSite::start(move |path| {
            if path == last_month {
                compressed.clone().into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        })
        .await
    };

    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.geoip.reload_seconds = 1;
    })
    .await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let bobby = demo_person(&people, "Bobby Smith");
    let upn = "bobby@latchkey.test";
    let london = server.browser_from(LONDON);
    london.sign_in_to_my_apps(upn, bobby.pass.expose()).await;
    assert_eq!(placed_city(&server, upn).await, None, "no database yet");

    let (code, out, err) = update(server.data_dir.path(), &site, &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Updated") && out.contains("https://db-ip.com"),
        "{out}"
    );
    assert_eq!(
        site.asked(),
        vec![format!("/free/{this_month}"), format!("/free/{last_month}")]
    );
    let installed = server.data_dir.path().join("dbip-city-lite.mmdb");
    assert_eq!(std::fs::metadata(&installed).unwrap().len(), size);
    assert_eq!(leftovers(server.data_dir.path()), Vec::<PathBuf>::new());

    // The running server reads the new file within geoip.reload_seconds.
    let mut city = None;
    for _ in 0..40 {
        server
            .browser_from(LONDON)
            .sign_in_to_my_apps(upn, bobby.pass.expose())
            .await;
        city = placed_city(&server, upn).await;
        if city.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(city.as_deref(), Some("London"));
    let page = admin_browser(&server, &people)
        .await
        .get("/admin/logs/signins")
        .await;
    assert!(page.body.contains("London"), "{}", page.body);
    assert!(
        page.body
            .contains("<a href='https://db-ip.com'>IP Geolocation by DB-IP</a>"),
        "the attribution DB-IP's licence asks for"
    );
}

/// Files the update may have left beside the database: none.
fn leftovers(data_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".download"))
        })
        .collect()
}

/// A download that must be refused, and what the message must say.
struct BadDownload {
    what: &'static str,
    answer: fn(&[u8]) -> Response,
    settings: &'static [(&'static str, &'static str)],
    message: &'static str,
}

/// Threat: a broken, cut-short or hostile download (or a stalled site) replacing a working
/// database, filling the disk or memory, or hanging the command. Each is refused with a
/// message naming the cause, and the database in use is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geoip_update_refuses_malformed_truncated_oversized_or_stalled_downloads_and_keeps_the_old_database()
 {
    let Some(databases) = geoip_databases() else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let installed = data_dir.path().join("dbip-city-lite.mmdb");
    std::fs::copy(&databases[0], &installed).unwrap();
    let before = std::fs::metadata(&installed).unwrap();
    // The first megabyte of a real database: a download cut short, gzipped whole.
    let head = {
        let mut file = std::fs::File::open(&databases[0]).unwrap();
        let mut head = vec![0; 1 << 20];
        std::io::Read::read_exact(&mut file, &mut head).unwrap();
        head
    };
    let cases = [
        BadDownload {
            what: "an HTML page instead of a gzip file",
            answer: |_| "<html>Down for maintenance</html>".into_response(),
            settings: &[],
            message: "not a complete gzip file",
        },
        BadDownload {
            what: "a gzip file cut short",
            answer: |head| {
                let whole = gzip(head);
                Bytes::copy_from_slice(&whole[..whole.len() / 2]).into_response()
            },
            settings: &[],
            message: "not a complete gzip file",
        },
        BadDownload {
            what: "a database cut short, gzipped whole",
            answer: |head| Bytes::from(gzip(head)).into_response(),
            settings: &[],
            message: "not a usable MaxMind DB",
        },
        BadDownload {
            what: "a download larger than the limit, by its length",
            answer: |_| Bytes::from(vec![7u8; 2 << 20]).into_response(),
            settings: &[("LATCHKEY_GEOIP__MAX_DOWNLOAD_MEGABYTES", "1")],
            message: "larger than geoip.max_download_megabytes (1 MB)",
        },
        BadDownload {
            what: "a download larger than the limit, streamed without a length",
            answer: |_| {
                let chunks =
                    (0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 1 << 20])));
                Body::from_stream(futures_util::stream::iter(chunks)).into_response()
            },
            settings: &[("LATCHKEY_GEOIP__MAX_DOWNLOAD_MEGABYTES", "1")],
            message: "larger than geoip.max_download_megabytes (1 MB)",
        },
        BadDownload {
            what: "a small gzip file that unpacks past the limit",
            answer: |_| Bytes::from(gzip(&vec![0u8; 3 << 20])).into_response(),
            settings: &[("LATCHKEY_GEOIP__MAX_DOWNLOAD_MEGABYTES", "1")],
            message: "unpacked, it is larger than geoip.max_download_megabytes",
        },
        BadDownload {
            what: "a site that stalls mid-download",
            answer: |_| {
                let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                    Bytes::from_static(b"\x1f\x8b"),
                )]);
                Body::from_stream(first.chain(futures_util::stream::pending())).into_response()
            },
            settings: &[("LATCHKEY_GEOIP__DOWNLOAD_TIMEOUT_SECONDS", "1")],
            message: "took longer than geoip.download_timeout_seconds",
        },
        BadDownload {
            what: "a site that fails",
            answer: |_| StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            settings: &[],
            message: "answered 500",
        },
        BadDownload {
            what: "a site with neither month's file",
            answer: |_| StatusCode::NOT_FOUND.into_response(),
            settings: &[],
            message: "no DB-IP Lite City database at",
        },
    ];
    for case in cases {
        let head = head.clone();
        let answer = case.answer;
        let site = DownloadSite::start(move |_| answer(&head)).await;
        let settings: Vec<_> = case
            .settings
            .iter()
            .map(|(name, value)| (*name, value.to_string()))
            .collect();
        let started = std::time::Instant::now();
        let (code, out, err) = update(data_dir.path(), &site, &settings).await;
        assert_ne!(code, 0, "{}: {out}", case.what);
        assert!(err.contains(case.message), "{}: {err}", case.what);
        assert!(
            err.contains("not updated") && err.contains("is unchanged"),
            "{}: {err}",
            case.what
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{}: the command gives up in time",
            case.what
        );
        let after = std::fs::metadata(&installed).unwrap();
        assert_eq!(
            (after.len(), after.modified().unwrap()),
            (before.len(), before.modified().unwrap()),
            "{}: the database in use is untouched",
            case.what
        );
        assert_eq!(
            leftovers(data_dir.path()),
            Vec::<PathBuf>::new(),
            "{}",
            case.what
        );
    }
}

#[test]
fn geoip_download_settings_are_checked() {
    let config = latchkey::config::Config::from_toml("").unwrap();
    assert_eq!(
        config.geoip.download_url,
        "https://download.db-ip.com/free/"
    );
    assert!(config.geoip.databases.is_empty());
    assert_eq!(
        config.geoip_update_file(),
        config.data_dir.join("dbip-city-lite.mmdb")
    );
    for bad in [
        "[geoip]\ndownload_url = \"ftp://example.com/\"",
        "[geoip]\ndownload_url = \"not a url\"",
        "[geoip]\nmax_download_megabytes = 0",
        "[geoip]\ndownload_timeout_seconds = 0",
        "[geoip]\nreload_seconds = 0",
        "[geoip]\nreload_every = 5",
    ] {
        let error = latchkey::config::Config::from_toml(bad).unwrap_err();
        assert!(
            format!("{error:#}").contains("geoip") || format!("{error:#}").contains("reload_every"),
            "{bad}: {error:#}"
        );
    }
}

/// Starts `latchkey demo` in `cwd` on `data_dir` and returns the line that says where its
/// locations come from; stops it then.
async fn demo_locations_line(cwd: &Path, data_dir: &Path) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("demo")
        .current_dir(cwd)
        .env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .env_remove("LATCHKEY_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.starts_with("Locations:"))
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    line.expect("the demo says where locations come from")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_takes_locations_from_the_data_directory_first_or_says_how_to_get_them() {
    let Some(databases) = geoip_databases() else {
        return;
    };
    // A working directory with no ../shared/geoip beside it.
    let cwd = tempfile::tempdir().unwrap();
    let nested = cwd.path().join("checkout");
    std::fs::create_dir(&nested).unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let line = demo_locations_line(&nested, data_dir.path()).await;
    assert!(
        line.contains("none yet") && line.contains("latchkey geoip update"),
        "{line}"
    );

    let downloaded = data_dir.path().join("dbip-city-lite.mmdb");
    std::fs::copy(&databases[0], &downloaded).unwrap();
    let line = demo_locations_line(&nested, data_dir.path()).await;
    assert!(
        line.contains(&downloaded.display().to_string()) && line.contains("https://db-ip.com"),
        "{line}"
    );
}
