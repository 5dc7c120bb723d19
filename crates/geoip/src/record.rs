//! The part of an MMDB city record Latchkey reads, in either layout found in the wild:
//!
//! - nested, as in MaxMind GeoIP2/GeoLite2 City and DB-IP's own City Lite download:
//!   `city.names.en`, `subdivisions[0].names.en`, `country.names.en`, `country.iso_code`,
//!   `location.latitude/longitude`;
//! - flat, as in the DB-IP City Lite builds of the ip-location-db project (database type
//!   "city ipv4"/"city ipv6"): `city`, `state1`, `country_code`, `latitude`, `longitude`.
//!
//! One record type reads both, so a database's layout needs no configuration. Fields other
//! than these are skipped without being decoded.

use std::fmt;

use latchkey_domain::location::Location;
use maxminddb::geoip2::Names;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::country_names::country_name;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CityRecord<'a> {
    #[serde(borrow, default)]
    city: Place<'a>,
    /// Only the first (largest) subdivision is kept.
    #[serde(borrow, default)]
    subdivisions: FirstPlace<'a>,
    #[serde(borrow, default)]
    state1: Option<&'a str>,
    #[serde(borrow, default)]
    country: Place<'a>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(default)]
    location: Coordinates,
    #[serde(default)]
    latitude: Option<Degrees>,
    #[serde(default)]
    longitude: Option<Degrees>,
}

#[derive(Debug, Default, Deserialize)]
struct Coordinates {
    #[serde(default)]
    latitude: Option<Degrees>,
    #[serde(default)]
    longitude: Option<Degrees>,
}

/// A latitude or longitude. GeoIP2 stores doubles, the flat DB-IP files single-precision floats,
/// and the MMDB decoder does not widen one into the other on its own.
#[derive(Debug, Clone, Copy)]
struct Degrees(f64);

impl<'de> Deserialize<'de> for Degrees {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DegreesVisitor)
    }
}

struct DegreesVisitor;

impl Visitor<'_> for DegreesVisitor {
    type Value = Degrees;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number of degrees")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Degrees, E> {
        Ok(Degrees(v))
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Degrees, E> {
        Ok(Degrees(f64::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Degrees, E> {
        Ok(Degrees(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Degrees, E> {
        Ok(Degrees(v as f64))
    }
}

impl CityRecord<'_> {
    /// The record as a [`Location`]; `None` when it names no place at all.
    pub(crate) fn into_location(self) -> Option<Location> {
        let country_code = self
            .country
            .iso_code
            .or(self.country_code)
            .and_then(non_empty)
            .map(str::to_ascii_uppercase);
        let country = self
            .country
            .name
            .and_then(non_empty)
            .map(str::to_owned)
            .or_else(|| {
                country_code
                    .as_deref()
                    .and_then(country_name)
                    .map(str::to_owned)
            });
        let location = Location {
            city: owned(self.city.name),
            region: owned(self.subdivisions.0.name.or(self.state1)),
            country,
            country_code,
            latitude: coordinate(self.location.latitude.or(self.latitude)),
            longitude: coordinate(self.location.longitude.or(self.longitude)),
        };
        let names_a_place = location.city.is_some()
            || location.region.is_some()
            || location.country.is_some()
            || location.country_code.is_some();
        names_a_place.then_some(location)
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

fn owned(s: Option<&str>) -> Option<String> {
    s.and_then(non_empty).map(str::to_owned)
}

/// Rounded to four decimals (about 10 m): the databases are accurate to kilometres at best, and
/// some store single-precision floats whose widening to f64 prints as 151.20899963378906.
fn coordinate(value: Option<Degrees>) -> Option<f64> {
    value
        .map(|Degrees(v)| v)
        .filter(|v| v.is_finite())
        .map(|v| (v * 10_000.0).round() / 10_000.0)
}

/// A named place: either a bare string (flat layout) or a map with `names` and perhaps
/// `iso_code` (nested layout).
#[derive(Debug, Default)]
struct Place<'a> {
    name: Option<&'a str>,
    iso_code: Option<&'a str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Place<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PlaceVisitor)
    }
}

struct PlaceVisitor;

impl<'de> Visitor<'de> for PlaceVisitor {
    type Value = Place<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a place name or a map with names")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Place {
            name: Some(name),
            iso_code: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut place = Place::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "names" => place.name = preferred_name(&map.next_value::<Names<'de>>()?),
                "iso_code" => place.iso_code = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(place)
    }
}

/// English first; otherwise another language in Latin script before the rest, so a place
/// without an English name still reads in the alphabet of the rest of the line.
fn preferred_name<'a>(names: &Names<'a>) -> Option<&'a str> {
    names
        .english
        .or(names.german)
        .or(names.french)
        .or(names.spanish)
        .or(names.brazilian_portuguese)
        .or(names.russian)
        .or(names.japanese)
        .or(names.simplified_chinese)
}

/// The first element of a list of places, skipping the rest.
#[derive(Debug, Default)]
struct FirstPlace<'a>(Place<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstPlace<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(FirstPlaceVisitor)
    }
}

struct FirstPlaceVisitor;

impl<'de> Visitor<'de> for FirstPlaceVisitor {
    type Value = FirstPlace<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of places")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element::<Place<'de>>()?.unwrap_or_default();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FirstPlace(first))
    }
}
