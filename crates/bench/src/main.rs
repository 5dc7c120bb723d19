//! `latchkey-bench`: Latchkey's load generator and latency benchmark. It drives a server
//! exactly as browsers, applications and authenticator apps do, over HTTP and WebSockets on
//! loopback, and reports what that costs the server.
//!
//! * `load`: virtual users doing complete OpenID Connect sign-ins with phone sign-in (and,
//!   with `--password-every`, password and MFA push) while devices listen and answer.
//! * `idle`: devices that only keep their live channel open: the server's memory per device.
//! * `latency`: one sign-in at a time, for the latency of each half.
//! * `stores`: scenario (a) on SQLite, on PostgreSQL, and on several instances sharing
//!   PostgreSQL, one after the other, with a table to compare them.
//!
//! See `docs/performance.md` for the scenarios and the figures measured.

mod browser;
mod database;
mod devices;
mod idle;
mod latency;
mod load;
mod report;
mod seed;
mod server;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use tokio::task::JoinSet;

use crate::database::{BenchDatabase, DatabaseCpu};
use crate::load::{Application, Bound, REDIRECT_URI};
use crate::seed::Admin;
use crate::server::{InProcessServer, Setup, SpawnedServer, Target};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Latchkey's load generator: complete sign-ins over loopback, as real clients make them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Complete sign-ins by many virtual users at once (scenarios a and c).
    Load(LoadArgs),
    /// Connected devices that only listen: the server's memory (scenario b).
    Idle(IdleArgs),
    /// One sign-in at a time: the latency of each half, with and without idle devices.
    Latency(latency::Args),
    /// Scenario (a) on SQLite, on PostgreSQL, and on several instances sharing PostgreSQL.
    Stores(StoresArgs),
}

/// Which server to drive.
#[derive(clap::Args, Clone)]
struct ServerArgs {
    /// Drive this running server instead of starting one (its throttles must allow the load).
    #[arg(long, value_name = "URL", requires = "admin_token")]
    server: Option<String>,
    /// The running server's administrator API token.
    #[arg(long, env = "LATCHKEY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The running server's process id, for its CPU time and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The `latchkey` binary to start (default: the one built beside this generator).
    #[arg(long, value_name = "FILE")]
    latchkey_bin: Option<PathBuf>,
    /// Run the server inside the generator's process (the smoke test does; /proc figures
    /// then cover both).
    #[arg(long, conflicts_with_all = ["server", "database_url"])]
    in_process: bool,
    /// Start the servers on this PostgreSQL database instead of SQLite. The generator makes
    /// a schema of its own there for the run and drops it after (the URL's user must be
    /// allowed to create schemas). The URL is never printed.
    #[arg(long, value_name = "URL", conflicts_with = "server")]
    database_url: Option<String>,
    /// Use the database as --database-url names it instead of a schema of the run's own (it
    /// must hold no Latchkey data yet; it is left as the run leaves it).
    #[arg(long, requires = "database_url")]
    no_scratch_schema: bool,
    /// Servers to start on the one database (several need --database-url). Browsers and
    /// devices are spread over them, each user's device on another instance than its browser.
    #[arg(long, default_value_t = 1, conflicts_with = "server")]
    instances: usize,
    /// Each instance's PostgreSQL connections (`[database] max_connections`; default 10).
    #[arg(long, value_name = "N", requires = "database_url")]
    pool: Option<u32>,
    /// Also write the results as JSON to this file (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct LoadArgs {
    /// Users seeded, each with a registered device.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Of those, devices kept connected on the live channel; sign-ins go to their users.
    #[arg(long, default_value_t = 1_000)]
    devices: usize,
    /// Virtual users signing in at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to run (after the warm-up).
    #[arg(long, default_value_t = 30, conflicts_with = "count")]
    duration: u64,
    /// Sign-ins to run instead of a duration.
    #[arg(long)]
    count: Option<u64>,
    /// Untimed sign-ins first, so first-use costs stay out of the figures.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Every N-th user signs in with password and MFA push instead of phone sign-in (0: none).
    #[arg(long, default_value_t = 0)]
    password_every: usize,
    /// A device that has had nothing on its live channel this long after the submit asks for
    /// its requests instead (`GET /authenticator/v1/requests`), as the app does when its
    /// channel is down.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pull_after_ms: u64,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args, Clone)]
struct StoresArgs {
    /// The PostgreSQL database; each PostgreSQL run works in a schema of its own there,
    /// dropped after it. The URL is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "LATCHKEY_BENCH_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: String,
    /// Instances sharing PostgreSQL in the last configuration.
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// Users seeded in each configuration, each with a registered device.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Of those, devices kept connected.
    #[arg(long, default_value_t = 1_000)]
    devices: usize,
    /// Virtual users signing in at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds each configuration runs (after its warm-up).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Untimed sign-ins before each run.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// As for `load`: when a device stops waiting for its channel and asks.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pull_after_ms: u64,
    /// Each instance's PostgreSQL connections (default 10).
    #[arg(long, value_name = "N")]
    pool: Option<u32>,
    /// The `latchkey` binary to start (default: the one built beside this generator).
    #[arg(long, value_name = "FILE")]
    latchkey_bin: Option<PathBuf>,
    /// Also write the three reports as JSON to this file (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct IdleArgs {
    /// Devices seeded and connected.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Seconds the channels stay open before memory is read again.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    #[command(flatten)]
    server: ServerArgs,
}

/// The server being driven, however it was found.
enum Driven {
    Spawned {
        servers: Vec<SpawnedServer>,
        target: Target,
        /// Boxed: the scratch database's handle is large beside the other variants.
        database: Option<Box<BenchDatabase>>,
    },
    InProcess(InProcessServer),
    External(Target),
}

impl Driven {
    async fn open(args: &ServerArgs) -> Result<Driven> {
        if let Some(base) = &args.server {
            let base = base.trim_end_matches('/').to_string();
            return Ok(Driven::External(Target {
                instances: vec![base.clone()],
                base,
                admin_token: args.admin_token.clone().unwrap_or_default(),
                pids: args.server_pid.into_iter().collect(),
            }));
        }
        if args.in_process {
            return Ok(Driven::InProcess(InProcessServer::start().await?));
        }
        let binary = server::find_binary(args.latchkey_bin.as_deref())?;
        let database = match &args.database_url {
            Some(url) => Some(BenchDatabase::prepare(url, !args.no_scratch_schema).await?),
            None => None,
        };
        let setup = Setup {
            database_url: database.as_ref().map(|d| d.server_url.clone()),
            pool: args.pool,
        };
        match server::start_cluster(&binary, &setup, args.instances).await {
            Ok((servers, target)) => Ok(Driven::Spawned {
                servers,
                target,
                database: database.map(Box::new),
            }),
            Err(error) => {
                if let Some(database) = database {
                    let _ = database.finish().await;
                }
                Err(error)
            }
        }
    }

