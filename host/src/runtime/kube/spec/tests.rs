use super::*;
use crate::launch::{ContainerLaunch, EnvVar as SpecEnv, Readiness, ResourceHints};

fn settings() -> PodSettings {
    PodSettings {
        namespace: "mcp".into(),
        instance: "blue".into(),
        run_as_user: 10001,
        image_pull_policy: "IfNotPresent".into(),
        termination_grace_secs: 7,
        exec_bridge: false,
        internet_access: false,
        host_pod_labels: BTreeMap::from([("app.kubernetes.io/name".to_string(), "mcpod".to_string())]),
        package_env: Vec::new(),
    }
}

fn request(transport: Transport, port: Option<u16>) -> LaunchRequest {
    LaunchRequest {
        server_id: "brave-search-3".into(),
        instance_id: "brave-search-3-2".into(),
        spec: LaunchSpec {
            container: Some(ContainerLaunch {
                image: "node:22.12.0-bookworm-slim".into(),
                command: vec!["npx".into(), "-y".into(), "@brave/brave-search-mcp-server@2.0.0".into()],
            }),
            process: None,
            env: vec![
                SpecEnv { name: "BRAVE_API_KEY".into(), value: "sk-very-secret".into(), secret: false },
                SpecEnv { name: "LOG_LEVEL".into(), value: "debug".into(), secret: false },
                SpecEnv { name: "OTHER".into(), value: "hidden-too".into(), secret: true },
            ],
            working_dir: None,
            transport,
            port,
            path: None,
            readiness: Readiness::McpInitialize,
            resources: ResourceHints {
                cpu_request: Some("250m".into()),
                cpu_limit: Some("500m".into()),
                memory_request: Some("256Mi".into()),
                memory_limit: Some("512Mi".into()),
            },
            network_access: true,
        },
        secret_env: vec!["BRAVE_API_KEY".into()],
        labels: BTreeMap::from([("template".to_string(), "brave-search".to_string())]),
        annotations: BTreeMap::new(),
        logs: Default::default(),
    }
}

#[test]
fn pods_fetch_packages_from_the_hosts_registry_mirrors_unless_their_spec_says_otherwise() {
    let host = BTreeMap::from([
        ("npm_config_registry", "https://npm.mirror.internal/"),
        ("UV_INDEX_URL", "https://pypi.mirror.internal/simple"),
        ("LOG_LEVEL", "trace"),
        ("HOME", "/root"),
    ]);
    let mut s = settings();
    s.package_env = crate::runtime::package_source_env(|n| host.get(n).map(|v| v.to_string()));
    let names: Vec<&str> = s.package_env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["npm_config_registry", "UV_INDEX_URL"], "only package sources, never the host's HOME");
    s.package_env.push(("LOG_LEVEL".into(), "trace".into()));
    let pod = pod(&request(Transport::Stdio, None), &s, BTreeMap::new()).unwrap();
    let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
    let value = |n: &str| env.iter().filter(|e| e.name == n).map(|e| e.value.clone()).collect::<Vec<_>>();
    assert_eq!(value("npm_config_registry"), [Some("https://npm.mirror.internal/".to_string())]);
    assert_eq!(value("UV_INDEX_URL"), [Some("https://pypi.mirror.internal/simple".to_string())]);
    assert_eq!(value("LOG_LEVEL"), [Some("debug".to_string())], "the spec's own value wins, once");
}

#[test]
fn pod_names_are_dns_labels_unique_per_host_instance() {
    assert_eq!(pod_name("blue", "time-1-1"), "mcpod-blue-time-1-1");
    assert_ne!(pod_name("blue", "time-1-1"), pod_name("green", "time-1-1"));
    let long = pod_name("Some_Instance", &"x".repeat(80));
    assert!(long.len() <= 63, "{long}");
    assert!(long.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{long}");
    assert_ne!(long, pod_name("Some_Instance", &"x".repeat(81)), "truncated names stay distinct");
    assert_eq!(label_value("-a/b_"), "a-b");
}

#[test]
fn the_pod_meets_the_restricted_pod_security_standard() {
    let pod = pod(&request(Transport::Stdio, None), &settings(), BTreeMap::new()).unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    let psc = spec.security_context.unwrap();
    assert_eq!((psc.run_as_non_root, psc.run_as_user, psc.run_as_group), (Some(true), Some(10001), Some(10001)));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let c = &spec.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    // Writable places are emptyDirs, and the env points programs at them.
    let mounts: Vec<&str> = c.volume_mounts.as_ref().unwrap().iter().map(|m| m.mount_path.as_str()).collect();
    assert_eq!(mounts, [HOME, "/tmp"]);
    assert!(spec.volumes.unwrap().iter().all(|v| v.empty_dir.is_some()));
    let env = c.env.clone().unwrap();
    let value = |n: &str| env.iter().find(|e| e.name == n).and_then(|e| e.value.clone());
    assert_eq!(value("HOME").as_deref(), Some(HOME));
    assert_eq!(value("npm_config_cache").as_deref(), Some("/home/mcpod/.npm"));
    // stdio servers keep stdin open for attach, without a TTY.
    assert_eq!((c.stdin, c.stdin_once, c.tty), (Some(true), Some(false), Some(false)));
    assert_eq!(c.command.as_ref().unwrap()[0], "npx");
    let limits = c.resources.clone().unwrap().limits.unwrap();
    assert_eq!(limits["memory"].0, "512Mi");
    assert_eq!(spec.termination_grace_period_seconds, Some(7));
}

#[test]
fn secret_values_go_to_the_secret_and_never_into_the_pod() {
    let req = request(Transport::Stdio, None);
    let pod = pod(&req, &settings(), BTreeMap::new()).unwrap();
    let text = serde_json::to_string(&pod).unwrap();
    assert!(!text.contains("sk-very-secret") && !text.contains("hidden-too"), "{text}");
    let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
    let key = env.iter().find(|e| e.name == "BRAVE_API_KEY").unwrap();
    let sel = key.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
    assert_eq!((sel.name.as_str(), sel.key.as_str()), ("mcpod-blue-brave-search-3-2-env", "BRAVE_API_KEY"));
    assert_eq!(env.iter().find(|e| e.name == "LOG_LEVEL").unwrap().value.as_deref(), Some("debug"));
    let data = secret(&req, &settings()).unwrap().data.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["BRAVE_API_KEY", "OTHER"]);
    assert_eq!(data["BRAVE_API_KEY"].0, b"sk-very-secret");
    let mut plain = request(Transport::Stdio, None);
    plain.spec.env.retain(|e| e.name == "LOG_LEVEL");
    assert!(secret(&plain, &settings()).is_none(), "no Secret without secret values");
}

