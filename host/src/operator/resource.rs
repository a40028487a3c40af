//! The `McpServer` custom resource (`mcpod.dev/v1alpha1`): a server
//! declared the Kubernetes way, as a template reference or a raw config.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What server to run: exactly one of `template` and `server`.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "mcpod.dev",
    version = "v1alpha1",
    kind = "McpServer",
    namespaced,
    status = "McpServerStatus",
    shortname = "mcps",
    printcolumn = r#"{"name":"Template","type":"string","jsonPath":".spec.template"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoints.streamableHttp"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct McpServerSpec {
    /// A template of the catalog (`mcpod templates list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The template's params.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Env values taken from existing Secrets (a template's secrets, API keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_refs: Vec<SecretRef>,
    /// A raw server config, instead of a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<RawServer>,
    /// A virtual server instead: one endpoint (`/virtual/NAME/mcp`) in
    /// front of these members (servers by id or template).
    #[serde(default, rename = "virtual", skip_serializing_if = "Option::is_none")]
    pub virtual_server: Option<VirtualMembers>,
    /// `per-session` or `shared`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<String>,
    /// Which tools, prompts and resources clients see: allow/deny globs,
    /// renames, descriptions (as `POST /api/v1/servers` takes them).
    #[serde(default, skip_serializing_if = "crate::expose::Expose::is_empty")]
    pub expose: crate::expose::Expose,
}

/// The members of a virtual server declared as an McpServer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMembers {
    /// Its member rules, as `[[virtual]]` members in the host config.
    pub members: Vec<crate::config::MemberSpec>,
}

/// One env value read from a key of an existing Secret.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The env name the server sees (`BRAVE_API_KEY`).
    pub env: String,
    /// The Secret, in the McpServer's namespace.
    pub secret_name: String,
    /// The key in it.
    pub key: String,
}

/// A raw server config, as `POST /api/v1/servers` takes it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RawServer {
    /// The server type: `npx`, `uv`, `archon`, `image` or a plugin's.
    #[serde(rename = "type")]
    pub server_type: String,
    /// The package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The package version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The image (`image` and `archon` types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Plain env values (secrets go through `secretRefs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `stdio`, `streamable-http`, `sse` or `websocket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The port of a network server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The endpoint path of a network server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What mcpod made of an McpServer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpServerStatus {
    /// `Pending`, `Ready`, `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why it is not ready, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard conditions (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Where clients connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// What the server declared (`initialize` and `tools/list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub capabilities: Option<serde_json::Value>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The packages it runs, pinned and verified (`name@1.2.3`, `name==1.2.3`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

/// A condition in the shape of `metav1.Condition`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason.
    pub reason: String,
    /// A sentence.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation it was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The server's endpoints per downstream transport.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// Streamable HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamable_http: Option<String>,
    /// Legacy HTTP+SSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<String>,
    /// WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<String>,
}

fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

impl McpServerSpec {
    /// A problem that makes the spec unusable, if any.
    pub fn problem(&self) -> Option<String> {
        let given = [self.template.is_some(), self.server.is_some(), self.virtual_server.is_some()];
        match given.iter().filter(|g| **g).count() {
            1 => None,
            0 => Some(
                "give spec.template (a catalog template), spec.server (a raw config) or spec.virtual (members)"
                    .to_string(),
            ),
            _ => Some("give only one of spec.template, spec.server and spec.virtual".to_string()),
        }
    }
}
