//! The HTTP header names of MCP's Streamable HTTP transport, in one place
//! for the front (mcpod as the server) and the upstreams (mcpod as the
//! client). Lower case, as HTTP/2 sends them and `HeaderMap` matches them.

/// The session a handshake-era client was given at `initialize`.
pub const SESSION_ID: &str = "mcp-session-id";
/// The revision a request speaks.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// 2026-07-28: the request's method, which must match the body.
pub const METHOD: &str = "mcp-method";
/// 2026-07-28: the tool, prompt or resource a request names.
pub const NAME: &str = "mcp-name";
/// SSE resumption: the last event id a client saw.
pub const LAST_EVENT_ID: &str = "last-event-id";
