//! Typed configuration: defaults that work with no file, a TOML file, then environment
//! variables (`LATCHKEY_` prefix, `__` between nested keys, e.g. `LATCHKEY_TLS__CERT`).
//!
//! Only variables that name a setting are read: the tools' own variables (`LATCHKEY_URL`,
//! `LATCHKEY_ADMIN_TOKEN`, `LATCHKEY_BIN`, `LATCHKEY_CONFIG`) share the prefix and must never
//! stop the server from starting. A list setting takes a comma-separated list
//! (`LATCHKEY_TRUSTED_PROXIES=127.0.0.1/32,10.0.0.0/8`) as well as a JSON array.
//!
//! `public_url`, when neither the file nor the environment sets it, is derived from `listen`,
//! so that changing the port takes one setting.

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
    /// Derived from `listen` when not set (see [`Config::public_url_derived`]).
    pub public_url: String,
    /// True when `public_url` was not set and was derived from `listen`.
    #[serde(skip)]
    pub public_url_derived: bool,
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
    /// Certificate-based sign-in's host (docs/certificates.md).
    #[serde(default)]
    pub certificate: CertificateConfig,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// MMDB city databases (GeoLite2/GeoIP2 City or DB-IP Lite City), looked up in order.
    /// Empty: the file `latchkey geoip update` keeps in the data directory, once it is there.
    pub databases: Vec<PathBuf>,
    /// Where `latchkey geoip update` downloads DB-IP Lite City from: the month's file name
    /// (`dbip-city-lite-YYYY-MM.mmdb.gz`) is appended to this URL.
    #[serde(default = "GeoIpConfig::default_download_url")]
    pub download_url: String,
    /// The most a download may be, compressed or not, in megabytes (1 to 4096).
    #[serde(default = "GeoIpConfig::default_max_download_megabytes")]
    pub max_download_megabytes: u64,
    /// The most a whole download may take, in seconds (1 to 3600).
    #[serde(default = "GeoIpConfig::default_download_timeout_seconds")]
    pub download_timeout_seconds: u64,
    /// How often a running server checks its database files for a change, in seconds
    /// (1 to 86400): an updated file is used without a restart.
    #[serde(default = "GeoIpConfig::default_reload_seconds")]
    pub reload_seconds: u64,
}

impl Default for GeoIpConfig {
    fn default() -> Self {
        GeoIpConfig {
            databases: Vec::new(),
            download_url: Self::default_download_url(),
            max_download_megabytes: Self::default_max_download_megabytes(),
            download_timeout_seconds: Self::default_download_timeout_seconds(),
            reload_seconds: Self::default_reload_seconds(),
        }
    }
}

