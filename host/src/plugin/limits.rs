//! Per-call limits on a plugin: memory, CPU time, wall time and output size,
//! and the store pieces that enforce them.

use crate::config::LimitsEntry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The limits one plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Linear memory cap, in bytes.
    pub memory_bytes: usize,
    /// CPU time the guest may use per call (time off the CPU, as in host
    /// imports or on a busy machine, does not count).
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

/// Tracks the CPU time a call's guest has used: the CPU clock of the thread
/// that runs it, summed over the slices in which it ran. Time the thread is
/// off the CPU (the OS runs someone else, an async call is parked on a host
/// import or waits for its turn on the runtime) does not count, so a busy
/// host does not make a plugin look slow.
#[derive(Debug)]
pub struct CpuBudget {
    budget: Duration,
    clock: Arc<CpuClock>,
    /// Set when the budget ran out and the call was interrupted.
    pub exhausted: bool,
}

/// A call's CPU time, shared between the store (whose epoch callback checks
/// it, on the guest's thread) and the future that polls an async call (which
/// opens and closes a slice around each poll, on whatever thread polls it).
#[derive(Debug, Default)]
pub struct CpuClock {
    /// Nanoseconds used in closed slices.
    used: AtomicU64,
    /// The thread's CPU clock when the open slice began; `NO_SLICE` if none.
    slice_start: AtomicU64,
}

/// `CpuClock::slice_start` when no slice is open.
const NO_SLICE: u64 = u64::MAX;

impl CpuClock {
    fn reset(&self) {
        self.used.store(0, Ordering::Relaxed);
        self.slice_start.store(NO_SLICE, Ordering::Relaxed);
    }

    /// Starts a slice on this thread.
    fn open(&self) {
        self.slice_start.store(thread_cpu_nanos(), Ordering::Relaxed);
    }

    /// Ends this thread's slice, adding what it used.
    fn close(&self) {
        let start = self.slice_start.swap(NO_SLICE, Ordering::Relaxed);
        if start != NO_SLICE {
            self.used.fetch_add(thread_cpu_nanos().saturating_sub(start), Ordering::Relaxed);
        }
    }

    /// Nanoseconds used so far, the open slice included; opens a slice if
    /// none is (a synchronous call's first tick: what ran before it is less
    /// than one tick, the granularity of every check).
    fn used(&self) -> u64 {
        let start = self.slice_start.load(Ordering::Relaxed);
        let closed = self.used.load(Ordering::Relaxed);
        if start == NO_SLICE {
            self.open();
            return closed;
        }
        closed + thread_cpu_nanos().saturating_sub(start)
    }

    /// Polls `fut` with a slice open around each poll, so that only the time
    /// the guest runs counts (a fiber runs on the thread that polls it).
    pub async fn timed<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            self.open();
            let poll = fut.as_mut().poll(cx);
            self.close();
            poll
        })
        .await
    }
}

/// The CPU time this thread has used, in nanoseconds.
fn thread_cpu_nanos() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    match clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(t) => (t.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec() as u64),
        // Every Unix mcpod builds for has the clock; were it missing, the
        // budget would never run out and the wall-clock timeout still bounds
        // async calls.
        Err(_) => 0,
    }
}

impl CpuBudget {
    /// A budget of `budget` per call.
    pub fn new(budget: Duration) -> Self {
        let clock = Arc::new(CpuClock::default());
        clock.reset();
        CpuBudget { budget, clock, exhausted: false }
    }

    /// Starts accounting for a new call.
    pub fn start_call(&mut self) {
        self.clock.reset();
        self.exhausted = false;
    }

    /// The clock an async call's future times its polls with.
    pub fn clock(&self) -> Arc<CpuClock> {
        self.clock.clone()
    }

    /// True (and remembered) once the guest has used up its budget; called
    /// on the thread that runs the guest.
    pub fn check(&mut self) -> bool {
        if u128::from(self.clock.used()) > self.budget.as_nanos() {
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

    /// Spins this thread for `d` of its own CPU time.
    fn spin(d: Duration) {
        let until = thread_cpu_nanos() + d.as_nanos() as u64;
        while thread_cpu_nanos() < until {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn time_off_the_cpu_does_not_count_against_the_budget_and_time_on_it_does() {
        let mut b = CpuBudget::new(Duration::from_millis(20));
        b.start_call();
        assert!(!b.check(), "the first check opens the slice");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!b.check(), "60 ms asleep is not 20 ms of CPU");
        spin(Duration::from_millis(25));
        assert!(b.check(), "25 ms spinning is");
        b.start_call();
        assert!(!b.exhausted && !b.check(), "a new call starts with the whole budget");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_async_call_is_charged_for_its_polls_not_for_its_waits() {
        let mut b = CpuBudget::new(Duration::from_millis(20));
        b.start_call();
        let clock = b.clock();
        clock
            .clone()
            .timed(async {
                spin(Duration::from_millis(5));
                tokio::time::sleep(Duration::from_millis(60)).await;
                spin(Duration::from_millis(5));
            })
            .await;
        let used = Duration::from_nanos(clock.used.load(Ordering::Relaxed));
        assert!(used >= Duration::from_millis(10), "both polls' spins count: {used:?}");
        assert!(used < Duration::from_millis(40), "the 60 ms wait does not: {used:?}");
        assert!(!b.check());
    }

    #[test]
    fn output_size_counts_serialized_bytes() {
        assert_eq!(output_size(&"abc"), 5);
        assert_eq!(output_size(&vec![1, 2]), 5);
    }
}
