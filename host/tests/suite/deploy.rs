//! In-cluster deployment and declared servers: `config/k8s` rendered by real
//! kubectl and applied to the Kubernetes API emulator, checkov on what it
//! renders and on the pods mcpod creates (every exception justified in
//! docs/security.md), the Helm chart's values, and McpServer resources
//! applied with kubectl and reconciled by mcpod.

use crate::support::*;
use mcpod::config::RuntimeKind;
use mcpod_kube_emulator::Emulator;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn kubectl_bin() -> PathBuf {
    ensure_clients();
    clients_dir().join(".venv/bin/kubectl")
}

/// Runs kubectl (against `kubeconfig`, if any) off the async runtime; returns stdout or panics with stderr.
async fn kubectl(kubeconfig: Option<&Path>, args: &[&str], stdin: Option<String>) -> String {
    let mut cmd = Command::new(kubectl_bin());
    // A discovery cache of this test process's own: emulator ports are reused.
    cmd.arg("--cache-dir").arg(std::env::temp_dir().join(format!("mcpod-kubectl-cache-{}", std::process::id())));
    if let Some(k) = kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    cmd.args(args).current_dir(root());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl starts");
        if let Some(text) = stdin {
            child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("kubectl ends");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "kubectl {args:?}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
        stdout
    })
    .await
    .expect("the blocking task")
}

/// The check ids docs/security.md justifies, for `scope` (`manifests` or `pods`).
fn justified(scope: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/security.md")).expect("docs/security.md");
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[1].starts_with("`CKV") && cells[2].contains(scope))
                .then(|| cells[1].split('`').nth(1).unwrap_or_default().to_string())
        })
        .collect()
}

/// Runs checkov on the Kubernetes manifests in `yaml`; returns the ids of the failed checks.
fn checkov_failures(yaml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifests.yaml");
    std::fs::write(&file, yaml).unwrap();
    // --skip-download: checkov would otherwise ask its vendor's platform for guidelines.
    let out = Command::new(ensure_checkov())
        .args(["--framework", "kubernetes", "--skip-download", "--quiet", "--compact", "-o", "json", "-f"])
        .arg(&file)
        .output()
        .expect("checkov runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("checkov's report is not JSON ({e}): {text}"));
    let passed = report["summary"]["passed"].as_u64().unwrap_or(0);
    assert!(passed > 20, "checkov ran its Kubernetes checks: {}", report["summary"]);
    let mut failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}", c["check_id"].as_str().unwrap_or("?"), c["resource"].as_str().unwrap_or("?")))
        .collect();
    failed.sort();
    failed.dedup();
    failed
}

fn unjustified(failed: &[String], scope: &str) -> Vec<String> {
    let ok = justified(scope);
    failed.iter().filter(|f| !ok.iter().any(|id| f.split(' ').next() == Some(id.as_str()))).cloned().collect()
}

async fn render(dir: &str) -> String {
    kubectl(None, &["kustomize", dir], None).await
}

/// An emulator after docs/deploy.md's step 2 (the namespace and the API
/// token's Secret), its commands run as a user types them with real kubectl;
/// its kubeconfig.
async fn cluster_after_step_2() -> (Emulator, tempfile::TempDir, PathBuf) {
    let emu = Emulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig, "default").unwrap();
    let doc = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    let step = doc.split("## 2. The API token").nth(1).expect("deploy.md has step 2");
    let step = step.split("\n## ").next().unwrap_or_default();
    let block = step.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("with its commands");
    let mut ran = 0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let line = line.replace("\"$(openssl rand -hex 32)\"", "0123456789abcdef");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "kubectl", "step 2 is kubectl commands: {line}");
        kubectl(Some(&kubeconfig), &words[1..], None).await;
        ran += 1;
    }
    assert_eq!(ran, 2, "the namespace and the Secret: {block}");
    (emu, dir, kubeconfig)
}

/// The Secret mcpod's Deployment mounts its API token from is there, with
/// the key the config's `api_token_file` reads.
async fn check_api_token_secret(kubeconfig: &Path, docs: &[Value], config: &mcpod::config::Config) {
    let file = config.server.api_token_file.as_deref().expect("api_token_file");
    let pod = &docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str().is_some_and(|p| file.parent() == Some(Path::new(p))));
    let volume = mount.unwrap_or_else(|| panic!("a volume is mounted where {} is", file.display()))["name"].clone();
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == volume).unwrap();
    let secret = volume["secret"]["secretName"].as_str().expect("the token's volume is a Secret");
    let key = file.file_name().unwrap().to_string_lossy();
    let value = kubectl(
        Some(kubeconfig),
        &["get", "secret", secret, "-n", "mcpod", "-o", &format!("jsonpath={{.data.{key}}}")],
        None,
    )
    .await;
    assert_eq!(value, "MDEyMzQ1Njc4OWFiY2RlZg==", "the Secret {secret} step 2 made holds the token under {key}");
}