impl GeoIpConfig {
    fn default_download_url() -> String {
        "https://download.db-ip.com/free/".into()
    }
    fn default_max_download_megabytes() -> u64 {
        512
    }
    fn default_download_timeout_seconds() -> u64 {
        600
    }
    fn default_reload_seconds() -> u64 {
        60
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = url::Url::parse(&self.download_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
        if url.is_none() {
            bail!("geoip.download_url must be an http(s) URL");
        }
        if !(1..=4096).contains(&self.max_download_megabytes) {
            bail!("geoip.max_download_megabytes must be between 1 and 4096");
        }
        if !(1..=3600).contains(&self.download_timeout_seconds) {
            bail!("geoip.download_timeout_seconds must be between 1 and 3600");
        }
        if !(1..=86_400).contains(&self.reload_seconds) {
            bail!("geoip.reload_seconds must be between 1 and 86400");
        }
        Ok(())
    }
}

/// The DB-IP Lite City file `latchkey geoip update` keeps in the data directory.
pub const GEOIP_UPDATE_FILE: &str = "dbip-city-lite.mmdb";

impl Config {
    /// Where `latchkey geoip update` puts the database, and where the server and the demo look
    /// when `geoip.databases` is empty.
    pub fn geoip_update_file(&self) -> PathBuf {
        self.data_dir.join(GEOIP_UPDATE_FILE)
    }
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
    /// Scheduled signing-key rotation: a key signs for this many days, then new keys take
    /// over (published ahead, docs/oidc.md "Signing-key rotation"); 0 rotates only on demand.
    #[serde(default)]
    pub signing_key_rotation_days: i64,
    /// How long a device code of the device authorization grant (and its user code) lives.
    #[serde(default = "default_device_code_seconds")]
    pub device_code_seconds: i64,
    /// The least number of seconds between a device's polls of the token endpoint.
    #[serde(default = "default_device_poll_interval_seconds")]
    pub device_poll_interval_seconds: i64,
}

fn default_device_code_seconds() -> i64 {
    latchkey_domain::service::DEFAULT_DEVICE_CODE_LIFETIME_SECONDS
}

fn default_device_poll_interval_seconds() -> i64 {
    latchkey_domain::service::DEFAULT_DEVICE_POLL_INTERVAL_SECONDS
}

impl Default for Config {
    fn default() -> Self {
        let settings = Settings::with_issuer("http://localhost:8080");
        Config {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://localhost:8080".into(),
            public_url_derived: false,
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
                signing_key_rotation_days: 0,
                device_code_seconds: settings.device_code_lifetime_seconds,
                device_poll_interval_seconds: settings.device_poll_interval_seconds,
            },
            trusted_proxies: vec![],
            geoip: GeoIpConfig::default(),
            log_retention_days: 30,
            throttle: Default::default(),
            webhooks: Default::default(),
            limits: Limits::default(),
            metrics: MetricsConfig::default(),
            passkeys: PasskeysConfig::default(),
            certificate: CertificateConfig::default(),
            web_push: WebPushConfig::default(),
        }
    }
}

