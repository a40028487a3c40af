//! Typed calls into each plugin kind, one module per WIT world.

pub mod adapter;
pub mod catalog;
pub mod registry;
pub mod server_type;

/// Runs one call on a fresh instance of a loaded plugin: instantiate from its
/// `InstancePre`, call, check the result's size. Each arm names the typed
/// pre-instance and the call to make with it.
macro_rules! fresh_call {
    ($plugin:expr, $variant:ident, $function:literal, |$inst:ident, $store:ident| $call:expr) => {{
        let plugin: &crate::plugin::host::LoadedPlugin = $plugin;
        let crate::plugin::host::KindPre::$variant(pre) = &plugin.pre else {
            return Err(crate::plugin::error::CallError::Unknown { name: plugin.name.clone(), kind: plugin.kind });
        };
        let mut store = plugin.store();
        let out = crate::plugin::instance::guarded(&mut store, $function, async |$store| {
            let $inst = pre.instantiate_async(&mut *$store).await?;
            $call.await
        })
        .await?;
        crate::plugin::instance::check_output(&plugin.ctx, $function, &out)?;
        out
    }};
}
pub(crate) use fresh_call;
