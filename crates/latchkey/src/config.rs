//! Typed configuration: defaults that work with no file, a TOML file, then environment
//! variables (`LATCHKEY_` prefix, `__` between nested keys, e.g. `LATCHKEY_TLS__CERT`).
//!
//! Only variables that name a setting are read: the tools' own variables (`LATCHKEY_URL`,
//! `LATCHKEY_ADMIN_TOKEN`, `LATCHKEY_BIN`, `LATCHKEY_CONFIG`) share the prefix and must never
//! stop the server from starting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use latchkey_domain::Settings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// The URL people and applications use to reach Latchkey; also the OpenID Connect issuer.
    pub public_url: String,
    /// Holds the SQLite database (unless `database_url` names PostgreSQL) and the first
    /// administrator API token.
    pub data_dir: PathBuf,
    /// Where the data lives: absent or `sqlite:` for the SQLite file in `data_dir`, or a
    /// `postgres://user:password@host:port/database` URL for PostgreSQL (several instances may
    /// share one database). It may hold a password: it is never printed or logged.
    #[serde(default)]
    pub database_url: Option<String>,
    /// The PostgreSQL connection pool (unused with SQLite).
    #[serde(default)]
    pub database: DatabaseConfig,
    /// `plain` or `json`.
    pub log_format: String,
    pub tls: Option<TlsConfig>,
    pub lifetimes: Lifetimes,
    /// Addresses (CIDR) of reverse proxies whose X-Forwarded-For header is believed.
    pub trusted_proxies: Vec<String>,
    pub geoip: GeoIpConfig,
    /// Days sign-in and audit records are kept.
    pub log_retention_days: u32,
    /// Limits on notifications, wrong numbers, failed passes and answers.
    pub throttle: latchkey_domain::throttle::ThrottleLimits,
    /// Where to tell administrators' systems about reports of suspicious activity.
    pub webhooks: crate::webhook::WebhookConfig,
    /// Timeouts and caps on connections, so one client cannot hold the server's sockets.
    pub limits: Limits,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    /// Passkeys and security keys (WebAuthn).
    #[serde(default)]
    pub passkeys: PasskeysConfig,
    /// Web Push to the authenticator web app (docs/web-push.md).
    #[serde(default)]
    pub web_push: WebPushConfig,
}

/// Web Push to authenticator devices (docs/web-push.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebPushConfig {
    /// Send Web Push for new sign-in requests, and offer the push endpoints to devices.
    pub enabled: bool,
    /// Let push endpoints name loopback, private and link-local addresses. Off: a device cannot
    /// make the server send requests into the operator's network. For tests and closed
    /// networks with their own push service only.
    pub allow_private_endpoints: bool,
    /// The most one delivery attempt may take, in seconds (1 to 60).
    pub timeout_seconds: u64,
    /// The VAPID contact (`sub`): a `mailto:` address or an `https` URL. Default: the
    /// public URL when it is https.
    pub contact: Option<String>,
    /// PEM files of root certificates trusted for push services beside the system's (a private
    /// push service, or tests).
    pub root_certificates: Vec<PathBuf>,
}

impl Default for WebPushConfig {
    fn default() -> Self {
        WebPushConfig {
            enabled: true,
            allow_private_endpoints: false,
            timeout_seconds: 10,
            contact: None,
            root_certificates: Vec::new(),
        }
    }
}

impl WebPushConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=60).contains(&self.timeout_seconds) {
            bail!("web_push.timeout_seconds must be between 1 and 60");
        }
        if let Some(contact) = &self.contact {
            let ok = match url::Url::parse(contact) {
                Ok(url) => {
                    (url.scheme() == "mailto" && url.path().contains('@'))
                        || (url.scheme() == "https" && url.host().is_some())
                }
                Err(_) => false,
            };
            if !ok {
                bail!("web_push.contact must be a mailto: address or an https URL");
            }
        }
        for path in &self.root_certificates {
            let pem = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "web_push.root_certificates: {} cannot be read",
                    path.display()
                )
            })?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                bail!(
                    "web_push.root_certificates: {} is not a PEM certificate",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// The VAPID `sub` claim: the configured contact, else the public URL (push services
    /// expect an https URL or a mailto: address; an http public URL is sent as it is).
    pub fn subject(&self, public_url: &str) -> String {
        self.contact
            .clone()
            .unwrap_or_else(|| public_url.trim_end_matches('/').to_string())
    }
}

