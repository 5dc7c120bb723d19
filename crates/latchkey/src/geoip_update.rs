//! `latchkey geoip update`: downloads this month's DB-IP Lite City database (CC BY 4.0, no
//! account needed) into the data directory, checks it, and swaps it in; a running server reads
//! it within `geoip.reload_seconds`, without a restart.
//!
//! It must never leave a half-written or unusable file where the server looks: the download is
//! size-limited, unpacked beside the old file, flushed, opened and asked for a well-known
//! address, and only then renamed over the old one. Any failure leaves the old file in place.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use latchkey_domain::location::GeoIp;

use crate::config::Config;

/// An address every city database places (Google's public resolver).
const KNOWN_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(8, 8, 8, 8));

/// What an update did.
#[derive(Debug)]
pub struct Updated {
    /// Where the database now is.
    pub path: PathBuf,
    /// Where it came from.
    pub url: String,
    /// Its size, unpacked.
    pub bytes: u64,
}

/// Downloads, checks and swaps in the database (see the module's documentation).
pub async fn update(config: &Config) -> anyhow::Result<Updated> {
    let path = config.geoip_update_file();
    download_and_swap(config, &path).await.map_err(|error| {
        let _ = std::fs::remove_file(partial_file(config));
        error.context(kept_message(&path))
    })
}

/// Where the download is unpacked and checked: beside the database, so the rename is atomic.
fn partial_file(config: &Config) -> PathBuf {
    config
        .data_dir
        .join(format!(".{}.download", crate::config::GEOIP_UPDATE_FILE))
}

async fn download_and_swap(config: &Config, path: &Path) -> anyhow::Result<Updated> {
    let settings = &config.geoip;
    let limit = settings.max_download_megabytes * 1024 * 1024;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(settings.download_timeout_seconds))
        .build()?;
    let (url, compressed) = download_latest(&http, &settings.download_url, limit).await?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let partial = partial_file(config);
    let bytes = {
        let path = path.to_path_buf();
        let url = url.clone();
        // Tens of megabytes of unpacking, writing and reading back: blocking work.
        tokio::task::spawn_blocking(move || {
            let bytes = unpack(&compressed, &partial, limit)
                .with_context(|| format!("the download from {url}"))?;
            check(&partial).with_context(|| format!("the download from {url}"))?;
            std::fs::rename(&partial, &path)
                .with_context(|| format!("moving the database to {}", path.display()))?;
            sync_folder(&path);
            Ok::<u64, anyhow::Error>(bytes)
        })
        .await
        .context("the unpacking task failed")??
    };
    Ok(Updated {
        path: path.to_path_buf(),
        url,
        bytes,
    })
}

fn kept_message(path: &Path) -> String {
    if path.exists() {
        format!(
            "the GeoIP database was not updated; {} is unchanged",
            path.display()
        )
    } else {
        "the GeoIP database was not updated".to_string()
    }
}

/// This month's file, or last month's while this month's is not yet published.
async fn download_latest(
    http: &reqwest::Client,
    base: &str,
    limit: u64,
) -> anyhow::Result<(String, Vec<u8>)> {
    let today = time::OffsetDateTime::now_utc().date();
    let (year, month) = (today.year(), u8::from(today.month()));
    let last_month = if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    let mut not_found = Vec::new();
    for (year, month) in [(year, month), last_month] {
        let url = format!(
            "{}/dbip-city-lite-{year:04}-{month:02}.mmdb.gz",
            base.trim_end_matches('/')
        );
        match download(http, &url, limit).await? {
            Some(body) => return Ok((url, body)),
            None => not_found.push(url),
        }
    }
    bail!(
        "no DB-IP Lite City database at {} (geoip.download_url)",
        not_found.join(" or ")
    )
}

/// The body at `url`, refused past `limit` bytes; `None` on 404.
async fn download(
    http: &reqwest::Client,
    url: &str,
    limit: u64,
) -> anyhow::Result<Option<Vec<u8>>> {
    let too_large = || {
        anyhow::anyhow!(
            "the download from {url} is larger than geoip.max_download_megabytes ({} MB)",
            limit / (1024 * 1024)
        )
    };
    let mut response = http.get(url).send().await.map_err(|e| failed(url, e))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        bail!(
            "downloading {url} failed: the server answered {}",
            response.status()
        );
    }
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(url, e))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn failed(url: &str, error: reqwest::Error) -> anyhow::Error {
    if error.is_timeout() {
        anyhow::anyhow!(
            "downloading {url} took longer than geoip.download_timeout_seconds allows; try again later"
        )
    } else {
        // The error's source chain names the cause (refused, reset, cut short).
        anyhow::Error::new(error).context(format!("downloading {url} failed"))
    }
}

/// Unpacks the gzip `compressed` into `partial`, refusing more than `limit` bytes, and flushes
/// it to disk. Returns the unpacked size.
fn unpack(compressed: &[u8], partial: &Path, limit: u64) -> anyhow::Result<u64> {
    let mut file =
        std::fs::File::create(partial).with_context(|| format!("writing {}", partial.display()))?;
    let mut unpacked = flate2::read::GzDecoder::new(compressed).take(limit + 1);
    let mut buffer = vec![0; 1 << 16];
    let mut written = 0u64;
    loop {
        let n = match unpacked.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) => bail!("it is not a complete gzip file ({error})"),
        };
        written += n as u64;
        if written > limit {
            bail!(
                "unpacked, it is larger than geoip.max_download_megabytes ({} MB)",
                limit / (1024 * 1024)
            );
        }
        file.write_all(&buffer[..n])
            .with_context(|| format!("writing {}", partial.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("flushing {}", partial.display()))?;
    Ok(written)
}

/// Opens the unpacked file as the server will and asks it for a well-known address.
fn check(partial: &Path) -> anyhow::Result<()> {
    let database =
        latchkey_geoip::MmdbGeoIp::open(&[partial.to_path_buf()]).map_err(anyhow::Error::msg)?;
    if database.locate(KNOWN_ADDRESS).is_none() {
        bail!("it does not place {KNOWN_ADDRESS}, so it is not a usable city database");
    }
    Ok(())
}

/// Flushes the folder holding `path`, so that the rename survives a power loss.
fn sync_folder(path: &Path) {
    #[cfg(unix)]
    if let Some(folder) = path.parent()
        && let Ok(dir) = std::fs::File::open(folder)
    {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}
