//! The guest-side SDK for mcpod plugins.
//!
//! A plugin is one small crate built for `wasm32-wasip2` as a `cdylib`. It
//! enables the SDK feature of its kind, implements [`Plugin`](server_type::Plugin)
//! plus the kind's trait, and calls the kind's export macro:
//!
//! ```ignore
//! use mcpod_plugin_sdk::server_type::*;
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     fn info() -> PluginInfo { plugin_info("hello", env!("CARGO_PKG_VERSION"), "says hello") }
//! }
//! impl ServerType for Hello { /* validate, launch */ }
//! mcpod_plugin_sdk::export_server_type!(Hello);
//! ```
//!
//! Each kind's module re-exports the WIT types (`ServerConfig`, `LaunchSpec`,
//! `PluginError`, ...) and adds the host imports as plain functions: `log`,
//! `config_value` and, outside protocol adapters, `http_fetch`. In a native
//! `cargo test` those have stand-ins ([`testing`]). See `docs/plugins.md` for
//! the whole contract.

// The generated export macros name this crate by its public name, from
// inside and outside the crate alike.
extern crate self as mcpod_plugin_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Helpers shared by every kind's module; expanded once per module because
/// each kind's bindings carry their own copy of the WIT types.
macro_rules! common_helpers {
    () => {
        pub use bindings::mcpod::plugin::log::Level;

        /// Facts every plugin reports about itself.
        pub trait Plugin {
            /// Name, version and description (`plugin_info` builds one).
            fn info() -> PluginInfo;
        }
        pub use bindings::mcpod::plugin::types::*;

        /// Builds the [`PluginInfo`] a plugin returns from `Plugin::info`.
        pub fn plugin_info(name: &str, version: &str, description: &str) -> PluginInfo {
            PluginInfo { name: name.to_string(), version: version.to_string(), description: description.to_string() }
        }

        impl PluginError {
            /// An error of `code` with `message`, about no field in particular.
            pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
                PluginError { code, message: message.into(), field: None }
            }

            /// An `invalid-input` error about `field`.
            pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
                PluginError { code: ErrorCode::InvalidInput, message: message.into(), field: Some(field.into()) }
            }

            /// A `not-found` error.
            pub fn not_found(message: impl Into<String>) -> Self {
                Self::new(ErrorCode::NotFound, message)
            }

            /// An `unavailable` error: a dependency failed, retrying may help.
            pub fn unavailable(message: impl Into<String>) -> Self {
                Self::new(ErrorCode::Unavailable, message)
            }

            /// An `internal` error: a bug in the plugin.
            pub fn internal(message: impl Into<String>) -> Self {
                Self::new(ErrorCode::Internal, message)
            }

            /// A `too-large` error.
            pub fn too_large(message: impl Into<String>) -> Self {
                Self::new(ErrorCode::TooLarge, message)
            }
        }

        impl core::fmt::Display for ErrorCode {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(match self {
                    ErrorCode::InvalidInput => "invalid-input",
                    ErrorCode::NotFound => "not-found",
                    ErrorCode::Denied => "denied",
                    ErrorCode::Unavailable => "unavailable",
                    ErrorCode::TooLarge => "too-large",
                    ErrorCode::Internal => "internal",
                })
            }
        }

        /// Writes a record to the host's log, tagged with this plugin's name
        /// (in a native test, to stderr).
        pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
            if cfg!(target_arch = "wasm32") {
                let fields: Vec<(String, String)> =
                    fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                bindings::mcpod::plugin::log::log(level, message, &fields);
            } else {
                crate::testing::log(&format!("{level:?}"), message, fields);
            }
        }
    };
}

