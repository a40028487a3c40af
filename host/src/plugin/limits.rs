//! Per-call limits on a plugin: memory, CPU time, wall time and output size,
//! and the store pieces that enforce them.

use crate::config::LimitsEntry;
use std::time::{Duration, Instant};

/// The limits one plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Linear memory cap, in bytes.
    pub memory_bytes: usize,
    /// Guest CPU time per call (time spent inside host imports does not count).
    pub cpu: Duration,
    /// Wall-clock time per call, host imports included.
    pub timeout: Duration,
    /// Cap on the size of a call's result.
    pub output_bytes: usize,
    /// Cap on one HTTP response body.
    pub http_response_bytes: usize,
    /// Timeout of one HTTP request.
    pub http_timeout: Duration,
    /// Freshness of cached HTTP responses; zero disables the cache.
    pub http_cache: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu: Duration::from_millis(100),
            timeout: Duration::from_secs(30),
            output_bytes: 4 << 20,
            http_response_bytes: 8 << 20,
            http_timeout: Duration::from_secs(10),
            http_cache: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// `base` with the fields that `entry` sets replaced.
    pub fn with_overrides(base: Limits, entry: &LimitsEntry) -> Limits {
        Limits {
            memory_bytes: entry.memory_mib.map_or(base.memory_bytes, |m| (m as usize) << 20),
            cpu: entry.cpu_ms.map_or(base.cpu, Duration::from_millis),
            timeout: entry.timeout_ms.map_or(base.timeout, Duration::from_millis),
            output_bytes: entry.output_kib.map_or(base.output_bytes, |k| (k as usize) << 10),
            http_response_bytes: entry.http_response_kib.map_or(base.http_response_bytes, |k| (k as usize) << 10),
            http_timeout: entry.http_timeout_ms.map_or(base.http_timeout, Duration::from_millis),
            http_cache: entry.http_cache_secs.map_or(base.http_cache, Duration::from_secs),
        }
    }
}

/// Refuses memory growth past the cap and remembers that it did, so that the
/// resulting trap can be reported as what it is.
pub struct MemoryLimiter {
    cap: usize,
    /// Set once a grow request was refused.
    pub exceeded: bool,
}

impl MemoryLimiter {
    /// A limiter for `cap` bytes.
    pub fn new(cap: usize) -> Self {
        MemoryLimiter { cap, exceeded: false }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Tracks the guest CPU time of the current call: wall time since the call
/// began, less the time spent in host imports (HTTP).
#[derive(Debug)]
pub struct CpuBudget {
    budget: Duration,
    started: Instant,
    in_host: Duration,
    /// Set when the budget ran out and the call was interrupted.
    pub exhausted: bool,
}

impl CpuBudget {
    /// A budget of `budget` per call.
    pub fn new(budget: Duration) -> Self {
        CpuBudget { budget, started: Instant::now(), in_host: Duration::ZERO, exhausted: false }
    }

    /// Starts accounting for a new call.
    pub fn start_call(&mut self) {
        self.started = Instant::now();
        self.in_host = Duration::ZERO;
        self.exhausted = false;
    }

    /// Records time spent in a host import.
    pub fn add_host_time(&mut self, d: Duration) {
        self.in_host += d;
    }

    /// True (and remembered) once the guest has used up its budget.
    pub fn check(&mut self) -> bool {
        let used = self.started.elapsed().saturating_sub(self.in_host);
        if used > self.budget {
            self.exhausted = true;
        }
        self.exhausted
    }
}

/// Counts the bytes serde would write, without writing them: the size of a
/// plugin's result, compared with the output cap.
pub fn output_size<T: serde::Serialize>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_is_set() {
        let entry = LimitsEntry { memory_mib: Some(16), cpu_ms: Some(5), ..Default::default() };
        let l = Limits::with_overrides(Limits::default(), &entry);
        assert_eq!(l.memory_bytes, 16 << 20);
        assert_eq!(l.cpu, Duration::from_millis(5));
        assert_eq!(l.timeout, Limits::default().timeout);
    }

    #[test]
    fn host_time_does_not_count_against_the_budget() {
        let mut b = CpuBudget::new(Duration::from_millis(20));
        b.start_call();
        std::thread::sleep(Duration::from_millis(30));
        b.add_host_time(Duration::from_millis(30));
        assert!(!b.check());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.check());
    }

    #[test]
    fn output_size_counts_serialized_bytes() {
        assert_eq!(output_size(&"abc"), 5);
        assert_eq!(output_size(&vec![1, 2]), 5);
    }
}
