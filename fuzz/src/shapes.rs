//! Parsers and builders of one input: the JSON-RPC envelope, the
//! 2026-07-28 rules, the host config, `server.json`, package names, and
//! the Kubernetes objects built from a launch.

use crate::script::Script;
use mcpod::jsonrpc::{IdField, Message};
use mcpod::launch::{ContainerLaunch, EnvVar, LaunchSpec, ProcessLaunch, Readiness, ResourceHints, Transport};
use mcpod::rev_2026_07_28 as rev;
use mcpod::runtime::LaunchRequest;
use mcpod::runtime::kube::spec::{self, PodSettings};
use serde_json::Value;
use std::collections::BTreeMap;

/// Fuzz target `jsonrpc_envelope`: one message or a batch, as a client
/// or server sends it. What parses writes back to text that parses to the
/// same message (ids byte for byte, params as sent); what does not parse
/// gets an error a client can be shown.
pub fn jsonrpc_envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = Message::parse(text) {
        let written = msg.to_text();
        let again = Message::parse(&written).unwrap_or_else(|e| panic!("{written} does not parse again: {e:?}"));
        assert_eq!(again.id, msg.id, "the id changed on the way through: {written}");
        assert_eq!(again.method, msg.method);
        assert_eq!(again.kind(), msg.kind());
        let text_of = |m: &Message| [&m.params, &m.result, &m.error].map(|p| p.as_ref().map(|r| r.get().to_string()));
        assert_eq!(text_of(&again), text_of(&msg), "params, result or error changed on the way through");
        if let IdField::Value(id) = &msg.id {
            let answer = Message::error_response(Some(id.clone()), -32600, "x").to_text();
            let answered =
                Message::parse(&answer).unwrap_or_else(|e| panic!("an error answer {answer} is invalid: {e:?}"));
            assert_eq!(&answered.id, &msg.id, "an answer does not carry the request's id byte for byte");
        }
    }
    match Message::parse_batch(text) {
        Ok((msgs, batch)) => assert!(!msgs.is_empty() && (batch || msgs.len() == 1)),
        Err(e) => {
            assert!(matches!(e.code(), -32700 | -32600), "a refusal's code is {}", e.code());
            assert!(!e.client_message().is_empty());
        }
    }
}

/// Fuzz target `rev_2026_07_28`: a request as a 2026-07-28 client sends
/// it, with its routing headers. Nothing panics; what reaches a
/// handshake-era server carries none of the revision's own fields and
/// keeps its method and id; a result stamped for a modern client says its
/// type.
pub fn rev_2026_07_28(data: &[u8]) {
    let mut s = Script::new(data);
    let version = s.text();
    let method = s.text();
    let name = s.text();
    let Ok(msg) = Message::parse(&s.rest_text()) else { return };
    let header = (!version.is_empty()).then_some(version.as_str());
    let _ = rev::is_modern(&msg, header);
    if let Ok(meta) = rev::request_meta(&msg) {
        let _ = meta.can("sampling");
        let h = rev::RoutingHeaders {
            version: header,
            method: (!method.is_empty()).then_some(method.as_str()),
            name: (!name.is_empty()).then_some(name.as_str()),
        };
        if rev::check_headers(&msg, &meta, &h).is_ok() {
            assert_eq!(h.version, Some(meta.version.as_str()), "a request passed with a version header that differs");
        }
    }
    let old = rev::for_server(&msg, false);
    assert_eq!((&old.id, &old.method), (&msg.id, &msg.method), "the request changed its id or method");
    let params = old.params_value();
    if params.is_object() {
        assert!(params.get("inputResponses").is_none() && params.get("requestState").is_none());
        let meta_keys = params.get("_meta").and_then(Value::as_object).map(|m| m.keys().cloned().collect::<Vec<_>>());
        for key in meta_keys.unwrap_or_default() {
            assert!(!key.starts_with("io.modelcontextprotocol/"), "{key} reached a handshake-era server");
        }
    }
    let modern = rev::for_server(&msg, true);
    assert_eq!((&modern.id, &modern.method), (&msg.id, &msg.method), "the request changed its id or method");
    if modern.params_value().is_object() {
        assert!(modern.params_value().get("requestState").is_none(), "mcpod's state reached the server");
    }
    let _ = rev::retry_fields(&msg);
    for field in [&msg.params, &msg.result].into_iter().flatten() {
        let stamped = rev::stamp_result(msg.method(), field, None);
        let v: Value =
            serde_json::from_str(stamped.get()).unwrap_or_else(|e| panic!("a stamped result is not JSON: {e}"));
        assert!(!v.is_object() || v.get("resultType").is_some(), "a stamped result lacks resultType");
        let _ = rev::discover_result(&v);
    }
}