/// Helpers for kinds that import `config` and `http`.
#[allow(unused_macros)]
macro_rules! service_helpers {
    () => {
        pub use bindings::mcpod::plugin::http::{Request as HttpRequest, Response as HttpResponse};

        /// The value of `key` in this plugin's `config` table: strings as they
        /// are, other TOML values as JSON text (in a native test, what
        /// [`testing::set_config`](crate::testing::set_config) set).
        pub fn config_value(key: &str) -> Option<String> {
            if cfg!(target_arch = "wasm32") {
                bindings::mcpod::plugin::config::get(key)
            } else {
                crate::testing::config_value(key)
            }
        }

        /// Every key set in this plugin's `config` table.
        pub fn config_keys() -> Vec<String> {
            if cfg!(target_arch = "wasm32") {
                bindings::mcpod::plugin::config::keys()
            } else {
                crate::testing::config_keys()
            }
        }

        /// Performs an HTTP request through the host, which checks the URL
        /// against this plugin's `allow_hosts` (in a native test, it fails
        /// as `unavailable`: test the code around it with your own stand-in).
        pub fn http_fetch(request: &HttpRequest) -> Result<HttpResponse, PluginError> {
            if cfg!(target_arch = "wasm32") {
                bindings::mcpod::plugin::http::fetch(request)
            } else {
                Err(PluginError::unavailable(crate::testing::no_http(&request.url)))
            }
        }

        /// A `GET` of `url` with `headers`.
        pub fn http_get(url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, PluginError> {
            http_fetch(&HttpRequest {
                method: "GET".to_string(),
                url: url.to_string(),
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                body: None,
            })
        }
    };
}

/// Server-type plugins: turn a server config into a launch spec.
#[cfg(feature = "server-type")]
pub mod server_type {
    #[doc(hidden)]
    #[allow(missing_docs)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "server-type",
            path: "../../wit",
            pub_export_macro: true,
            export_macro_name: "__export_server_type",
            default_bindings_module: "mcpod_plugin_sdk::server_type::bindings",
            runtime_path: "mcpod_plugin_sdk::__wit_bindgen::rt",
            additional_derives: [PartialEq],
        });
    }
    common_helpers!();
    service_helpers!();

    /// A server type: checks server configs and turns them into launch specs.
    pub trait ServerType {
        /// Every problem with `config`, each naming its field; empty when valid.
        fn validate(config: ServerConfig) -> Vec<PluginError>;
        /// The launch spec for a valid `config`.
        fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError>;
    }

    impl<T: Plugin + ServerType> bindings::exports::mcpod::plugin::launcher::Guest for T {
        fn info() -> PluginInfo {
            <T as Plugin>::info()
        }
        fn validate(config: ServerConfig) -> Vec<PluginError> {
            <T as ServerType>::validate(config)
        }
        fn launch(config: ServerConfig) -> Result<LaunchSpec, PluginError> {
            <T as ServerType>::launch(config)
        }
    }
}

/// Template-catalog plugins: ready-made server configs.
#[cfg(feature = "template-catalog")]
pub mod template_catalog {
    #[doc(hidden)]
    #[allow(missing_docs)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "template-catalog",
            path: "../../wit",
            pub_export_macro: true,
            export_macro_name: "__export_template_catalog",
            default_bindings_module: "mcpod_plugin_sdk::template_catalog::bindings",
            runtime_path: "mcpod_plugin_sdk::__wit_bindgen::rt",
            additional_derives: [PartialEq],
        });
    }
    common_helpers!();
    service_helpers!();

    /// A catalog of templates.
    pub trait TemplateCatalog {
        /// Every template, sorted by name.
        fn list_templates() -> Vec<Template>;
        /// One template by name.
        fn describe(name: String) -> Result<Template, PluginError>;
        /// A template filled in with params and secrets.
        fn render(name: String, params: Vec<KeyValue>, secrets: Vec<KeyValue>) -> Result<ServerConfig, PluginError>;
    }

    impl<T: Plugin + TemplateCatalog> bindings::exports::mcpod::plugin::catalog::Guest for T {
        fn info() -> PluginInfo {
            <T as Plugin>::info()
        }
        fn list_templates() -> Vec<Template> {
            <T as TemplateCatalog>::list_templates()
        }
        fn describe(name: String) -> Result<Template, PluginError> {
            <T as TemplateCatalog>::describe(name)
        }
        fn render(name: String, params: Vec<KeyValue>, secrets: Vec<KeyValue>) -> Result<ServerConfig, PluginError> {
            <T as TemplateCatalog>::render(name, params, secrets)
        }
    }
}

