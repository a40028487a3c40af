//! MCP 2026-07-28, the stateless revision, as pure rules: which era a
//! request belongs to, what its `_meta` and routing headers must say, what
//! an older server must not see, and how results are stamped on the way
//! back. No I/O; `front::stateless` moves the bytes.

use crate::jsonrpc::{Id, Message, raw};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// `_meta` key of a server-to-client request that `upstream::rev_2026_07_28` makes
/// for an `input_required` result: the upstream id of the request that
/// needs the input, so that the mux asks the session that made it. The mux
/// strips it.
pub const META_RELATED: &str = "dev.mcpod/relatedRequest";

/// How the ids of the server requests mcpod makes for a 2026-07-28
/// server's input requests begin; the rest is `N-KEY`.
const INPUT_ID_PREFIX: &str = "mcpod-input-";

/// The id of the server request mcpod makes for input request `key` of a
/// 2026-07-28 server's `input_required` result (the `n`th it made): the key
/// rides in it through the mux, so that a 2026-07-28 client is asked under
/// the server's own key.
pub fn input_request_id(n: u64, key: &str) -> Id {
    Id::Str(format!("{INPUT_ID_PREFIX}{n}-{key}"))
}

/// The input key an id made by [`input_request_id`] carries.
pub fn input_key(id: &Id) -> Option<&str> {
    let Id::Str(s) = id else { return None };
    let (n, key) = s.strip_prefix(INPUT_ID_PREFIX)?.split_once('-')?;
    (n.parse::<u64>().is_ok() && !key.is_empty()).then_some(key)
}

/// The stateless revisions mcpod serves.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];

/// The handshake revisions mcpod serves (and speaks to servers).
pub const HANDSHAKE_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `_meta` key: the request's protocol version.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the client's capabilities.
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: the client's name and version.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key: the lowest log level the client wants (`notifications/message`).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key of results: the server's name and version.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key of listen-stream messages: the listen request's id.
pub const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// Error codes of the revision.
pub mod code {
    /// A routing header is missing or disagrees with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The request needs a client capability the request did not declare.
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// The requested protocol version is not served.
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// Methods the revision removed: a request for one at 2026-07-28 is unknown.
pub const REMOVED_METHODS: [&str; 5] =
    ["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"];

/// Results that carry `ttlMs` and `cacheScope`.
pub const CACHEABLE_METHODS: [&str; 6] =
    ["server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"];

/// Requests whose result may be `input_required`.
pub const INTERACTIVE_METHODS: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];

/// Whether a request belongs to the 2026-07-28 era: its `_meta` claims a
/// version, or its `MCP-Protocol-Version` header names one that is not a
/// handshake version (an unknown version is answered by the modern rules).
pub fn is_modern(msg: &Message, header_version: Option<&str>) -> bool {
    let claimed = msg.params.as_ref().is_some_and(|p| p.get().contains(META_VERSION))
        && msg.params_value().pointer("/_meta").and_then(|m| m.get(META_VERSION)).is_some();
    claimed || header_version.is_some_and(|v| !HANDSHAKE_VERSIONS.contains(&v))
}

/// What a 2026-07-28 request says about its client.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    /// The protocol version.
    pub version: String,
    /// The client's capabilities (`{}` when none).
    pub capabilities: Value,
    /// The log level asked for, if any.
    pub log_level: Option<String>,
}

impl RequestMeta {
    /// Whether the client declared capability `name` (`sampling`, `elicitation`, `roots`).
    pub fn can(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|v| !v.is_null())
    }
}

/// Why a 2026-07-28 request is refused, as the revision's error.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The JSON-RPC error code.
    pub code: i64,
    /// What is wrong and what to do.
    pub message: String,
    /// The error's `data`, if any.
    pub data: Option<Value>,
}

impl Refusal {
    /// A refusal with no `data`.
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> Refusal {
        Refusal { status, code, message: message.into(), data: None }
    }

    /// The error response to request `id`.
    pub fn to_message(&self, id: Option<Id>) -> Message {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            error["data"] = d.clone();
        }
        let mut msg = Message::error_response(id, self.code, &self.message);
        msg.error = Some(raw(&error));
        msg
    }
}

/// Every version mcpod serves on one endpoint, newest first.
pub fn supported_versions() -> Vec<&'static str> {
    MODERN_VERSIONS.iter().chain(HANDSHAKE_VERSIONS.iter()).copied().collect()
}

