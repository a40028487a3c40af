//! The remote server type: the launch it plans and every refusal.

use super::*;

fn config(url: Option<&str>) -> ServerConfig {
    ServerConfig {
        server_type: "remote".into(),
        package: None,
        version: None,
        image: None,
        args: vec![],
        env: vec![],
        transport: None,
        port: None,
        path: url.map(str::to_string),
        options: vec![],
    }
}

fn fields(problems: &[PluginError]) -> Vec<String> {
    problems.iter().map(|p| p.field.clone().unwrap_or_default()).collect()
}

#[test]
fn a_remote_server_is_its_url_with_nothing_to_run() {
    let spec = plan(&config(Some("https://mcp.example.com:8443/v1/mcp?team=a"))).unwrap();
    assert!(spec.process.is_none() && spec.container.is_none());
    assert_eq!(spec.path.as_deref(), Some("https://mcp.example.com:8443/v1/mcp?team=a"));
    assert_eq!(spec.transport, Transport::StreamableHttp);
    assert_eq!(spec.readiness, Readiness::McpInitialize);
    let mut sse = config(Some("http://127.0.0.1:9000/sse"));
    sse.transport = Some(Transport::Sse);
    assert_eq!(plan(&sse).unwrap().transport, Transport::Sse);
}

#[test]
fn urls_that_are_not_absolute_http_or_hide_credentials_are_refused() {
    for (url, says) in [
        ("/mcp", "not an absolute URL"),
        ("ftp://example.com/mcp", "scheme is `ftp`"),
        ("file:///etc/passwd", "scheme is `file`"),
        ("https://user:pw@example.com/mcp", "credentials"),
        ("https:///mcp", "no host"),
        ("https://example.com:99999/mcp", "not a port number"),
        ("https://example.com/mcp#x", "fragment"),
        ("https://example.com/m cp", "percent-encode"),
    ] {
        let p = problems(&config(Some(url)));
        assert_eq!(fields(&p), ["url"], "{url}");
        assert!(p[0].message.contains(says), "{url}: {}", p[0].message);
    }
    assert_eq!(url_problem("http://[::1]:8080/mcp"), None);
    assert_eq!(url_problem("http://[::1]/mcp"), None);
}

#[test]
fn everything_a_started_server_has_is_refused() {
    assert_eq!(fields(&problems(&config(None))), ["url"]);
    let mut c = config(Some("https://example.com/mcp"));
    c.package = Some("x".into());
    c.args = vec!["--a".into()];
    c.env = vec![KeyValue { key: "A".into(), value: "1".into() }];
    c.port = Some(1);
    c.transport = Some(Transport::Stdio);
    let f = fields(&problems(&c));
    for field in ["package", "args", "env", "port", "transport"] {
        assert!(f.contains(&field.to_string()), "{field} missing from {f:?}");
    }
    assert!(plan(&c).is_err());
}
