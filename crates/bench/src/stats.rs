//! Order statistics of one metric's samples.

use std::time::Duration;

pub struct Summary {
    pub count: usize,
    pub median: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let count = sorted.len();
        // Nearest rank: with 200 samples p99 is the second-largest, not an interpolation
        // between samples that were never observed.
        let rank = |p: f64| sorted[((p * count as f64).ceil() as usize).clamp(1, count) - 1];
        (count > 0).then(|| Summary {
            count,
            median: rank(0.5),
            p95: rank(0.95),
            p99: rank(0.99),
            max: sorted[count - 1],
        })
    }

    /// Milliseconds to the microsecond: finer digits are below what the clock can tell apart
    /// on a loaded machine.
    pub fn to_json(&self) -> serde_json::Value {
        let rounded = |d: Duration| (ms(d) * 1000.0).round() / 1000.0;
        serde_json::json!({
            "count": self.count,
            "median_ms": rounded(self.median),
            "p95_ms": rounded(self.p95),
            "p99_ms": rounded(self.p99),
            "max_ms": rounded(self.max),
        })
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_millis).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!(s.count, 200);
        assert_eq!(s.median, Duration::from_millis(100));
        assert_eq!(s.p95, Duration::from_millis(190));
        assert_eq!(s.p99, Duration::from_millis(198));
        assert_eq!(s.max, Duration::from_millis(200));
        assert!(Summary::of(&[]).is_none());
        let one = Summary::of(&[Duration::from_millis(7)]).unwrap();
        assert_eq!(
            (one.median, one.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
    }
}
