//! Time as the domain sees it: whole seconds since the Unix epoch, read through a port so that
//! tests can move time forward without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// Seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds))
    }

    /// RFC 3339 in UTC, for APIs and logs. A timestamp beyond the years 0000–9999, which RFC
    /// 3339 cannot write, is written as the nearest one it can.
    pub fn to_rfc3339(self) -> String {
        let utc = OffsetDateTime::from_unix_timestamp(self.0).unwrap_or(if self.0 < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX.assume_utc()
        });
        let utc = utc.replace_nanosecond(0).unwrap_or(utc);
        utc.format(&Rfc3339)
            .unwrap_or_else(|_| "9999-12-31T23:59:59Z".to_string())
    }

    /// Reads an RFC 3339 time with any offset (`2026-11-29T10:00:00+02:00` is 08:00 UTC);
    /// fractions of a second are dropped.
    pub fn from_rfc3339(text: &str) -> Option<Timestamp> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|t| Timestamp(t.unix_timestamp()))
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_secs() as i64)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_in_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp(1_795_910_400).to_rfc3339(),
            "2026-11-29T00:00:00Z"
        );
    }
}

/// A point in time as people type it in filters: RFC 3339 with any offset
/// (`2026-11-29T10:00:00Z`, `2026-11-29T10:00:00+02:00`), a date and time without one (read as
/// UTC; `T` or a space between, seconds optional), a bare date, Unix seconds, or a span back
/// from `now` (`15m`, `1h`, `7d`).
pub fn parse_time(input: &str, now: Timestamp) -> Option<Timestamp> {
    let value = input.trim();
    if value.is_empty() || value.len() > 32 {
        return None;
    }
    if let Some(unit) = value
        .chars()
        .last()
        .filter(|c| matches!(c, 's' | 'm' | 'h' | 'd' | 'w'))
        && let Ok(count) = value[..value.len() - 1].parse::<i64>()
        && (0..=10 * 365 * 86_400).contains(&count)
    {
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 7 * 86_400,
        };
        return Some(now.plus_seconds(-count * seconds));
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Timestamp);
    }
    if let Some(t) = Timestamp::from_rfc3339(value) {
        return Some(t);
    }
    // Without an offset: UTC. Impossible dates (2026-02-30) are refused, not rolled over.
    let (date, time) = match value.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time.strip_suffix(['Z', 'z']).unwrap_or(time))),
        None => (value, None),
    };
    let date = Date::parse(date, format_description!("[year]-[month]-[day]")).ok()?;
    let time = match time {
        None => Time::MIDNIGHT,
        Some(time) => Time::parse(time, format_description!("[hour]:[minute]:[second]"))
            .or_else(|_| Time::parse(time, format_description!("[hour]:[minute]")))
            .ok()?,
    };
    Some(Timestamp(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    ))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_type() {
        let now = Timestamp(1_795_910_400);
        assert_eq!(
            parse_time("2026-11-29T00:00:00Z", now),
            Some(Timestamp(1_795_910_400))
        );
        assert_eq!(
            parse_time("2026-11-29", now),
            Some(Timestamp(1_795_910_400))
        );
        assert_eq!(parse_time("1h", now), Some(Timestamp(1_795_910_400 - 3600)));
        assert_eq!(
            parse_time("7d", now),
            Some(Timestamp(1_795_910_400 - 7 * 86_400))
        );
        assert_eq!(
            parse_time("1795910400", now),
            Some(Timestamp(1_795_910_400))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "-1h",
            "1y",
            "2026-11-29T25:00:00Z",
            "2026-11-29T10:00:00+25:00",
            "2026-02-30",
            "2026-04-31",
        ] {
            assert_eq!(parse_time(bad, now), None, "{bad}");
        }
        // An offset is honoured, not dropped: 10:00 at +02:00 is 08:00 UTC.
        assert_eq!(
            parse_time("2026-11-29T10:00:00+02:00", now),
            Some(Timestamp(1_795_910_400 + 8 * 3600))
        );
        assert_eq!(
            parse_time("2026-11-29 10:00", now),
            Some(Timestamp(1_795_910_400 + 10 * 3600))
        );
        let round_trip = Timestamp(1_800_000_123);
        assert_eq!(parse_time(&round_trip.to_rfc3339(), now), Some(round_trip));
    }
}
