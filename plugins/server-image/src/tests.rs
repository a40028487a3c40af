//! The image server type: the container spec, every refusal, and injection
//! attempts.

use super::*;

fn config(image: &str) -> ServerConfig {
    ServerConfig {
        server_type: "image".into(),
        package: None,
        version: None,
        image: Some(image.into()),
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

#[test]
fn runs_the_image_on_kubernetes_only() {
    let mut c = config("ghcr.io/acme/mcp:1.0");
    c.args = vec!["/app/server".into(), "--stdio".into()];
    c.env = vec![kv("TOKEN", "t")];
    let spec = plan(&c).unwrap();
    let container = spec.container.unwrap();
    assert_eq!(container.image, "ghcr.io/acme/mcp:1.0");
    assert_eq!(container.command, ["/app/server", "--stdio"]);
    assert!(spec.process.is_none());
    assert_eq!((spec.transport, spec.readiness), (Transport::Stdio, Readiness::McpInitialize));
    assert_eq!(spec.env.len(), 1);
    assert!(!spec.env[0].secret);
    assert!(!spec.network_access, "no network unless asked");
    assert!(plan(&config("busybox:1")).unwrap().container.unwrap().command.is_empty(), "the image's entrypoint");
}

#[test]
fn network_option_and_network_transports() {
    let mut c = config("busybox:1");
    c.options = vec![kv("network", "true")];
    assert!(plan(&c).unwrap().network_access);
    c.options = vec![kv("network", "false")];
    assert!(!plan(&c).unwrap().network_access);
    for (t, path) in [(Transport::StreamableHttp, "/mcp"), (Transport::Sse, "/sse"), (Transport::Websocket, "/mcp")] {
        let mut c = config("busybox:1");
        c.transport = Some(t);
        assert_eq!(fields(&problems(&c)), ["port"], "{t:?}");
        c.port = Some(8080);
        let spec = plan(&c).unwrap();
        assert_eq!((spec.transport, spec.port, spec.path.as_deref()), (t, Some(8080), Some(path)));
        assert_eq!(spec.readiness, Readiness::TcpOpen);
    }
}

#[test]
fn each_refusal_names_its_field() {
    let mut c = config("x");
    c.image = None;
    assert_eq!(fields(&problems(&c)), ["image"]);

    let mut c = config("busybox:1");
    c.package = Some("p".into());
    c.version = Some("1".into());
    c.options = vec![kv("network", "maybe"), kv("privileged", "true")];
    assert_eq!(fields(&problems(&c)), ["package", "version", "options.privileged", "options.network"]);

    let mut c = config("busybox:1");
    c.port = Some(80);
    c.path = Some("/x".into());
    assert_eq!(fields(&problems(&c)), ["port", "path"]);

    let mut c = config("busybox:1");
    c.transport = Some(Transport::StreamableHttp);
    c.port = Some(0);
    assert_eq!(fields(&problems(&c)), ["port"]);

    let mut c = config("busybox:1");
    c.args = (0..65).map(|i| i.to_string()).collect();
    c.env = vec![kv("DYLD_INSERT_LIBRARIES", "x"), kv("OK", "1"), kv("OK", "1")];
    assert_eq!(fields(&problems(&c)), ["args", "env.DYLD_INSERT_LIBRARIES", "env.OK"]);
}

#[test]
fn injection_is_refused_in_the_image_and_env_names() {
    let long = "a".repeat(600);
    for bad in [
        "--privileged",
        "-e",
        "../x",
        "/etc/passwd",
        "x; rm -rf /",
        "$(id)",
        "https://evil.example/x",
        "git+ssh://git@github.com/x/y.git",
        "a b",
        "a\nb",
        "a\0b",
        long.as_str(),
    ] {
        let p = problems(&config(bad));
        assert_eq!(fields(&p), ["image"], "{bad:?}: {p:?}");
        assert!(plan(&config(bad)).is_err());
        let mut c = config("busybox:1");
        c.env = vec![kv(bad, "v")];
        assert_eq!(fields(&problems(&c)), [format!("env.{bad}")], "env name {bad:?}");
    }
}