/// mcpod's own objects in namespace `mcpod` (`kind/name`), as kubectl lists them.
async fn deployed(kubeconfig: &Path) -> Vec<String> {
    let kinds = "deployment,serviceaccount,role,rolebinding,service,networkpolicy,configmap";
    let got = kubectl(Some(kubeconfig), &["get", kinds, "-n", "mcpod", "-o", "name"], None).await;
    got.lines().map(String::from).collect()
}

/// The YAML documents of `yaml` (`---` between them), comment-only ones dropped.
fn documents(yaml: &str) -> Vec<Value> {
    format!("\n{yaml}")
        .split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("YAML ({e}): {d}")))
        .filter(|d| !d.is_null())
        .collect()
}

/// What every way of deploying mcpod must get right, checked on what it
/// renders (`docs`): the rights mcpod needs and no more, a config mcpod
/// accepts for the namespace it is in, probes the browser guard lets
/// through, the restricted security context, and the names that tie the
/// objects together. Returns the config.
fn check_deployment(docs: &[Value], namespace: &str) -> mcpod::config::Config {
    let kinds = kinds(docs);
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "NetworkPolicy",
    ] {
        assert!(kinds.contains(kind), "it renders a {kind}: {kinds:?}");
    }
    assert!(!kinds.iter().any(|k| k.starts_with("Cluster")), "no cluster-wide rights: {kinds:?}");
    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    let rules = role["rules"].as_array().unwrap();
    assert!(rules.iter().all(|r| !r.to_string().contains('*')), "no wildcards: {role}");
    for (resource, verb) in [
        ("pods", "watch"),
        ("pods/attach", "create"),
        ("pods/exec", "create"),
        ("pods/portforward", "create"),
        ("pods/log", "get"),
        ("secrets", "create"),
        ("configmaps", "patch"),
        ("networkpolicies", "create"),
        ("events", "list"),
        ("mcpservers", "watch"),
        ("mcpservers/status", "patch"),
    ] {
        assert!(
            rules.iter().any(|r| r["resources"].as_array().unwrap().iter().any(|x| x == resource)
                && r["verbs"].as_array().unwrap().iter().any(|v| v == verb)),
            "the Role lets mcpod {verb} {resource}"
        );
    }
    // The ConfigMap holds a config mcpod accepts.
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap" && d["data"]["mcpod.toml"].is_string()).unwrap();
    let toml = cm["data"]["mcpod.toml"].as_str().unwrap();
    let config = mcpod::config::Config::parse(toml, Path::new("mcpod.toml")).unwrap();
    config.validate().unwrap();
    assert_eq!(config.server.runtime, RuntimeKind::Kubernetes);
    assert_eq!(config.kubernetes.namespace, namespace);
    assert_eq!(config.server.public_url.as_deref(), Some(format!("http://mcpod.{namespace}.svc:7460").as_str()));
    assert!(config.server.api_token_file.is_some(), "beyond loopback mcpod needs its token");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let template = &deployment["spec"]["template"];
    let pod = &template["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // The kubelet probes by pod IP, which the browser guard refuses; the
    // probes name a Host that the guard built from this config accepts.
    let guard = mcpod::front::guard::Guard::for_host(
        config.server.allowed_origins.clone(),
        config.server.allowed_hosts.clone(),
        config.server.public_url.as_deref(),
    );
    let probe = |host: &str| {
        let mut h = axum::http::HeaderMap::new();
        h.insert("host", host.parse().unwrap());
        guard.check(&axum::http::Method::GET, &h)
    };
    assert!(probe("10.244.0.7:7460").is_err(), "a pod IP is no name of mcpod's");
    for p in ["livenessProbe", "readinessProbe"] {
        let headers = c[p]["httpGet"]["httpHeaders"].as_array().unwrap_or_else(|| panic!("{p} sends a Host"));
        let host = headers.iter().find(|h| h["name"] == "Host").unwrap()["value"].as_str().unwrap();
        assert!(probe(host).is_ok(), "{p}'s Host {host} passes the guard");
    }
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(
        pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "config").unwrap()["configMap"]["name"],
        cm["metadata"]["name"]
    );
    // Server pods admit mcpod by the labels the config names: its pod has them.
    let labels = &template["metadata"]["labels"];
    assert!(!config.kubernetes.host_pod_labels.is_empty(), "server pods admit mcpod by some label");
    for (key, value) in &config.kubernetes.host_pod_labels {
        assert_eq!(labels[key], value.as_str(), "mcpod's pod carries host_pod_labels' {key}");
    }
    let policy = docs.iter().find(|d| d["kind"] == "NetworkPolicy").unwrap();
    let selected = policy["spec"]["podSelector"]["matchLabels"].as_object().unwrap();
    assert!(!selected.is_empty(), "an empty selector would select every pod");
    for (key, value) in selected {
        assert_eq!(&labels[key], value, "mcpod's NetworkPolicy selects its pod");
    }
    // It runs as the ServiceAccount its Role is bound to.
    let account = docs.iter().find(|d| d["kind"] == "ServiceAccount").unwrap()["metadata"]["name"].clone();
    assert_eq!(pod["serviceAccountName"], account);
    let binding = docs.iter().find(|d| d["kind"] == "RoleBinding").unwrap();
    assert_eq!(binding["subjects"][0]["name"], account);
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kustomize_base_renders_parses_and_applies_to_the_emulator() {
    let yaml = render("config/k8s").await;
    let docs = documents(&yaml);
    assert!(kinds(&docs).contains("Namespace"), "the base makes its namespace");
    let config = check_deployment(&docs, "mcpod");

    // Applied with kubectl after deploy.md's step 2, twice (the second is a
    // no-op update).
    let (_emu, _dir, kubeconfig) = cluster_after_step_2().await;
    for _ in 0..2 {
        let applied = kubectl(Some(&kubeconfig), &["apply", "-f", "-"], Some(yaml.clone())).await;
        assert!(
            applied.contains("deployment.apps/mcpod")
                && applied.contains("customresourcedefinition.apiextensions.k8s.io/mcpservers.mcpod.dev"),
            "{applied}"
        );
    }
    let got = deployed(&kubeconfig).await;
    assert_eq!(got.len(), 7, "{got:?}");
    check_api_token_secret(&kubeconfig, &docs, &config).await;
    let crds = kubectl(Some(&kubeconfig), &["get", "crd", "-o", "name"], None).await;
    assert_eq!(crds.trim(), "customresourcedefinition.apiextensions.k8s.io/mcpservers.mcpod.dev");

    // The example overlay moves everything to its namespace.
    let overlay = documents(&render("config/k8s/overlays/example").await);
    assert!(
        overlay
            .iter()
            // Cluster-scoped: the CRD, the Namespace, the agent-tokens ClusterRole and its binding.
            .filter(|d| d["kind"] != "CustomResourceDefinition"
                && d["kind"] != "Namespace"
                && !d["kind"].as_str().is_some_and(|k| k.starts_with("Cluster")))
            .all(|d| d["metadata"]["namespace"] == "ai-tools")
    );
    let ocm = overlay
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["data"]["mcpod.toml"].is_string())
        .expect("the config's ConfigMap");
    let oconfig =
        mcpod::config::Config::parse(ocm["data"]["mcpod.toml"].as_str().unwrap(), Path::new("mcpod.toml")).unwrap();
    assert_eq!(oconfig.kubernetes.namespace, "ai-tools");
    assert!(!oconfig.policy.internet_access);
    // Agent tokens: the one cluster-wide right is `create` on tokenreviews,
    // bound to mcpod's ServiceAccount in the overlay's namespace.
    assert!(oconfig.auth.kubernetes.is_some(), "the overlay's config checks ServiceAccount tokens");
    let cluster_role = overlay.iter().find(|d| d["kind"] == "ClusterRole").expect("a ClusterRole");
    assert_eq!(
        cluster_role["rules"],
        serde_json::json!([{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}])
    );
    // The team's policies: a ConfigMap that parses, mounted where the config looks.
    let policies = oconfig.access_policies().expect("the overlay's config names policies");
    let pcm = overlay.iter().find(|d| d["kind"] == "ConfigMap" && d["data"]["team.cedar"].is_string()).unwrap();
    let text = pcm["data"]["team.cedar"].as_str().unwrap();
    mcpod::access::parse(text, &policies).expect("the overlay's policies parse");
    let deployment = overlay.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["configMap"]["name"] == pcm["metadata"]["name"]);
    let volume = volume.expect("a volume of the policies' ConfigMap")["name"].clone();
    let mount = pod["containers"][0]["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == volume);
    let mount = mount.expect("the policies' volume is mounted")["mountPath"].as_str().unwrap();
    assert_eq!(policies, Path::new(mount).join("team.cedar"), "mounted where [access] policies looks");
    let binding = overlay.iter().find(|d| d["kind"] == "ClusterRoleBinding").expect("a ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], cluster_role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "mcpod", "namespace": "ai-tools"}])
    );
}