/// Passkeys and security keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeysConfig {
    /// PEM files of the attestation root certificates a security key's attestation must chain
    /// to when the authentication methods policy enforces attestation (docs/passkeys.md).
    pub attestation_roots: Vec<PathBuf>,
}

/// The PostgreSQL connection pool (see README, "PostgreSQL").
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// The most connections this instance keeps open. Instances sharing a database share the
    /// server's `max_connections` (100 by default), so keep their sum below it.
    pub max_connections: u32,
    /// A statement running longer than this many seconds is cancelled and its request fails.
    pub statement_timeout_seconds: u64,
    /// How many seconds a request waits for a free pooled connection before it fails.
    pub acquire_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        let defaults = latchkey_store::PostgresSettings::default();
        DatabaseConfig {
            max_connections: defaults.max_connections,
            statement_timeout_seconds: defaults.statement_timeout.as_secs(),
            acquire_timeout_seconds: defaults.acquire_timeout.as_secs(),
        }
    }
}

/// The database a configuration chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database<'a> {
    /// `latchkey.db` in the data directory.
    Sqlite,
    /// The PostgreSQL database at this URL.
    Postgres(&'a str),
}

impl Database<'_> {
    /// The name `/readyz` and `validate-config` report.
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres(_) => "postgresql",
        }
    }
}

/// Connection timeouts and caps (see README, "Connections and limits").
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A TLS handshake must finish within this many seconds.
    pub tls_handshake_seconds: f64,
    /// A new connection must have sent its first request's headers within this many seconds.
    pub first_request_seconds: f64,
    /// Each request's headers must arrive within this many seconds of the server waiting for
    /// them; on a kept-alive HTTP/1.1 connection this is also how long it may sit idle.
    pub header_read_seconds: f64,
    /// A connection on which nothing was read or written for this many seconds is closed
    /// (HTTP/2 and WebSocket connections included; live channels are pinged every 25 s).
    pub idle_seconds: f64,
    /// Open connections in total; the newest past this is closed at once.
    pub max_connections: usize,
    /// Open connections from one client address (trusted proxies are exempt); the newest past
    /// this is closed at once.
    pub max_connections_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tls_handshake_seconds: 10.0,
            first_request_seconds: 10.0,
            header_read_seconds: 10.0,
            idle_seconds: 60.0,
            max_connections: 4096,
            max_connections_per_address: 128,
        }
    }
}

impl Limits {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("limits.tls_handshake_seconds", self.tls_handshake_seconds),
            ("limits.first_request_seconds", self.first_request_seconds),
            ("limits.header_read_seconds", self.header_read_seconds),
            ("limits.idle_seconds", self.idle_seconds),
        ] {
            if !(0.1..=3600.0).contains(&value) {
                bail!("{name} must be between 0.1 and 3600");
            }
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            bail!(
                "limits.max_connections and limits.max_connections_per_address must be at least 1"
            );
        }
        Ok(())
    }
}

/// `/metrics` is open unless a token is set; then it needs `Authorization: Bearer <token>`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = self.token.as_ref().map(|_| "***");
        f.debug_struct("MetricsConfig")
            .field("token", &token)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// MMDB city databases (GeoLite2/GeoIP2 City or DB-IP Lite City), looked up in order.
    pub databases: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    pub session_seconds: i64,
    pub access_token_seconds: i64,
    pub id_token_seconds: i64,
    pub refresh_token_seconds: i64,
    /// How long a phone sign-in or MFA push notification waits for an answer.
    pub approval_request_seconds: i64,
    /// How long after registering the authenticator, or after the person allows it on
    /// security info, a device may turn on phone sign-in.
    pub phone_sign_in_enable_seconds: i64,
}