#[test]
fn labels_name_the_manager_host_instance_server_and_template() {
    let l = labels(&request(Transport::Stdio, None), "blue");
    assert_eq!(l[MANAGED_BY.0], "mcpod");
    assert_eq!(l[INSTANCE_LABEL], "blue");
    assert_eq!(l[SERVER_LABEL], "brave-search-3");
    assert_eq!(l[INSTANCE_ID_LABEL], "brave-search-3-2");
    assert_eq!(l[TEMPLATE_LABEL], "brave-search");
    assert_eq!(instance_selector("blue"), "app.kubernetes.io/managed-by=mcpod,mcpod.dev/instance=blue");
}

#[test]
fn network_servers_get_a_port_and_tcp_probes_stdio_servers_none() {
    let p = pod(&request(Transport::StreamableHttp, Some(8051)), &settings(), BTreeMap::new()).unwrap();
    let c = &p.spec.unwrap().containers[0];
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 8051);
    let probe = c.readiness_probe.as_ref().unwrap().tcp_socket.as_ref().unwrap();
    assert_eq!(probe.port, IntOrString::Int(8051));
    assert!(c.liveness_probe.is_some());
    assert_eq!(c.stdin, Some(false));
    let s = pod(&request(Transport::Stdio, None), &settings(), BTreeMap::new()).unwrap();
    let c = &s.spec.unwrap().containers[0];
    assert!(c.ports.is_none() && c.readiness_probe.is_none());
}

#[test]
fn the_exec_bridge_idles_the_container() {
    let mut s = settings();
    s.exec_bridge = true;
    let p = pod(&request(Transport::Stdio, None), &s, BTreeMap::new()).unwrap();
    let c = &p.spec.unwrap().containers[0];
    assert_eq!(c.command.clone().unwrap(), ["sleep", "infinity"]);
    assert_eq!(c.stdin, Some(false));
}

#[test]
fn network_policies_admit_only_the_host_and_limit_egress() {
    let created = Pod {
        metadata: ObjectMeta { name: Some("p".into()), uid: Some("u-1".into()), ..Default::default() },
        ..Default::default()
    };
    let np = network_policy(&request(Transport::Sse, Some(8051)), &settings(), &created);
    assert_eq!(np.metadata.owner_references.as_ref().unwrap()[0].uid, "u-1");
    let spec = np.spec.unwrap();
    assert_eq!(spec.policy_types.clone().unwrap(), ["Ingress", "Egress"]);
    let ingress = spec.ingress.clone().unwrap();
    let from = ingress[0].from.clone().unwrap();
    assert_eq!(from[0].pod_selector.clone().unwrap().match_labels.unwrap()["app.kubernetes.io/name"], "mcpod");
    assert_eq!(ingress[0].ports.clone().unwrap()[0].port, Some(IntOrString::Int(8051)));
    let egress = spec.egress.clone().unwrap();
    let ports: Vec<_> = egress[0].ports.clone().unwrap().into_iter().map(|p| p.protocol.unwrap()).collect();
    assert_eq!(ports, ["UDP", "TCP"], "without internet access only DNS goes out");
    let selected = spec.pod_selector.unwrap().match_labels.unwrap();
    assert_eq!(selected[INSTANCE_ID_LABEL], "brave-search-3-2");

    let stdio = network_policy(&request(Transport::Stdio, None), &settings(), &created).spec.unwrap();
    assert_eq!(stdio.ingress.unwrap().len(), 0, "stdio servers take no connections");
    let mut open = settings();
    open.internet_access = true;
    let egress = network_policy(&request(Transport::Stdio, None), &open, &created).spec.unwrap().egress.unwrap();
    assert_eq!(egress, vec![NetworkPolicyEgressRule::default()], "internet access allows all egress");
}