/// The Helm chart as `helm template mcpod config/helm/mcpod -n NAMESPACE
/// --include-crds -f VALUES` renders it (tests/helm-render: Helm's engine,
/// since Helm itself cannot be installed here), with `values` merged over
/// values.yaml.
fn helm_template_in(namespace: &str, values: &Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    // JSON is YAML.
    std::fs::write(&file, values.to_string()).unwrap();
    let out = Command::new(ensure_helm_render())
        .args(["-name", "mcpod", "-namespace", namespace, "-f"])
        .arg(&file)
        .arg(root().join("config/helm/mcpod"))
        .output()
        .expect("helm-render runs");
    assert!(out.status.success(), "the chart renders: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The chart rendered into namespace `mcpod`, as deploy.md installs it.
fn helm_template(values: &Value) -> String {
    helm_template_in("mcpod", values)
}

/// Values that enable every server values.yaml names, with the example
/// overlay's access policies and two registry mirrors.
fn helm_values_enabling_everything() -> Value {
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join("config/helm/mcpod/values.yaml")).unwrap())
            .unwrap();
    let servers: serde_json::Map<String, Value> = values
        .pointer("/config/mcp/servers")
        .and_then(Value::as_object)
        .expect("config.mcp.servers")
        .keys()
        .map(|k| (k.clone(), json!({"enabled": true})))
        .collect();
    let policies = std::fs::read_to_string(root().join("config/k8s/overlays/example/team.cedar")).unwrap();
    json!({
        "config": {"mcp": {
            "servers": servers,
            "registries": {"npm": "https://npm.mirror.example/", "pypi": "https://pypi.mirror.example/simple"}
        }},
        "accessPolicies": policies,
    })
}

