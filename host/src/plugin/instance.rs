//! Stores and guarded calls: every call into a plugin runs under its CPU,
//! memory, time and output limits, and a fault becomes a `CallError` for
//! that call alone.

use crate::plugin::error::CallError;
use crate::plugin::limits::output_size;
use crate::plugin::state::{PluginContext, PluginState};
use std::sync::Arc;
use wasmtime::{Engine, Store, UpdateDeadline};

/// How a store's calls run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// On a fiber, yielding to the runtime at each epoch tick.
    Async,
    /// On the caller's stack, to completion or to the CPU budget.
    Sync,
}

/// A fresh store for one plugin, with its limiter and CPU deadline installed.
pub fn new_store(engine: &Engine, ctx: &Arc<PluginContext>, calls: Calls) -> Store<PluginState> {
    let mut store = Store::new(engine, PluginState::new(ctx.clone()));
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut cx| {
        Ok(match (cx.data_mut().budget.check(), calls) {
            (true, _) => UpdateDeadline::Interrupt,
            (false, Calls::Async) => UpdateDeadline::Yield(1),
            (false, Calls::Sync) => UpdateDeadline::Continue(1),
        })
    });
    store
}

/// Runs `f` on `store` as one call named `function`, enforcing the plugin's
/// limits and turning faults into `CallError`s.
pub async fn guarded<T>(
    store: &mut Store<PluginState>,
    function: &'static str,
    f: impl AsyncFnOnce(&mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<T, CallError> {
    let (ctx, started) = start_call(store);
    let result = tokio::time::timeout(ctx.limits.timeout, f(store)).await;
    ctx.timers.record(&ctx.name, function, started.elapsed());
    match result {
        Err(_) => {
            Err(CallError::Timeout { plugin: ctx.name.clone(), function, timeout_ms: ctx.limits.timeout.as_millis() })
        }
        Ok(Err(e)) => Err(classify(&e, store.data(), function)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// [`guarded`] for a synchronous call: the CPU budget bounds it (an epoch
/// tick interrupts it once spent); there is no wall-clock timeout, because
/// nothing a synchronous call does may wait.
pub fn guarded_sync<T>(
    store: &mut Store<PluginState>,
    function: &'static str,
    f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<T, CallError> {
    let (ctx, started) = start_call(store);
    let result = f(store);
    ctx.timers.record(&ctx.name, function, started.elapsed());
    result.map_err(|e| classify(&e, store.data(), function))
}

/// Resets the CPU budget and the epoch deadline for a new call; returns
/// the plugin's context and when the call started.
fn start_call(store: &mut Store<PluginState>) -> (Arc<PluginContext>, std::time::Instant) {
    store.data_mut().budget.start_call();
    store.set_epoch_deadline(1);
    (store.data().ctx.clone(), std::time::Instant::now())
}

/// Names the fault behind a failed call.
fn classify(e: &wasmtime::Error, state: &PluginState, function: &'static str) -> CallError {
    let plugin = state.ctx.name.clone();
    if state.budget.exhausted {
        return CallError::Cpu { plugin, function, budget_ms: state.ctx.limits.cpu.as_millis() };
    }
    if state.limiter.exceeded {
        return CallError::Memory { plugin, function, limit_mib: state.ctx.limits.memory_bytes >> 20 };
    }
    let stderr = state.stderr_text();
    if let Some(pos) = stderr.rfind("panicked at") {
        let message = stderr[pos..].lines().take(3).collect::<Vec<_>>().join(" ");
        return CallError::Panic { plugin, function, message };
    }
    // A trap says what the guest did; a host import's error (the root of
    // the chain, under wasmtime's backtrace context) says what it asked for.
    let mut message = match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => e.root_cause().to_string(),
    };
    if !stderr.is_empty() {
        message.push_str(&format!(" (stderr: {})", stderr.lines().last().unwrap_or_default()));
    }
    CallError::Trap { plugin, function, message }
}

/// Checks a result against the plugin's output cap.
pub fn check_output<T: serde::Serialize>(
    ctx: &PluginContext,
    function: &'static str,
    value: &T,
) -> Result<(), CallError> {
    let size = output_size(value);
    if size > ctx.limits.output_bytes {
        return Err(CallError::OutputTooLarge {
            plugin: ctx.name.clone(),
            function,
            size,
            limit: ctx.limits.output_bytes,
        });
    }
    Ok(())
}

/// Turns the plugin's own `result<T, plugin-error>` into a `CallError`.
pub fn plugin_result<T>(
    ctx: &PluginContext,
    r: Result<T, crate::plugin::bindings::PluginError>,
) -> Result<T, CallError> {
    r.map_err(|error| CallError::Plugin { plugin: ctx.name.clone(), error })
}
