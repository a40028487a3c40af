//! The plugin runtime seen from outside: loading, world checks, limits on
//! misbehaving plugins, the HTTP grant, the compile cache, adapter sessions.

use crate::support::*;
use mcpod::config::{LimitsEntry, PluginKind};
use mcpod::frame::Frame;
use mcpod::plugin::bindings::ErrorCode;
use mcpod::plugin::cache::CacheOutcome;
use mcpod::plugin::{AdapterSession, CallError, PluginHost};
use std::sync::atomic::Ordering;

const MISBEHAVE: &str = "mcpod-test-misbehave-registry";

async fn host_with(entries: Vec<mcpod::config::PluginEntry>) -> PluginHost {
    let mut config = bare_config();
    config.plugins = entries;
    PluginHost::load(&config).await.expect("the engine starts")
}

async fn misbehave_host(limits: LimitsEntry, allow_hosts: Option<Vec<String>>) -> PluginHost {
    let mut entry = file_entry("misbehave", PluginKind::PackageRegistry, &fixture(MISBEHAVE));
    entry.limits = limits;
    entry.allow_hosts = allow_hosts;
    entry.config.insert("greeting".to_string(), toml::Value::String("hi".to_string()));
    host_with(vec![entry]).await
}

async fn search(host: &PluginHost, query: &str) -> Result<String, CallError> {
    let p = host.registry("misbehave")?;
    let hits = p.search(query, 10).await?;
    Ok(hits.first().and_then(|h| h.description.clone()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_builtin_loads_from_the_binary_and_reports_itself() {
    let mut config = bare_config();
    config.plugin_runtime.builtins = true;
    let host = PluginHost::load(&config).await.expect("engine");
    assert!(host.failures().is_empty(), "built-ins failed: {:?}", host.failures());
    let stdio = host.get("stdio", PluginKind::ProtocolAdapter).expect("stdio adapter is built in");
    assert_eq!(stdio.source, "builtin:stdio");
    assert_eq!(stdio.info.name, "stdio");
    assert_eq!(stdio.world(), "mcpod:plugin/protocol-adapter@0.1.0");
    for kind in PluginKind::ALL {
        assert!(host.of_kind(kind).count() >= 1, "no built-in {kind} plugin");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handle_of_one_kind_is_never_given_for_a_plugin_of_another() {
    let mut config = bare_config();
    config.plugin_runtime.builtins = true;
    let host = PluginHost::load(&config).await.expect("engine");
    assert!(host.adapter("stdio").is_ok());
    for err in [
        host.server_type("stdio").err().map(|e| e.to_string()),
        host.catalog("stdio").err().map(|e| e.to_string()),
        host.registry("stdio").err().map(|e| e.to_string()),
    ] {
        let err = err.expect("the stdio adapter is no plugin of another kind");
        assert!(err.contains("plugin named `stdio` is loaded"), "{err}");
    }
    let npm = host.registry("npm").expect("npm registry is built in");
    assert_eq!(npm.world(), "mcpod:plugin/package-registry@0.1.0");
    assert!(host.adapter("npm").is_err(), "a registry is no adapter");
    let catalogs: Vec<String> = host.catalogs().map(|c| c.name.clone()).collect();
    assert!(!catalogs.is_empty() && catalogs.iter().all(|n| host.catalog(n).is_ok()), "{catalogs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_of_another_world_is_refused_with_what_is_missing_and_the_rest_load() {
    let stdio = builtin_artifact("mcpod-adapter-stdio");
    let host = host_with(vec![
        file_entry("wrong", PluginKind::ServerType, &stdio),
        file_entry("right", PluginKind::ProtocolAdapter, &stdio),
    ])
    .await;
    assert!(host.get("right", PluginKind::ProtocolAdapter).is_ok(), "the good plugin still loads");
    let err = &host.failures()[0];
    assert_eq!(err.name, "wrong");
    let msg = err.to_string();
    assert!(msg.contains(&stdio.display().to_string()), "names the file: {msg}");
    assert!(msg.contains("does not implement world `mcpod:plugin/server-type@0.1.0`"), "{msg}");
    assert!(msg.contains("missing export `mcpod:plugin/launcher@0.1.0`"), "{msg}");
    assert!(msg.contains("looks like a protocol-adapter plugin"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_a_component_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0 definitely not a component").expect("write");
    let missing = dir.path().join("missing.wasm");
    let host = host_with(vec![
        file_entry("junk", PluginKind::ServerType, &junk),
        file_entry("missing", PluginKind::ServerType, &missing),
    ])
    .await;
    let msgs: Vec<String> = host.failures().iter().map(|f| f.to_string()).collect();
    assert_eq!(msgs.len(), 2);
    assert!(msgs[0].contains("junk.wasm") && msgs[0].contains("not a WebAssembly component"), "{}", msgs[0]);
    assert!(msgs[1].contains("missing.wasm") && msgs[1].contains("cannot read"), "{}", msgs[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_that_imports_http_is_refused() {
    let host =
        host_with(vec![file_entry("sneaky", PluginKind::ProtocolAdapter, &fixture("mcpod-test-sneaky-adapter"))]).await;
    let msg = host.failures()[0].to_string();
    assert!(msg.contains("imports something this host does not provide to protocol-adapter plugins"), "{msg}");
    assert!(msg.contains("mcpod:plugin/http"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_stopped_by_the_cpu_budget_and_the_plugin_keeps_serving() {
    let host = misbehave_host(LimitsEntry { cpu_ms: Some(50), ..Default::default() }, None).await;
    let err = search(&host, "loop").await.expect_err("a loop must not run forever");
    assert!(matches!(err, CallError::Cpu { budget_ms: 50, .. }), "{err}");
    assert!(err.to_string().contains("CPU budget"), "{err}");
    assert_eq!(search(&host, "ok").await.expect("next call works"), "fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn work_within_the_budget_completes() {
    let host = misbehave_host(LimitsEntry { cpu_ms: Some(200), ..Default::default() }, None).await;
    assert_eq!(search(&host, "spin:20").await.expect("20 ms of work fits in 200 ms"), "20 ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausting_memory_fails_the_call_not_the_host() {
    let host = misbehave_host(LimitsEntry { memory_mib: Some(16), ..Default::default() }, None).await;
    let err = search(&host, "oom").await.expect_err("the hoard must hit the cap");
    assert!(matches!(err, CallError::Memory { limit_mib: 16, .. }), "{err}");
    assert_eq!(search(&host, "ok").await.expect("next call works"), "fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_and_a_trap_are_errors_with_their_cause() {
    let host = misbehave_host(LimitsEntry::default(), None).await;
    let err = search(&host, "panic").await.expect_err("panics");
    assert!(matches!(err, CallError::Panic { .. }), "{err}");
    assert!(err.to_string().contains("deliberate panic for the test suite"), "{err}");
    let err = search(&host, "trap").await.expect_err("aborts");
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    assert_eq!(search(&host, "ok").await.expect("next call works"), "fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_result_is_refused() {
    let host = misbehave_host(LimitsEntry { output_kib: Some(1024), ..Default::default() }, None).await;
    let err = search(&host, "big").await.expect_err("10 MB of output");
    assert!(matches!(err, CallError::OutputTooLarge { limit: 1_048_576, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_error_is_passed_on_with_its_code() {
    let host = misbehave_host(LimitsEntry::default(), None).await;
    let err = search(&host, "nonsense").await.expect_err("unknown behaviour");
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
    assert!(!err.is_fault());
}

#[tokio::test(flavor = "multi_thread")]
async fn config_values_reach_the_plugin() {
    let host = misbehave_host(LimitsEntry::default(), None).await;
    assert_eq!(search(&host, "config:greeting").await.unwrap(), "hi");
    assert_eq!(search(&host, "config:absent").await.unwrap(), "<unset>");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_reaches_allowed_hosts_only_and_refuses_before_connecting() {
    let (allowed, allowed_seen) = http_server().await;
    let (other, other_seen) = http_server().await;
    let host = misbehave_host(LimitsEntry::default(), Some(vec![allowed.to_string()])).await;

    let ok = search(&host, &format!("fetch:http://{allowed}/x")).await.expect("allowed host");
    assert_eq!(ok, "200 hello /x");

    let err = search(&host, &format!("fetch:http://{other}/y")).await.expect_err("not allowed");
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("not in this plugin's allow_hosts"), "{err}");
    let err = search(&host, &format!("fetch:http://localhost:{}/y", allowed.port())).await.expect_err("other name");
    assert_eq!(err.code(), Some(ErrorCode::Denied));

    let redirect = format!("fetch:http://{allowed}/redirect?to=http://{other}/z");
    let err = search(&host, &redirect).await.expect_err("redirect to a host not allowed");
    assert_eq!(err.code(), Some(ErrorCode::Unavailable));
    assert!(err.to_string().contains("not in allow_hosts"), "{err}");

    assert_eq!(other_seen.connections.load(Ordering::SeqCst), 0, "no connection to the refused host");
    assert!(allowed_seen.connections.load(Ordering::SeqCst) >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_allow_hosts_http_is_not_granted() {
    let (addr, seen) = http_server().await;
    let host = misbehave_host(LimitsEntry::default(), None).await;
    let err = search(&host, &format!("fetch:http://{addr}/")).await.expect_err("no grant");
    assert_eq!(err.code(), Some(ErrorCode::Denied));
    assert!(err.to_string().contains("no HTTP grant"), "{err}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_sees_no_environment_no_files_and_no_sockets() {
    let (addr, seen) = http_server().await;
    // Even with an HTTP grant for the address, the guest's own sockets stay closed.
    let host = misbehave_host(LimitsEntry::default(), Some(vec![addr.to_string()])).await;
    assert!(std::env::var_os("PATH").is_some(), "the host itself has an environment");
    assert_eq!(search(&host, "env:PATH").await.unwrap(), "<unset> (0 vars)");
    let file = search(&host, &format!("file:{}", root().join("Cargo.toml").display())).await.unwrap();
    assert!(file.starts_with("denied:"), "no filesystem: {file}");
    assert!(search(&host, "file:/etc/passwd").await.unwrap().starts_with("denied:"));
    let connect = search(&host, &format!("connect:{addr}")).await.unwrap();
    assert!(connect.starts_with("denied:"), "no sockets: {connect}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0, "nothing reached the listener");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_archon_image_from_the_environment_reaches_the_archon_plugin() {
    let mut config = bare_config();
    config.plugin_runtime.builtins = true;
    config.apply_env(|var| (var == "ARCHON_MCP_IMAGE").then(|| "registry.example/archon-mcp:9.9".to_string())).unwrap();
    let host = PluginHost::load(&config).await.unwrap();
    let archon = host.server_type("archon").unwrap();
    let spec = archon
        .launch(&mcpod::plugin::bindings::ServerConfig {
            server_type: "archon".into(),
            package: None,
            version: None,
            image: None,
            args: vec![],
            env: vec![],
            transport: None,
            port: None,
            path: None,
            options: vec![],
        })
        .await
        .unwrap();
    assert_eq!(spec.container.unwrap().image, "registry.example/archon-mcp:9.9");
    assert_eq!(spec.port, Some(8051));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_outlives_its_timeout_is_stopped() {
    let (addr, _) = http_server().await;
    let host =
        misbehave_host(LimitsEntry { timeout_ms: Some(300), ..Default::default() }, Some(vec![addr.to_string()])).await;
    let err = search(&host, &format!("fetch:http://{addr}/hang")).await.expect_err("hangs");
    assert!(matches!(err, CallError::Timeout { timeout_ms: 300, .. }), "{err}");
    assert_eq!(search(&host, "ok").await.expect("next call works"), "fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_responses_are_cached_then_revalidated_with_their_etag() {
    let (addr, seen) = http_server().await;
    let host =
        misbehave_host(LimitsEntry { http_cache_secs: Some(1), ..Default::default() }, Some(vec![addr.to_string()]))
            .await;
    let q = format!("fetch:http://{addr}/etag");
    assert_eq!(search(&host, &q).await.unwrap(), "200 version");
    assert_eq!(search(&host, &q).await.unwrap(), "200 version");
    assert_eq!(seen.requests.lock().unwrap().len(), 1, "the second GET is answered from the cache");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(search(&host, &q).await.unwrap(), "200 version", "a 304 gives the cached body");
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].1.as_deref(), Some("\"v1\""), "revalidated with If-None-Match");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compile_cache_is_used_on_the_second_load_and_survives_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = bare_config();
    config.plugin_runtime.cache = true;
    config.plugin_runtime.cache_dir = Some(dir.path().to_path_buf());
    config.plugins = vec![file_entry("stdio", PluginKind::ProtocolAdapter, &builtin_artifact("mcpod-adapter-stdio"))];
    let first = PluginHost::load(&config).await.unwrap();
    assert_eq!(first.get("stdio", PluginKind::ProtocolAdapter).unwrap().cache, CacheOutcome::Compiled);
    let second = PluginHost::load(&config).await.unwrap();
    assert_eq!(second.get("stdio", PluginKind::ProtocolAdapter).unwrap().cache, CacheOutcome::Hit);

    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(files.len(), 1, "one artifact per component");
    std::fs::write(files[0].path(), b"garbage").unwrap();
    let third = PluginHost::load(&config).await.unwrap();
    let p = third.get("stdio", PluginKind::ProtocolAdapter).expect("a corrupt cache entry is recompiled");
    assert_eq!(p.cache, CacheOutcome::Compiled);
}

fn msg(data: &str) -> Frame {
    Frame { event: None, id: None, data: data.to_string() }
}

/// A session of the adapter built at `artifact`, refusing messages over
/// `max` bytes, and its host (which must outlive it: the host's engine
/// ticks the CPU budgets).
async fn adapter_session(artifact: &std::path::Path, max: u32) -> (PluginHost, AdapterSession) {
    let host = host_with(vec![file_entry("adapter", PluginKind::ProtocolAdapter, artifact)]).await;
    let plugin = host.adapter("adapter").unwrap();
    let session = AdapterSession::open(plugin, max).unwrap();
    (host, session)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_adapter_session_frames_both_ways() {
    let (_host, mut session) = adapter_session(&builtin_artifact("mcpod-adapter-stdio"), 1024).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    assert!(session.decode(&ping.as_bytes()[..7]).unwrap().is_empty());
    let frames = session.decode(format!("{}\nnot json\n", &ping[7..]).as_bytes()).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].as_ref().unwrap().data, ping);
    let bad = frames[1].as_ref().expect_err("a bad line is an error item");
    assert_eq!(bad.code, ErrorCode::InvalidInput);
    assert_eq!(session.encode(msg(ping)).unwrap(), format!("{ping}\n").into_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_session_survives_its_plugin_faulting_or_looping() {
    let (_host, mut session) = adapter_session(&fixture("mcpod-test-misbehave-adapter"), 1024).await;
    let err = session.decode(b"panic").expect_err("panics");
    assert!(matches!(err, CallError::Panic { .. }), "{err}");
    let err = session.decode(b"loop").expect_err("an endless loop is stopped");
    assert!(matches!(err, CallError::Cpu { .. }), "the CPU budget stops a looping adapter: {err}");
    let err = session.decode(b"garbage").expect_err("not JSON");
    assert!(matches!(err, CallError::BadOutput { .. }), "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    let ok = session.decode(br#"{"jsonrpc":"2.0","method":"x"}"#).expect("rebuilt after the faults");
    assert_eq!(ok.len(), 1);
}

/// Adapter calls are synchronous, on the runtime's worker: writing stderr
/// works, and an operation that would wait (a sleep) fails that call with
/// a reason instead of blocking the worker or panicking the task.
#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_may_write_stderr_but_a_call_that_would_wait_fails() {
    let (_host, mut session) = adapter_session(&fixture("mcpod-test-misbehave-adapter"), 1024).await;
    assert!(session.decode(b"shout").expect("stderr is writable").is_empty());
    let err = session.decode(b"sleep").expect_err("a sleep cannot wait");
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    assert!(err.to_string().contains("would wait"), "the error says why: {err}");
    let ok = session.decode(br#"{"jsonrpc":"2.0","method":"x"}"#).expect("rebuilt after the fault");
    assert_eq!(ok.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdin_writer_delivers_whole_messages_in_order_when_the_pipe_is_full() {
    use mcpod::jsonrpc::{Id, Message};
    use mcpod::upstream::stdio::StdinWriter;
    use tokio::io::AsyncBufReadExt;
    let (_host, adapter) = adapter_session(&builtin_artifact("mcpod-adapter-stdio"), 1 << 20).await;
    // A 64-byte pipe holds less than one message: most writes must wait
    // for the reader, so they go on in tasks of their own.
    let (ours, theirs) = tokio::io::duplex(64);
    let writer = StdinWriter::spawn("test".to_string(), Box::pin(ours), adapter);
    let senders: Vec<_> = (0..4i64)
        .map(|s| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for n in 0..50i64 {
                    writer.queue(Message::request(Id::Num(s * 1000 + n), "tools/call", None));
                    writer.flush();
                    if n % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let mut lines = tokio::io::BufReader::new(theirs).lines();
    let mut next = [0i64; 4];
    for _ in 0..200 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .expect("every queued message arrives")
            .unwrap()
            .unwrap();
        let msg = Message::parse(&line).unwrap_or_else(|e| panic!("a whole message per line, got {line:?}: {e}"));
        let Some(Id::Num(id)) = msg.id.value().cloned() else { panic!("an id: {line}") };
        let (s, n) = ((id / 1000) as usize, id % 1000);
        assert_eq!(n, next[s], "sender {s}'s messages arrive in the order queued");
        next[s] += 1;
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(next, [50; 4]);
}

/// What a session gave back, comparable across the native and wasm paths.
fn outcome<T: std::fmt::Debug>(r: Result<T, CallError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {e}"),
    }
}

/// Two hosts with the built-ins: the stdio adapter run natively, and in wasm.
async fn native_and_wasm(output_kib: Option<u32>) -> (PluginHost, PluginHost) {
    let load = |native: bool| async move {
        let mut config = bare_config();
        config.plugin_runtime.builtins = true;
        config.plugin_runtime.native_adapters = native;
        if let Some(kib) = output_kib {
            let mut entry = file_entry("stdio", PluginKind::ProtocolAdapter, std::path::Path::new("unused"));
            entry.source = "builtin:stdio".into();
            entry.limits.output_kib = Some(kib);
            config.plugins.push(entry);
        }
        let host = PluginHost::load(&config).await.expect("engine");
        assert!(host.failures().is_empty(), "{:?}", host.failures());
        host
    };
    (load(true).await, load(false).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_builtin_stdio_adapter_frames_every_stream_the_same_natively_as_in_wasm() {
    let (native_host, wasm_host) = native_and_wasm(None).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let long = format!(r#"{{"jsonrpc":"2.0","method":"x","params":"{}"}}"#, "a".repeat(100));
    // Each stream: the reads it arrives in (finish follows the last).
    let mut streams: Vec<Vec<Vec<u8>>> = vec![
        vec![ping[..9].into(), format!("{}\r\n\n  \n{ping}\nnot json\n", &ping[9..]).into()],
        vec![format!("{long}\n{ping}\n").into(), b"\xff\xfe\n[1]\n{\"jsonrpc\":\"2.0\"}\n".to_vec()],
        vec![long[..50].into(), long[50..].into(), format!("\n{ping}\r").into(), b"\n{\"a\"".to_vec()],
        vec![format!("[{ping},{ping}]\n{{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{}}}}\r\r\n").into()],
        // Messages to serde that the framer refuses: an array read as the
        // struct's fields, a `null` result or error beside a method or a result.
        vec![
            b"[\"2.0\",1,\"ping\"]\n{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"result\":null}\n".to_vec(),
            b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{},\"error\":null}\n".to_vec(),
        ],
        // JSON-RPC to the framer, but no message mcpod routes: a null
        // request id, a null result.
        vec![
            b"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}\n{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":null}\n"
                .to_vec(),
        ],
    ];
    // The fuzz corpus of the stdio framer, whole and in 7-byte reads.
    let dir = root().join("fuzz/corpus/stdio_framing");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    for bytes in files.iter().map(|f| std::fs::read(f).unwrap()) {
        streams.push(vec![bytes.clone()]);
        streams.push(bytes.chunks(7).map(<[u8]>::to_vec).collect());
    }
    let open = |host: &PluginHost| AdapterSession::open(host.adapter("stdio").unwrap(), 64).unwrap();
    let (mut frames, mut errors) = (0, 0);
    let mut parsed = [0; 3];
    for reads in &streams {
        let (mut native, mut wasm) = (open(&native_host), open(&wasm_host));
        assert!(native.is_native() && !wasm.is_native(), "native_adapters picks the path");
        // Messages parsed once natively (the framer's check skipped for
        // what parses) against the wasm plugin's checked frames parsed.
        let (mut native_m, mut wasm_m) = (open(&native_host), open(&wasm_host));
        for read in reads.iter().map(Vec::as_slice).chain([&b""[..]]) {
            let (n, w) = (native.decode(read), wasm.decode(read));
            let (n, w) = (outcome(n.inspect(|f| count(f, &mut frames, &mut errors))), outcome(w));
            assert_eq!(n, w, "the read {:?} decodes differently", String::from_utf8_lossy(read));
            let (n, w) = (native_m.decode_messages(read), wasm_m.decode_messages(read));
            let (n, w) = (outcome(n.inspect(|m| count_parsed(m, &mut parsed))), outcome(w));
            assert_eq!(n, w, "the read {:?} parses differently", String::from_utf8_lossy(read));
        }
        assert_eq!(outcome(native.finish()), outcome(wasm.finish()), "the end of {reads:?}");
        assert_eq!(outcome(native_m.finish_messages()), outcome(wasm_m.finish_messages()), "the end of {reads:?}");
    }
    assert!(frames >= 8 && errors >= 5, "the streams made frames ({frames}) and errors ({errors}) to compare");
    let [messages, refused, not_routable] = parsed;
    assert!(
        messages >= 8 && refused >= 5 && not_routable >= 2,
        "the streams made messages ({messages}), refused lines ({refused}) and unroutable ones ({not_routable})"
    );

    let event = Frame { event: Some("endpoint".into()), id: Some("3".into()), data: "/post".into() };
    let (mut native, mut wasm) = (open(&native_host), open(&wasm_host));
    assert_eq!(native.encode(msg(ping)).unwrap(), format!("{ping}\n").into_bytes());
    for frame in [msg(ping), msg(&long), msg("{\"a\":\n1}"), event] {
        assert_eq!(outcome(native.encode(frame.clone())), outcome(wasm.encode(frame.clone())), "{frame:?}");
    }
}

/// Counts the messages, refused lines and unroutable ones of one decode.
fn count_parsed(decoded: &mcpod::plugin::kinds::adapter::DecodedMessages, counts: &mut [usize; 3]) {
    use mcpod::plugin::kinds::adapter::Unparsed;
    for item in decoded {
        counts[match item {
            Ok(_) => 0,
            Err(Unparsed::Refused(_)) => 1,
            Err(Unparsed::NotJsonRpc(_)) => 2,
        }] += 1;
    }
}

/// Counts the frames and the error items of one decode.
fn count(decoded: &[Result<Frame, mcpod::plugin::bindings::PluginError>], frames: &mut usize, errors: &mut usize) {
    for item in decoded {
        match item {
            Ok(_) => *frames += 1,
            Err(_) => *errors += 1,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_output_limit_holds_for_the_builtin_stdio_adapter_run_natively_as_in_wasm() {
    let (native_host, wasm_host) = native_and_wasm(Some(1)).await;
    let big = format!(r#"{{"jsonrpc":"2.0","method":"x","params":"{}"}}"#, "a".repeat(2000));
    for (host, native) in [(&native_host, true), (&wasm_host, false)] {
        let mut session = AdapterSession::open(host.adapter("stdio").unwrap(), 64 * 1024).unwrap();
        assert_eq!(session.is_native(), native, "a `builtin:stdio` entry with limits runs as configured");
        let err = session.decode(format!("{big}\n").as_bytes()).expect_err("2 KiB of frames over a 1 KiB limit");
        assert!(matches!(err, CallError::OutputTooLarge { .. }), "native {}: {err}", session.is_native());
        let err = session.decode_messages(format!("{big}\n").as_bytes()).expect_err("2 KiB of messages too");
        assert!(matches!(err, CallError::OutputTooLarge { .. }), "native {}: {err}", session.is_native());
        let err = session.encode(msg(&big)).expect_err("2 KiB of bytes over a 1 KiB limit");
        assert!(matches!(err, CallError::OutputTooLarge { .. }), "native {}: {err}", session.is_native());
        let ok = session.decode(b"{\"jsonrpc\":\"2.0\",\"method\":\"y\"}\n").expect("a small line still passes");
        assert_eq!(ok.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_loaded_from_a_file_runs_in_wasm_even_under_the_builtin_name() {
    let mut config = bare_config();
    config.plugin_runtime.builtins = true;
    config.plugins.push(file_entry("stdio", PluginKind::ProtocolAdapter, &fixture("mcpod-test-misbehave-adapter")));
    let host = PluginHost::load(&config).await.expect("engine");
    let mut session = AdapterSession::open(host.adapter("stdio").unwrap(), 1024).unwrap();
    assert!(!session.is_native(), "the file's code is what runs");
    let err = session.decode(b"panic").expect_err("the file's adapter panics on this");
    assert!(matches!(err, CallError::Panic { .. }), "{err}");
    for name in ["sse", "http", "websocket"] {
        let other = AdapterSession::open(host.adapter(name).unwrap(), 1024).unwrap();
        assert!(!other.is_native(), "the built-in {name} adapter runs in wasm");
    }
}
