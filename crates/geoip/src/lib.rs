//! Latchkey's GeoIP edge: answers the domain's [`GeoIp`] port from MaxMind DB (MMDB) city
//! databases — MaxMind GeoIP2/GeoLite2 City or DB-IP City Lite, in either of the two record
//! layouts those come in (see `record.rs`).
//!
//! Databases are read whole into memory (about 65–70 MB per DB-IP file) rather than
//! memory-mapped: a mapped file that is rewritten in place is undefined behaviour, and operators
//! update these files with cron jobs we do not control. [`MmdbGeoIp::reload_if_changed`] swaps in
//! a file whose modification time or size changed; call it from a periodic task. Nothing here is
//! global: build one `MmdbGeoIp` in `main` and share it.
//!
//! DB-IP Lite is licensed CC BY 4.0: pages that show its results must link to
//! <https://db-ip.com> ("IP Geolocation by DB-IP").

mod country_names;
mod record;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use latchkey_domain::location::{GeoIp, Location};
use maxminddb::{MaxMindDbError, Reader};

use record::CityRecord;

/// One or more MMDB city databases, asked in the order given; the first that places an address
/// wins. Typical setups list one file, or DB-IP's separate IPv4 and IPv6 files.
#[derive(Debug)]
pub struct MmdbGeoIp {
    databases: RwLock<Vec<Database>>,
}

#[derive(Debug)]
struct Database {
    path: PathBuf,
    /// What the file looked like when it was read; `None` if the file system would not say.
    stamp: Option<FileStamp>,
    /// `None` while a file that may be missing is missing.
    reader: Option<Reader<Vec<u8>>>,
    /// A missing file is no error: it is read when it appears.
    may_be_missing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: SystemTime,
    len: u64,
}

impl MmdbGeoIp {
    /// Opens every file in `paths`. Fails on the first file that cannot be read or is not a
    /// MaxMind DB, naming it. An empty list is allowed and locates nothing.
    pub fn open(paths: &[PathBuf]) -> Result<Self, String> {
        let databases = paths
            .iter()
            .map(|path| Database::open(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MmdbGeoIp {
            databases: RwLock::new(databases),
        })
    }

    /// Like [`MmdbGeoIp::open`], for files that may not exist yet, such as the one
    /// `latchkey geoip update` writes into the data directory: a missing file locates nothing,
    /// and [`MmdbGeoIp::reload_if_changed`] reads it once it appears. A file that exists must
    /// still be a MaxMind DB.
    pub fn open_allowing_missing(paths: &[PathBuf]) -> Result<Self, String> {
        let databases = paths
            .iter()
            .map(|path| match file_stamp(path) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Database {
                    path: path.clone(),
                    stamp: None,
                    reader: None,
                    may_be_missing: true,
                }),
                _ => Database::open(path).map(|db| Database {
                    may_be_missing: true,
                    ..db
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MmdbGeoIp {
            databases: RwLock::new(databases),
        })
    }

    /// Whether any database has been read (a file that may be missing may not have been).
    pub fn is_loaded(&self) -> bool {
        self.read().iter().any(|db| db.reader.is_some())
    }

    /// The database files, in lookup order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.read().iter().map(|db| db.path.clone()).collect()
    }

    /// Re-reads every database whose file changed (modification time or size) since it was
    /// read, and returns how many were swapped in. Lookups keep running on the old copy while a
    /// file is read; a file that cannot be read now (half-written, deleted, corrupt) keeps its
    /// old copy and is reported in the error, and is tried again on the next call.
    ///
    /// Replace files by writing a new file and renaming it over the old one, so this never reads
    /// a half-written file that happens to parse. A changed file is read on the calling thread
    /// (tens of megabytes, a fraction of a second): from async code, call it in `spawn_blocking`.
    pub fn reload_if_changed(&self) -> Result<usize, String> {
        let mut errors = Vec::new();
        let changed: Vec<(usize, PathBuf)> = self
            .read()
            .iter()
            .enumerate()
            .filter_map(|(index, db)| match file_stamp(&db.path) {
                Ok(stamp) if Some(stamp) == db.stamp => None,
                Ok(_) => Some((index, db.path.clone())),
                Err(error)
                    if db.may_be_missing && error.kind() == std::io::ErrorKind::NotFound =>
                {
                    None
                }
                Err(error) => {
                    errors.push(format!(
                        "GeoIP database {} can no longer be read ({error}); still using the copy read earlier",
                        db.path.display()
                    ));
                    None
                }
            })
            .collect();

        let mut fresh = Vec::new();
        for (index, path) in changed {
            match Database::open(&path) {
                Ok(db) => fresh.push((index, db)),
                Err(error) if self.read()[index].reader.is_none() => errors.push(error),
                Err(error) => errors.push(format!("{error}; still using the copy read earlier")),
            }
        }

        let reloaded = fresh.len();
        if reloaded > 0 {
            let mut databases = self
                .databases
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for (index, db) in fresh {
                tracing::info!(path = %db.path.display(), "reloaded changed GeoIP database");
                databases[index] = Database {
                    may_be_missing: databases[index].may_be_missing,
                    ..db
                };
            }
        }
        if errors.is_empty() {
            Ok(reloaded)
        } else {
            Err(errors.join("; "))
        }
    }

    /// A panic elsewhere cannot leave the list half-updated (it is only ever replaced element by
    /// element), so a poisoned lock is still safe to read.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Database>> {
        self.databases
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl GeoIp for MmdbGeoIp {
    fn locate(&self, ip: IpAddr) -> Option<Location> {
        let ip = ip.to_canonical();
        if !is_globally_routable(ip) {
            return None;
        }
        self.read().iter().find_map(|db| db.locate(ip))
    }
}

impl Database {
    fn open(path: &Path) -> Result<Database, String> {
        // Stamp before reading: if the file changes while it is read, the next reload sees a
        // newer stamp and reads it again.
        let stamp = file_stamp(path).ok();
        let reader = Reader::open_readfile(path).map_err(|error| match error {
            MaxMindDbError::Io(error) => {
                format!("could not read GeoIP database {}: {error}", path.display())
            }
            error => format!(
                "GeoIP database {} is not a usable MaxMind DB (.mmdb) file: {error}",
                path.display()
            ),
        })?;
        Ok(Database {
            path: path.to_owned(),
            stamp,
            reader: Some(reader),
            may_be_missing: false,
        })
    }

    fn locate(&self, ip: IpAddr) -> Option<Location> {
        let reader = self.reader.as_ref()?;
        if ip.is_ipv6() && reader.metadata().ip_version == 4 {
            return None;
        }
        let record = reader
            .lookup(ip)
            .and_then(|found| found.decode::<CityRecord>());
        match record {
            Ok(record) => record?.into_location(),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %ip, %error, "GeoIP lookup failed");
                None
            }
        }
    }
}

fn file_stamp(path: &Path) -> std::io::Result<FileStamp> {
    let metadata = std::fs::metadata(path)?;
    Ok(FileStamp {
        modified: metadata.modified()?,
        len: metadata.len(),
    })
}

/// Whether an address can be placed on a map at all. Private, loopback, link-local, shared
/// (carrier-grade NAT), documentation, multicast and reserved ranges cannot, and are not looked
/// up. (`IpAddr::is_global` would say this but is not stable.)
fn is_globally_routable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || (a == 100 && (b & 0xc0) == 64) // 100.64.0.0/10 shared address space
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24 protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || a >= 240) // reserved
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (first & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (first & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // 2001:db8::/32 documentation
}

#[cfg(test)]
mod tests;