impl Default for Config {
    fn default() -> Self {
        let settings = Settings::with_issuer("http://localhost:8080");
        Config {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://localhost:8080".into(),
            data_dir: PathBuf::from("./latchkey-data"),
            database_url: None,
            database: DatabaseConfig::default(),
            log_format: "plain".into(),
            tls: None,
            lifetimes: Lifetimes {
                session_seconds: settings.session_lifetime_seconds,
                access_token_seconds: settings.access_token_lifetime_seconds,
                id_token_seconds: settings.id_token_lifetime_seconds,
                refresh_token_seconds: settings.refresh_token_lifetime_seconds,
                approval_request_seconds: settings.approval_lifetime_seconds,
                phone_sign_in_enable_seconds: settings.phone_sign_in_enable_window_seconds,
            },
            trusted_proxies: vec![],
            geoip: GeoIpConfig::default(),
            log_retention_days: 30,
            throttle: Default::default(),
            webhooks: Default::default(),
            limits: Limits::default(),
            metrics: MetricsConfig::default(),
            passkeys: PasskeysConfig::default(),
            web_push: WebPushConfig::default(),
        }
    }
}

impl Config {
    /// Defaults, then the file (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("the config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(settings_from_environment())
            .extract()
            .context("the configuration is not valid")?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults, then `text` as the file, without the environment: what `load` makes of a
    /// file's contents alone, so they can be checked (and fuzzed) on their own.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .context("the configuration is not valid")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        let url = url::Url::parse(&self.public_url)
            .with_context(|| format!("public_url {:?} is not a URL", self.public_url))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            bail!("public_url must be an http(s) URL without query or fragment");
        }
        if !matches!(self.log_format.as_str(), "plain" | "json") {
            bail!("log_format must be \"plain\" or \"json\"");
        }
        if let Some(tls) = &self.tls {
            for (what, path) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if !path.exists() {
                    bail!("{what}: {} does not exist", path.display());
                }
            }
        }
        let l = &self.lifetimes;
        for (name, value, max) in [
            ("lifetimes.session_seconds", l.session_seconds, 30 * 86_400),
            (
                "lifetimes.access_token_seconds",
                l.access_token_seconds,
                86_400,
            ),
            ("lifetimes.id_token_seconds", l.id_token_seconds, 86_400),
            (
                "lifetimes.refresh_token_seconds",
                l.refresh_token_seconds,
                365 * 86_400,
            ),
        ] {
            if !(60..=max).contains(&value) {
                bail!("{name} must be between 60 and {max}");
            }
        }
        if !(30..=600).contains(&l.approval_request_seconds) {
            bail!("lifetimes.approval_request_seconds must be between 30 and 600");
        }
        if !(60..=86_400).contains(&l.phone_sign_in_enable_seconds) {
            bail!("lifetimes.phone_sign_in_enable_seconds must be between 60 and 86400");
        }
        latchkey_domain::location::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for path in &self.passkeys.attestation_roots {
            let pem = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "passkeys.attestation_roots: {} cannot be read",
                    path.display()
                )
            })?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                bail!(
                    "passkeys.attestation_roots: {} is not a PEM certificate",
                    path.display()
                );
            }
        }
        for path in &self.geoip.databases {
            if !path.exists() {
                bail!("geoip.databases: {} does not exist", path.display());
            }
        }
        self.throttle.validate().map_err(anyhow::Error::msg)?;
        self.webhooks.validate().map_err(anyhow::Error::msg)?;
        self.limits.validate()?;
        self.web_push.validate()?;
        if let Some(token) = &self.metrics.token
            && token.len() < 16
        {
            bail!("metrics.token must be at least 16 characters");
        }
        self.database()?;
        if !(1..=1000).contains(&self.database.max_connections) {
            bail!("database.max_connections must be between 1 and 1000");
        }
        if !(1..=600).contains(&self.database.statement_timeout_seconds) {
            bail!("database.statement_timeout_seconds must be between 1 and 600");
        }
        if !(1..=60).contains(&self.database.acquire_timeout_seconds) {
            bail!("database.acquire_timeout_seconds must be between 1 and 60");
        }
        if !(1..=3650).contains(&self.log_retention_days) {
            bail!("log_retention_days must be between 1 and 3650");
        }
        Ok(())
    }

    /// The top-level settings' names, as environment variables may name them.
    fn setting_names() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| {
            format!(
                "listen {:?} is not an address such as 127.0.0.1:8080",
                self.listen
            )
        })
    }

    /// The database `database_url` chooses. The URL is never quoted in an error: it may hold a
    /// password.
    pub fn database(&self) -> anyhow::Result<Database<'_>> {
        let url = self.database_url.as_deref().map(str::trim).unwrap_or("");
        if url.is_empty()
            || url.eq_ignore_ascii_case("sqlite:")
            || url.eq_ignore_ascii_case("sqlite://")
        {
            return Ok(Database::Sqlite);
        }
        if latchkey_store::postgres::is_postgres_url(url) {
            if !latchkey_store::postgres::is_valid_url(url) {
                bail!(
                    "database_url is not a valid PostgreSQL URL (postgres://user:password@host:port/database)"
                );
            }
            return Ok(Database::Postgres(url));
        }
        if url.to_ascii_lowercase().starts_with("sqlite:") {
            bail!(
                "database_url: the SQLite database is always latchkey.db in data_dir; \
                 write \"sqlite:\" (or leave database_url out) and set data_dir instead"
            );
        }
        bail!("database_url must start with postgres:// (or be sqlite: or absent for SQLite)")
    }

    /// The pool settings of a PostgreSQL store.
    pub fn postgres_settings(&self) -> latchkey_store::PostgresSettings {
        latchkey_store::PostgresSettings {
            max_connections: self.database.max_connections,
            statement_timeout: std::time::Duration::from_secs(
                self.database.statement_timeout_seconds,
            ),
            acquire_timeout: std::time::Duration::from_secs(self.database.acquire_timeout_seconds),
        }
    }

    pub fn settings(&self) -> Settings {
        let mut settings = Settings::with_issuer(self.public_url.clone());
        settings.session_lifetime_seconds = self.lifetimes.session_seconds;
        settings.access_token_lifetime_seconds = self.lifetimes.access_token_seconds;
        settings.id_token_lifetime_seconds = self.lifetimes.id_token_seconds;
        settings.refresh_token_lifetime_seconds = self.lifetimes.refresh_token_seconds;
        settings.approval_lifetime_seconds = self.lifetimes.approval_request_seconds;
        settings.phone_sign_in_enable_window_seconds = self.lifetimes.phone_sign_in_enable_seconds;
        settings.throttle = self.throttle;
        // Checked by `validate`; a file that vanished since reads as empty, which the domain
        // reports as an unusable root (registration with attestation enforced is then refused).
        settings.passkey_attestation_roots = self
            .passkeys
            .attestation_roots
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect();
        settings
    }
}

