//! Templates, registries and policy seen from outside: the built-in catalog,
//! documents handed in from a folder, the npm and PyPI plugins against
//! recorded registry responses (and once against the real ones), the CLI,
//! and the policy the API applies after every plugin.

use crate::support::*;
use mcpod::catalog;
use mcpod::config::{PluginEntry, PluginKind};
use mcpod::plugin::PluginHost;
use mcpod::plugin::bindings::ErrorCode;
use serde_json::{Value, json};

async fn registries() -> PluginHost {
    let (npm, _) = registry_server("npm").await;
    let (pypi, _) = registry_server("pypi").await;
    let mut config = bare_config();
    config.plugins = registry_entries(npm, pypi);
    let host = PluginHost::load(&config).await.unwrap();
    assert!(host.failures().is_empty(), "{:?}", host.failures());
    host
}

async fn with_catalog(entry: Option<PluginEntry>) -> PluginHost {
    let mut config = bare_config();
    config.plugin_runtime.builtins = true;
    config.plugins = entry.into_iter().collect();
    PluginHost::load(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn npm_search_versions_info_and_existence_from_recorded_responses() {
    let host = registries().await;
    let hits = catalog::search_packages(&host, "npm", "mcp", 50).await.unwrap();
    assert!(hits.iter().any(|h| h.name == "@modelcontextprotocol/server-everything"), "{hits:?}");
    let v = catalog::package_versions(&host, "npm", "@modelcontextprotocol/server-everything").await.unwrap();
    assert!(v.tags.iter().any(|t| t.key == "latest" && t.value == "2026.8.31"), "{:?}", v.tags);
    let info = catalog::package_info(&host, "npm", "@playwright/mcp", None).await.unwrap();
    assert_eq!(info.name, "@playwright/mcp");
    assert!(!info.executables.is_empty(), "bin entries: {info:?}");
    let npm = host.registry("npm").unwrap();
    assert!(npm.exists("@modelcontextprotocol/server-memory", None).await.unwrap());
    assert!(npm.exists("@modelcontextprotocol/server-memory", Some("latest")).await.unwrap());
    assert!(!npm.exists("@modelcontextprotocol/server-memory", Some("0.0.0-nope")).await.unwrap());
    assert!(
        !npm.exists("@modelcontextprotocol/server-playwright", None).await.unwrap(),
        "the seed's package does not exist"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pypi_search_over_the_simple_api_versions_and_info() {
    let host = registries().await;
    let hits = catalog::search_packages(&host, "pypi", "mcp-server", 5).await.unwrap();
    let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    assert!(names.contains(&"mcp-server-time") && names.contains(&"mcp-server-git"), "{names:?}");
    let time = hits.iter().find(|h| h.name == "mcp-server-time").unwrap();
    assert!(!time.version.is_empty() && time.description.is_some(), "enriched from the JSON API: {time:?}");
    let info = catalog::package_info(&host, "pypi", "mcp-server-time", None).await.unwrap();
    assert_eq!(info.version, "2026.10.19");
    let v = catalog::package_versions(&host, "pypi", "mcp").await.unwrap();
    assert!(v.versions.len() > 10);
    let pypi = host.registry("pypi").unwrap();
    assert!(!pypi.exists("no-such-project-here", None).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_template_package_exists_on_its_registry() {
    let registries = registries().await;
    let catalog_host = with_catalog(None).await;
    let templates = catalog::list_templates(&catalog_host).await.unwrap();
    assert!(templates.len() >= 15);
    for t in templates {
        let t = t.template;
        let registry = match t.server_type.as_str() {
            "npx" => "npm",
            "uv" => "pypi",
            other => panic!("template {} has server type {other}", t.name),
        };
        for input in t.secrets.iter().chain(&t.params) {
            assert!(input.description.len() > 10, "template {}: {} needs a description", t.name, input.name);
        }
        let package = t.package.clone().unwrap();
        let plugin = registries.registry(registry).unwrap();
        assert!(plugin.exists(&package, None).await.unwrap(), "template {}: {package} is not on {registry}", t.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pypi_search_caches_the_project_list_then_revalidates_it_with_its_etag() {
    let (npm, _) = registry_server("npm").await;
    let (pypi, seen) = registry_server("pypi").await;
    let mut config = bare_config();
    config.plugins = registry_entries(npm, pypi);
    config.plugins[1].limits.http_cache_secs = Some(1);
    let host = PluginHost::load(&config).await.unwrap();
    let simple = || -> Vec<Option<String>> {
        seen.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path == "/simple/")
            .map(|(_, inm)| inm.clone())
            .collect()
    };
    let first = catalog::search_packages(&host, "pypi", "mcp-server", 5).await.unwrap();
    assert_eq!(simple(), [None], "the project list is fetched once");
    let again = catalog::search_packages(&host, "pypi", "mcp-server", 5).await.unwrap();
    assert_eq!(simple().len(), 1, "a fresh cached list is not fetched again");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let revalidated = catalog::search_packages(&host, "pypi", "mcp-server", 5).await.unwrap();
    let requests = simple();
    assert_eq!(requests.len(), 2, "a stale list is revalidated: {requests:?}");
    assert!(requests[1].as_deref().is_some_and(|etag| etag.starts_with('"')), "with If-None-Match: {requests:?}");
    let names =
        |hits: &[mcpod::plugin::bindings::PackageSummary]| hits.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&first), names(&again));
    assert_eq!(names(&first), names(&revalidated), "a 304 answers from the cached list");
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_failures_are_clear_errors() {
    let host = registries().await;
    let err = catalog::package_info(&host, "npm", "left-pad-but-missing", None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    let err = catalog::package_info(&host, "npm", "rate-limited", None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable));
    assert!(err.to_string().contains("rate-limited") && err.to_string().contains("retry later"), "{err}");
    let err = catalog::package_info(&host, "pypi", "broken", None).await.unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
    let err = catalog::package_info(&host, "npm", "hang", None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable));
    assert!(err.to_string().contains("timed out"), "{err}");
    let err = catalog::package_info(&host, "npm", "$(id)", None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput), "{err}");
    let err = catalog::search_packages(&host, "crates", "x", 1).await.unwrap_err();
    assert!(err.to_string().contains("no package-registry plugin named `crates`"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_registries_answer_for_a_template_package() {
    // A smoke test against the real metadata endpoints (the recorded ones above are the real tests).
    let mut config = bare_config();
    config.plugin_runtime.builtins = true;
    let host = PluginHost::load(&config).await.unwrap();
    let info = catalog::package_info(&host, "pypi", "mcp-server-time", None).await.unwrap();
    assert_eq!(info.name, "mcp-server-time");
    let npm = host.registry("npm").unwrap();
    assert!(npm.exists("@modelcontextprotocol/server-everything", None).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_json_documents_from_a_folder_join_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("weather.json"),
        json!({"name": "io.example/weather", "description": "Forecasts", "packages": [{"registryType": "pypi", "identifier": "mcp-weather",
            "transport": {"type": "stdio"}, "environmentVariables": [{"name": "WEATHER_API_KEY", "isSecret": true, "isRequired": true}],
            "runtimeArguments": [{"type": "named", "name": "--with", "value": "httpx<1"}]}]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
    let entry = PluginEntry {
        name: "builtin".into(),
        kind: PluginKind::TemplateCatalog,
        source: "builtin:builtin".into(),
        allow_hosts: None,
        limits: Default::default(),
        config: Default::default(),
        documents_dir: Some(dir.path().to_path_buf()),
    };
    let host = with_catalog(Some(entry)).await;
    let list = catalog::list_templates(&host).await.unwrap();
    let weather = list.iter().find(|t| t.template.name == "weather").expect("the handed-in template");
    assert_eq!(weather.template.secrets[0].name, "WEATHER_API_KEY");
    assert!(list.iter().any(|t| t.template.name == "time"), "built-ins stay");
    let err = catalog::render_template(&host, "weather", &[], &[]).await.unwrap_err();
    assert!(err.to_string().contains("WEATHER_API_KEY"), "{err}");
    let key = |k: &str, v: &str| mcpod::plugin::bindings::KeyValue { key: k.into(), value: v.into() };
    let err = catalog::render_template(&host, "weather", &[key("WEATHER_API_KEY", "k")], &[]).await.unwrap_err();
    assert!(err.to_string().contains("is a secret") && err.to_string().contains("--env WEATHER_API_KEY"), "{err}");
    let config = catalog::render_template(&host, "weather", &[], &[key("WEATHER_API_KEY", "k")]).await.unwrap();
    let options: Vec<(&str, &str)> = config.options.iter().map(|kv| (kv.key.as_str(), kv.value.as_str())).collect();
    assert_eq!(options, [("with", "httpx<1")], "a runtime argument becomes the server type's option");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_applies_after_every_plugin() {
    let host = start_host(|c| {
        c.policy.allow_npx = false;
        c.policy.packages_block = vec!["mcp-server-git".into()];
    })
    .await;
    let resp = host.post_server(json!({"template": "everything"})).await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden_by_policy");
    assert!(body["error"]["message"].as_str().unwrap().contains("MCP_ALLOW_NPX=true"), "{body}");
    let resp = host.post_server(json!({"template": "git"})).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("packages_block"));
    let resp = host.post_server(json!({"server_type": "uv", "package": "pkg; rm -rf /"})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "package", "{body}");
    let resp = host.post_server(json!({"template": "brave-search"})).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("BRAVE_API_KEY"));
}

#[tokio::test(flavor = "multi_thread")]
async fn uv_can_be_switched_off_and_the_allowlist_admits_only_its_packages() {
    let host = start_host(|c| {
        c.policy.allow_uv = false;
        c.policy.packages_allow = vec!["@modelcontextprotocol/*".into()];
    })
    .await;
    let resp = host.post_server(json!({"template": "time"})).await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden_by_policy");
    assert!(body["error"]["message"].as_str().unwrap().contains("MCP_ALLOW_UV=true"), "{body}");
    let resp = host.post_server(json!({"server_type": "npx", "package": "@playwright/mcp"})).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("packages_allow"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_shows_and_searches_through_the_same_catalog() {
    let (npm, _) = registry_server("npm").await;
    let (pypi, _) = registry_server("pypi").await;
    let host = start_host(|c| c.plugins.extend(registry_entries(npm, pypi))).await;
    let get = |path: &str| {
        let url = format!("{}{path}", host.base);
        let http = host.http.clone();
        async move {
            let resp = http.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, list) = get("/api/v1/templates").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list.as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.len() >= 15 && names.contains(&"time") && names.contains(&"everything"), "{names:?}");
    let (status, fs) = get("/api/v1/templates/filesystem").await;
    assert_eq!(status, 200);
    assert_eq!(fs["params"][0]["name"], "allowed-paths", "{fs}");
    let (status, missing) = get("/api/v1/templates/no-such-template").await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing["error"]["message"].as_str().unwrap().contains("no-such-template"), "{missing}");
    let (status, hits) = get("/api/v1/packages/search?registry=npm&q=server&limit=50").await;
    assert_eq!(status, 200);
    assert!(hits.as_array().unwrap().iter().any(|h| h["name"] == "@modelcontextprotocol/server-memory"), "{hits}");
    let (status, hits) = get("/api/v1/packages/search?registry=pypi&q=mcp-server-time").await;
    assert_eq!(status, 200);
    assert_eq!(hits[0]["name"], "mcp-server-time", "{hits}");
    let (status, info) = get("/api/v1/packages/info?registry=npm&name=@playwright/mcp").await;
    assert_eq!(status, 200);
    assert!(info["description"].as_str().is_some_and(|d| !d.is_empty()), "{info}");
    let (status, bad) = get("/api/v1/packages/search?registry=npm").await;
    assert_eq!(status, 400);
    assert!(bad["error"]["message"].as_str().unwrap().contains("`q`"), "{bad}");
    let (status, gone) = get("/api/v1/packages/info?registry=npm&name=left-pad-but-missing").await;
    assert_eq!(status, 404, "{gone}");
}

#[test]
fn the_cli_lists_shows_and_searches() {
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpod"))
            .args(args)
            .env("XDG_CACHE_HOME", cache.path())
            .env("XDG_STATE_HOME", cache.path())
            .current_dir(root())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let list: Vec<Value> = serde_json::from_str(&run(&["templates", "list", "--json"])).unwrap();
    assert!(list.len() >= 15);
    let table = run(&["templates", "list"]);
    assert!(table.starts_with("NAME") && table.contains("brave-search") && table.contains("BRAVE_API_KEY"), "{table}");
    let show = run(&["templates", "show", "filesystem"]);
    assert!(show.contains("allowed-paths") && show.contains("required"), "{show}");
    let shown: Value = serde_json::from_str(&run(&["templates", "show", "brave-search", "--json"])).unwrap();
    assert_eq!(shown["secrets"][0]["name"], "BRAVE_API_KEY", "{shown}");

    // Packages, against the recorded registry responses.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (npm, _) = rt.block_on(registry_server("npm"));
    let (pypi, _) = rt.block_on(registry_server("pypi"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcpod.toml");
    let mut text = String::new();
    for (name, addr) in [("npm", npm), ("pypi", pypi)] {
        text.push_str(&format!(
            "[[plugins]]\nname = \"{name}\"\nkind = \"package-registry\"\nsource = \"builtin:{name}\"\nallow_hosts = [\"{addr}\"]\n[plugins.config]\nregistry_url = \"http://{addr}\"\n\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
    let cfg = config.to_str().unwrap();
    let info: Value = serde_json::from_str(&run(&[
        "packages",
        "info",
        "--registry",
        "pypi",
        "mcp-server-time",
        "--json",
        "--config",
        cfg,
    ]))
    .unwrap();
    assert_eq!(info["name"], "mcp-server-time");
    let found = run(&["packages", "search", "--registry", "npm", "server", "--config", cfg]);
    assert!(found.starts_with("NAME") && found.contains("@modelcontextprotocol/server-memory"), "{found}");
    let found: Vec<Value> = serde_json::from_str(&run(&[
        "packages",
        "search",
        "--registry",
        "pypi",
        "mcp-server",
        "--json",
        "--config",
        cfg,
    ]))
    .unwrap();
    assert!(found.iter().any(|h| h["name"] == "mcp-server-git"), "{found:?}");
    let info = run(&["packages", "info", "--registry", "npm", "@playwright/mcp", "--config", cfg]);
    assert!(info.contains("@playwright/mcp") && info.contains("Apache-2.0"), "{info}");
    drop(rt);
}
