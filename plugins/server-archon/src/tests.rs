//! The archon server type: the operator's settings, specs for both
//! runtimes, every refusal, and injection attempts.

use super::*;

fn config() -> ServerConfig {
    ServerConfig {
        server_type: "archon".into(),
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

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: value.into() }
}

fn fields(problems: &[PluginError]) -> Vec<String> {
    problems.iter().map(|p| p.field.clone().unwrap_or_default()).collect()
}

fn defaults() -> Settings {
    Settings::from_config(None, None, None).unwrap()
}

#[test]
fn settings_default_and_parse_lists() {
    assert_eq!(
        defaults(),
        Settings {
            image: DEFAULT_IMAGE.into(),
            command: DEFAULT_COMMAND.map(String::from).to_vec(),
            local_command: None
        }
    );
    let s = Settings::from_config(
        Some("registry.example/archon-mcp:1.2"),
        Some(r#"["uv","run","python","-m","src.mcp_server.mcp_server"]"#),
        Some(r#"["/opt/archon/.venv/bin/python","-m","src.mcp_server.mcp_server"]"#),
    )
    .unwrap();
    assert_eq!(s.image, "registry.example/archon-mcp:1.2");
    assert_eq!(s.command[..2], ["uv", "run"]);
    assert_eq!(s.local_command.unwrap()[0], "/opt/archon/.venv/bin/python");
    assert_eq!(Settings::from_config(None, Some("[]"), None).unwrap().command, Vec::<String>::new());
}

#[test]
fn broken_settings_blame_the_operator_by_key() {
    for (image, command, local, key) in [
        (Some("not an image"), None, None, "config.image"),
        (None, Some("python -m x"), None, "config.command"),
        (None, Some(r#"["a\nb"]"#), None, "config.command"),
        (None, Some(r#"[1, 2]"#), None, "config.command"),
        (None, None, Some("[]"), "config.local_command"),
        (None, None, Some(r#"[" "]"#), "config.local_command"),
        (None, None, Some(r#"{"a": 1}"#), "config.local_command"),
    ] {
        let e = Settings::from_config(image, command, local).unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::Internal, Some(key)), "{image:?} {command:?} {local:?}");
    }
}

#[test]
fn streamable_http_on_8051_in_a_container_by_default() {
    let spec = plan(&config(), &defaults()).unwrap();
    assert_eq!(spec.transport, Transport::StreamableHttp);
    assert_eq!((spec.port, spec.path.as_deref()), (Some(8051), Some("/mcp")));
    assert_eq!(spec.readiness, Readiness::TcpOpen);
    let container = spec.container.unwrap();
    assert_eq!(container.image, DEFAULT_IMAGE);
    assert_eq!(container.command, DEFAULT_COMMAND);
    assert!(spec.process.is_none(), "no local command configured");
    assert!(spec.env.iter().any(|e| e.name == "ARCHON_MCP_PORT" && e.value == "8051" && !e.secret));
    assert!(spec.network_access);
}

#[test]
fn sse_another_port_and_a_local_command() {
    let mut c = config();
    c.transport = Some(Transport::Sse);
    c.port = Some(9051);
    c.args = vec!["--verbose".into()];
    c.env = vec![kv("API_SERVICE_URL", "http://archon-server:8181")];
    let settings = Settings::from_config(None, None, Some(r#"["python","-m","src.mcp_server.mcp_server"]"#)).unwrap();
    let spec = plan(&c, &settings).unwrap();
    assert_eq!((spec.port, spec.path.as_deref()), (Some(9051), Some("/sse")));
    let env: Vec<(&str, &str)> = spec.env.iter().map(|e| (e.name.as_str(), e.value.as_str())).collect();
    assert_eq!(env, [("API_SERVICE_URL", "http://archon-server:8181"), ("ARCHON_MCP_PORT", "9051")]);
    assert_eq!(spec.process.unwrap().command, ["python", "-m", "src.mcp_server.mcp_server", "--verbose"]);
    assert_eq!(spec.container.unwrap().command, ["python", "-m", "src.mcp_server.mcp_server", "--verbose"]);
}

#[test]
fn an_empty_command_runs_the_entrypoint_and_takes_no_args() {
    let settings = Settings::from_config(None, Some("[]"), None).unwrap();
    assert!(plan(&config(), &settings).unwrap().container.unwrap().command.is_empty());
    let mut c = config();
    c.args = vec!["x".into()];
    assert_eq!(plan(&c, &settings).unwrap_err().field.as_deref(), Some("args"));
}

#[test]
fn each_refusal_names_its_field() {
    let mut c = config();
    c.package = Some("x".into());
    c.version = Some("1".into());
    c.image = Some("evil/image:1".into());
    assert_eq!(fields(&problems(&c)), ["package", "version", "image"], "no way around the operator's image");

    for t in [Transport::Stdio, Transport::Websocket] {
        let mut c = config();
        c.transport = Some(t);
        let p = problems(&c);
        assert_eq!(fields(&p), ["transport"]);
        assert!(p[0].message.contains(common::transport_name(t)), "{}", p[0].message);
    }

    let mut c = config();
    c.port = Some(0);
    c.path = Some("mcp".into());
    c.options = vec![kv("debug", "1")];
    c.env = vec![kv("ARCHON_MCP_PORT", "1"), kv("LD_PRELOAD", "/x.so")];
    c.args = vec!["a\0".into()];
    assert_eq!(
        fields(&problems(&c)),
        ["args[0]", "env.LD_PRELOAD", "path", "port", "options.debug", "env.ARCHON_MCP_PORT"]
    );
    let e = plan(&c, &defaults()).unwrap_err();
    assert!(e.message.starts_with("6 problems: "), "{}", e.message);
}

#[test]
fn injection_is_refused_in_env_names_and_broken_args() {
    for bad in ["-e", "../x", "$(id)", "pkg; rm -rf /", "https://evil.example/x", "a b", "a\nb", "a\0b"] {
        let mut c = config();
        c.env = vec![kv(bad, "v")];
        assert_eq!(fields(&problems(&c)), [format!("env.{bad}")], "env name {bad:?}");
        let mut c = config();
        c.args = vec![bad.into()];
        let refused = !problems(&c).is_empty();
        assert_eq!(refused, bad.contains(['\n', '\0']), "arg {bad:?}");
    }
}