/// The catalog's templates, as `mcpod templates list --json` shows them.
fn catalog() -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpod"))
        .args(["templates", "list", "--json", "--config"])
        .arg(root().join("config/mcpod.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The kinds of `docs`.
fn kinds(docs: &[Value]) -> std::collections::BTreeSet<String> {
    docs.iter().filter_map(|d| d["kind"].as_str().map(String::from)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_helm_chart_renders_what_the_kustomize_base_deploys_and_applies_to_the_emulator() {
    let yaml = helm_template(&json!({}));
    let docs = documents(&yaml);
    let config = check_deployment(&docs, "mcpod");
    assert_eq!(config.kubernetes.instance, "mcpod", "the instance is the release's name");

    // What the kustomize base deploys: the same objects (the namespace aside,
    // which `helm install --create-namespace` makes, and the one server the
    // values enable), the same rights and the same effective settings.
    let base = documents(&render("config/k8s").await);
    let mut expected = kinds(&base);
    expected.remove("Namespace");
    expected.insert("McpServer".into());
    assert_eq!(kinds(&docs), expected);
    let rules = |docs: &[Value]| docs.iter().find(|d| d["kind"] == "Role").unwrap()["rules"].clone();
    assert_eq!(rules(&docs), rules(&base), "the chart grants exactly the base's rights");
    let base_config = check_deployment(&base, "mcpod");
    for (what, helm, kustomize) in [
        ("[policy]", format!("{:?}", config.policy), format!("{:?}", base_config.policy)),
        ("[resources]", format!("{:?}", config.resources), format!("{:?}", base_config.resources)),
        ("[limits]", format!("{:?}", config.limits), format!("{:?}", base_config.limits)),
    ] {
        assert_eq!(helm, kustomize, "the chart's defaults give the base's {what}");
    }
    let servers: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "McpServer").collect();
    assert_eq!(servers.len(), 1, "values.yaml enables time alone");
    // Every namespaced object lands in the release's namespace, whatever it is.
    let elsewhere = documents(&helm_template_in("team-a", &json!({})));
    let config_elsewhere = check_deployment(&elsewhere, "team-a");
    assert_eq!(config_elsewhere.kubernetes.namespace, "team-a");
    for d in elsewhere.iter().filter(|d| d["kind"] != "CustomResourceDefinition") {
        assert_eq!(d["metadata"]["namespace"], "team-a", "{} names its namespace", d["kind"]);
    }
    // A null drops the chart's entry, as Helm coalesces values.
    let dropped = documents(&helm_template(&json!({"config": {"mcp": {"servers": {"time": null}}}})));
    assert!(!dropped.iter().any(|d| d["kind"] == "McpServer"), "time: null enables nothing");
    assert_eq!(
        (servers[0]["metadata"]["name"].as_str(), servers[0]["spec"]["template"].as_str()),
        (Some("time"), Some("time"))
    );

    // A changed config restarts mcpod (its checksum is in the pod template);
    // a change elsewhere does not.
    let checksum = |yaml: &str| {
        let docs = documents(yaml);
        let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        d["spec"]["template"]["metadata"]["annotations"]["checksum/config"].as_str().unwrap().to_string()
    };
    let first = checksum(&yaml);
    assert!(first.len() == 64 && first.bytes().all(|b| b.is_ascii_hexdigit()), "a SHA-256: {first}");
    assert_ne!(checksum(&helm_template(&json!({"config": {"log": {"level": "debug"}}}))), first);
    assert_eq!(checksum(&helm_template(&json!({"resources": {"limits": {"cpu": "2"}}}))), first);

    // Every server enabled, the access policies and the registry mirrors.
    let everything = helm_template(&helm_values_enabling_everything());
    let docs = documents(&everything);
    let config = check_deployment(&docs, "mcpod");
    let catalog = catalog();
    // values.yaml has one entry per catalog template, and the chart names no
    // server of its own: every template once, named after its key.
    let servers: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "McpServer").collect();
    let mut declared: Vec<&str> = servers.iter().filter_map(|s| s["spec"]["template"].as_str()).collect();
    let mut templates: Vec<&str> = catalog.iter().filter_map(|t| t["name"].as_str()).collect();
    declared.sort();
    templates.sort();
    assert_eq!(declared, templates, "one McpServer per catalog template");
    for server in &servers {
        let spec: mcpod::operator::resource::McpServerSpec =
            serde_json::from_value(server["spec"].clone()).unwrap_or_else(|e| panic!("{e}: {server}"));
        assert_eq!(spec.problem(), None, "{server}");
        let name = spec.template.as_deref().unwrap();
        let template = catalog.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("{name} is in the catalog"));
        let declared = |what: &str| -> Vec<&str> {
            template[what].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect()
        };
        assert!(spec.params.keys().all(|p| declared("params").contains(&p.as_str())), "{name}'s params: {spec:?}");
        assert!(spec.secret_refs.iter().all(|s| declared("secrets").contains(&s.env.as_str())), "{name}'s secrets");
        assert_eq!(server["metadata"]["name"], name, "named after its key, as the template is");
    }
    let filesystem = servers.iter().find(|s| s["spec"]["template"] == "filesystem").unwrap();
    assert_eq!(
        filesystem["spec"]["params"]["allowed-paths"], "/tmp,/var/cache",
        "allowedPaths defaults as the seed says"
    );
    let brave = servers.iter().find(|s| s["spec"]["template"] == "brave-search").unwrap();
    assert_eq!(brave["spec"]["secretRefs"][0]["env"], "BRAVE_API_KEY");
    // The policies: a ConfigMap that parses, mounted where the config looks.
    let policies = config.access_policies().expect("the config names the policies");
    let pcm = docs.iter().find(|d| d["kind"] == "ConfigMap" && d["data"]["policies.cedar"].is_string()).unwrap();
    mcpod::access::parse(pcm["data"]["policies.cedar"].as_str().unwrap(), &policies).expect("the policies parse");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["configMap"]["name"] == pcm["metadata"]["name"]);
    let volume = volume.expect("a volume of the policies' ConfigMap")["name"].clone();
    let mount = pod["containers"][0]["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == volume);
    let mount = mount.expect("the policies' volume is mounted")["mountPath"].as_str().unwrap();
    assert_eq!(policies.parent(), Some(Path::new(mount)), "mounted where [access] policies looks");
    // The mirrors are on mcpod's container, which passes them to every server pod.
    let env = &pod["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([
            {"name": "npm_config_registry", "value": "https://npm.mirror.example/"},
            {"name": "UV_INDEX_URL", "value": "https://pypi.mirror.example/simple"}
        ])
    );

    // Installed into the emulator with real kubectl, each object into the
    // namespace it names (no `-n`); twice, the second changing nothing. (The
    // emulator does not check a CRD's schema: each McpServer's spec was
    // read as mcpod reads it, above.)
    let (_emu, _dir, kubeconfig) = cluster_after_step_2().await;
    let k = Some(kubeconfig.as_path());
    // Helm installs crds/ first, then the templates.
    kubectl(k, &["apply", "-f", "config/helm/mcpod/crds"], None).await;
    let applied = kubectl(k, &["apply", "-f", "-"], Some(everything.clone())).await;
    assert!(
        applied.contains("deployment.apps/mcpod created") && applied.contains("mcpserver.mcpod.dev/time created"),
        "{applied}"
    );
    let again = kubectl(k, &["apply", "-f", "-"], Some(everything.clone())).await;
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "a second apply changes nothing: {again}");
    let got = deployed(&kubeconfig).await;
    let expected = [
        "configmap/mcpod-config",
        "configmap/mcpod-policies",
        "deployment.apps/mcpod",
        "networkpolicy.networking.k8s.io/mcpod",
        "role.rbac.authorization.k8s.io/mcpod",
        "rolebinding.rbac.authorization.k8s.io/mcpod",
        "service/mcpod",
        "serviceaccount/mcpod",
    ];
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "mcpod's objects, in namespace mcpod");
    check_api_token_secret(&kubeconfig, &docs, &config).await;
    let declared = kubectl(k, &["get", "mcpservers", "-n", "mcpod", "-o", "name"], None).await;
    assert_eq!(declared.lines().count(), catalog.len(), "{declared}");
}