/// `UnsupportedProtocolVersion` for `requested`, listing every version served.
pub fn unsupported_version(requested: &str) -> Refusal {
    Refusal {
        data: Some(json!({"supported": supported_versions(), "requested": requested})),
        ..Refusal::new(400, code::UNSUPPORTED_VERSION, format!("Unsupported protocol version {requested:?}"))
    }
}

/// Reads the request's `_meta`; a missing required key is invalid params.
pub fn request_meta(msg: &Message) -> Result<RequestMeta, Refusal> {
    let params = msg.params_value();
    let meta = params.get("_meta").and_then(Value::as_object);
    let missing = |key: &str| {
        Refusal::new(
            400,
            crate::jsonrpc::code::INVALID_PARAMS,
            format!("Invalid params: _meta[{key:?}] is required at 2026-07-28"),
        )
    };
    let version =
        meta.and_then(|m| m.get(META_VERSION)).and_then(Value::as_str).ok_or_else(|| missing(META_VERSION))?;
    let capabilities =
        meta.and_then(|m| m.get(META_CAPABILITIES)).cloned().ok_or_else(|| missing(META_CAPABILITIES))?;
    if !capabilities.is_object() {
        return Err(Refusal::new(
            400,
            crate::jsonrpc::code::INVALID_PARAMS,
            format!("Invalid params: _meta[{META_CAPABILITIES:?}] must be an object"),
        ));
    }
    let log_level = meta.and_then(|m| m.get(META_LOG_LEVEL)).and_then(Value::as_str).map(str::to_string);
    Ok(RequestMeta { version: version.to_string(), capabilities, log_level })
}

/// The sentinel a header value is sent in when it cannot ride as it is
/// (`=?base64?…?=`, SEP-2243).
const BASE64_OPEN: &str = "=?base64?";
const BASE64_CLOSE: &str = "?=";

/// Decodes a header value sent as `=?base64?…?=` (for values that are not
/// header-safe); other values are taken as they are. `None`: the sentinel
/// holds no valid base64 of UTF-8 text.
pub fn header_text(value: &str) -> Option<String> {
    use base64::Engine;
    match value.strip_prefix(BASE64_OPEN).and_then(|v| v.strip_suffix(BASE64_CLOSE)) {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(value.to_string()),
    }
}

/// `text` as a header value, the inverse of [`header_text`]: as it is when
/// it can ride as one (printable ASCII, not empty, no space at either end,
/// which HTTP would trim, not starting like the sentinel), else in the
/// base64 sentinel.
pub fn header_value(text: &str) -> String {
    use base64::Engine;
    let plain = !text.is_empty()
        && text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && text.trim() == text
        && !text.starts_with("=?");
    if plain {
        text.to_string()
    } else {
        format!("{BASE64_OPEN}{}{BASE64_CLOSE}", base64::engine::general_purpose::STANDARD.encode(text))
    }
}

/// A routing or mirrored header that disagrees with the body: 400, `-32020`.
fn header_mismatch(what: String) -> Refusal {
    Refusal::new(400, code::HEADER_MISMATCH, format!("Header mismatch: {what}"))
}

/// The routing headers of one request, as sent.
#[derive(Debug, Default, Clone)]
pub struct RoutingHeaders<'a> {
    /// `MCP-Protocol-Version`.
    pub version: Option<&'a str>,
    /// `Mcp-Method`.
    pub method: Option<&'a str>,
    /// `Mcp-Name`.
    pub name: Option<&'a str>,
}

