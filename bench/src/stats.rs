//! Percentiles of timing samples.

use std::time::Duration;

/// Timing samples of one measurement.
#[derive(Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// The `p`-th percentile (0..=100).
    pub fn percentile(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[idx.min(v.len() - 1)]
    }

    /// The table header matching [`Samples::row`].
    pub fn header() -> String {
        format!(
            "| {:<52} | {:>7} | {:>10} | {:>10} |\n|{:-<54}|{:->9}|{:->12}|{:->12}|",
            "measurement", "n", "median", "p99", "", "", "", ""
        )
    }

    /// A markdown table row.
    pub fn row(&self, name: &str) -> String {
        format!(
            "| {:<52} | {:>7} | {:>10} | {:>10} |",
            name,
            self.0.len(),
            fmt(self.percentile(50.0)),
            fmt(self.percentile(99.0))
        )
    }
}

/// A duration in µs or ms, for tables.
pub fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{:.2} µs", ns as f64 / 1000.0)
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1000.0)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}