#[test]
fn the_crd_files_are_what_mcpod_serves() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpod")).arg("crd").output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    for file in ["config/k8s/base/crd.yaml", "config/helm/mcpod/crds/mcpservers.yaml"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        assert_eq!(text, generated, "{file} is stale: regenerate it with `mcpod crd > {file}`");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn checkov_finds_nothing_unjustified_in_the_manifests_nor_in_the_pods_mcpod_creates() {
    let failed = checkov_failures(&render("config/k8s").await);
    assert_eq!(unjustified(&failed, "manifests"), Vec::<String>::new(), "every failed check: {failed:?}");
    let overlay = checkov_failures(&render("config/k8s/overlays/example").await);
    assert_eq!(unjustified(&overlay, "manifests"), Vec::<String>::new(), "every failed check: {overlay:?}");
    // The Helm chart, with its defaults and with everything it can set.
    for values in [json!({}), helm_values_enabling_everything()] {
        let failed = checkov_failures(&helm_template(&values));
        assert_eq!(unjustified(&failed, "manifests"), Vec::<String>::new(), "every failed check: {failed:?}");
    }

    // The pods mcpod creates: a stdio server with a secret, and a network server.
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let host = kube_host_with(&kubeconfig, |_| {}).await;
    host.start_server(json!({"server_type": "fixture-command", "env": {"SERVICE_API_KEY": "sk-1"}})).await;
    let pods =
        kubectl(Some(&kubeconfig), &["get", "pods,secrets,networkpolicies", "-n", "mcpod", "-o", "yaml"], None).await;
    assert!(pods.contains("kind: Pod") && pods.contains("kind: NetworkPolicy"), "{pods}");
    let failed = checkov_failures(&pods);
    assert_eq!(unjustified(&failed, "pods"), Vec::<String>::new(), "every failed check: {failed:?}");
}