/// Fuzz target `host_config`: the host's TOML config. Nothing panics, and
/// a config that is accepted keeps its limits.
pub fn host_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new("/fuzz/mcpod.toml");
    let Ok(mut config) = mcpod::config::Config::parse(text, path) else { return };
    if config.validate().is_ok() {
        let _ = config.limits.connection_limits();
    }
    let env = |name: &str| (name == "MCP_SERVER_MEMORY_LIMIT").then(|| text.chars().take(8).collect());
    let _ = config.apply_env(env);
}

/// Fuzz target `server_json`: an MCP Registry `server.json` document,
/// turned into a template and rendered with parameters and secrets.
pub fn server_json(data: &[u8]) {
    use mcpod_catalog_builtin::server_json::{ServerJson, render, to_entry};
    use mcpod_plugin_sdk::template_catalog::KeyValue;
    let mut s = Script::new(data);
    let pairs: Vec<KeyValue> = (0..s.byte() % 4).map(|_| KeyValue { key: s.text(), value: s.text() }).collect();
    let Ok(doc) = serde_json::from_str::<ServerJson>(&s.rest_text()) else { return };
    let Ok(entry) = to_entry(&doc) else { return };
    let (params, secrets) = pairs.split_at(pairs.len() / 2);
    let _ = render(&entry, params, secrets);
}

/// Fuzz target `package_names`: what a caller may name as a package,
/// version, image, argument, env var or path. Whatever is accepted is not
/// a flag, holds no control character or shell metacharacter.
pub fn package_names(data: &[u8]) {
    use mcpod_package_names as names;
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Version ranges may hold `|`, `<` and `>` (`^1 || >=2 <3`); no accepted
    // input holds what starts a command or expands in any shell.
    let looks_safe = |what: &str| {
        assert!(!text.trim_start().starts_with('-'), "the {what} {text:?} was accepted but reads as a flag");
        assert!(!text.chars().any(char::is_control), "the {what} {text:?} was accepted with a control character");
        assert!(!text.contains(['`', '$', ';', '&', '\\']), "the {what} {text:?} holds a shell metacharacter");
    };
    if names::check_npm_name(text).is_ok() {
        looks_safe("npm name");
        assert!(!text.contains(['|', '<', '>']), "the npm name {text:?} holds a shell metacharacter");
        assert!(!text.contains(char::is_whitespace) && text.len() <= 214);
    }
    if names::check_npm_version(text).is_ok() {
        looks_safe("npm version");
    }
    if names::check_pypi_name(text).is_ok() {
        looks_safe("PyPI name");
        let once = names::normalize_pypi_name(text);
        assert_eq!(names::normalize_pypi_name(&once), once, "normalizing a PyPI name twice changes it");
        assert!(names::check_pypi_name(&once).is_ok(), "the normal form {once:?} of {text:?} is refused");
    }
    if names::check_pep440(text).is_ok() {
        looks_safe("PEP 440 spec");
    }
    if names::check_image(text).is_ok() {
        looks_safe("image");
        assert!(!text.contains(char::is_whitespace) && !text.contains("://"));
        if let Some((_, digest)) = text.split_once('@') {
            let hex = digest.strip_prefix("sha256:").unwrap_or_else(|| panic!("{text:?}: a digest that is not sha256"));
            assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{text:?}: a malformed digest");
        }
    }
    if names::check_arg(text).is_ok() {
        assert!(!text.contains('\0'));
    }
    if names::check_env_name(text).is_ok() {
        assert!(!text.is_empty() && !text.contains(['=', '\0']), "the env name {text:?} was accepted");
        let upper = text.to_ascii_uppercase();
        let loaders = ["LD_PRELOAD", "LD_LIBRARY_PATH", "NODE_OPTIONS", "PATH", "BASH_ENV", "PYTHONSTARTUP"];
        assert!(!loaders.contains(&upper.as_str()), "the env name {text:?} changes what code runs");
    }
    if names::check_path(text).is_ok() {
        assert!(text.starts_with('/') && !text.contains(char::is_whitespace), "the path {text:?} was accepted");
    }
}