    fn target(&self) -> &Target {
        match self {
            Driven::Spawned { target, .. } => target,
            Driven::InProcess(s) => &s.target,
            Driven::External(t) => t,
        }
    }

    fn describe(&self) -> String {
        match self {
            Driven::Spawned {
                servers, database, ..
            } => format!(
                "{} latchkey serve process{} started by the generator, on {}",
                servers.len(),
                if servers.len() == 1 { "" } else { "es" },
                database
                    .as_ref()
                    .map_or("SQLite".to_string(), |d| d.describe())
            ),
            Driven::InProcess(_) => "a server inside the generator's process".into(),
            Driven::External(_) => "a running server".into(),
        }
    }

    /// PostgreSQL's CPU time now, when the generator made the run's database.
    async fn database_cpu(&self) -> Option<DatabaseCpu> {
        match self {
            Driven::Spawned {
                database: Some(database),
                ..
            } => match database.cpu().await {
                Ok(cpu) => Some(cpu),
                Err(error) => {
                    eprintln!("PostgreSQL's CPU time is not measured: {error:#}");
                    None
                }
            },
            _ => None,
        }
    }

    async fn stop(self) -> Result<()> {
        match self {
            Driven::Spawned {
                servers, database, ..
            } => {
                let mut stopped = Ok(());
                for server in servers {
                    let result = server.stop().await;
                    if stopped.is_ok() {
                        stopped = result;
                    }
                }
                if let Some(database) = database {
                    (*database).finish().await?;
                }
                stopped
            }
            Driven::InProcess(s) => s.stop().await,
            Driven::External(_) => Ok(()),
        }
    }
}

/// Seeds, connects, warms up and runs one load scenario; returns its report.
async fn load(args: LoadArgs, driven: &Driven) -> Result<serde_json::Value> {
    ensure!(
        args.devices <= args.users,
        "--devices cannot be more than --users"
    );
    let target = driven.target();
    let http = browser::shared_client()?;
    let admin = Admin::new(&http, target);
    let (client_id, client_secret) = admin.register_app(REDIRECT_URI).await?;
    let app = Arc::new(Application::discover(&http, &target.base, client_id, client_secret).await?);
    let devices: Vec<Arc<_>> = seed::seed(&admin, &http, target, args.users, args.password_every)
        .await?
        .into_iter()
        .map(Arc::new)
        .collect();

    let connecting = Instant::now();
    let mut listeners = JoinSet::new();
    let closed = Arc::new(AtomicU64::new(0));
    let connected = devices[..args.devices].to_vec();
    let pull_after = Duration::from_millis(args.pull_after_ms);
    let mut listening = load::connect_all(connected, 64, &mut listeners, closed.clone()).await?;
    eprintln!(
        "connected {} devices in {:.1} s",
        listening.len(),
        connecting.elapsed().as_secs_f64()
    );

    if args.warmup > 0 {
        eprintln!("warm-up: {} sign-ins", args.warmup);
        let warm = load::run(
            &http,
            app.clone(),
            std::mem::take(&mut listening),
            args.concurrency,
            Bound::Count(args.warmup),
            pull_after,
            false,
        )
        .await?;
        ensure!(
            warm.errors.is_empty(),
            "the warm-up failed: {:?}",
            warm.errors
        );
        listening = warm.listening;
    }

    let before = target.stats();
    let generator_before = generator_stats(target);
    let database_before = driven.database_cpu().await;
    let bound = match args.count {
        Some(count) => Bound::Count(count),
        None => Bound::Duration(Duration::from_secs(args.duration)),
    };
    eprintln!(
        "running: {} virtual users, {} connected devices, {}",
        args.concurrency,
        listening.len(),
        match bound {
            Bound::Count(n) => format!("{n} sign-ins"),
            Bound::Duration(d) => format!("{} s", d.as_secs()),
        }
    );
    let outcome = load::run(
        &http,
        app,
        listening,
        args.concurrency,
        bound,
        pull_after,
        !args.quiet,
    )
    .await?;
    let after = target.stats();
    let generator_after = generator_stats(target);
    let database_after = driven.database_cpu().await;
    let dropped = closed.load(Ordering::Relaxed);
    listeners.shutdown().await;

    let report = report::Load {
        scenario: if args.password_every > 0 {
            "c: phone sign-in mixed with password and MFA push"
        } else {
            "a: phone sign-in"
        },
        server: driven.describe(),
        users: args.users,
        devices: args.devices,
        concurrency: args.concurrency,
        password_every: args.password_every,
        outcome: &outcome,
        instances: target.instances.len(),
        before,
        after,
        generator_cpu_seconds: generator_before
            .zip(generator_after)
            .map(|(before, after)| after.cpu_seconds - before.cpu_seconds),
        database: database_before
            .zip(database_after)
            .map(|(before, after)| after.spent_since(&before)),
        dropped_channels: dropped,
    };
    report.print();
    Ok(report.to_json())
}

/// The generator's own CPU and memory, when the server runs in other processes (in one
/// process the two could not be told apart).
fn generator_stats(target: &Target) -> Option<server::ProcStats> {
    let own = std::process::id();
    if target.pids.is_empty() || target.pids.contains(&own) {
        return None;
    }
    server::ProcStats::read(own).ok()
}

/// Seeds devices, opens all their channels, and reads the server's memory at each stage.
async fn idle(args: IdleArgs, driven: &Driven) -> Result<serde_json::Value> {
    let target = driven.target();
    let http = browser::shared_client()?;
    let admin = Admin::new(&http, target);
    let at_start = target.stats();
    let devices = seed::seed(&admin, &http, target, args.devices, 0).await?;
    // Let the seeding's buffers go back before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seeded = target.stats();
    let connecting = Instant::now();
    let sources = idle::source_addresses(&target.base, devices.len());
    let channels = idle::open_all(devices, &sources, 64).await?;
    let connect_seconds = connecting.elapsed().as_secs_f64();
    eprintln!(
        "connected {} devices from {} local address(es) in {connect_seconds:.1} s; holding {} s",
        channels.open,
        sources.len(),
        args.hold
    );
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let connected = target.stats();
    let dropped = channels.closed.load(Ordering::Relaxed);
    let generator = server::ProcStats::read(std::process::id()).ok();
    let report = report::Idle {
        server: driven.describe(),
        devices: channels.open,
        connect_seconds,
        at_start,
        seeded,
        connected,
        dropped_channels: dropped,
        events: channels.events.load(Ordering::Relaxed),
        generator,
    };
    let mut tasks = channels.tasks;
    tasks.shutdown().await;
    report.print();
    Ok(report.to_json())
}

/// Scenario (a) on SQLite, on PostgreSQL and on several instances sharing PostgreSQL, one
/// after the other, each with a fresh store; then a table of the three.
async fn stores(args: StoresArgs) -> Result<()> {
    ensure!(args.instances >= 2, "--instances must be at least 2");
    let configurations = [
        ("SQLite, 1 instance".to_string(), None, 1),
        (
            "PostgreSQL, 1 instance".to_string(),
            Some(args.database_url.clone()),
            1,
        ),
        (
            format!("PostgreSQL, {} instances", args.instances),
            Some(args.database_url.clone()),
            args.instances,
        ),
    ];
    let mut rows = Vec::new();
    for (name, database_url, instances) in configurations {
        eprintln!("\n== {name}");
        let server = ServerArgs {
            server: None,
            admin_token: None,
            server_pid: None,
            latchkey_bin: args.latchkey_bin.clone(),
            in_process: false,
            database_url,
            no_scratch_schema: false,
            instances,
            pool: args.pool,
            json: None,
        };
        let load_args = LoadArgs {
            users: args.users,
            devices: args.devices,
            concurrency: args.concurrency,
            duration: args.duration,
            count: None,
            warmup: args.warmup,
            password_every: 0,
            pull_after_ms: args.pull_after_ms,
            quiet: false,
            server: server.clone(),
        };
        let result = match Driven::open(&server).await {
            Ok(driven) => {
                let result = load(load_args, &driven).await;
                let stopped = driven.stop().await;
                result.and_then(|report| stopped.map(|()| report))
            }
            Err(error) => Err(error),
        };
        rows.push((name, result));
    }
    println!();
    println!("{}", report::stores_table(&rows));
    let reports: Vec<serde_json::Value> = rows
        .iter()
        .map(|(name, result)| match result {
            Ok(report) => serde_json::json!({ "configuration": name, "report": report }),
            Err(error) => {
                serde_json::json!({ "configuration": name, "error": format!("{error:#}") })
            }
        })
        .collect();
    write_json(args.json.as_ref(), &serde_json::Value::Array(reports))
}

fn write_json(path: Option<&PathBuf>, value: &serde_json::Value) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(value)?;
    if path.as_os_str() == "-" {
        println!("{text}");
    } else {
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // Before any server is started, which inherits it.
    server::raise_open_file_limit();
    let (server_args, work): (ServerArgs, _) = match cli.command {
        Command::Latency(args) => return latency::run(args).await,
        Command::Stores(args) => return stores(args).await,
        Command::Load(args) => (args.server.clone(), Work::Load(args)),
        Command::Idle(args) => (args.server.clone(), Work::Idle(args)),
    };
    let driven = Driven::open(&server_args).await?;
    eprintln!("driving {} at {}", driven.describe(), driven.target().base);
    let result = match work {
        Work::Load(args) => load(args, &driven).await,
        Work::Idle(args) => idle(args, &driven).await,
    };
    let stopped = driven.stop().await;
    let report = result?;
    stopped.context("stopping the server")?;
    write_json(server_args.json.as_ref(), &report)
}

enum Work {
    Load(LoadArgs),
    Idle(IdleArgs),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator's smoke run: a few complete sign-ins of both kinds against a server in
    /// process, so the generator cannot rot unnoticed. No timing is asserted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn load_generator_completes_phone_and_password_push_sign_ins_with_verified_id_tokens() {
        let server = ServerArgs {
            server: None,
            admin_token: None,
            server_pid: None,
            latchkey_bin: None,
            in_process: true,
            database_url: None,
            no_scratch_schema: false,
            instances: 1,
            pool: None,
            json: None,
        };
        let driven = Driven::open(&server).await.expect("server");
        let args = LoadArgs {
            users: 6,
            devices: 4,
            concurrency: 2,
            duration: 0,
            count: Some(8),
            warmup: 2,
            password_every: 2,
            pull_after_ms: 2000,
            quiet: true,
            server,
        };
        let report = load(args, &driven).await.expect("the load run");
        driven.stop().await.expect("stop");
        assert_eq!(report["completed"], 8, "{report:#}");
        assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
        assert!(report["by_way"]["phone_sign_in"].as_u64().unwrap() > 0);
        assert!(report["by_way"]["password_and_push"].as_u64().unwrap() > 0);
        assert_eq!(report["steps"]["token"]["count"], 8, "{report:#}");
    }
}
