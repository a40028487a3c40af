//! mcpod: runs MCP servers on demand, as Kubernetes pods or local processes,
//! and serves them to MCP clients over every MCP transport. Everything that
//! varies from server to server is a WebAssembly plugin.
//!
//! The map of the modules, and the path one MCP message takes, is in
//! `docs/architecture.md`.

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bridge;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod expose;
pub mod frame;
pub mod front;
pub mod gate;
pub mod identity;
pub mod jsonrpc;
pub mod launch;
pub mod listen;
pub mod mcp_headers;
pub mod metrics;
pub mod operator;
pub mod plugin;
pub mod policy;
pub mod reread;
pub mod rev_2026_07_28;
pub mod runtime;
pub mod servers;
pub mod shared_paths;
pub mod supply;
pub mod sweep;
pub mod telemetry;
pub mod tls;
pub mod upstream;
