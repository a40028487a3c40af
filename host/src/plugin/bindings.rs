//! Host-side bindings for the WIT worlds in `wit/`: one `bindgen!` per
//! world, sharing the types and host interfaces generated once for
//! `host-services`.

#![allow(missing_docs)]

/// The host interfaces (`log`, `config`, `http`) and the shared `types`.
pub mod services {
    wasmtime::component::bindgen!({
        world: "host-services",
        path: "../wit",
        imports: {
            "mcpod:plugin/http": async,
        },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

/// World `server-type`.
pub mod server_type {
    wasmtime::component::bindgen!({
        world: "server-type",
        path: "../wit",
        exports: { default: async },
        with: {
            "mcpod:plugin/types": super::services::mcpod::plugin::types,
            "mcpod:plugin/log": super::services::mcpod::plugin::log,
            "mcpod:plugin/config": super::services::mcpod::plugin::config,
            "mcpod:plugin/http": super::services::mcpod::plugin::http,
        },
    });
}

/// World `template-catalog`.
pub mod template_catalog {
    wasmtime::component::bindgen!({
        world: "template-catalog",
        path: "../wit",
        exports: { default: async },
        with: {
            "mcpod:plugin/types": super::services::mcpod::plugin::types,
            "mcpod:plugin/log": super::services::mcpod::plugin::log,
            "mcpod:plugin/config": super::services::mcpod::plugin::config,
            "mcpod:plugin/http": super::services::mcpod::plugin::http,
        },
    });
}

/// World `package-registry`.
pub mod package_registry {
    wasmtime::component::bindgen!({
        world: "package-registry",
        path: "../wit",
        exports: { default: async },
        with: {
            "mcpod:plugin/types": super::services::mcpod::plugin::types,
            "mcpod:plugin/log": super::services::mcpod::plugin::log,
            "mcpod:plugin/config": super::services::mcpod::plugin::config,
            "mcpod:plugin/http": super::services::mcpod::plugin::http,
        },
    });
}

/// World `protocol-adapter`. Its exports are called synchronously: an
/// adapter sits on every message's path, and a call without a fiber costs
/// half as much.
pub mod protocol_adapter {
    wasmtime::component::bindgen!({
        world: "protocol-adapter",
        path: "../wit",
        with: {
            "mcpod:plugin/types": super::services::mcpod::plugin::types,
            "mcpod:plugin/log": super::services::mcpod::plugin::log,
        },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub use protocol_adapter::exports::mcpod::plugin::codec::Frame;
pub use services::mcpod::plugin::types::*;

impl Transport {
    /// The name requests and responses use: `stdio`, `streamable-http`, `sse`, `websocket`.
    pub fn name(self) -> &'static str {
        crate::launch::Transport::from(self).name()
    }

    /// The transport a request names: [`Transport::name`], or `http` and `ws` for short.
    pub fn parse(name: &str) -> Option<Transport> {
        match name {
            "stdio" => Some(Transport::Stdio),
            "streamable-http" | "http" => Some(Transport::StreamableHttp),
            "sse" => Some(Transport::Sse),
            "websocket" | "ws" => Some(Transport::Websocket),
            _ => None,
        }
    }
}
