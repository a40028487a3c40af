//! Typed handles per plugin kind, one module per WIT world. A handle is made
//! only by [`PluginHost`](crate::plugin::PluginHost) from a plugin whose
//! component was linked as that kind, and carries the typed pre-instance, so
//! its calls need no kind check and cannot reach another kind's exports.

pub mod adapter;
pub mod catalog;
pub mod native;
pub mod registry;
pub mod server_type;

use crate::plugin::bindings;
use crate::plugin::host::{KindPre, LoadedPlugin};
use crate::plugin::state::PluginState;
use std::sync::Arc;

/// Defines one kind's handle: the plugin and its pre-instance of that world.
macro_rules! typed_handle {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $pre:ty) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            pub(crate) plugin: Arc<LoadedPlugin>,
            pub(crate) pre: $pre,
        }

        impl $name {
            /// The handle, if `plugin` is of this kind.
            pub fn of(plugin: &Arc<LoadedPlugin>) -> Option<Self> {
                match &plugin.pre {
                    KindPre::$variant(pre) => Some($name { plugin: plugin.clone(), pre: pre.clone() }),
                    _ => None,
                }
            }

            /// The loaded plugin behind the handle (name, info, limits).
            pub fn plugin(&self) -> &Arc<LoadedPlugin> {
                &self.plugin
            }
        }

        impl std::ops::Deref for $name {
            type Target = LoadedPlugin;
            fn deref(&self) -> &LoadedPlugin {
                &self.plugin
            }
        }
    };
}

typed_handle!(
    /// A `server-type` plugin: validates server configs and says how to launch them.
    ServerTypePlugin, ServerType, bindings::server_type::ServerTypePre<PluginState>
);
typed_handle!(
    /// A `template-catalog` plugin: lists, describes and renders templates.
    CatalogPlugin, TemplateCatalog, bindings::template_catalog::TemplateCatalogPre<PluginState>
);
typed_handle!(
    /// A `package-registry` plugin: searches and describes packages.
    RegistryPlugin, PackageRegistry, bindings::package_registry::PackageRegistryPre<PluginState>
);
typed_handle!(
    /// A `protocol-adapter` plugin: frames one transport's bytes (see [`adapter::AdapterSession`]).
    AdapterPlugin, ProtocolAdapter, bindings::protocol_adapter::ProtocolAdapterPre<PluginState>
);

/// Runs one call on a fresh instance of a typed handle: instantiate from its
/// `InstancePre`, call, check the result's size.
macro_rules! fresh_call {
    ($handle:expr, $function:literal, |$inst:ident, $store:ident| $call:expr) => {{
        let handle = $handle;
        let mut store = handle.plugin.store();
        let out = crate::plugin::instance::guarded(&mut store, $function, async |$store| {
            let $inst = handle.pre.instantiate_async(&mut *$store).await?;
            $call.await
        })
        .await?;
        crate::plugin::instance::check_output(&handle.plugin.ctx, $function, &out)?;
        out
    }};
}
pub(crate) use fresh_call;
