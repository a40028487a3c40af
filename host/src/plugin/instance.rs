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
    let clock = store.data().budget.clock();
    let result = tokio::time::timeout(ctx.limits.timeout, clock.timed(f(store))).await;
    ctx.timers.record(&ctx.name, function, started.elapsed());
    match result {
        Err(_) => Err(logged(CallError::Timeout {
            plugin: ctx.name.clone(),
            function,
            timeout_ms: ctx.limits.timeout.as_millis(),
        })),
        Ok(Err(e)) => Err(logged(classify(&e, store.data(), function))),
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
    result.map_err(|e| logged(classify(&e, store.data(), function)))
}

/// Logs a plugin's fault where the host's operator sees it (the caller may
/// only pass it on to a client), tagged with the plugin and the function.
fn logged(e: CallError) -> CallError {
    if let CallError::Panic { plugin, function, .. }
    | CallError::Trap { plugin, function, .. }
    | CallError::Cpu { plugin, function, .. }
    | CallError::Memory { plugin, function, .. }
    | CallError::Timeout { plugin, function, .. } = &e
    {
        tracing::error!(plugin = %plugin, function = *function, "plugin fault: {e}");
    }
    e
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
    if let Some(message) = panic_message(&stderr) {
        return CallError::Panic { plugin, function, message };
    }
    let stderr = without_backtrace_hint(&stderr);
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

/// The last panic in a guest's stderr, on one line: where, and the message.
fn panic_message(stderr: &str) -> Option<String> {
    let pos = stderr.rfind("panicked at")?;
    Some(without_backtrace_hint(&stderr[pos..]).lines().take(3).collect::<Vec<_>>().join(" "))
}

/// `stderr` without Rust's "run with `RUST_BACKTRACE=1`" note: the host's
/// user cannot set a guest's environment, so the hint misleads.
fn without_backtrace_hint(stderr: &str) -> String {
    stderr.lines().filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE=")).collect::<Vec<_>>().join("\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    const STDERR: &str = "\nthread '<unnamed>' panicked at src/lib.rs:40:25:\ndeliberate panic\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";

    #[test]
    fn a_panic_message_names_where_and_what_without_the_backtrace_hint() {
        assert_eq!(panic_message(STDERR).as_deref(), Some("panicked at src/lib.rs:40:25: deliberate panic"));
    }

    #[test]
    fn stderr_without_a_panic_keeps_its_lines_but_not_the_hint() {
        assert_eq!(panic_message("just a line\n"), None);
        assert_eq!(without_backtrace_hint("a\nnote: run with `RUST_BACKTRACE=1` environment variable\nb"), "a\nb");
    }
}
