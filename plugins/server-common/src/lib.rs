//! Building blocks shared by the built-in server-type plugins (`npx`, `uv`,
//! `archon`, `image`): the checks every server config shares, turned into
//! `PluginError`s with their fields; endpoint defaults per transport; env
//! defaults; and the single error `launch` returns for a refused config.
//!
//! Pure functions only (no host imports), so that every plugin's logic can
//! be unit-tested natively.

use mcpod_package_names::{NameError, check_common, check_options};
use mcpod_plugin_sdk::server_type::{
    EnvVar, ErrorCode, KeyValue, PluginError, Readiness, ResourceHints, ServerConfig, Transport,
};

/// An `invalid-input` error about `field`, its message led by the field so
/// that it reads on its own (`args[2]: the argument ... contains a line break`).
pub fn invalid(field: &str, e: NameError) -> PluginError {
    PluginError::invalid(field, format!("{field}: {}", e.message))
}

/// An `invalid-input` error about `field` with `message` led by the field.
pub fn refuse(field: &str, message: &str) -> PluginError {
    PluginError::invalid(field, format!("{field}: {message}"))
}

/// Appends the refusal in `result`, if any, as an error about `field`.
pub fn push(out: &mut Vec<PluginError>, field: &str, result: Result<(), NameError>) {
    if let Err(e) = result {
        out.push(invalid(field, e));
    }
}

/// The problems every server type checks the same way: `args` (at most 64,
/// each a valid argument), `env` (at most 128, valid names that do not
/// change how programs load, values without NUL, no name twice), `path`,
/// `port`, and `options` keys outside `known_options`.
pub fn shared_problems(server_type: &str, config: &ServerConfig, known_options: &[&str]) -> Vec<PluginError> {
    let env = pairs(&config.env);
    let options = pairs(&config.options);
    check_common(&config.args, &env, config.path.as_deref(), config.port)
        .into_iter()
        .chain(check_options(server_type, &options, known_options))
        .map(|(field, e)| invalid(&field, e))
        .collect()
}

/// Errors for each env name of `config` that starts with `prefix`
/// (compared case-insensitively), explained by `why`.
pub fn refuse_env_prefix(config: &ServerConfig, prefix: &str, why: &str) -> Vec<PluginError> {
    let prefix = prefix.to_ascii_lowercase();
    config
        .env
        .iter()
        .take(mcpod_package_names::MAX_ENV)
        .filter(|kv| kv.key.to_ascii_lowercase().starts_with(&prefix))
        .map(|kv| refuse(&format!("env.{}", kv.key), why))
        .collect()
}

/// The name of `transport` as users write it.
pub fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Stdio => "stdio",
        Transport::StreamableHttp => "streamable-http",
        Transport::Sse => "sse",
        Transport::Websocket => "websocket",
    }
}

/// Errors for a stdio server given a `port` or a `path`, which only
/// network servers have.
pub fn stdio_has_no_endpoint(config: &ServerConfig) -> Vec<PluginError> {
    let mut out = Vec::new();
    if config.port.is_some() {
        out.push(refuse(
            "port",
            "a stdio server listens on no port; set `transport` (streamable-http, sse) if the server listens on one",
        ));
    }
    if config.path.is_some() {
        out.push(refuse(
            "path",
            "a stdio server has no HTTP endpoint; set `transport` (streamable-http, sse) if the server serves one",
        ));
    }
    out
}

/// The endpoint path and readiness check for `transport`: none and an MCP
/// `initialize` for stdio; otherwise `path` (default `/sse` for sse, `/mcp`
/// for the rest) and an open TCP port.
pub fn endpoint(transport: Transport, path: Option<&str>) -> (Option<String>, Readiness) {
    let default = match transport {
        Transport::Stdio => return (None, Readiness::McpInitialize),
        Transport::Sse => "/sse",
        Transport::StreamableHttp | Transport::Websocket => "/mcp",
    };
    (Some(path.unwrap_or(default).to_string()), Readiness::TcpOpen)
}

/// The config's variables (not marked secret: the host marks secrets by
/// its policy), then each default whose name the config does not set.
pub fn env_vars(env: &[KeyValue], defaults: &[(&str, &str)]) -> Vec<EnvVar> {
    let mut out: Vec<EnvVar> =
        env.iter().map(|kv| EnvVar { name: kv.key.clone(), value: kv.value.clone(), secret: false }).collect();
    for (name, value) in defaults {
        if !env.iter().any(|kv| kv.key == *name) {
            out.push(EnvVar { name: name.to_string(), value: value.to_string(), secret: false });
        }
    }
    out
}

/// No CPU or memory wishes: the host's defaults apply.
pub fn host_default_resources() -> ResourceHints {
    ResourceHints { cpu_request: None, cpu_limit: None, memory_request: None, memory_limit: None }
}