/// Package-registry plugins: search and describe packages.
#[cfg(feature = "package-registry")]
pub mod package_registry {
    #[doc(hidden)]
    #[allow(missing_docs)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "package-registry",
            path: "../../wit",
            pub_export_macro: true,
            export_macro_name: "__export_package_registry",
            default_bindings_module: "mcpod_plugin_sdk::package_registry::bindings",
            runtime_path: "mcpod_plugin_sdk::__wit_bindgen::rt",
            additional_derives: [PartialEq],
        });
    }
    common_helpers!();
    service_helpers!();

    /// A package registry client.
    pub trait PackageRegistry {
        /// Packages matching `query`, best first, at most `limit`.
        fn search(query: String, limit: u32) -> Result<Vec<PackageSummary>, PluginError>;
        /// Every version of `name`, and its tags.
        fn versions(name: String) -> Result<PackageVersions, PluginError>;
        /// Facts about one version of `name` (the newest when `None`).
        fn describe(name: String, version: Option<String>) -> Result<PackageInfo, PluginError>;
        /// Whether `name` (at `version`) is published.
        fn exists(name: String, version: Option<String>) -> Result<bool, PluginError>;
    }

    impl<T: Plugin + PackageRegistry> bindings::exports::mcpod::plugin::registry::Guest for T {
        fn info() -> PluginInfo {
            <T as Plugin>::info()
        }
        fn search(query: String, limit: u32) -> Result<Vec<PackageSummary>, PluginError> {
            <T as PackageRegistry>::search(query, limit)
        }
        fn versions(name: String) -> Result<PackageVersions, PluginError> {
            <T as PackageRegistry>::versions(name)
        }
        fn describe(name: String, version: Option<String>) -> Result<PackageInfo, PluginError> {
            <T as PackageRegistry>::describe(name, version)
        }
        fn exists(name: String, version: Option<String>) -> Result<bool, PluginError> {
            <T as PackageRegistry>::exists(name, version)
        }
    }
}

/// Protocol-adapter plugins: sans-IO codecs for one MCP transport.
#[cfg(feature = "protocol-adapter")]
pub mod protocol_adapter {
    #[doc(hidden)]
    #[allow(missing_docs)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "protocol-adapter",
            path: "../../wit",
            pub_export_macro: true,
            export_macro_name: "__export_protocol_adapter",
            default_bindings_module: "mcpod_plugin_sdk::protocol_adapter::bindings",
            runtime_path: "mcpod_plugin_sdk::__wit_bindgen::rt",
            additional_derives: [PartialEq],
        });
    }
    pub use bindings::exports::mcpod::plugin::codec::{Frame, GuestFramer as Framer};
    common_helpers!();

    /// A protocol adapter: names its transport and its framer type.
    pub trait ProtocolAdapter {
        /// The framing state of one connection; implements [`Framer`].
        type Framer: Framer;
        /// The transport this adapter frames.
        fn transport_kind() -> Transport;
    }

    impl<T: Plugin + ProtocolAdapter> bindings::exports::mcpod::plugin::codec::Guest for T {
        type Framer = <T as ProtocolAdapter>::Framer;
        fn info() -> PluginInfo {
            <T as Plugin>::info()
        }
        fn transport_kind() -> Transport {
            <T as ProtocolAdapter>::transport_kind()
        }
    }

    pub use crate::jsonrpc::{Kind as MessageKind, check as check_message};

    /// What `Framer::decode` and `Framer::finish` return.
    pub type Decoded = Result<Vec<Result<Frame, PluginError>>, PluginError>;
}

#[cfg(feature = "protocol-adapter")]
mod jsonrpc;

