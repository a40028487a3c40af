//! What a plugin's store holds: its WASI context (which grants nothing),
//! its limits, and the shared context of the plugin it belongs to.

use crate::plugin::imports::config::ConfigValues;
use crate::plugin::imports::http::HttpGate;
use crate::plugin::limits::{CpuBudget, Limits, MemoryLimiter};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How much of a plugin's stderr is kept per store (for panic messages).
const STDERR_BYTES: usize = 4096;

/// What every instance of one plugin shares.
pub struct PluginContext {
    /// The plugin's name in the host config.
    pub name: String,
    /// Its `config` table.
    pub config: ConfigValues,
    /// Its HTTP grant; `None` when `allow_hosts` is empty.
    pub http: Option<Arc<HttpGate>>,
    /// Its per-call limits.
    pub limits: Limits,
    /// The histograms of its functions' call durations, looked up once each.
    pub timers: CallTimers,
}

/// A plugin's call-duration histograms by function, so that a call on the
/// hot path records its duration without hashing and copying labels.
pub struct CallTimers {
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    timers: std::sync::Mutex<Vec<(&'static str, prometheus_client::metrics::histogram::Histogram)>>,
}

impl CallTimers {
    /// Timers that report to `metrics`.
    pub fn new(metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        CallTimers { metrics, timers: Default::default() }
    }

    /// Records that `plugin`'s `function` took `d`.
    pub fn record(&self, plugin: &str, function: &'static str, d: std::time::Duration) {
        let Ok(mut timers) = self.timers.lock() else { return };
        let at = match timers.iter().position(|(f, _)| *f == function) {
            Some(at) => at,
            None => {
                timers.push((function, self.metrics.plugin_call(plugin, function)));
                timers.len() - 1
            }
        };
        timers[at].1.observe(d.as_secs_f64());
    }
}

/// The data of one plugin store.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Refuses memory growth past the cap.
    pub limiter: MemoryLimiter,
    /// The plugin this store belongs to.
    pub ctx: Arc<PluginContext>,
    /// The guest's stderr (panic messages land here).
    pub stderr: MemoryOutputPipe,
    /// CPU accounting of the current call.
    pub budget: CpuBudget,
}

impl PluginState {
    /// Fresh store data for plugin `ctx`.
    pub fn new(ctx: Arc<PluginContext>) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        PluginState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(ctx.limits.memory_bytes),
            budget: CpuBudget::new(ctx.limits.cpu),
            stderr,
            ctx,
        }
    }

    /// The store's resources, for the no-wait WASI of synchronous calls.
    pub fn no_wait(&mut self) -> crate::plugin::imports::no_wait_io::NoWait<'_> {
        crate::plugin::imports::no_wait_io::NoWait(&mut self.table)
    }

    /// What the guest wrote to stderr, as text (the last panic message, typically).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_string()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl crate::plugin::bindings::services::mcpod::plugin::types::Host for PluginState {}
