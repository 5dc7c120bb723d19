//! Starting and stopping the server: open the store, build the application state once, serve
//! until SIGINT or SIGTERM, then drain in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use latchkey_domain::Latchkey;
use latchkey_domain::clock::{Clock, SystemClock};
use latchkey_domain::notify::Notifier;
use latchkey_domain::random::{OsRandom, RandomSource};
use latchkey_domain::store::Store;
use latchkey_store::postgres::events::DeviceSignals;
use latchkey_store::{PostgresStore, SqliteStore};
use latchkey_web::{AppParts, AppState, Metrics};

use crate::certificate_listener::CertificateTls;
use crate::config::{Config, Database};
use crate::cross_instance::{CrossInstanceNotifier, deliver_heard};

/// Opens the store and prepares what every start needs: keys, My Apps, the first admin token.
pub async fn open(config: &Config) -> anyhow::Result<Arc<Latchkey>> {
    open_with(config, Arc::new(SystemClock), Arc::new(OsRandom)).await
}

/// [`open`] with the clock and random source given: the server's are the system's; tests pass
/// a clock they move and a source they fix.
pub async fn open_with(
    config: &Config,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
) -> anyhow::Result<Arc<Latchkey>> {
    let store = open_store(config).await?;
    let latchkey = Arc::new(Latchkey::build(
        store,
        clock,
        random,
        crate::webhook::WebhookBus::new(config.webhooks.clone()),
        config.settings(),
    ));
    for problem in latchkey.passkeys.configuration_problems() {
        tracing::warn!(%problem, "passkeys and security keys are limited");
    }
    latchkey
        .tokens
        .set_logout_sender(crate::backchannel::HttpLogoutSender::new());
    latchkey
        .certificates
        .set_crl_source(crate::crl::HttpCrlSource::new());
    latchkey.tokens.ensure_signing_keys().await?;
    latchkey.applications.ensure_my_apps().await?;
    latchkey.governance.ensure_administrators_group().await?;
    if let Some(token) = latchkey.governance.ensure_admin_token().await? {
        let path = config.data_dir.join("admin-token");
        write_private(&path, token.expose())?;
        println!(
            "Created the first administrator API token (named \"initial\"; revoke it once you have made your own). It is shown only now and saved to {}:",
            path.display()
        );
        println!("  {}", token.expose());
    }
    Ok(latchkey)
}

/// Opens the database the configuration chooses (SQLite in the data directory, or PostgreSQL
/// at `database_url`) and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.database()? {
        Database::Sqlite => {
            Arc::new(SqliteStore::open(&config.data_dir).await.with_context(|| {
                format!("opening the database in {}", config.data_dir.display())
            })?)
        }
        // The URL is not quoted: it may hold a password.
        Database::Postgres(url) => Arc::new(
            PostgresStore::open(url, &config.postgres_settings())
                .await
                .context("opening the PostgreSQL database at database_url")?,
        ),
    })
}

/// `latchkey migrate`: brings the configured database's schema up to date and exits. The
/// server does the same when it starts; this lets an operator do it ahead of a rollout.
/// Safe beside running instances and beside another `migrate` (PostgreSQL's migrations run
/// under an advisory lock; each SQLite migration runs in one transaction).
pub async fn migrate(config: &Config) -> anyhow::Result<&'static str> {
    let database = config.database()?;
    match database {
        Database::Sqlite => {
            let store = SqliteStore::open(&config.data_dir).await.with_context(|| {
                format!("opening the database in {}", config.data_dir.display())
            })?;
            store.close().await;
        }
        Database::Postgres(url) => {
            latchkey_store::postgres::migrate(url)
                .await
                .context("migrating the PostgreSQL database at database_url")?;
        }
    }
    Ok(database.kind())
}

fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` only applies to a new file; an existing one is narrowed too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

/// A bound, not yet serving, server.
pub struct Server {
    pub local_addr: SocketAddr,
    listener: std::net::TcpListener,
    state: AppState,
    tls: Option<crate::config::TlsConfig>,
    limits: crate::config::Limits,
    log_retention_days: u32,
    /// Reloaded when its files change, so updated databases need no restart.
    mmdb: Arc<latchkey_geoip::MmdbGeoIp>,
    /// How often `mmdb`'s files are checked for a change.
    geoip_reload: Duration,
    /// On PostgreSQL: device events to and from the other instances.
    cross_instance: Option<CrossInstance>,
    /// The certificate host's own listener (`[certificate] listen`), and its TLS.
    certificate_listener: Option<(std::net::TcpListener, Arc<CertificateTls>)>,
    /// Where the certificate listener listens, when there is one.
    pub certificate_addr: Option<SocketAddr>,
}

/// The cross-instance device events of a server on PostgreSQL: the channel (listened to
/// while serving) and the task publishing this instance's events.
struct CrossInstance {
    signals: DeviceSignals,
    publishing: tokio::task::JoinHandle<()>,
}

pub async fn bind(config: &Config, latchkey: Arc<Latchkey>) -> anyhow::Result<Server> {
    let addr = config.listen_addr()?;
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let certificate_listener = match &config.certificate.listen {
        Some(listen) => Some(
            std::net::TcpListener::bind(listen)
                .with_context(|| format!("certificate.listen: listening on {listen}"))?,
        ),
        None => None,
    };
    serve_on_with(config, latchkey, listener, certificate_listener).await
}

/// Like [`bind`], on a listener the caller already opened (tests bind port 0 first, so that
/// the public URL can name the port).
pub async fn serve_on(
    config: &Config,
    latchkey: Arc<Latchkey>,
    listener: std::net::TcpListener,
) -> anyhow::Result<Server> {
    serve_on_with(config, latchkey, listener, None).await
}

/// Like [`serve_on`], with the certificate host's listener too (`[certificate] listen`), which
/// the caller opened.
pub async fn serve_on_with(
    config: &Config,
    latchkey: Arc<Latchkey>,
    listener: std::net::TcpListener,
    certificate_listener: Option<std::net::TcpListener>,
) -> anyhow::Result<Server> {
    listener.set_nonblocking(true)?;
    let certificate_listener = match certificate_listener {
        Some(certificate_listener) => {
            let (cert, key) = config
                .certificate
                .tls_files(config.tls.as_ref())
                .context("certificate.listen needs certificate.tls_certificate and tls_key")?;
            let tls = CertificateTls::load(cert, key, latchkey.clone())?;
            certificate_listener.set_nonblocking(true)?;
            Some((certificate_listener, Arc::new(tls)))
        }
        None => None,
    };
    let certificate_addr = match &certificate_listener {
        Some((listener, _)) => Some(listener.local_addr()?),
        None => None,
    };
    let certificate_host = match &config.certificate.public_url {
        Some(url) => Some(Arc::new(latchkey_web::certificates::CertificateHost {
            public_url: url.trim_end_matches('/').to_string(),
            proxy_header: axum::http::HeaderName::from_bytes(
                config.certificate.proxy_header.as_bytes(),
            )
            .context("certificate.proxy_header")?,
            trusted_proxies: latchkey_domain::location::TrustedProxies::parse(
                &config.certificate.trusted_proxies,
            )?,
        })),
        None => None,
    };
    let local_addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let internal_base_url = match config.tls {
        // Under TLS, reach ourselves the way applications do.
        Some(_) => config.public_url.trim_end_matches('/').to_string(),
        None => format!("{scheme}://{local_addr}"),
    };
    let cookie_key = latchkey.server_keys.server_secret("cookie-key").await?;
    let known_browser_key = latchkey
        .server_keys
        .server_secret("known-browser-key")
        .await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mmdb = Arc::new(
        if config.geoip.databases.is_empty() {
            // The file `latchkey geoip update` writes; read when it appears.
            latchkey_geoip::MmdbGeoIp::open_allowing_missing(&[config.geoip_update_file()])
        } else {
            latchkey_geoip::MmdbGeoIp::open(&config.geoip.databases)
        }
        .map_err(anyhow::Error::msg)?,
    );
    let geoip: Arc<dyn latchkey_domain::location::GeoIp> = mmdb.clone();
    let trusted_proxies =
        latchkey_domain::location::TrustedProxies::parse(&config.trusted_proxies)?;
    let devices = Arc::new(latchkey_web::DeviceHub::default());
    let (local, web_push): (Arc<dyn Notifier>, _) = if config.web_push.enabled {
        let sender = Arc::new(web_push_sender(config, latchkey.clone()).await?);
        // Every event goes to the live channel; every new request is also pushed.
        let pushing = latchkey_web::web_push::PushingNotifier {
            hub: devices.clone(),
            sender: sender.clone(),
        };
        (Arc::new(pushing), Some(sender))
    } else {
        (devices.clone(), None)
    };
    let cross_instance = match config.database()? {
        Database::Sqlite => {
            latchkey.devices.attach_notifier(local);
            None
        }
        // Other instances may share the database: their devices hear our events and ours theirs.
        Database::Postgres(url) => {
            let signals = DeviceSignals::open(url).await.context(
                "opening the device events channel on the PostgreSQL database at database_url",
            )?;
            let (publisher, publishing) = signals.start_publisher();
            latchkey
                .devices
                .attach_notifier(Arc::new(CrossInstanceNotifier { local, publisher }));
            Some(CrossInstance {
                signals,
                publishing,
            })
        }
    };
    let state = AppState::new(AppParts {
        // The long-poll stays 5 s under the idle timeout (its connection is silent meanwhile).
        sign_in_wait_seconds: ((config.limits.idle_seconds - 5.0).floor().max(0.0) as u64)
            .min(latchkey_web::pages::SIGN_IN_WAIT_SECONDS),
        database: config.database()?.kind(),
        devices,
        latchkey,
        cookie_key: Arc::new(cookie_key),
        known_browser_key: Arc::new(known_browser_key),
        // Behind a TLS-terminating proxy the public URL is https even though we serve http.
        secure_cookies: config.tls.is_some() || config.public_url.starts_with("https://"),
        internal_base_url,
        http,
        metrics: Arc::new(Metrics::default()),
        geoip,
        trusted_proxies: Arc::new(trusted_proxies),
        metrics_token: config
            .metrics
            .token
            .clone()
            .map(|token| Arc::new(latchkey_domain::secret::Secret::new(token))),
        web_push,
        certificate: certificate_host,
    });
    Ok(Server {
        certificate_listener,
        certificate_addr,
        local_addr,
        listener,
        state,
        tls: config.tls.clone(),
        limits: config.limits,
        log_retention_days: config.log_retention_days,
        mmdb,
        cross_instance,
        geoip_reload: Duration::from_secs(config.geoip.reload_seconds),
    })
}

/// The Web Push sender: the VAPID key (made and stored at first start) and its HTTP client.
async fn web_push_sender(
    config: &Config,
    latchkey: Arc<Latchkey>,
) -> anyhow::Result<latchkey_web::web_push::WebPushSender> {
    let push = &config.web_push;
    let mut root_certificates = Vec::new();
    for path in &push.root_certificates {
        root_certificates.push(
            std::fs::read(path)
                .with_context(|| format!("web_push.root_certificates: {}", path.display()))?,
        );
    }
    let subject = push.subject(&config.public_url);
    if !subject.starts_with("https://") && !subject.starts_with("mailto:") {
        tracing::warn!(
            "Web Push: the public URL is not https and web_push.contact is not set; push services may refuse the VAPID subject"
        );
    }
    latchkey_web::web_push::WebPushSender::new(
        latchkey,
        latchkey_web::web_push::WebPushSettings {
            allow_private_endpoints: push.allow_private_endpoints,
            timeout: Duration::from_secs(push.timeout_seconds),
            subject,
            root_certificates,
        },
    )
    .await
    .map_err(anyhow::Error::msg)
}

impl Server {
    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to 10 s).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let latchkey = self.state.latchkey.clone();
        let retention_days = i64::from(self.log_retention_days);
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                if let Err(e) = latchkey.governance.purge_old_logs(retention_days).await {
                    tracing::warn!(error = %e, "purging old log records failed");
                }
                if let Err(e) = latchkey.maintenance.purge_expired().await {
                    tracing::warn!(error = %e, "purging expired records failed");
                }
            }
        });
        let rotation = self.state.latchkey.tokens.scheduled_rotation_seconds();
        let rotating = (rotation > 0).then(|| {
            let latchkey = self.state.latchkey.clone();
            tokio::spawn(async move {
                // Every instance asks; the store lets exactly one rotation through.
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    match latchkey.tokens.rotate_signing_keys_if_due(rotation).await {
                        Ok(Some(keys)) => {
                            let kids: Vec<String> =
                                keys.iter().map(|k| k.kid.to_string()).collect();
                            tracing::info!(new_keys = ?kids, "scheduled signing-key rotation");
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "scheduled signing-key rotation failed")
                        }
                    }
                }
            })
        });
        let devices = self.state.devices.clone();
        let cross_instance = self.cross_instance.map(|cross| {
            let (heard, listening) = cross.signals.start_listener();
            let delivering = tokio::spawn(deliver_heard(
                heard,
                devices.clone(),
                self.state.latchkey.clone(),
            ));
            [cross.publishing, listening, delivering]
        });
        let geoip_reload = tokio::spawn(reload_geoip_when_changed(
            self.mmdb.clone(),
            self.geoip_reload,
        ));
        let metrics = self.state.metrics.clone();
        let trusted_proxies = self.state.trusted_proxies.clone();
        // The certificate host stops with the main listener.
        let (stop_certificates, certificates_stopped) = tokio::sync::watch::channel(false);
        let certificate_host = self.certificate_listener.map(|(listener, tls)| {
            let app = latchkey_web::certificate_router(self.state.clone());
            let mut stopped = certificates_stopped.clone();
            tokio::spawn(crate::edge::serve_client_certificates(
                listener,
                app,
                tls,
                self.limits,
                metrics.clone(),
                trusted_proxies.clone(),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            ))
        });
        let app = latchkey_web::router(self.state);
        let rustls = match &self.tls {
            Some(tls) => Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                    .await
                    .context("loading the TLS certificate and key")?,
            ),
            None => None,
        };
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop_certificates.send(true);
            // Live channels outlive their HTTP connection; close them so devices reconnect.
            devices.close_all();
        };
        let result = crate::edge::serve(
            self.listener,
            app,
            rustls,
            self.limits,
            metrics,
            trusted_proxies,
            shutdown,
        )
        .await;
        purge.abort();
        if let Some(rotating) = rotating {
            rotating.abort();
        }
        for task in cross_instance.into_iter().flatten() {
            task.abort();
        }
        geoip_reload.abort();
        if let Some(certificate_host) = certificate_host {
            match certificate_host.await {
                Ok(Err(error)) => tracing::warn!(%error, "the certificate listener failed"),
                Err(error) => tracing::warn!(%error, "the certificate listener failed"),
                Ok(Ok(())) => {}
            }
        }
        result.context("serving")
    }
}

/// Checks the GeoIP database files every `every` and reads those that changed, so that
/// `latchkey geoip update` (or an operator's cron job) needs no restart. A file that cannot be
/// read keeps the copy read before, and is tried again next time.
async fn reload_geoip_when_changed(mmdb: Arc<latchkey_geoip::MmdbGeoIp>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let reader = mmdb.clone();
        // Reading a database is tens of megabytes of blocking I/O.
        match tokio::task::spawn_blocking(move || reader.reload_if_changed()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(databases = n, "reloaded changed GeoIP databases"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reloading a GeoIP database failed; keeping the old copy")
            }
            Err(e) => tracing::warn!(error = %e, "GeoIP reload task failed"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
