//! The one wasmtime engine every plugin runs on: configured once (epoch
//! interruption, the pooling allocator where the system allows it) and
//! ticked by a background thread so that deadlines can fire.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; CPU budgets are checked at this granularity.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine, and the thread that advances its epoch until dropped.
pub struct PluginEngine {
    engine: Engine,
    stop: Arc<AtomicBool>,
    /// Whether the pooling allocator is in use.
    pub pooling: bool,
}

impl PluginEngine {
    /// An engine whose instances may use up to `max_memory` bytes each; with
    /// `pooling`, at most `max_instances` alive at once (falls back to the
    /// on-demand allocator if the pool cannot be reserved).
    pub fn new(pooling: bool, max_instances: u32, max_memory: usize) -> wasmtime::Result<Self> {
        let base = || {
            let mut config = Config::new();
            config.epoch_interruption(true);
            config.wasm_component_model(true);
            config
        };
        let mut use_pooling = false;
        let engine = if pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(max_instances)
                .total_core_instances(max_instances.saturating_mul(4))
                .total_memories(max_instances.saturating_mul(2))
                .total_tables(max_instances.saturating_mul(2))
                .total_stacks(max_instances)
                .max_memory_size(max_memory);
            let mut config = base();
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            match Engine::new(&config) {
                Ok(engine) => {
                    use_pooling = true;
                    engine
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                    Engine::new(&base())?
                }
            }
        } else {
            Engine::new(&base())?
        };
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = engine.weak();
        let stop_flag = stop.clone();
        std::thread::Builder::new()
            .name("mcpod-epoch".to_string())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match ticker.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| wasmtime::Error::msg(format!("cannot start the epoch thread: {e}")))?;
        Ok(PluginEngine { engine, stop, pooling: use_pooling })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
