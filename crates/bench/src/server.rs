//! The server under load: `latchkey serve` processes the generator starts, each with a
//! temporary data directory (one on SQLite, or one or more sharing a PostgreSQL database), or
//! one already running. Their CPU time and memory are read from `/proc`, so they are the
//! servers' alone, not the generator's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::process::{Child, Command};

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`): 100 on every Linux the
/// generator runs on.
pub(crate) const USER_HZ: f64 = 100.0;

/// The server's CPU time and memory at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User plus system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident memory now, in KiB.
    pub rss_kib: u64,
    /// The most resident memory the process has had, in KiB.
    pub peak_rss_kib: u64,
}

impl ProcStats {
    pub fn read(pid: u32) -> Result<ProcStats> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // The command name is in parentheses and may hold spaces: count fields after it.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("unexpected /proc/<pid>/stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // After the name: state is field 3 of the full line, utime 14 and stime 15.
        let tick = |n: usize| -> Result<f64> {
            Ok(fields
                .get(n - 3)
                .context("short /proc/<pid>/stat")?
                .parse::<f64>()?)
        };
        let cpu_seconds = (tick(14)? + tick(15)?) / USER_HZ;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Ok(ProcStats {
            cpu_seconds,
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
        })
    }
}

/// Where the server is and how to administer it.
pub struct Target {
    /// The public URL: the admin API, the issuer of ID tokens, the server in activation links.
    pub base: String,
    /// Every instance's own address, the first being `base`'s; browsers and devices are
    /// spread over them.
    pub instances: Vec<String>,
    pub admin_token: String,
    /// The server processes, for `/proc`; empty when the server runs elsewhere.
    pub pids: Vec<u32>,
}

impl Target {
    /// All the server processes' CPU and memory, summed (peak: the sum of each one's peak).
    pub fn stats(&self) -> Option<ProcStats> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().try_fold(ProcStats::default(), |sum, pid| {
            let one = ProcStats::read(*pid).ok()?;
            Some(ProcStats {
                cpu_seconds: sum.cpu_seconds + one.cpu_seconds,
                rss_kib: sum.rss_kib + one.rss_kib,
                peak_rss_kib: sum.peak_rss_kib + one.peak_rss_kib,
            })
        })
    }
}

/// What the generator's servers are started with.
#[derive(Clone, Default)]
pub struct Setup {
    /// `LATCHKEY_DATABASE_URL`: PostgreSQL at this URL; `None` for SQLite in the data directory.
    pub database_url: Option<String>,
    /// `LATCHKEY_DATABASE__MAX_CONNECTIONS`: each instance's pool.
    pub pool: Option<u32>,
}

/// `instances` servers on one store, started one after the other (the first creates the
/// keys and the administrator token; the others find them), all with the first's public URL.
pub async fn start_cluster(
    binary: &Path,
    setup: &Setup,
    instances: usize,
) -> Result<(Vec<SpawnedServer>, Target)> {
    ensure!(instances >= 1, "--instances must be at least 1");
    ensure!(
        instances == 1 || setup.database_url.is_some(),
        "several instances need a shared database: pass --database-url"
    );
    let first = SpawnedServer::start(binary, setup, None).await?;
    let mut target = Target {
        base: first.base.clone(),
        instances: vec![first.base.clone()],
        admin_token: first.admin_token.clone().context(
            "the first server wrote no administrator token: the database must hold no Latchkey data yet",
        )?,
        pids: vec![first.pid],
    };
    let mut servers = vec![first];
    for _ in 1..instances {
        let server = SpawnedServer::start(binary, setup, Some(&target.base)).await?;
        target.instances.push(server.base.clone());
        target.pids.push(server.pid);
        servers.push(server);
    }
    Ok((servers, target))
}

/// A `latchkey serve` process on a free loopback port with a data directory of its own.
pub struct SpawnedServer {
    /// Its own address (its public URL may be another instance's).
    base: String,
    pid: u32,
    /// The token it created, if it was the first on its store.
    admin_token: Option<String>,
    child: Child,
    dir: tempfile::TempDir,
}

/// The `latchkey` binary: `--latchkey-bin`, else `LATCHKEY_BIN`, else the one built beside
/// this generator.
pub fn find_binary(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("LATCHKEY_BIN") {
        return Ok(PathBuf::from(path));
    }
    let beside = std::env::current_exe()?
        .parent()
        .context("the generator has no folder")?
        .join("latchkey");
    ensure!(
        beside.exists(),
        "no latchkey binary at {}: build it (cargo build --release -p latchkey) or pass --latchkey-bin",
        beside.display()
    );
    Ok(beside)
}

impl SpawnedServer {
    /// Starts the server and waits until `/readyz` answers. Its throttles are opened wide:
    /// a handful of users sign in hundreds of times a minute here, which is exactly what they
    /// exist to stop.
    ///
    /// `public_url` is the address every instance answers for (`None`: its own).
    pub async fn start(
        binary: &Path,
        setup: &Setup,
        public_url: Option<&str>,
    ) -> Result<SpawnedServer> {
        let dir = tempfile::tempdir()?;
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let data = dir.path().join("data");
        // On PostgreSQL nothing else makes it, and the first server writes its token there.
        std::fs::create_dir_all(&data)?;
        let wide = wide_throttles().notifications_per_user;
        let wide = format!(
            "{{ limit = {}, window_seconds = {} }}",
            wide.limit, wide.window_seconds
        );
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             public_url = \"{}\"\n\
             data_dir = \"{}\"\n\
             [throttle]\n\
             notifications_per_user = {wide}\n\
             notifications_per_ip = {wide}\n\
             wrong_numbers_per_user = {wide}\n\
             failed_credentials_per_user = {wide}\n\
             failed_credentials_per_ip = {wide}\n\
             answers_per_device = {wide}\n\
             [limits]\n\
             max_connections = {BENCH_CONNECTIONS}\n\
             max_connections_per_address = {BENCH_CONNECTIONS}\n",
            public_url.unwrap_or(&base),
            data.display()
        );
        let config_path = dir.path().join("latchkey.toml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut command = Command::new(binary);
        if let Some(url) = &setup.database_url {
            command.env("LATCHKEY_DATABASE_URL", url);
        }
        if let Some(pool) = setup.pool {
            command.env("LATCHKEY_DATABASE__MAX_CONNECTIONS", pool.to_string());
        }
        let child = command
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or("warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut server = SpawnedServer {
            base,
            pid,
            admin_token: None,
            child,
            dir,
        };
        server.wait_ready(&data).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, data: &Path) -> Result<()> {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            let ready = http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                // Only the first server on a store creates the token.
                self.admin_token = std::fs::read_to_string(data.join("admin-token"))
                    .ok()
                    .map(|token| token.trim().to_string());
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "the server was not ready in 30 s; its log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines the server logged, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Asks the server to stop (SIGTERM, so it drains) and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the server did not stop within 15 s");
            }
        }
        Ok(())
    }
}

/// Throttles opened wide: one user signs in hundreds of times a minute here, which is what
/// they exist to stop.
fn wide_throttles() -> latchkey_domain::throttle::ThrottleLimits {
    let wide = latchkey_domain::throttle::Limit::new(u32::MAX, 60);
    latchkey_domain::throttle::ThrottleLimits {
        notifications_per_user: wide,
        notifications_per_user_unfamiliar: wide,
        notifications_per_ip: wide,
        wrong_numbers_per_user: wide,
        failed_credentials_per_user: wide,
        failed_credentials_per_user_unfamiliar: wide,
        failed_credentials_per_ip: wide,
        answers_per_device: wide,
        wrong_user_codes_per_user: wide,
        wrong_user_codes_per_ip: wide,
        wrong_user_codes_global: wide,
    }
}

/// Raises this process's open-file limit as far as it goes, before it starts servers (which
/// inherit it): every channel is a descriptor here and another in the server. As root the hard
/// limit rises too, up to the kernel's `fs.nr_open`; otherwise the soft limit rises to the hard.
pub fn raise_open_file_limit() {
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse::<libc::rlim_t>().ok());
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if let Some(ceiling) = ceiling.filter(|c| *c > limit.rlim_max) {
            let wide = libc::rlimit {
                rlim_cur: ceiling,
                rlim_max: ceiling,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wide) == 0 {
                return;
            }
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

/// Every simulated device and browser connects from loopback, thousands at once: the
/// connection caps, which would shed them as one client, are opened wide.
const BENCH_CONNECTIONS: usize = 1_000_000;

fn bench_limits() -> latchkey::config::Limits {
    latchkey::config::Limits {
        max_connections: BENCH_CONNECTIONS,
        max_connections_per_address: BENCH_CONNECTIONS,
        ..latchkey::config::Limits::default()
    }
}

/// A server inside the generator's process, as the integration tests start one: for the
/// latency benchmark and the smoke test. `/proc` figures then cover both sides.
pub struct InProcessServer {
    pub target: Target,
    pub latchkey: std::sync::Arc<latchkey_domain::Latchkey>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
    _data_dir: tempfile::TempDir,
}

impl InProcessServer {
    pub async fn start() -> Result<InProcessServer> {
        let data_dir = tempfile::tempdir()?;
        // Bound first, so that the public URL (the issuer in activation links) names the port.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let base = format!("http://127.0.0.1:{}", addr.port());
        let config = latchkey::config::Config {
            listen: addr.to_string(),
            public_url: base.clone(),
            data_dir: data_dir.path().to_path_buf(),
            throttle: wide_throttles(),
            limits: bench_limits(),
            ..latchkey::config::Config::default()
        };
        let latchkey = latchkey::server::open(&config).await?;
        let admin_token = std::fs::read_to_string(data_dir.path().join("admin-token"))
            .context("the server wrote no admin token")?
            .trim()
            .to_string();
        let server = latchkey::server::serve_on(&config, latchkey.clone(), listener).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Ok(InProcessServer {
            target: Target {
                instances: vec![base.clone()],
                base,
                admin_token,
                pids: vec![std::process::id()],
            },
            latchkey,
            stop,
            task,
            _data_dir: data_dir,
        })
    }

    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        // The server drains for at most 10 s; past that something is stuck.
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .context("the server did not stop")???;
        Ok(())
    }
}
