//! Where a sign-in came from: the client's IP address and the place a GeoIP database puts it.
//!
//! Behind a reverse proxy the TCP peer is the proxy, and the client's address arrives in
//! `X-Forwarded-For`. That header is written by whoever sent the request, so it is believed only
//! as far as it was appended by proxies the operator listed in `trusted_proxies`; a client that
//! connects directly cannot choose the address recorded for it. Looking an address up is a port
//! ([`GeoIp`]) so the domain never opens a database file itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// An approximate place for an IP address, as precise as the database knows it.
///
/// Serialised in the shape of Microsoft Graph's `signIn.location`: `city`, `state`,
/// `countryOrRegion` (the two-letter ISO 3166 code, as in Graph) and
/// `geoCoordinates { latitude, longitude }`. The country's name has no Graph property and is
/// carried as `countryName`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "SignInLocation", from = "SignInLocation")]
pub struct Location {
    pub city: Option<String>,
    /// The first-level subdivision: state, province, region.
    pub region: Option<String>,
    /// The country's English name.
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. "AU".
    pub country_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Location {
    /// "Sydney, New South Wales, Australia"; missing parts are skipped, a part equal to the one
    /// before it is not repeated ("Singapore, Singapore" reads "Singapore"), and the country code
    /// stands in for a missing country name. `None` when nothing is known.
    pub fn display(&self) -> Option<String> {
        let country = self.country.as_deref().or(self.country_code.as_deref());
        let mut parts: Vec<&str> = Vec::with_capacity(3);
        for part in [self.city.as_deref(), self.region.as_deref(), country]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if parts.last() != Some(&part) {
                parts.push(part);
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The wire shape of [`Location`] (Graph's `signInLocation`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInLocation {
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    country_or_region: Option<String>,
    #[serde(default)]
    country_name: Option<String>,
    #[serde(default)]
    geo_coordinates: Option<GeoCoordinates>,
}

#[derive(Serialize, Deserialize)]
struct GeoCoordinates {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

impl From<Location> for SignInLocation {
    fn from(l: Location) -> Self {
        let geo_coordinates =
            (l.latitude.is_some() || l.longitude.is_some()).then_some(GeoCoordinates {
                latitude: l.latitude,
                longitude: l.longitude,
            });
        SignInLocation {
            city: l.city,
            state: l.region,
            country_or_region: l.country_code,
            country_name: l.country,
            geo_coordinates,
        }
    }
}

impl From<SignInLocation> for Location {
    fn from(w: SignInLocation) -> Self {
        let (latitude, longitude) = w
            .geo_coordinates
            .map_or((None, None), |g| (g.latitude, g.longitude));
        Location {
            city: w.city,
            region: w.state,
            country: w.country_name,
            country_code: w.country_or_region,
            latitude,
            longitude,
        }
    }
}

/// Loopback, private (RFC 1918, unique-local), link-local, shared (CGNAT) and unspecified
/// addresses: no database can place them, and a notification says "Private network".
pub fn is_private_network(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_network(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

/// Looks an IP address up in a GeoIP database.
///
/// Implementations answer `None` for addresses they cannot place (private, loopback, unknown)
/// and never fail a sign-in: a missing location is shown as unknown, not as an error.
pub trait GeoIp: Send + Sync {
    fn locate(&self, ip: IpAddr) -> Option<Location>;
}

/// No GeoIP database configured: every location is unknown.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGeoIp;

impl GeoIp for NoGeoIp {
    fn locate(&self, _ip: IpAddr) -> Option<Location> {
        None
    }
}

/// The reverse proxies whose `X-Forwarded-For` entries are believed: a list of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Trust nobody: the TCP peer is always the client.
    pub fn none() -> Self {
        TrustedProxies(Vec::new())
    }

    /// Parses "10.0.0.0/8", "fd00::/8", "::1/128" or a plain address (a single host).
    ///
    /// A network with bits set after its prefix ("10.1.2.3/8") is refused rather than silently
    /// widened or narrowed: it is usually a typo, and trusting the wrong range lets clients
    /// choose their own recorded address.
    pub fn parse(entries: &[String]) -> Result<Self, DomainError> {
        entries
            .iter()
            .map(|entry| parse_network(entry.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` lies in one of the trusted networks. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.0.0.1`) count as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0
            .iter()
            .any(|&(network, prefix)| in_network(ip, network, prefix))
    }
}

fn parse_network(entry: &str) -> Result<(IpAddr, u8), DomainError> {
    let refuse = |why: &str| {
        DomainError::invalid(
            "trusted_proxies",
            format!(
                "\"{entry}\" {why}; write an address (10.0.0.1, ::1) or a network (10.0.0.0/8, fd00::/8)"
            ),
        )
    };
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry, None),
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| refuse("is not an IP address"))?;
    let max = max_prefix(address);
    let prefix = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
            .parse::<u8>()
            .ok()
            .filter(|&p| p <= max)
            .ok_or_else(|| refuse(&format!("has a prefix length above {max}")))?,
        Some(_) => return Err(refuse("has a prefix length that is not a number")),
    };
    if mask(address, prefix) != address {
        return Err(refuse(&format!(
            "has address bits set after the prefix (did you mean {}/{prefix}?)",
            mask(address, prefix)
        )));
    }
    // "::ffff:10.0.0.0/104" is an IPv4 network written as IPv6; store it as IPv4 so it matches
    // the canonical addresses `contains` compares against.
    if let IpAddr::V6(v6) = address
        && let Some(v4) = v6.to_ipv4_mapped()
        && prefix >= 96
    {
        return Ok((IpAddr::V4(v4), prefix - 96));
    }
    Ok((address, prefix))
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with every bit after the first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            mask(ip, prefix) == network
        }
        _ => false,
    }
}

/// The client's address for logs, throttles and location.
///
/// `peer` is the TCP peer; `forwarded_for` holds every `X-Forwarded-For` header value in the
/// order received. An untrusted peer is the client, whatever headers it sent. A trusted peer
/// is a proxy: its header is read from the right (the entry it appended itself) leftwards,
/// passing over further trusted proxies, and the first address that is not a trusted proxy is
/// the client. Everything left of that is the client's own claim and is ignored. A malformed
/// entry ends the walk at the last trusted hop, because nothing beyond it can be believed.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let entries = forwarded_for
        .iter()
        .flat_map(|header| header.split(','))
        .rev();
    for entry in entries {
        let Some(hop) = parse_forwarded_entry(entry) else {
            return client;
        };
        client = hop;
        if !trusted.contains(hop) {
            return hop;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, tolerating the `1.2.3.4:5678` and `[2001:db8::1]:443`
/// forms some proxies write. `None` for anything else ("unknown", empty, obfuscated names).
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn display_joins_known_parts() {
        let sydney = Location {
            city: Some("Sydney".into()),
            region: Some("New South Wales".into()),
            country: Some("Australia".into()),
            country_code: Some("AU".into()),
            latitude: Some(-33.87),
            longitude: Some(151.21),
        };
        assert_eq!(
            sydney.display().as_deref(),
            Some("Sydney, New South Wales, Australia")
        );
        let country_only = Location {
            country: Some("Germany".into()),
            ..Location::default()
        };
        assert_eq!(country_only.display().as_deref(), Some("Germany"));
        let code_only = Location {
            city: Some("Berlin".into()),
            region: Some("Berlin".into()),
            country_code: Some("DE".into()),
            ..Location::default()
        };
        assert_eq!(code_only.display().as_deref(), Some("Berlin, DE"));
        let blank = Location {
            city: Some("  ".into()),
            ..Location::default()
        };
        assert_eq!(blank.display(), None);
        assert_eq!(Location::default().display(), None);
    }

    #[test]
    fn serialises_in_graph_shape() {
        let location = Location {
            city: Some("Redmond".into()),
            region: Some("Washington".into()),
            country: Some("United States".into()),
            country_code: Some("US".into()),
            latitude: Some(47.68),
            longitude: Some(-122.12),
        };
        let json = serde_json::to_value(&location).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "city": "Redmond",
                "state": "Washington",
                "countryOrRegion": "US",
                "countryName": "United States",
                "geoCoordinates": { "latitude": 47.68, "longitude": -122.12 },
            })
        );
        let back: Location = serde_json::from_value(json).unwrap();
        assert_eq!(back, location);
        // Graph documents also carry altitude, and may leave out anything unknown.
        let sparse: Location = serde_json::from_value(serde_json::json!({
            "countryOrRegion": "NZ",
            "geoCoordinates": { "altitude": null, "latitude": -41.3 },
        }))
        .unwrap();
        assert_eq!(sparse.country_code.as_deref(), Some("NZ"));
        assert_eq!(sparse.latitude, Some(-41.3));
        assert_eq!(sparse.longitude, None);
        assert_eq!(
            serde_json::to_value(Location::default()).unwrap()["geoCoordinates"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn no_geoip_knows_nothing() {
        assert_eq!(NoGeoIp.locate(ip("1.1.1.1")), None);
    }

    #[test]
    fn parses_networks_and_single_addresses() {
        let trusted = proxies(&[
            "10.0.0.0/8",
            "::1/128",
            "192.0.2.7",
            " fd00::/8 ",
            "0.0.0.0/0",
        ]);
        assert_eq!(
            trusted.0,
            vec![
                (ip("10.0.0.0"), 8),
                (ip("::1"), 128),
                (ip("192.0.2.7"), 32),
                (ip("fd00::"), 8),
                (ip("0.0.0.0"), 0),
            ]
        );
        assert!(proxies(&[]).is_empty());
        // An IPv4 network written IPv4-mapped is kept as IPv4.
        assert_eq!(
            proxies(&["::ffff:10.0.0.0/104"]).0,
            vec![(ip("10.0.0.0"), 8)]
        );
    }

    #[test]
    fn refuses_malformed_networks() {
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/8/8",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0/8",
            "proxy.internal",
            "10.1.2.3/8",
        ] {
            let err = TrustedProxies::parse(&[bad.to_string()]).unwrap_err();
            assert_eq!(err.code(), "invalid_input", "{bad}");
            let message = err.to_string();
            assert!(message.starts_with("trusted_proxies: "), "{message}");
            assert!(message.contains(&format!("\"{bad}\"")), "{message}");
        }
        let err = TrustedProxies::parse(&["10.1.2.3/8".to_string()]).unwrap_err();
        assert!(
            err.to_string().contains("did you mean 10.0.0.0/8?"),
            "{err}"
        );
    }

    #[test]
    fn contains_matches_networks_of_the_same_family() {
        let trusted = proxies(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]);
        assert!(trusted.contains(ip("10.255.0.1")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(trusted.contains(ip("192.0.2.7")));
        assert!(!trusted.contains(ip("192.0.2.8")));
        assert!(trusted.contains(ip("2001:db8:ffff::1")));
        assert!(!trusted.contains(ip("2001:db9::1")));
        assert!(trusted.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped");
        assert!(
            !trusted.contains(ip("::a00:1")),
            "IPv4-compatible is not IPv4"
        );
        assert!(proxies(&["0.0.0.0/0"]).contains(ip("203.0.113.9")));
        assert!(!proxies(&["0.0.0.0/0"]).contains(ip("2001:db8::1")));
        assert!(!TrustedProxies::none().contains(ip("127.0.0.1")));
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let attacker = ip("203.0.113.66");
        assert_eq!(client_ip(attacker, &["198.51.100.1"], &trusted), attacker);
        assert_eq!(client_ip(attacker, &["10.0.0.1"], &trusted), attacker);
        assert_eq!(client_ip(attacker, &[], &trusted), attacker);
        // With no trusted proxies configured, headers are never read.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["198.51.100.1"], &TrustedProxies::none()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_client_behind_a_trusted_proxy_cannot_prepend_a_fake_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real address.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["1.2.3.4, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // The same, with the client's header and the proxy's kept as separate header lines.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["1.2.3.4", "198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // Claiming a trusted address itself gets the client nowhere: the walk stops at the
        // untrusted address the proxy appended, before reaching the claim.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["10.9.9.9, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn walks_through_several_trusted_proxies() {
        let trusted = proxies(&["10.0.0.0/8", "172.16.0.0/12"]);
        // client -> CDN edge (172.16.5.5) -> load balancer (10.0.0.3) -> us
        assert_eq!(
            client_ip(
                ip("10.0.0.3"),
                &["6.6.6.6, 198.51.100.7, 172.16.5.5"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Every hop trusted: the leftmost one is the best we know.
        assert_eq!(
            client_ip(ip("10.0.0.3"), &["10.1.1.1, 172.16.5.5"], &trusted),
            ip("10.1.1.1")
        );
        // A trusted peer that sent no header is itself the client.
        assert_eq!(client_ip(ip("10.0.0.3"), &[], &trusted), ip("10.0.0.3"));
    }

    #[test]
    fn malformed_entries_stop_at_the_last_trusted_hop() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(client_ip(peer, &["garbage"], &trusted), peer);
        assert_eq!(client_ip(peer, &[""], &trusted), peer);
        assert_eq!(client_ip(peer, &["198.51.100.7,"], &trusted), peer);
        assert_eq!(client_ip(peer, &["unknown"], &trusted), peer);
        assert_eq!(
            client_ip(peer, &["198.51.100.7, 10.0.0.1 x"], &trusted),
            peer
        );
        // The malformed entry sits left of a trusted hop: that hop is the answer.
        assert_eq!(
            client_ip(peer, &["198.51.100.7, nonsense, 10.4.4.4"], &trusted),
            ip("10.4.4.4")
        );
        // Malformed entries left of the client do not matter.
        assert_eq!(
            client_ip(peer, &["nonsense, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // Ports, as some proxies write them, are tolerated.
        assert_eq!(
            client_ip(peer, &["198.51.100.7:50123"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, &["[2001:db8::7]:443"], &trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            client_ip(peer, &["[2001:db8::7]"], &trusted),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn handles_ipv6_and_ipv4_mapped_addresses() {
        let trusted = proxies(&["::1/128", "fd00::/8", "10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("::1"), &["2001:db8::42"], &trusted),
            ip("2001:db8::42")
        );
        assert_eq!(
            client_ip(ip("fd00::5"), &["2001:db8::42, fd12::1"], &trusted),
            ip("2001:db8::42")
        );
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &["::ffff:198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.5"), &["198.51.100.7"], &trusted),
            ip("203.0.113.5")
        );
    }
}
