//! The npx server type: specs for both runtimes, every refusal, and
//! injection attempts in every field.

use super::*;

fn config(package: &str) -> ServerConfig {
    ServerConfig {
        server_type: "npx".into(),
        package: Some(package.into()),
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

/// Inputs that must never pass as a package, version or env name.
fn injections() -> Vec<String> {
    let mut list: Vec<String> = [
        "--eval=process.exit()",
        "-e",
        "../x",
        "/etc/passwd",
        "pkg; rm -rf /",
        "$(id)",
        "https://evil.example/x.tgz",
        "git+ssh://git@github.com/x/y.git",
        "file:../x",
        "github:user/repo",
        "user/repo",
        "a b",
        "a\nb",
        "a\0b",
    ]
    .map(String::from)
    .to_vec();
    list.push("a".repeat(5000));
    list
}

#[test]
fn runs_the_package_with_npx_on_both_runtimes() {
    let mut c = config("@modelcontextprotocol/server-filesystem");
    c.version = Some("2025.8.21".into());
    c.args = vec!["/tmp".into(), "--flag=x y".into()];
    c.env = vec![kv("DEBUG", "1")];
    let spec = plan(&c, None).unwrap();
    let expected = ["npx", "-y", "@modelcontextprotocol/server-filesystem@2025.8.21", "/tmp", "--flag=x y"];
    assert_eq!(spec.process.unwrap().command, expected);
    let container = spec.container.unwrap();
    assert_eq!(container.image, DEFAULT_IMAGE);
    assert_eq!(container.command, expected);
    assert_eq!(spec.transport, Transport::Stdio);
    assert_eq!((spec.port, spec.path), (None, None));
    assert_eq!(spec.readiness, Readiness::McpInitialize);
    let env: Vec<(&str, &str, bool)> = spec.env.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.secret)).collect();
    assert_eq!(env, [("DEBUG", "1", false), ("npm_config_update_notifier", "false", false)]);
    assert!(spec.network_access);
    assert_eq!(spec.resources, common::host_default_resources());
    assert_eq!(spec.working_dir, None);
}

#[test]
fn latest_by_default_and_the_configured_image() {
    let spec = plan(&config("@playwright/mcp"), Some("registry.example/node:22")).unwrap();
    assert_eq!(spec.process.unwrap().command, ["npx", "-y", "@playwright/mcp@latest"]);
    assert_eq!(spec.container.unwrap().image, "registry.example/node:22");
    let mut c = config("mcp-server");
    c.version = Some(">=1.0.0 <2.0.0".into());
    assert_eq!(plan(&c, None).unwrap().process.unwrap().command[2], "mcp-server@>=1.0.0 <2.0.0");
}

#[test]
fn a_broken_image_config_blames_the_operator() {
    let e = plan(&config("x"), Some("not an image")).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::Internal, Some("config.image")));
}

#[test]
fn network_transports_need_a_port_and_get_a_default_path() {
    let mut c = config("x");
    c.transport = Some(Transport::StreamableHttp);
    assert_eq!(fields(&problems(&c)), ["port"]);
    c.port = Some(3000);
    let spec = plan(&c, None).unwrap();
    assert_eq!((spec.port, spec.path.as_deref(), spec.readiness), (Some(3000), Some("/mcp"), Readiness::TcpOpen));
    c.transport = Some(Transport::Sse);
    assert_eq!(plan(&c, None).unwrap().path.as_deref(), Some("/sse"));
    c.path = Some("/events".into());
    assert_eq!(plan(&c, None).unwrap().path.as_deref(), Some("/events"));
}

#[test]
fn each_refusal_names_its_field() {
    let mut c = config("x");
    c.package = None;
    assert_eq!(fields(&problems(&c)), ["package"]);

    let mut c = config("x");
    c.image = Some("node:22".into());
    assert_eq!(fields(&problems(&c)), ["image"]);

    let mut c = config("x");
    c.transport = Some(Transport::Websocket);
    c.port = Some(1);
    assert_eq!(fields(&problems(&c)), ["transport"]);

    let mut c = config("x");
    c.port = Some(8080);
    c.path = Some("/mcp".into());
    assert_eq!(fields(&problems(&c)), ["port", "path"], "stdio has no endpoint");

    let mut c = config("x");
    c.transport = Some(Transport::Sse);
    c.port = Some(0);
    c.path = Some("sse".into());
    assert_eq!(fields(&problems(&c)), ["path", "port"]);

    let mut c = config("x");
    c.options = vec![kv("registry", "https://evil.example")];
    c.env = vec![kv("npm_config_registry", "https://evil.example"), kv("NPM_CONFIG_IGNORE_SCRIPTS", "false")];
    assert_eq!(fields(&problems(&c)), ["options.registry", "env.npm_config_registry", "env.NPM_CONFIG_IGNORE_SCRIPTS"]);

    let mut c = config("x");
    c.args = (0..65).map(|i| i.to_string()).collect();
    c.env = (0..129).map(|i| kv(&format!("V{i}"), "")).collect();
    assert_eq!(fields(&problems(&c)), ["args", "env"]);

    let mut c = config("x");
    c.env = vec![kv("A", "1"), kv("A", "2"), kv("B", "nul\0")];
    assert_eq!(fields(&problems(&c)), ["env.A", "env.B"]);
}

#[test]
fn injection_is_refused_in_package_version_and_env_names() {
    for bad in injections() {
        let p = problems(&config(&bad));
        assert_eq!(fields(&p), ["package"], "package {bad:?}: {p:?}");
        assert!(p[0].message.starts_with("package: "), "{}", p[0].message);
        assert!(plan(&config(&bad), None).is_err());

        let mut c = config("ok");
        c.version = Some(bad.clone());
        assert_eq!(fields(&problems(&c)), ["version"], "version {bad:?}");

        let mut c = config("ok");
        c.env = vec![kv(&bad, "v")];
        assert_eq!(fields(&problems(&c)), [format!("env.{bad}")], "env name {bad:?}");
    }
}

#[test]
fn arguments_pass_verbatim_unless_they_break_the_argv() {
    for bad in injections() {
        let mut c = config("ok");
        c.args = vec!["first".into(), bad.clone()];
        let breaks_argv = bad.contains(['\n', '\0']) || bad.len() > 4096;
        if breaks_argv {
            assert_eq!(fields(&problems(&c)), ["args[1]"], "arg {bad:?}");
        } else {
            let command = plan(&c, None).unwrap().process.unwrap().command;
            assert_eq!(command[3..], ["first".to_string(), bad], "one argv element each, never split or quoted");
        }
    }
}

#[test]
fn launch_reports_every_problem_at_once() {
    let mut c = config("-e");
    c.version = Some("1.0; id".into());
    let e = plan(&c, None).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidInput, None));
    assert!(e.message.starts_with("2 problems: package: ") && e.message.contains("; version: "), "{}", e.message);
}
