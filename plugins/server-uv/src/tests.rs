//! The uv server type: specs for both runtimes, every refusal, and
//! injection attempts in every field.

use super::*;

fn config(package: &str, version: Option<&str>) -> ServerConfig {
    ServerConfig {
        server_type: "uv".into(),
        package: Some(package.into()),
        version: version.map(Into::into),
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
        "--eval=x",
        "-e",
        "--index-url=https://evil.example",
        "../x",
        "/etc/passwd",
        "pkg; rm -rf /",
        "$(id)",
        "https://evil.example/x.tgz",
        "git+ssh://git@github.com/x/y.git",
        "file:../x",
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
fn runs_with_uvx_on_both_runtimes() {
    let mut c = config("mcp-server-time", Some("2025.1.1"));
    c.args = vec!["--local-timezone".into(), "Europe/Paris".into()];
    c.env = vec![kv("TZ", "UTC")];
    let spec = plan(&c, None).unwrap();
    let expected = ["uvx", "mcp-server-time==2025.1.1", "--local-timezone", "Europe/Paris"];
    assert_eq!(spec.process.unwrap().command, expected);
    let container = spec.container.unwrap();
    assert_eq!(
        (container.image.as_str(), container.command.as_slice()),
        (DEFAULT_IMAGE, &expected.map(String::from)[..])
    );
    assert_eq!((spec.transport, spec.readiness), (Transport::Stdio, Readiness::McpInitialize));
    let env: Vec<(&str, &str, bool)> = spec.env.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.secret)).collect();
    assert_eq!(env, [("TZ", "UTC", false), ("PYTHONUNBUFFERED", "1", false)]);
    assert!(spec.network_access);
    assert_eq!(spec.resources, common::host_default_resources());
}

#[test]
fn requirements_pin_bare_versions_and_keep_specifiers() {
    let cmd = |version: Option<&str>| plan(&config("mcp-server-time", version), None).unwrap().process.unwrap().command;
    assert_eq!(cmd(None), ["uvx", "mcp-server-time"]);
    assert_eq!(cmd(Some("==2025.1.1"))[1], "mcp-server-time==2025.1.1");
    assert_eq!(cmd(Some(">=1.2,<2"))[1], "mcp-server-time>=1.2,<2");
    assert_eq!(cmd(Some(">= 1.2, < 2"))[1], "mcp-server-time>=1.2,<2");
    assert_eq!(cmd(Some("~=1.4"))[1], "mcp-server-time~=1.4");
    assert_eq!(cmd(Some("!=1.3.*"))[1], "mcp-server-time!=1.3.*");
    assert_eq!(cmd(Some("v1.0"))[1], "mcp-server-time==v1.0");
    assert_eq!(cmd(Some("1.0rc1"))[1], "mcp-server-time==1.0rc1");
}

#[test]
fn the_configured_image_is_used_and_checked() {
    let spec = plan(&config("mcp_server.fetch", None), Some("registry.example/uv:1")).unwrap();
    assert_eq!(spec.container.unwrap().image, "registry.example/uv:1");
    let e = plan(&config("x", None), Some("$(id)")).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::Internal, Some("config.image")));
}

#[test]
fn network_transports_need_a_port() {
    let mut c = config("x", None);
    c.transport = Some(Transport::Sse);
    assert_eq!(fields(&problems(&c)), ["port"]);
    c.port = Some(8000);
    let spec = plan(&c, None).unwrap();
    assert_eq!((spec.port, spec.path.as_deref(), spec.readiness), (Some(8000), Some("/sse"), Readiness::TcpOpen));
    c.transport = Some(Transport::StreamableHttp);
    assert_eq!(plan(&c, None).unwrap().path.as_deref(), Some("/mcp"));
}

#[test]
fn each_refusal_names_its_field() {
    let mut c = config("x", None);
    c.package = None;
    assert_eq!(fields(&problems(&c)), ["package"]);

    let mut c = config("x", None);
    c.image = Some("python:3".into());
    assert_eq!(fields(&problems(&c)), ["image"]);

    let mut c = config("x", None);
    c.options = vec![kv("from", "git+https://evil.example/x")];
    let p = problems(&c);
    assert_eq!(fields(&p), ["options.from"]);
    assert!(p[0].message.contains("no option \"from\""), "{}", p[0].message);

    let mut c = config("x", None);
    c.env = vec![kv("UV_INDEX_URL", "https://evil.example"), kv("uv_python", "3.8"), kv("PYTHONPATH", "/x")];
    assert_eq!(fields(&problems(&c)), ["env.PYTHONPATH", "env.UV_INDEX_URL", "env.uv_python"]);

    let mut c = config("x", None);
    c.transport = Some(Transport::Websocket);
    c.port = Some(1);
    assert_eq!(fields(&problems(&c)), ["transport"]);

    let mut c = config("x", None);
    c.port = Some(1);
    c.path = Some("/mcp".into());
    assert_eq!(fields(&problems(&c)), ["port", "path"]);

    let mut c = config("x", None);
    c.transport = Some(Transport::StreamableHttp);
    c.port = Some(0);
    c.path = Some("/a b".into());
    assert_eq!(fields(&problems(&c)), ["path", "port"]);

    let mut c = config("x", Some("1.0.*"));
    c.args = (0..65).map(|i| i.to_string()).collect();
    assert_eq!(fields(&problems(&c)), ["version", "args"]);
}

#[test]
fn injection_is_refused_in_package_version_and_env_names() {
    for bad in injections() {
        let p = problems(&config(&bad, None));
        assert_eq!(fields(&p), ["package"], "package {bad:?}: {p:?}");
        assert!(plan(&config(&bad, None), None).is_err());
        assert_eq!(fields(&problems(&config("ok", Some(&bad)))), ["version"], "version {bad:?}");
        let mut c = config("ok", None);
        c.env = vec![kv(&bad, "v")];
        assert_eq!(fields(&problems(&c)), [format!("env.{bad}")], "env name {bad:?}");
    }
}

#[test]
fn arguments_pass_verbatim_unless_they_break_the_argv() {
    for bad in injections() {
        let mut c = config("ok", None);
        c.args = vec![bad.clone()];
        if bad.contains(['\n', '\0']) || bad.len() > 4096 {
            assert_eq!(fields(&problems(&c)), ["args[0]"], "arg {bad:?}");
        } else {
            assert_eq!(plan(&c, None).unwrap().process.unwrap().command, ["uvx".to_string(), "ok".into(), bad]);
        }
    }
}

#[test]
fn with_adds_requirements_before_the_package_and_refuses_flags() {
    let mut c = config("mcp-server-sqlite", None);
    c.options = vec![kv("with", "mcp[cli]>=1.2,<2")];
    c.args = vec!["--db-path".into(), "/tmp/x.db".into()];
    let spec = plan(&c, None).unwrap();
    let expected = ["uvx", "--with", "mcp[cli]>=1.2,<2", "mcp-server-sqlite", "--db-path", "/tmp/x.db"];
    assert_eq!(spec.process.unwrap().command, expected);
    for bad in injections().into_iter().chain(["mcp <2".to_string(), "".to_string(), "mcp;python_version<'3'".into()]) {
        let mut c = config("mcp-server-sqlite", None);
        c.options = vec![kv("with", &bad)];
        let p = problems(&c);
        assert_eq!(fields(&p), ["options.with"], "{bad:?} must be refused");
        assert!(p[0].message.contains("requirement") || p[0].message.contains("PyPI"), "{}", p[0].message);
    }
}
