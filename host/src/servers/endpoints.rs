//! The URLs a server is reached at, built in one place: the front's routes,
//! the endpoints a server's status reports, the legacy SSE `endpoint`
//! event and instance handles' endpoints all come from here.

use std::collections::BTreeMap;

/// The front's route of a server's Streamable HTTP endpoint.
pub const MCP_ROUTE: &str = "/servers/{id}/mcp";
/// The front's route of an instance handle's endpoint.
pub const INSTANCE_ROUTE: &str = "/servers/{id}/instances/{handle}/mcp";
/// The front's route of a server's legacy SSE stream.
pub const SSE_ROUTE: &str = "/servers/{id}/sse";
/// The front's route of a server's legacy SSE messages.
pub const MESSAGES_ROUTE: &str = "/servers/{id}/messages";
/// The front's route of a server's WebSocket endpoint.
pub const WS_ROUTE: &str = "/servers/{id}/ws";

/// `/servers/{id}` under `public_url`.
fn base(public_url: &str, id: &str) -> String {
    format!("{}/servers/{id}", public_url.trim_end_matches('/'))
}

/// Every endpoint of server `id`, by downstream transport.
pub fn all(public_url: &str, id: &str) -> BTreeMap<String, String> {
    let base = base(public_url, id);
    BTreeMap::from([
        ("streamable_http".to_string(), format!("{base}/mcp")),
        ("sse".to_string(), format!("{base}/sse")),
        ("websocket".to_string(), format!("{}/ws", base.replacen("http", "ws", 1))),
    ])
}

/// Every endpoint of virtual server `name`, by downstream transport.
pub fn of_virtual(public_url: &str, name: &str) -> BTreeMap<String, String> {
    let base = format!("{}/virtual/{name}", public_url.trim_end_matches('/'));
    BTreeMap::from([
        ("streamable_http".to_string(), format!("{base}/mcp")),
        ("sse".to_string(), format!("{base}/sse")),
        ("websocket".to_string(), format!("{}/ws", base.replacen("http", "ws", 1))),
    ])
}

/// The endpoint of instance handle `handle` of server `id`.
pub fn instance(public_url: &str, id: &str, handle: &str) -> String {
    format!("{}/instances/{handle}/mcp", base(public_url, id))
}

/// The path a legacy SSE client posts its messages to (the `endpoint`
/// event's data: relative, so that it works under any host name).
pub fn messages_path(id: &str, session: &str) -> String {
    format!("/servers/{id}/messages?sessionId={session}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_front_routes() {
        let all = all("http://mcpod.team.svc:7460/", "time-1");
        assert_eq!(all["streamable_http"], "http://mcpod.team.svc:7460/servers/time-1/mcp");
        assert_eq!(all["sse"], "http://mcpod.team.svc:7460/servers/time-1/sse");
        assert_eq!(all["websocket"], "ws://mcpod.team.svc:7460/servers/time-1/ws");
        assert_eq!(all["streamable_http"].replace("time-1", "{id}").split("7460").nth(1), Some(MCP_ROUTE));
        assert_eq!(instance("https://h", "a-1", "ff"), "https://h/servers/a-1/instances/ff/mcp");
        assert_eq!(
            format!("https://h{}", INSTANCE_ROUTE.replace("{id}", "a-1").replace("{handle}", "ff")),
            instance("https://h", "a-1", "ff")
        );
        assert_eq!(messages_path("a-1", "s"), format!("{}?sessionId=s", MESSAGES_ROUTE.replace("{id}", "a-1")));
        assert_eq!(all["websocket"].replace("time-1", "{id}").split("7460").nth(1), Some(WS_ROUTE));
        assert_eq!(all["sse"].replace("time-1", "{id}").split("7460").nth(1), Some(SSE_ROUTE));
    }
}