/// The `.Values` paths a template uses, with `$name := .Values.x` variables resolved.
fn values_used(template: &str) -> Vec<String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for cap in template.split("{{").skip(1).filter_map(|s| s.split("}}").next()) {
        if let Some((var, path)) = cap.trim_start_matches('-').trim().split_once(":=") {
            vars.push((var.trim().to_string(), path.trim().trim_end_matches('-').trim().to_string()));
        }
    }
    let mut used = Vec::new();
    for word in template.split(|c: char| c.is_whitespace() || "(){}|\"".contains(c)) {
        let expanded = match vars.iter().find(|(v, _)| word.starts_with(&format!("{v}."))) {
            Some((v, path)) => format!("{path}{}", &word[v.len()..]),
            None => word.to_string(),
        };
        if let Some(rest) = expanded.strip_prefix(".Values.") {
            used.push(rest.trim_end_matches('.').to_string());
        }
    }
    used
}

#[test]
fn the_helm_values_mirror_the_seed_and_every_value_a_template_uses_exists() {
    let chart = root().join("config/helm/mcpod");
    let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap()).unwrap();
    for path in [
        "config.mcp.servers.braveSearch.enabled",
        "config.mcp.servers.filesystem.enabled",
        "config.mcp.servers.filesystem.allowedPaths",
        "config.mcp.security.allowNpx",
        "config.mcp.security.allowUv",
        "config.mcp.security.internetAccess",
        "config.mcp.resources.limits.cpu",
        "config.mcp.resources.limits.memory",
    ] {
        let pointer = format!("/{}", path.replace('.', "/"));
        assert!(values.pointer(&pointer).is_some(), "values.yaml has the seed's {path}");
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(chart.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for used in values_used(&text) {
            let pointer = format!("/{}", used.replace('.', "/"));
            assert!(
                values.pointer(&pointer).is_some(),
                "{} uses .Values.{used}, which values.yaml lacks",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 15, "the templates were read ({checked} values)");
    assert_eq!(
        values.pointer("/config/mcp/servers/filesystem/allowedPaths"),
        Some(&serde_json::json!(["/tmp", "/var/cache"])),
        "allowedPaths defaults as the seed says"
    );
    // The chart grants exactly the rights of the kustomize base.
    let rules = |file: PathBuf| {
        let text = std::fs::read_to_string(file).unwrap();
        text[text.find("rules:").unwrap()..].to_string()
    };
    assert_eq!(rules(chart.join("templates/role.yaml")), rules(root().join("config/k8s/base/role.yaml")));
}

/// Waits until `probe` returns Some, for up to 120 s (a uv pod installs
/// its server's dependencies into an empty cache, slower on a loaded machine).
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcpserver_applied_with_kubectl_runs_is_replaced_on_update_and_cleaned_up_on_delete() {
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let k = Some(kubeconfig.as_path());
    kubectl(k, &["apply", "-f", "config/k8s/base/crd.yaml"], None).await;
    let host = kube_host_with(&kubeconfig, |c| {
        c.kubernetes.watch_resources = true;
        c.server.public_url = Some("http://mcpod.mcpod.svc:7460/".to_string());
    })
    .await;
    let get = async || -> Value {
        serde_json::from_str(&kubectl(k, &["get", "mcpserver", "time", "-n", "mcpod", "-o", "json"], None).await)
            .unwrap()
    };

    // Created: a running server with endpoints, in the same list as API-started ones.
    kubectl(k, &["apply", "-n", "mcpod", "-f", "config/examples/mcpserver-time.yaml"], None).await;
    let ready = eventually("the McpServer is Ready", async || {
        let obj = get().await;
        (obj["status"]["phase"] == "Ready").then_some(obj)
    })
    .await;
    assert_eq!(ready["status"]["observedGeneration"], 1);
    let pinned = ready["status"]["packages"][0].as_str().unwrap_or_default();
    assert!(pinned.starts_with("mcp-server-time=="), "the status names the version that runs: {ready}");
    assert!(ready["metadata"]["finalizers"].as_array().unwrap().iter().any(|f| f == "mcpod.dev/cleanup"));
    let endpoint = ready["status"]["endpoints"]["streamableHttp"].as_str().unwrap().to_string();
    assert_eq!(endpoint, "http://mcpod.mcpod.svc:7460/servers/time/mcp", "endpoints name server.public_url");
    assert!(ready["status"]["capabilities"]["tools"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{ready}");
    let api_started = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let listed: Vec<Value> =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = listed.iter().filter_map(|s| s["server_id"].as_str()).collect();
    assert!(ids.contains(&"time") && ids.contains(&api_started.as_str()), "one list: {ids:?}");
    let url = format!("{}/servers/time/mcp", host.base);
    let s = McpSession::open_any(&url).await;
    assert!(
        tool_text(&s.call(1, "get_current_time", json!({"timezone": "Europe/Paris"})).await).contains("Europe/Paris")
    );
    let pod_uid = |pods: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(pods).unwrap();
        v["items"].as_array().unwrap().iter().map(|p| p["metadata"]["uid"].as_str().unwrap().to_string()).collect()
    };
    let selector = "mcpod.dev/server=time";
    let before = pod_uid(&kubectl(k, &["get", "pods", "-n", "mcpod", "-l", selector, "-o", "json"], None).await);
    assert!(!before.is_empty());

    // Updated: the server is replaced under the same id; the endpoint stays.
    kubectl(
        k,
        &[
            "patch",
            "mcpserver",
            "time",
            "-n",
            "mcpod",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"params":{"local-timezone":"Asia/Tokyo"}}}"#,
        ],
        None,
    )
    .await;
    let updated = eventually("the update is reconciled", async || {
        let obj = get().await;
        (obj["status"]["observedGeneration"] == 2 && obj["status"]["phase"] == "Ready").then_some(obj)
    })
    .await;
    assert_eq!(updated["status"]["endpoints"]["streamableHttp"], endpoint.as_str(), "the endpoint stays");
    let after = pod_uid(&kubectl(k, &["get", "pods", "-n", "mcpod", "-l", selector, "-o", "json"], None).await);
    assert!(after.iter().all(|u| !before.contains(u)), "new pods: {before:?} → {after:?}");
    let s = McpSession::open_any(&url).await;
    assert!(tool_text(&s.call(1, "get_current_time", json!({"timezone": "UTC"})).await).contains("UTC"));

    // Deleted: the finalizer holds it until the server and its pods are gone.
    kubectl(k, &["delete", "mcpserver", "time", "-n", "mcpod", "--wait=false"], None).await;
    eventually("the McpServer is gone", async || {
        let list: Value =
            serde_json::from_str(&kubectl(k, &["get", "mcpservers", "-n", "mcpod", "-o", "json"], None).await).unwrap();
        list["items"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
    let left = kubectl(k, &["get", "pods", "-n", "mcpod", "-l", selector, "-o", "name"], None).await;
    assert_eq!(left.trim(), "", "its pods went with it");
    let listed: Vec<Value> =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    assert!(listed.iter().all(|s| s["server_id"] != "time"), "{listed:?}");

    // A bad spec is reported in the status, not retried into the void.
    let bad =
        json!({"apiVersion": "mcpod.dev/v1alpha1", "kind": "McpServer", "metadata": {"name": "broken"}, "spec": {}})
            .to_string();
    kubectl(k, &["apply", "-n", "mcpod", "-f", "-"], Some(bad)).await;
    let failed = eventually("the bad spec is reported", async || {
        let obj: Value =
            serde_json::from_str(&kubectl(k, &["get", "mcpserver", "broken", "-n", "mcpod", "-o", "json"], None).await)
                .unwrap();
        (obj["status"]["phase"] == "Failed").then_some(obj)
    })
    .await;
    assert!(failed["status"]["message"].as_str().unwrap().contains("spec.template"), "{failed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcpserver_with_members_is_a_virtual_server_applied_and_deleted_with_kubectl() {
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let k = Some(kubeconfig.as_path());
    kubectl(k, &["apply", "-f", "config/k8s/base/crd.yaml"], None).await;
    let host = kube_host_with(&kubeconfig, |c| c.kubernetes.watch_resources = true).await;
    let member = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let manifest = format!(
        "apiVersion: mcpod.dev/v1alpha1\nkind: McpServer\nmetadata:\n  name: team\nspec:\n  virtual:\n    members:\n      - server: {member}\n        key: fx\n"
    );
    kubectl(k, &["apply", "-n", "mcpod", "-f", "-"], Some(manifest)).await;
    let ready = eventually("the virtual McpServer is Ready", async || {
        let obj: Value =
            serde_json::from_str(&kubectl(k, &["get", "mcpserver", "team", "-n", "mcpod", "-o", "json"], None).await)
                .unwrap();
        (obj["status"]["phase"] == "Ready").then_some(obj)
    })
    .await;
    let endpoint = ready["status"]["endpoints"]["streamableHttp"].as_str().unwrap();
    assert!(endpoint.ends_with("/virtual/team/mcp"), "{ready}");
    let s = McpSession::open_any(&format!("{}/virtual/team/mcp", host.base)).await;
    assert_eq!(tool_text(&s.call(1, "fx__echo", json!({"message": "declared"})).await), "declared");
    // A spec naming two kinds is refused in its status.
    let both = "apiVersion: mcpod.dev/v1alpha1\nkind: McpServer\nmetadata:\n  name: both\nspec:\n  template: time\n  virtual:\n    members:\n      - template: time\n";
    kubectl(k, &["apply", "-n", "mcpod", "-f", "-"], Some(both.to_string())).await;
    let failed = eventually("the two-kind McpServer fails", async || {
        let obj: Value =
            serde_json::from_str(&kubectl(k, &["get", "mcpserver", "both", "-n", "mcpod", "-o", "json"], None).await)
                .unwrap();
        (obj["status"]["phase"] == "Failed").then_some(obj)
    })
    .await;
    assert!(failed["status"]["message"].as_str().unwrap().contains("only one of"), "{failed}");
    kubectl(k, &["delete", "mcpserver", "team", "-n", "mcpod", "--wait=false"], None).await;
    eventually("the virtual server is gone", async || {
        let resp = host.http.get(format!("{}/api/v1/virtual/team", host.base)).send().await.unwrap();
        (resp.status().as_u16() == 404).then_some(())
    })
    .await;
}