/// `LATCHKEY_<SETTING>` variables (`__` between nested keys), and only those: a variable that
/// names no setting (the admin command's `LATCHKEY_URL`, say) is left to whoever reads it.
fn settings_from_environment() -> Env {
    let names = Config::setting_names();
    Env::prefixed("LATCHKEY_").split("__").filter(move |key| {
        let top = key.as_str().split('.').next().unwrap_or_default();
        names.iter().any(|name| name.eq_ignore_ascii_case(top))
    })
}

#[cfg(test)]
mod passkey_settings {
    use super::Config;

    #[test]
    fn passkey_attestation_roots_must_be_readable_pem_certificates_and_reach_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = Config::from_toml(&format!(
            "[passkeys]\nattestation_roots = [{:?}]",
            missing.display().to_string()
        ))
        .unwrap_err();
        assert!(format!("{error:#}").contains("passkeys.attestation_roots"));
        let not_pem = dir.path().join("root.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let error = Config::from_toml(&format!(
            "[passkeys]\nattestation_roots = [{:?}]",
            not_pem.display().to_string()
        ))
        .unwrap_err();
        assert!(format!("{error:#}").contains("not a PEM certificate"));
        let pem = dir.path().join("root.pem");
        let text = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::fs::write(&pem, text).unwrap();
        let config = Config::from_toml(&format!(
            "[passkeys]\nattestation_roots = [{:?}]",
            pem.display().to_string()
        ))
        .unwrap();
        assert_eq!(
            config.settings().passkey_attestation_roots,
            vec![text.to_string()]
        );
        assert!(
            Config::from_toml("")
                .unwrap()
                .settings()
                .passkey_attestation_roots
                .is_empty()
        );
    }
}