impl Config {
    /// Defaults, then the file (if given), then the environment; `public_url` derived from
    /// `listen` if neither sets it.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                bail!("the config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let (environment, lists) = settings_from_environment();
        figment = figment.merge(environment);
        for (key, items) in lists {
            figment = figment.merge(Serialized::default(&key, items));
        }
        let public_url_set = figment.contains("public_url");
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(figment)
            .extract()
            .context("the configuration is not valid")?;
        if !public_url_set {
            config.derive_public_url()?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets `public_url` from `listen`: `http`, or `https` with TLS; `localhost` for an
    /// unspecified (`0.0.0.0`, `[::]`) or loopback address, the address itself otherwise.
    pub fn derive_public_url(&mut self) -> anyhow::Result<()> {
        let addr = self.listen_addr()?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let ip = addr.ip();
        let host = if ip.is_unspecified() || ip.is_loopback() {
            "localhost".to_string()
        } else if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        self.public_url = format!("{scheme}://{host}:{}", addr.port());
        // The URL crate drops a scheme's default port (https://localhost:443 → https://localhost).
        if let Ok(url) = url::Url::parse(&self.public_url) {
            self.public_url = url.as_str().trim_end_matches('/').to_string();
        }
        self.public_url_derived = true;
        Ok(())
    }

    /// Defaults, then `text` as the file, without the environment: what `load` makes of a
    /// file's contents alone, so they can be checked (and fuzzed) on their own.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let file = Figment::from(Toml::string(text));
        let public_url_set = file.contains("public_url");
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(file)
            .extract()
            .context("the configuration is not valid")?;
        if !public_url_set {
            config.derive_public_url()?;
        }
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
        if !(0..=3650).contains(&l.signing_key_rotation_days) {
            bail!("lifetimes.signing_key_rotation_days must be between 0 (off) and 3650");
        }
        if !(60..=86_400).contains(&l.phone_sign_in_enable_seconds) {
            bail!("lifetimes.phone_sign_in_enable_seconds must be between 60 and 86400");
        }
        if !(60..=3600).contains(&l.device_code_seconds) {
            bail!("lifetimes.device_code_seconds must be between 60 and 3600");
        }
        if !(1..=60).contains(&l.device_poll_interval_seconds) {
            bail!("lifetimes.device_poll_interval_seconds must be between 1 and 60");
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
        self.geoip.validate()?;
        self.throttle.validate().map_err(anyhow::Error::msg)?;
        self.webhooks.validate().map_err(anyhow::Error::msg)?;
        self.limits.validate()?;
        self.web_push.validate()?;
        self.certificate.validate(self.tls.as_ref())?;
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

    /// The dotted paths of every list setting (`trusted_proxies`, `geoip.databases`, …).
    fn list_settings() -> Vec<String> {
        let value = serde_json::to_value(Config::default()).unwrap_or_default();
        leaves(&value)
            .into_iter()
            .filter(|(_, value)| value.is_array())
            .map(|(path, _)| path)
            .collect()
    }

    /// Every effective setting as `(dotted path, value)`, for `validate-config`. Secrets are
    /// never shown: tokens and webhook secrets read "set" or "not set", URLs lose their password.
    pub fn effective_settings(&self) -> Vec<(String, String)> {
        const SECRETS: [&str; 2] = ["metrics.token", "webhooks.secret"];
        const URLS: [&str; 2] = ["database_url", "webhooks.risk_url"];
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut out: Vec<(String, String)> = leaves(&value)
            .into_iter()
            .map(|(path, value)| {
                let shown = match value {
                    _ if SECRETS.contains(&path.as_str()) => {
                        let shown = if value.is_null() { "not set" } else { "set" };
                        shown.to_string()
                    }
                    serde_json::Value::String(url) if URLS.contains(&path.as_str()) => {
                        without_password(url)
                    }
                    serde_json::Value::Null => "not set".to_string(),
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Array(items) if items.is_empty() => "none".to_string(),
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|item| match item {
                            serde_json::Value::String(text) => text.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                (path, shown)
            })
            .collect();
        if let (Some((_, shown)), Ok(database)) = (
            out.iter_mut().find(|(key, _)| key == "database_url"),
            self.database(),
        ) {
            *shown = format!("{shown} ({})", database.kind());
        }
        out
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
        settings.signing_key_rotation_seconds = self.lifetimes.signing_key_rotation_days * 86_400;
        settings.device_code_lifetime_seconds = self.lifetimes.device_code_seconds;
        settings.device_poll_interval_seconds = self.lifetimes.device_poll_interval_seconds;
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
/// List settings given as comma-separated text come back apart, as (key path, items), for the
/// caller to merge after the rest; a JSON array stays with the rest.
fn settings_from_environment() -> (Env, Vec<(String, Vec<String>)>) {
    let names = Config::setting_names();
    let settings = Env::prefixed("LATCHKEY_").split("__").filter(move |key| {
        let top = key.as_str().split('.').next().unwrap_or_default();
        names.iter().any(|name| name.eq_ignore_ascii_case(top))
    });
    let list_paths = Config::list_settings();
    let lists: Vec<(String, Vec<String>)> = settings
        .iter()
        .filter(|(key, value)| {
            list_paths.iter().any(|path| key.as_str() == path)
                && !value.trim_start().starts_with('[')
        })
        .map(|(key, value)| (key.as_str().to_string(), split_list(&value)))
        .collect();
    let separate: Vec<String> = lists.iter().map(|(key, _)| key.clone()).collect();
    let settings = settings.filter(move |key| {
        // `key` is the variable without its prefix, `__` not yet turned into dots.
        let path = key.as_str().replace("__", ".").to_ascii_lowercase();
        !separate.contains(&path)
    });
    (settings, lists)
}

/// `a, b,,c` → `["a", "b", "c"]`; an empty text is an empty list.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

/// Every setting that is not a table, as `(dotted path, value)`: arrays and scalars, in the
/// order serde writes them.
fn leaves(value: &serde_json::Value) -> Vec<(String, &serde_json::Value)> {
    fn walk<'a>(
        prefix: &str,
        value: &'a serde_json::Value,
        out: &mut Vec<(String, &'a serde_json::Value)>,
    ) {
        match value {
            serde_json::Value::Object(fields) => {
                for (name, value) in fields {
                    let path = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    walk(&path, value, out);
                }
            }
            _ => out.push((prefix.to_string(), value)),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// A URL with its password (if any) replaced by `***`; text that is no URL reads "set".
fn without_password(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "set".to_string(),
    }
}

#[cfg(test)]
mod tests;

mod certificate;
pub use certificate::{CertificateConfig, DEFAULT_PROXY_HEADER};