/// Whether `name` is a DNS-1123 label (what a pod name must be).
fn is_dns_label(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&name.len())
        && name.chars().all(|c| ok(c) || c == '-')
        && name.starts_with(ok)
        && name.ends_with(ok)
}

/// Whether `v` is a Kubernetes label value.
fn is_label_value(v: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| ok(c) || matches!(c, '-' | '_' | '.'))
            && v.starts_with(ok)
            && v.ends_with(ok))
}

/// Fuzz target `kube_spec`: the pod built from a launch. Its name is a
/// DNS label, its labels are label values, it runs restricted whatever
/// the launch asks, and a secret's value is never written into it.
pub fn kube_spec(data: &[u8]) {
    let mut s = Script::new(data);
    let settings = PodSettings {
        namespace: s.text(),
        instance: s.text(),
        run_as_user: i64::from(s.byte()) * 1000,
        image_pull_policy: "IfNotPresent".to_string(),
        termination_grace_secs: 5,
        exec_bridge: s.one_in(2),
        internet_access: s.one_in(2),
        host_pod_labels: BTreeMap::new(),
        package_env: vec![("npm_config_registry".to_string(), s.text())],
    };
    let server_id = s.text();
    let instance_id = s.text();
    let transport = *s.pick(&[Transport::Stdio, Transport::StreamableHttp, Transport::Sse, Transport::Websocket]);
    let env: Vec<EnvVar> =
        (0..s.byte() % 4).map(|_| EnvVar { name: s.text(), value: s.text(), secret: s.one_in(2) }).collect();
    let command: Vec<String> = (0..s.byte() % 4).map(|_| s.text()).collect();
    let template = s.text();
    let port = s.byte();
    let req = LaunchRequest {
        server_id,
        instance_id,
        spec: LaunchSpec {
            container: Some(ContainerLaunch { image: s.text(), command: command.clone() }),
            process: Some(ProcessLaunch { command }),
            env,
            working_dir: None,
            transport,
            port: (port > 0).then_some(u16::from(port) + 1000),
            path: Some(s.text()),
            readiness: Readiness::McpInitialize,
            resources: ResourceHints::default(),
            network_access: s.one_in(2),
        },
        secret_env: vec![s.text()],
        labels: BTreeMap::from([("template".to_string(), template)]),
        annotations: BTreeMap::new(),
        logs: Default::default(),
    };
    let name = spec::pod_name(&settings.instance, &req.instance_id);
    assert!(is_dns_label(&name), "pod name {name:?} is not a DNS-1123 label");
    for (k, v) in spec::labels(&req, &settings.instance) {
        assert!(is_label_value(&v), "label {k}={v:?} is not a label value");
    }
    let pod = spec::pod(&req, &settings, BTreeMap::new()).unwrap_or_else(|e| panic!("a launch with a container: {e}"));
    let json = serde_json::to_value(&pod).unwrap_or_else(|e| panic!("the pod does not serialize: {e}"));
    let c = &json["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(json["spec"]["securityContext"]["runAsNonRoot"], true);
    for e in req.spec.env.iter().filter(|e| e.secret || req.secret_env.contains(&e.name)) {
        let written = c["env"].as_array().into_iter().flatten().filter(|v| v["name"] == e.name.as_str());
        for v in written {
            assert!(v.get("value").is_none_or(Value::is_null), "secret {} was written into the pod", e.name);
        }
    }
    let _ = spec::network_policy(&req, &settings, &pod);
}
