//! How to run one server, as the host holds it. A server-type plugin
//! answers `launch` in WIT types; `plugin::kinds::server_type` converts that
//! answer into these at the plugin boundary, and the manager, the policy and
//! the runtimes use only these, so a change to the WIT stops at the
//! boundary instead of rippling through the host.

/// The MCP transport a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// JSON-RPC lines on stdin and stdout.
    Stdio,
    /// Streamable HTTP (one endpoint, POST and GET).
    StreamableHttp,
    /// The legacy HTTP+SSE transport (an event stream and a POST endpoint).
    Sse,
    /// JSON-RPC over a WebSocket.
    Websocket,
}

impl Transport {
    /// The name requests and responses use: `stdio`, `streamable-http`, `sse`, `websocket`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::StreamableHttp => "streamable-http",
            Transport::Sse => "sse",
            Transport::Websocket => "websocket",
        }
    }

    /// True for every transport but stdio: the server listens on a port.
    pub fn is_network(self) -> bool {
        self != Transport::Stdio
    }
}

/// One environment variable of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// True if the value is a secret (never logged; a Secret in Kubernetes).
    pub secret: bool,
}

/// How to tell that the server is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// It answers MCP `initialize`.
    McpInitialize,
    /// An HTTP GET of this path succeeds.
    HttpGet(String),
    /// Its port accepts a connection.
    TcpOpen,
}

/// CPU and memory wishes, in Kubernetes quantities (`250m`, `256Mi`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceHints {
    /// CPU request.
    pub cpu_request: Option<String>,
    /// CPU limit.
    pub cpu_limit: Option<String>,
    /// Memory request.
    pub memory_request: Option<String>,
    /// Memory limit.
    pub memory_limit: Option<String>,
}

/// How to run the server as a Kubernetes container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLaunch {
    /// The image, pinned by tag or digest.
    pub image: String,
    /// The container's command (entrypoint and its arguments).
    pub command: Vec<String>,
}

/// How to run the server as a process on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLaunch {
    /// The program and its arguments, as an argv (never run through a shell).
    pub command: Vec<String>,
}

/// Everything a runtime needs to start one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// How to run it in a Kubernetes pod; `None` if the type cannot run there.
    pub container: Option<ContainerLaunch>,
    /// How to run it as a local process; `None` if the type cannot run locally.
    pub process: Option<ProcessLaunch>,
    /// Environment variables, with secret values marked.
    pub env: Vec<EnvVar>,
    /// The working directory, if the server needs one.
    pub working_dir: Option<String>,
    /// The transport the server speaks.
    pub transport: Transport,
    /// For network transports: the port the server listens on.
    pub port: Option<u16>,
    /// For network transports: the path of the MCP endpoint (`/mcp`, `/sse`);
    /// for a server that runs elsewhere (no container, no process), its URL.
    pub path: Option<String>,
    /// How to tell that the server is ready.
    pub readiness: Readiness,
    /// CPU and memory wishes.
    pub resources: ResourceHints,
    /// True if the server needs to reach the internet (package downloads, remote APIs).
    pub network_access: bool,
}

impl LaunchSpec {
    /// The URL of a server that runs elsewhere: a launch with neither a
    /// process nor a container whose `path` is an absolute `http`/`https`
    /// URL (what the `remote` server type answers). `None` for a launch
    /// that starts something.
    pub fn remote_url(&self) -> Option<url::Url> {
        if self.process.is_some() || self.container.is_some() {
            return None;
        }
        let url = url::Url::parse(self.path.as_deref()?).ok()?;
        matches!(url.scheme(), "http" | "https").then_some(url)
    }
}