#[cfg(test)]
mod database_settings {
    use super::{Config, Database};

    #[test]
    fn database_url_chooses_sqlite_by_default_and_postgresql_by_url() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.database().unwrap(), Database::Sqlite);
        for sqlite in ["sqlite:", "sqlite://", "", "  "] {
            let config = Config::from_toml(&format!("database_url = {sqlite:?}")).unwrap();
            assert_eq!(config.database().unwrap(), Database::Sqlite, "{sqlite:?}");
        }
        let url = "postgres://latchkey@db.internal:5432/latchkey";
        let config = Config::from_toml(&format!("database_url = {url:?}")).unwrap();
        assert_eq!(config.database().unwrap(), Database::Postgres(url));
        assert_eq!(config.database().unwrap().kind(), "postgresql");
    }

    #[test]
    fn unusable_database_urls_are_refused_without_quoting_them() {
        let password = "pw-Mm44-hidden";
        for url in [
            format!("mysql://root:{password}@localhost/latchkey"),
            format!("postgres://root:{password}@[broken/latchkey"),
            format!("sqlite:///var/lib/{password}.db"),
        ] {
            let error = Config::from_toml(&format!("database_url = {url:?}")).unwrap_err();
            let text = format!("{error:#}");
            assert!(text.contains("database_url"), "{text}");
            assert!(!text.contains(password), "the URL is not quoted: {text}");
        }
    }

    #[test]
    fn the_pool_size_and_both_timeouts_are_settings_within_bounds() {
        let config = Config::from_toml(
            "database_url = \"postgres://l@h/db\"\n[database]\nmax_connections = 25\nstatement_timeout_seconds = 9\nacquire_timeout_seconds = 2",
        )
        .unwrap();
        let settings = config.postgres_settings();
        assert_eq!(settings.max_connections, 25);
        assert_eq!(
            settings.statement_timeout,
            std::time::Duration::from_secs(9)
        );
        assert_eq!(settings.acquire_timeout, std::time::Duration::from_secs(2));
        for bad in [
            "[database]\nmax_connections = 0",
            "[database]\nmax_connections = 5000",
            "[database]\nstatement_timeout_seconds = 0",
            "[database]\nstatement_timeout_seconds = 601",
            "[database]\nacquire_timeout_seconds = 0",
            "[database]\nacquire_timeout_seconds = 61",
            "[database]\nsize = 3",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod web_push_settings {
    use super::Config;

    #[test]
    fn web_push_settings_are_checked_and_the_subject_falls_back_to_the_public_url() {
        let config = Config::from_toml("").unwrap();
        assert!(config.web_push.enabled, "on by default");
        assert!(
            !config.web_push.allow_private_endpoints,
            "public push services only"
        );
        assert_eq!(
            config.web_push.subject("https://id.contoso.example/"),
            "https://id.contoso.example"
        );
        for bad in [
            "[web_push]\ntimeout_seconds = 0",
            "[web_push]\ntimeout_seconds = 61",
            "[web_push]\ncontact = \"admin@example.com\"",
            "[web_push]\ncontact = \"http://example.com\"",
            "[web_push]\ncontact = \"mailto:nobody\"",
            "[web_push]\nroot_certificates = [\"/nonexistent/ca.pem\"]",
            "[web_push]\nallow_private = true",
        ] {
            let error = Config::from_toml(bad).unwrap_err();
            assert!(
                format!("{error:#}").contains("web_push"),
                "{bad}: {error:#}"
            );
        }
        let config =
            Config::from_toml("[web_push]\ncontact = \"mailto:admin@example.com\"").unwrap();
        assert_eq!(
            config.web_push.subject("http://localhost:8080"),
            "mailto:admin@example.com"
        );
    }
}
