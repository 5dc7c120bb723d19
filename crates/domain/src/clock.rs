//! Time as the domain sees it: whole seconds since the Unix epoch, read through a port so that
//! tests can move time forward without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds))
    }

    /// RFC 3339 in UTC, for APIs and logs.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        )
    }
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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

/// Days since the epoch for a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A point in time as people type it in filters: RFC 3339 in UTC (`2026-11-29T10:00:00Z`, or a
/// bare date), Unix seconds, or a span back from `now` (`15m`, `1h`, `7d`).
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
    let (date, time) = match value.split_once(['T', ' ']) {
        Some((date, time)) => (date, time.strip_suffix('Z').unwrap_or(time)),
        None => (value, "00:00:00"),
    };
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) =
        (date_parts.next(), date_parts.next(), date_parts.next())
    else {
        return None;
    };
    let mut time_parts = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let h = time_parts.next().flatten()?;
    // A part that is present must parse: "10:00:00+02:00" is refused, not read as 10:00Z.
    let min = time_parts.next().map_or(Some(0), |p| p)?;
    let sec = time_parts.next().map_or(Some(0), |p| p)?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // Impossible dates (2026-02-30) are refused rather than rolled over into the next month.
    let valid = (1..=12).contains(&m)
        && (1..=month_days).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&min)
        && (0..61).contains(&sec);
    valid.then(|| {
        Timestamp(days_from_civil(y, m as u32, d as u32) * 86_400 + h * 3600 + min * 60 + sec)
    })
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
            "2026-11-29T10:00:00+02:00",
            "2026-02-30",
            "2026-04-31",
        ] {
            assert_eq!(parse_time(bad, now), None, "{bad}");
        }
        let round_trip = Timestamp(1_800_000_123);
        assert_eq!(parse_time(&round_trip.to_rfc3339(), now), Some(round_trip));
    }
}