/// Native stand-ins for the host's imports, so that a plugin's own
/// `cargo test` (on the build machine, not in wasm) can call its code:
/// `log` writes to stderr, `config_value` and `config_keys` read what
/// [`set_config`] set on the current thread (each test runs on a thread of
/// its own), and `http_fetch` fails as `unavailable`. In wasm the host's
/// imports are used and nothing here is called.
pub mod testing {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static CONFIG: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// Sets `key` of the plugin's config table for the current thread, as
    /// `[plugins.config]` would in the host (non-string values as JSON text).
    pub fn set_config(key: &str, value: &str) {
        CONFIG.with(|c| c.borrow_mut().insert(key.to_string(), value.to_string()));
    }

    /// Empties the current thread's config table.
    pub fn clear_config() {
        CONFIG.with(|c| c.borrow_mut().clear());
    }

    // Used by the kinds that import `config` and `http`; a protocol
    // adapter alone (as the host links the stdio adapter) imports neither.
    #[cfg_attr(
        not(any(feature = "server-type", feature = "template-catalog", feature = "package-registry")),
        allow(dead_code)
    )]
    pub(crate) fn config_value(key: &str) -> Option<String> {
        CONFIG.with(|c| c.borrow().get(key).cloned())
    }

    // Used by the kinds that import `config` and `http`; a protocol
    // adapter alone (as the host links the stdio adapter) imports neither.
    #[cfg_attr(
        not(any(feature = "server-type", feature = "template-catalog", feature = "package-registry")),
        allow(dead_code)
    )]
    pub(crate) fn config_keys() -> Vec<String> {
        CONFIG.with(|c| c.borrow().keys().cloned().collect())
    }

    pub(crate) fn log(level: &str, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!(" {k}={v:?}")).collect();
        eprintln!("[{level}] {message}{}", fields.concat());
    }

    // Used by the kinds that import `config` and `http`; a protocol
    // adapter alone (as the host links the stdio adapter) imports neither.
    #[cfg_attr(
        not(any(feature = "server-type", feature = "template-catalog", feature = "package-registry")),
        allow(dead_code)
    )]
    pub(crate) fn no_http(url: &str) -> String {
        format!(
            "no HTTP in a native test (asked for {url}); the host performs `http_fetch` once the plugin runs in mcpod"
        )
    }
}

/// Exports `$t` as this crate's server-type plugin (on `wasm32` targets; elsewhere,
/// for native unit tests, it exports nothing).
#[cfg(feature = "server-type")]
#[macro_export]
macro_rules! export_server_type {
    ($($t:tt)*) => {
        #[cfg(target_arch = "wasm32")]
        $crate::server_type::bindings::__export_server_type!($($t)*);
    };
}
/// Exports `$t` as this crate's template-catalog plugin (on `wasm32` targets; elsewhere,
/// for native unit tests, it exports nothing).
#[cfg(feature = "template-catalog")]
#[macro_export]
macro_rules! export_template_catalog {
    ($($t:tt)*) => {
        #[cfg(target_arch = "wasm32")]
        $crate::template_catalog::bindings::__export_template_catalog!($($t)*);
    };
}
/// Exports `$t` as this crate's package-registry plugin (on `wasm32` targets; elsewhere,
/// for native unit tests, it exports nothing).
#[cfg(feature = "package-registry")]
#[macro_export]
macro_rules! export_package_registry {
    ($($t:tt)*) => {
        #[cfg(target_arch = "wasm32")]
        $crate::package_registry::bindings::__export_package_registry!($($t)*);
    };
}
/// Exports `$t` as this crate's protocol-adapter plugin (on `wasm32` targets; elsewhere,
/// for native unit tests, it exports nothing).
#[cfg(feature = "protocol-adapter")]
#[macro_export]
macro_rules! export_protocol_adapter {
    ($($t:tt)*) => {
        #[cfg(target_arch = "wasm32")]
        $crate::protocol_adapter::bindings::__export_protocol_adapter!($($t)*);
    };
}