/// An error in the operator's config of plugin `plugin` (key `key`), not
/// in the user's input: `internal`, with field `config.KEY`.
pub fn config_error(plugin: &str, key: &str, why: &str) -> PluginError {
    PluginError {
        code: ErrorCode::Internal,
        message: format!("the {plugin} plugin's config key `{key}` is invalid: {why}; fix the host's config"),
        field: Some(format!("config.{key}")),
    }
}

/// The one error `launch` returns for `problems`: `None` if there are none,
/// the problem itself if there is one, else one `invalid-input` error whose
/// message lists them all (with their field when they share one).
pub fn refusal(mut problems: Vec<PluginError>) -> Option<PluginError> {
    if problems.len() <= 1 {
        return problems.pop();
    }
    let first_field = problems[0].field.clone();
    let field = first_field.filter(|f| problems.iter().all(|p| p.field.as_ref() == Some(f)));
    let listed: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    Some(PluginError {
        code: ErrorCode::InvalidInput,
        message: format!("{} problems: {}", problems.len(), listed.join("; ")),
        field,
    })
}

/// `(key, value)` views of key-value pairs.
fn pairs(kvs: &[KeyValue]) -> Vec<(&str, &str)> {
    kvs.iter().map(|kv| (kv.key.as_str(), kv.value.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue { key: key.into(), value: value.into() }
    }

    fn config() -> ServerConfig {
        ServerConfig {
            server_type: "t".into(),
            package: None,
            version: None,
            image: None,
            args: vec![],
            env: vec![],
            transport: None,
            port: None,
            path: None,
            options: vec![],
        }
    }

    fn fields(problems: &[PluginError]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_deref().unwrap_or("-")).collect()
    }

    #[test]
    fn shared_problems_name_each_field_and_lead_the_message_with_it() {
        let mut c = config();
        c.args = vec!["ok".into(), "a\nb".into()];
        c.env = vec![kv("LD_PRELOAD", "/x.so"), kv("OK", "1"), kv("OK", "2")];
        c.path = Some("mcp".into());
        c.port = Some(0);
        c.options = vec![kv("from", "x")];
        let problems = shared_problems("uv", &c, &[]);
        assert_eq!(fields(&problems), ["args[1]", "env.LD_PRELOAD", "env.OK", "path", "port", "options.from"]);
        assert!(problems.iter().all(|p| p.code == ErrorCode::InvalidInput));
        assert!(problems[0].message.starts_with("args[1]: "), "{}", problems[0].message);
        assert!(problems[5].message.contains("uv server type has no option"), "{}", problems[5].message);
    }

    #[test]
    fn env_prefixes_are_refused_case_insensitively() {
        let mut c = config();
        c.env = vec![kv("npm_config_registry", "x"), kv("NPM_CONFIG_CACHE", "y"), kv("NPMRC", "z")];
        let problems = refuse_env_prefix(&c, "npm_config_", "no");
        assert_eq!(fields(&problems), ["env.npm_config_registry", "env.NPM_CONFIG_CACHE"]);
    }

    #[test]
    fn endpoints_default_by_transport() {
        assert_eq!(endpoint(Transport::Stdio, Some("/x")), (None, Readiness::McpInitialize));
        assert_eq!(endpoint(Transport::Sse, None), (Some("/sse".into()), Readiness::TcpOpen));
        assert_eq!(endpoint(Transport::StreamableHttp, None), (Some("/mcp".into()), Readiness::TcpOpen));
        assert_eq!(endpoint(Transport::StreamableHttp, Some("/api")), (Some("/api".into()), Readiness::TcpOpen));
        let mut c = config();
        c.port = Some(1);
        c.path = Some("/x".into());
        assert_eq!(fields(&stdio_has_no_endpoint(&c)), ["port", "path"]);
    }

    #[test]
    fn user_env_wins_over_defaults_and_nothing_is_marked_secret() {
        let env = env_vars(&[kv("HOME", "/srv"), kv("API_KEY", "k")], &[("HOME", "/tmp"), ("X", "1")]);
        let got: Vec<(&str, &str, bool)> = env.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.secret)).collect();
        assert_eq!(got, [("HOME", "/srv", false), ("API_KEY", "k", false), ("X", "1", false)]);
    }

    #[test]
    fn refusal_keeps_a_single_problem_and_lists_several() {
        assert!(refusal(vec![]).is_none());
        let one = refuse("package", "bad");
        assert_eq!(refusal(vec![one.clone()]), Some(one));
        let both = refusal(vec![refuse("package", "bad"), refuse("version", "worse")]).unwrap();
        assert_eq!(both.code, ErrorCode::InvalidInput);
        assert_eq!(both.field, None);
        assert_eq!(both.message, "2 problems: package: bad; version: worse");
        let same = refusal(vec![refuse("port", "a"), refuse("port", "b")]).unwrap();
        assert_eq!(same.field.as_deref(), Some("port"));
    }

    #[test]
    fn config_errors_blame_the_operator() {
        let e = config_error("npx", "image", "bad");
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::Internal, Some("config.image")));
        assert!(e.message.contains("npx plugin's config key `image`"));
    }
}
