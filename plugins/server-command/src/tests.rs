//! The command server type: the process and container it plans, and every
//! refusal.

use super::*;

fn config(command: &[&str]) -> ServerConfig {
    ServerConfig {
        server_type: "command".into(),
        package: None,
        version: None,
        image: None,
        args: command.iter().map(|s| s.to_string()).collect(),
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
fn runs_the_command_as_it_is_in_its_directory_and_not_on_kubernetes_without_an_image() {
    let mut c = config(&["python3", "/srv/server.py", "--verbose"]);
    c.options = vec![kv("cwd", "/srv")];
    c.env = vec![kv("API_KEY", "k")];
    let spec = plan(&c).unwrap();
    assert_eq!(spec.process.unwrap().command, ["python3", "/srv/server.py", "--verbose"]);
    assert!(spec.container.is_none(), "no image: the Kubernetes runtime must refuse it");
    assert_eq!(spec.working_dir.as_deref(), Some("/srv"));
    assert_eq!((spec.transport, spec.readiness), (Transport::Stdio, Readiness::McpInitialize));
    assert_eq!(spec.env[0].name, "API_KEY");
    assert!(spec.network_access);
}

#[test]
fn with_an_image_the_same_command_runs_in_a_container_too() {
    let mut c = config(&["/app/server", "--port", "8080"]);
    c.image = Some("ghcr.io/acme/server:1.2".into());
    c.transport = Some(Transport::StreamableHttp);
    c.port = Some(8080);
    c.options = vec![kv("network", "false")];
    let spec = plan(&c).unwrap();
    let container = spec.container.unwrap();
    assert_eq!(container.image, "ghcr.io/acme/server:1.2");
    assert_eq!(container.command, ["/app/server", "--port", "8080"]);
    assert_eq!(spec.path.as_deref(), Some("/mcp"));
    assert_eq!(spec.readiness, Readiness::TcpOpen);
    assert!(!spec.network_access);
}

#[test]
fn an_empty_command_a_relative_program_and_a_package_are_refused_by_field() {
    assert_eq!(fields(&problems(&config(&[]))), ["command"]);
    let relative = problems(&config(&["./server.py"]));
    assert_eq!(fields(&relative), ["command"]);
    assert!(relative[0].message.contains("absolute path"), "{}", relative[0].message);
    let mut c = config(&["node", "/srv/index.js"]);
    c.package = Some("left-pad".into());
    assert_eq!(fields(&problems(&c)), ["package"]);
    assert!(plan(&c).is_err());
}

#[test]
fn the_working_directory_must_be_absolute_and_options_known() {
    let mut c = config(&["node"]);
    c.options = vec![kv("cwd", "srv"), kv("network", "maybe"), kv("shell", "bash")];
    let f = fields(&problems(&c));
    assert!(f.contains(&"options.cwd".to_string()), "{f:?}");
    assert!(f.contains(&"options.network".to_string()), "{f:?}");
    assert!(f.iter().any(|f| f.contains("shell")), "{f:?}");
    c.options = vec![kv("cwd", "/srv/../etc")];
    assert_eq!(fields(&problems(&c)), ["options.cwd"]);
}

#[test]
fn a_network_command_needs_its_port_and_a_stdio_one_has_none() {
    let mut c = config(&["/srv/server"]);
    c.transport = Some(Transport::Sse);
    assert_eq!(fields(&problems(&c)), ["port"]);
    let mut c = config(&["/srv/server"]);
    c.port = Some(9000);
    assert_eq!(fields(&problems(&c)), ["port"]);
}

#[test]
fn arguments_with_line_breaks_are_refused() {
    let f = fields(&problems(&config(&["/srv/server", "a\nb"])));
    assert_eq!(f, ["args[1]"]);
}