/// The name a request's `Mcp-Name` header must carry, if its method has one.
pub fn routed_name(msg: &Message) -> Option<String> {
    let params = msg.params_value();
    let key = match msg.method() {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Checks that the routing headers agree with the body (`HeaderMismatch`).
pub fn check_headers(msg: &Message, meta: &RequestMeta, h: &RoutingHeaders) -> Result<(), Refusal> {
    let mismatch = header_mismatch;
    match h.version {
        None => return Err(mismatch("the MCP-Protocol-Version header is required".into())),
        Some(v) if v != meta.version => {
            return Err(mismatch(format!("MCP-Protocol-Version {v:?} differs from _meta's {:?}", meta.version)));
        }
        Some(_) => {}
    }
    match h.method.map(header_text) {
        None => return Err(mismatch("the Mcp-Method header is required".into())),
        Some(m) if m.as_deref() != Some(msg.method()) => {
            return Err(mismatch(format!(
                "Mcp-Method {:?} differs from the body's method {:?}",
                h.method.unwrap_or(""),
                msg.method()
            )));
        }
        Some(_) => {}
    }
    if let Some(name) = routed_name(msg) {
        match h.name.map(header_text) {
            None => return Err(mismatch(format!("the Mcp-Name header is required for {}", msg.method()))),
            Some(n) if n.as_deref() != Some(name.as_str()) => {
                return Err(mismatch(format!("Mcp-Name {:?} differs from the body's {name:?}", h.name.unwrap_or(""))));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// How the header mirroring a tool argument is named: `Mcp-Param-` and
/// the argument's `x-mcp-header` (SEP-2243).
pub const PARAM_HEADER_PREFIX: &str = "Mcp-Param-";

/// The arguments of a tool (an entry of a `tools/list` result) that are
/// mirrored into headers: `(argument, header name)`, from the top-level
/// properties of its `inputSchema` that carry `x-mcp-header`.
pub fn param_headers(tool: &Value) -> Vec<(String, String)> {
    let Some(props) = tool.pointer("/inputSchema/properties").and_then(Value::as_object) else { return Vec::new() };
    props
        .iter()
        .filter_map(|(arg, schema)| {
            let name = schema.get("x-mcp-header")?.as_str()?;
            Some((arg.clone(), format!("{PARAM_HEADER_PREFIX}{name}")))
        })
        .collect()
}

/// The text of an argument a header mirrors: a string, number or boolean
/// as written; `None` for an absent or null one (no header) or one that
/// cannot be mirrored.
fn param_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The headers a request to a 2026-07-28 server carries for the arguments
/// `declared` mirrors: plain when the text is printable ASCII without
/// surrounding space, else in the base64 sentinel.
pub fn param_header_values(declared: &[(String, String)], args: &Value) -> Vec<(String, String)> {
    declared
        .iter()
        .filter_map(|(arg, header)| Some((header.clone(), header_value(&param_text(args.get(arg))?))))
        .collect()
}

/// Checks a `tools/call`'s mirrored headers (`header` reads one by name)
/// against its arguments, as a 2026-07-28 server must: each declared
/// argument that is set has its header, each header its argument, the
/// values agree (a value in the base64 sentinel decoded, strictly; any
/// other value taken as it is). Else 400 with `-32020`.
pub fn check_param_headers(
    declared: &[(String, String)],
    args: &Value,
    header: impl Fn(&str) -> Option<String>,
) -> Result<(), Refusal> {
    let mismatch = header_mismatch;
    for (arg, name) in declared {
        let got = header(name).map(|v| v.trim().to_string());
        let want = param_text(args.get(arg));
        let (want, got) = match (want, got) {
            (None, None) => continue,
            (Some(_), None) => {
                return Err(mismatch(format!("argument `{arg}` is set, so the {name} header is required")));
            }
            (None, Some(_)) => return Err(mismatch(format!("the {name} header is sent without its argument `{arg}`"))),
            (Some(w), Some(g)) => (w, g),
        };
        let decoded = header_text(&got)
            .ok_or_else(|| mismatch(format!("the {name} header's base64 value is not valid base64 of UTF-8 text")))?;
        if decoded != want {
            return Err(mismatch(format!("the {name} header differs from argument `{arg}`")));
        }
    }
    Ok(())
}

/// The request as the server must see it: without a `requestState` (a
/// state is mcpod's own, kept for the parked request it names), and for a
/// handshake-era server (`modern` false) without the revision's `_meta`
/// keys and input responses; a 2026-07-28 server gets the client's own
/// envelope, and input responses sent without a state to judge for itself.
pub fn for_server(msg: &Message, modern: bool) -> Message {
    let mut out = msg.clone();
    let Some(params) = &msg.params else { return out };
    let text = params.get();
    let strip_meta = !modern && text.contains("io.modelcontextprotocol/");
    let strip_responses = !modern && text.contains("inputResponses");
    if !strip_meta && !strip_responses && !text.contains("requestState") {
        return out;
    }
    let mut value = msg.params_value();
    if let Some(obj) = value.as_object_mut() {
        if !modern {
            obj.remove("inputResponses");
        }
        obj.remove("requestState");
        let empty = match obj.get_mut("_meta").and_then(Value::as_object_mut).filter(|_| !modern) {
            Some(meta) => {
                meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
                meta.is_empty()
            }
            None => false,
        };
        if empty {
            obj.remove("_meta");
        }
    }
    out.params = Some(raw(&value));
    out
}

/// The retry fields of a request: its input responses and request state.
pub fn retry_fields(msg: &Message) -> (Option<Map<String, Value>>, Option<String>) {
    let params = msg.params_value();
    let responses = params.get("inputResponses").and_then(Value::as_object).cloned();
    let state = params.get("requestState").and_then(Value::as_str).map(str::to_string);
    (responses, state)
}

/// How long a client may cache list results mcpod passes on, and for whom:
/// mcpod cannot know when a server's lists change, so immediately stale and
/// private (the revision's safe default).
pub const CACHE: (u64, &str) = (0, "private");

/// Stamps a server's result for a 2026-07-28 client: `resultType`, the
/// caching fields on cacheable methods, and the server's info in `_meta`.
/// A tool whose `inputSchema` lacks its required `"type": "object"` (older
/// servers built on a mismatched zod-to-json-schema emit only `$schema`)
/// gets it, since the 2.x SDKs refuse the whole list otherwise.
pub fn stamp_result(method: &str, result: &RawValue, server_info: Option<&Value>) -> Box<RawValue> {
    let mut value: Value = serde_json::from_str(result.get()).unwrap_or_else(|_| json!({}));
    if let Some(obj) = value.as_object_mut() {
        if method == "tools/list" {
            let tools = obj.get_mut("tools").and_then(Value::as_array_mut).into_iter().flatten();
            for schema in tools.filter_map(|t| t.get_mut("inputSchema")?.as_object_mut()) {
                schema.entry("type").or_insert_with(|| json!("object"));
            }
        }
        obj.entry("resultType").or_insert_with(|| json!("complete"));
        if CACHEABLE_METHODS.contains(&method) {
            obj.entry("ttlMs").or_insert_with(|| json!(CACHE.0));
            obj.entry("cacheScope").or_insert_with(|| json!(CACHE.1));
        }
        if let Some(info) = server_info {
            let meta = obj.entry("_meta").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                m.entry(META_SERVER_INFO).or_insert_with(|| info.clone());
            }
        }
    }
    raw(&value)
}

/// The 2025 revisions' "resource not found" error code, which 2026-07-28
/// (SEP-2164) replaced with invalid params naming the URI.
const RESOURCE_NOT_FOUND_2025: i64 = -32002;

/// An error answer as a 2026-07-28 client expects it: a `resources/read`
/// of an unknown resource is invalid params (not the 2025 `-32002`) and
/// names the `uri` in its `data`.
pub fn stamp_error(method: &str, error: &RawValue, uri: Option<&Value>) -> Box<RawValue> {
    let mut value: Value = serde_json::from_str(error.get()).unwrap_or_else(|_| json!({}));
    let code = value.get("code").and_then(Value::as_i64);
    // mcpod's own limit error shares -32002: only an error saying "not found" is one.
    let not_found =
        value.get("message").and_then(Value::as_str).is_some_and(|m| m.to_lowercase().contains("not found"));
    if method == "resources/read"
        && not_found
        && let (Some(uri), Some(obj)) = (uri, value.as_object_mut())
        && matches!(code, Some(RESOURCE_NOT_FOUND_2025) | Some(crate::jsonrpc::code::INVALID_PARAMS))
    {
        obj.insert("code".into(), json!(crate::jsonrpc::code::INVALID_PARAMS));
        let data = obj.entry("data").or_insert_with(|| json!({}));
        match data.as_object_mut() {
            Some(d) => {
                d.entry("uri").or_insert_with(|| uri.clone());
            }
            // A `data` that is not an object is kept, under `detail`.
            None => *data = json!({"uri": uri, "detail": data.clone()}),
        }
    }
    raw(&value)
}

/// The HTTP status a JSON answer carrying error `code` gets at 2026-07-28:
/// 404 for an unknown method, 400 for a missing client capability, else 200.
pub fn status_of_error(code: i64) -> u16 {
    match code {
        crate::jsonrpc::code::METHOD_NOT_FOUND => 404,
        code::MISSING_CAPABILITY => 400,
        _ => 200,
    }
}

/// The error answering a request that needs client capability `cap`, which
/// the request did not declare (`-32021`, `data.requiredCapabilities`).
pub fn missing_capability(cap: &str, method: &str) -> Refusal {
    let mut required = Map::new();
    required.insert(cap.to_string(), json!({}));
    Refusal {
        status: 400,
        code: code::MISSING_CAPABILITY,
        message: format!(
            "Missing required client capability: the server needs `{cap}` ({method}) to answer this request; \
             declare it in _meta io.modelcontextprotocol/clientCapabilities and send the request again"
        ),
        data: Some(json!({ "requiredCapabilities": required })),
    }
}

/// What mcpod can honour of a handshake-era server's capabilities for a
/// 2026-07-28 client: resource subscriptions go through `subscriptions/listen`.
pub fn modern_capabilities(server: &Value) -> Value {
    let mut caps = server.clone();
    if let Some(obj) = caps.as_object_mut() {
        // Tasks left the core protocol in 2026-07-28.
        obj.remove("tasks");
    }
    caps
}

/// The `server/discover` result for a server whose `initialize` result is `init`.
pub fn discover_result(init: &Value) -> Value {
    let mut out = json!({
        "resultType": "complete",
        "supportedVersions": supported_versions(),
        "capabilities": modern_capabilities(init.get("capabilities").unwrap_or(&json!({}))),
        "ttlMs": CACHE.0,
        "cacheScope": CACHE.1,
    });
    if let Some(i) = init.get("instructions").filter(|i| i.is_string()) {
        out["instructions"] = i.clone();
    }
    if let Some(info) = init.get("serverInfo") {
        out["_meta"] = json!({ META_SERVER_INFO: info });
    }
    out
}

/// An `input_required` result asking the client for `requests` (key → server request).
pub fn input_required(requests: &[(String, &Message)], state: &str) -> Value {
    let mut input = Map::new();
    for (key, req) in requests {
        let mut r = json!({"method": req.method()});
        if req.params.is_some() {
            r["params"] = req.params_value();
        }
        input.insert(key.clone(), r);
    }
    json!({"resultType": "input_required", "inputRequests": input, "requestState": state})
}

/// What of `asked` (a `subscriptions/listen` filter) a server with
/// capabilities `caps` can deliver.
pub fn honored_filter(asked: &Value, caps: &Value) -> Value {
    let mut out = Map::new();
    for (flag, cap) in
        [("toolsListChanged", "tools"), ("promptsListChanged", "prompts"), ("resourcesListChanged", "resources")]
    {
        if asked.get(flag) == Some(&Value::Bool(true))
            && caps.pointer(&format!("/{cap}/listChanged")) == Some(&Value::Bool(true))
        {
            out.insert(flag.to_string(), Value::Bool(true));
        }
    }
    if let Some(uris) = asked.get("resourceSubscriptions").and_then(Value::as_array)
        && caps.pointer("/resources/subscribe") == Some(&Value::Bool(true))
        && !uris.is_empty()
    {
        out.insert("resourceSubscriptions".to_string(), Value::Array(uris.clone()));
    }
    Value::Object(out)
}

/// Whether a server notification belongs on a listen stream with `filter`.
pub fn wanted_on_listen(msg: &Message, filter: &Value) -> bool {
    let flag = |f: &str| filter.get(f) == Some(&Value::Bool(true));
    match msg.method() {
        "notifications/tools/list_changed" => flag("toolsListChanged"),
        "notifications/prompts/list_changed" => flag("promptsListChanged"),
        "notifications/resources/list_changed" => flag("resourcesListChanged"),
        "notifications/resources/updated" => {
            let uri = msg.params_value().get("uri").cloned();
            filter
                .get("resourceSubscriptions")
                .and_then(Value::as_array)
                .is_some_and(|u| uri.is_some_and(|uri| u.contains(&uri)))
        }
        _ => false,
    }
}

/// `msg` tagged with the listen request it is delivered for.
pub fn tag_subscription(msg: &Message, listen_id: &Id) -> Message {
    let mut params = msg.params_value();
    if !params.is_object() {
        params = json!({});
    }
    params["_meta"][META_SUBSCRIPTION] = serde_json::to_value(listen_id).unwrap_or(Value::Null);
    let mut out = msg.clone();
    out.params = Some(raw(&params));
    out
}

/// The client capability a server-to-client request needs.
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, params: Value) -> Message {
        Message::parse(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()).unwrap()
    }

    fn modern_meta() -> Value {
        json!({META_VERSION: "2026-07-28", META_CAPABILITIES: {"sampling": {}}, META_CLIENT_INFO: {"name": "t", "version": "1"}})
    }

    #[test]
    fn the_era_comes_from_the_body_claim_or_an_unknown_header_version() {
        let modern = request("tools/list", json!({"_meta": modern_meta()}));
        assert!(is_modern(&modern, None));
        let old = request("tools/list", json!({}));
        assert!(!is_modern(&old, None));
        assert!(!is_modern(&old, Some("2025-11-25")));
        assert!(is_modern(&old, Some("2026-07-28")));
        assert!(is_modern(&old, Some("2031-01-01")), "unknown versions get the modern error");
        let init = request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}),
        );
        assert!(!is_modern(&init, None));
    }

    #[test]
    fn meta_keys_are_required_and_read() {
        let meta = request_meta(&request("tools/list", json!({"_meta": modern_meta()}))).unwrap();
        assert_eq!(meta.version, "2026-07-28");
        assert!(meta.can("sampling") && !meta.can("elicitation"));
        let err = request_meta(&request("tools/list", json!({"_meta": {META_VERSION: "2026-07-28"}}))).unwrap_err();
        assert_eq!((err.status, err.code), (400, -32602));
        assert!(err.message.contains("clientCapabilities"), "{}", err.message);
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let msg = request("tools/call", json!({"name": "echo", "_meta": modern_meta()}));
        let meta = request_meta(&msg).unwrap();
        let ok = RoutingHeaders { version: Some("2026-07-28"), method: Some("tools/call"), name: Some("echo") };
        assert_eq!(check_headers(&msg, &meta, &ok), Ok(()));
        let encoded = RoutingHeaders { name: Some("=?base64?ZWNobw==?="), ..ok.clone() };
        assert_eq!(check_headers(&msg, &meta, &encoded), Ok(()), "base64 header values are decoded");
        for bad in [
            RoutingHeaders { version: None, ..ok.clone() },
            RoutingHeaders { version: Some("2025-11-25"), ..ok.clone() },
            RoutingHeaders { method: None, ..ok.clone() },
            RoutingHeaders { method: Some("tools/list"), ..ok.clone() },
            RoutingHeaders { name: None, ..ok.clone() },
            RoutingHeaders { name: Some("add"), ..ok.clone() },
        ] {
            let err = check_headers(&msg, &meta, &bad).unwrap_err();
            assert_eq!((err.status, err.code), (400, code::HEADER_MISMATCH), "{bad:?}");
        }
        let list = request("tools/list", json!({"_meta": modern_meta()}));
        let no_name = RoutingHeaders { version: Some("2026-07-28"), method: Some("tools/list"), name: None };
        assert_eq!(check_headers(&list, &meta, &no_name), Ok(()), "tools/list has no Mcp-Name");
    }

    #[test]
    fn an_old_server_sees_no_modern_meta_nor_retry_fields() {
        let mut meta = modern_meta();
        meta["progressToken"] = json!("p1");
        let msg = request(
            "tools/call",
            json!({"name": "echo", "arguments": {"a": 1}, "_meta": meta, "inputResponses": {"k": {}}, "requestState": "s"}),
        );
        let old = for_server(&msg, false);
        assert_eq!(
            old.params_value(),
            json!({"name": "echo", "arguments": {"a": 1}, "_meta": {"progressToken": "p1"}})
        );
        let bare = for_server(&request("tools/list", json!({"_meta": modern_meta()})), false);
        assert_eq!(bare.params_value(), json!({}));
        let (responses, state) = retry_fields(&msg);
        assert_eq!((responses.map(|r| r.len()), state.as_deref()), (Some(1), Some("s")));
    }

    #[test]
    fn results_are_stamped_and_discover_answers_from_initialize() {
        let info = json!({"name": "srv", "version": "1"});
        let tools = stamp_result("tools/list", &raw(&json!({"tools": []})), Some(&info));
        let v: Value = serde_json::from_str(tools.get()).unwrap();
        assert_eq!(
            (v["resultType"].clone(), v["ttlMs"].clone(), v["cacheScope"].clone()),
            (json!("complete"), json!(0), json!("private"))
        );
        assert_eq!(v["_meta"][META_SERVER_INFO], info);
        let broken = json!({"tools": [{"name": "a", "inputSchema": {"$schema": "http://json-schema.org/draft-07/schema#"}},
            {"name": "b", "inputSchema": {"type": "object", "properties": {"x": {}}}}]});
        let v: Value = serde_json::from_str(stamp_result("tools/list", &raw(&broken), None).get()).unwrap();
        assert_eq!(v["tools"][0]["inputSchema"]["type"], "object", "the missing type is filled in");
        assert_eq!(v["tools"][1]["inputSchema"], broken["tools"][1]["inputSchema"], "a whole schema is left as it is");
        let call = stamp_result("tools/call", &raw(&json!({"content": []})), None);
        let v: Value = serde_json::from_str(call.get()).unwrap();
        assert!(v.get("ttlMs").is_none() && v["resultType"] == "complete");
        let d = discover_result(
            &json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}, "tasks": {}}, "serverInfo": info, "instructions": "be kind"}),
        );
        assert_eq!(d["supportedVersions"], json!(supported_versions()), "what -32022 lists too");
        assert_eq!(d["supportedVersions"][0], "2026-07-28");
        assert_eq!(d["capabilities"], json!({"tools": {}}));
        assert_eq!(d["instructions"], "be kind");
        assert_eq!(d["_meta"][META_SERVER_INFO]["name"], "srv");
        let err = unsupported_version("1999-01-01");
        assert_eq!(err.code, -32022);
        assert_eq!(err.data.unwrap()["supported"][0], "2026-07-28");
    }

    #[test]
    fn listen_filters_are_honored_as_far_as_the_server_can() {
        let caps = json!({"tools": {"listChanged": true}, "prompts": {}, "resources": {"subscribe": true}});
        let asked =
            json!({"toolsListChanged": true, "promptsListChanged": true, "resourceSubscriptions": ["file:///a"]});
        let honored = honored_filter(&asked, &caps);
        assert_eq!(honored, json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]}));
        let n = |t: &str| Message::parse(t).unwrap();
        assert!(wanted_on_listen(&n(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#), &honored));
        assert!(!wanted_on_listen(&n(r#"{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}"#), &honored));
        assert!(wanted_on_listen(
            &n(r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}"#),
            &honored
        ));
        assert!(!wanted_on_listen(
            &n(r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///b"}}"#),
            &honored
        ));
        assert!(
            !wanted_on_listen(&n(r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#), &honored),
            "logs never go there"
        );
        let tagged =
            tag_subscription(&n(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#), &Id::Num(7));
        assert_eq!(tagged.params_value()["_meta"][META_SUBSCRIPTION], 7);
    }

    #[test]
    fn server_requests_become_input_requests() {
        let sampling = Message::parse(
            &json!({"jsonrpc": "2.0", "id": "s-1", "method": "sampling/createMessage", "params": {"maxTokens": 5}})
                .to_string(),
        )
        .unwrap();
        let v = input_required(&[("sampling-1".into(), &sampling)], "state-x");
        assert_eq!(
            v,
            json!({"resultType": "input_required", "inputRequests": {"sampling-1": {"method": "sampling/createMessage", "params": {"maxTokens": 5}}}, "requestState": "state-x"})
        );
        assert_eq!(capability_for("elicitation/create"), Some("elicitation"));
        assert_eq!(capability_for("ping"), None);
    }

    #[test]
    fn a_modern_server_gets_the_clients_own_envelope_and_input_but_not_mcpods_state() {
        let msg = request(
            "tools/call",
            json!({"name": "echo", "_meta": modern_meta(), "inputResponses": {"k": {}}, "requestState": "s"}),
        );
        assert_eq!(
            for_server(&msg, true).params_value(),
            json!({"name": "echo", "_meta": modern_meta(), "inputResponses": {"k": {}}})
        );
        let plain = request("tools/list", json!({"_meta": modern_meta()}));
        assert_eq!(for_server(&plain, true).params_value(), plain.params_value(), "nothing to strip: unchanged");
    }

    #[test]
    fn an_input_key_rides_in_the_id_of_the_server_request_made_for_it() {
        let id = input_request_id(7, "user_name");
        assert_eq!(input_key(&id), Some("user_name"));
        assert_eq!(input_key(&input_request_id(1, "a-b")), Some("a-b"), "a key may hold dashes");
        for other in
            [Id::Num(3), Id::Str("mcpod-input-x-key".into()), Id::Str("mcpod-input-4-".into()), Id::Str("s-1".into())]
        {
            assert_eq!(input_key(&other), None, "{other}");
        }
    }

    #[test]
    fn an_unknown_resource_is_invalid_params_naming_its_uri() {
        let uri = json!("file:///nope");
        let old = raw(&json!({"code": -32002, "message": "Resource not found"}));
        let v: Value = serde_json::from_str(stamp_error("resources/read", &old, Some(&uri)).get()).unwrap();
        assert_eq!(v, json!({"code": -32602, "message": "Resource not found", "data": {"uri": "file:///nope"}}));
        // A data that is not an object is kept beside the URI.
        let odd = raw(&json!({"code": -32602, "message": "not found", "data": "x"}));
        let v: Value = serde_json::from_str(stamp_error("resources/read", &odd, Some(&uri)).get()).unwrap();
        assert_eq!(v["data"], json!({"uri": "file:///nope", "detail": "x"}));
        // mcpod's own limit error (also -32002), and other methods, are left alone.
        let limit = raw(&json!({"code": -32002, "message": "too many requests in flight"}));
        assert_eq!(stamp_error("resources/read", &limit, Some(&uri)).get(), limit.get());
        assert_eq!(stamp_error("tools/call", &old, Some(&uri)).get(), old.get());
    }

    #[test]
    fn a_missing_capability_is_named_as_a_capabilities_object_under_400() {
        let r = missing_capability("sampling", "sampling/createMessage");
        assert_eq!((r.status, r.code), (400, code::MISSING_CAPABILITY));
        assert_eq!(r.data, Some(json!({"requiredCapabilities": {"sampling": {}}})));
        assert_eq!(status_of_error(code::MISSING_CAPABILITY), 400);
        assert_eq!(status_of_error(crate::jsonrpc::code::METHOD_NOT_FOUND), 404);
        assert_eq!(status_of_error(crate::jsonrpc::code::INTERNAL_ERROR), 200);
    }

    #[test]
    fn mirrored_arguments_are_checked_against_their_headers_as_sep_2243_asks() {
        let tool = json!({"name": "t", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"}, "n": {"type": "integer", "x-mcp-header": "N"},
            "other": {"type": "string"}}}});
        let mut declared = param_headers(&tool);
        declared.sort();
        assert_eq!(declared, [("n".into(), "Mcp-Param-N".into()), ("region".into(), "Mcp-Param-Region".into())]);
        let check = |args: Value, headers: &[(&str, &str)]| {
            let found =
                |name: &str| headers.iter().find(|(h, _)| h.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string());
            check_param_headers(&declared, &args, found).map_err(|r| (r.status, r.code))
        };
        let bad = Err((400, code::HEADER_MISMATCH));
        assert_eq!(
            check(json!({"region": "eu", "n": 3}), &[("Mcp-Param-Region", " eu "), ("mcp-param-n", "3")]),
            Ok(())
        );
        assert_eq!(check(json!({"region": "Hello"}), &[("Mcp-Param-Region", "=?base64?SGVsbG8=?=")]), Ok(()));
        assert_eq!(check(json!({"region": "Hello"}), &[("Mcp-Param-Region", "=?base64?SGVsbG8?=")]), bad, "padding");
        assert_eq!(check(json!({"region": "Hello"}), &[("Mcp-Param-Region", "=?base64?SGVs!!!bG8=?=")]), bad);
        assert_eq!(check(json!({"region": "SGVsbG8="}), &[("Mcp-Param-Region", "SGVsbG8=")]), Ok(()), "literal");
        assert_eq!(check(json!({"region": "=?base64?SGVsbG8="}), &[("Mcp-Param-Region", "=?base64?SGVsbG8=")]), Ok(()));
        assert_eq!(check(json!({"region": "eu"}), &[]), bad, "the header is required when the argument is set");
        assert_eq!(check(json!({"region": "eu"}), &[("Mcp-Param-Region", "us")]), bad);
        assert_eq!(check(json!({}), &[("Mcp-Param-Region", "us")]), bad, "a header without its argument");
        assert_eq!(check(json!({"region": null, "other": "x"}), &[]), Ok(()), "null is not mirrored");
    }

    #[test]
    fn arguments_are_mirrored_plain_or_in_the_base64_sentinel_and_check_back() {
        let declared = vec![("a".to_string(), "Mcp-Param-A".to_string()), ("b".to_string(), "Mcp-Param-B".to_string())];
        for args in [
            json!({"a": "plain", "b": true}),
            json!({"a": " spaced", "b": 1.5}),
            json!({"a": "héllo", "b": "=?base64?x"}),
        ] {
            let headers = param_header_values(&declared, &args);
            assert_eq!(headers.len(), 2, "{args}");
            assert!(headers.iter().all(|(_, v)| v.bytes().all(|b| (0x20..0x7f).contains(&b))), "{headers:?}");
            let found = |name: &str| headers.iter().find(|(h, _)| h == name).map(|(_, v)| v.clone());
            assert!(check_param_headers(&declared, &args, found).is_ok(), "{args} {headers:?}");
        }
        assert_eq!(param_header_values(&declared, &json!({"a": "plain"})), [("Mcp-Param-A".into(), "plain".into())]);
    }
}
