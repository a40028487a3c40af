//! The built-in template catalog. Every template is an MCP Registry
//! `server.json` document: the built-in ones are embedded from `templates/`,
//! and more arrive through config key `documents` (a JSON array the host
//! reads from the folder named by `documents_dir`).

pub mod server_json;

use mcpod_plugin_sdk::template_catalog::*;
use server_json::{Entry, ServerJson};

/// The embedded documents, by file name.
pub const BUILTIN: [(&str, &str); 17] = [
    ("brave-search", include_str!("../templates/brave-search.json")),
    ("everything", include_str!("../templates/everything.json")),
    ("fetch", include_str!("../templates/fetch.json")),
    ("filesystem", include_str!("../templates/filesystem.json")),
    ("git", include_str!("../templates/git.json")),
    ("github", include_str!("../templates/github.json")),
    ("gitlab", include_str!("../templates/gitlab.json")),
    ("google-maps", include_str!("../templates/google-maps.json")),
    ("memory", include_str!("../templates/memory.json")),
    ("playwright", include_str!("../templates/playwright.json")),
    ("postgres", include_str!("../templates/postgres.json")),
    ("puppeteer", include_str!("../templates/puppeteer.json")),
    ("redis", include_str!("../templates/redis.json")),
    ("sequential-thinking", include_str!("../templates/sequential-thinking.json")),
    ("slack", include_str!("../templates/slack.json")),
    ("sqlite", include_str!("../templates/sqlite.json")),
    ("time", include_str!("../templates/time.json")),
];

/// The catalog: built-in documents, then `extra` (a JSON array of
/// documents), a later one replacing an earlier one of the same name.
/// Documents that cannot be used are returned as warnings, not fatal.
pub fn catalog(extra: Option<&str>) -> (Vec<Entry>, Vec<String>) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut warnings = Vec::new();
    let mut add = |doc: Result<ServerJson, String>| match doc.and_then(|d| server_json::to_entry(&d)) {
        Ok(e) => {
            entries.retain(|x| x.template.name != e.template.name);
            entries.push(e);
        }
        Err(w) => warnings.push(w),
    };
    for (file, text) in BUILTIN {
        add(serde_json::from_str(text).map_err(|e| format!("built-in {file}.json: {e}")));
    }
    if let Some(extra) = extra {
        match serde_json::from_str::<Vec<serde_json::Value>>(extra) {
            Ok(docs) => {
                for (i, d) in docs.into_iter().enumerate() {
                    add(serde_json::from_value(d).map_err(|e| format!("document {i}: not a server.json document: {e}")));
                }
            }
            Err(e) => warnings.push(format!("config `documents` is not a JSON array: {e}")),
        }
    }
    entries.sort_by(|a, b| a.template.name.cmp(&b.template.name));
    (entries, warnings)
}

fn load() -> Vec<Entry> {
    let (entries, warnings) = catalog(config_value("documents").as_deref());
    for w in warnings {
        log(Level::Warn, &format!("skipped a template document: {w}"), &[]);
    }
    entries
}

fn find(name: &str) -> Result<Entry, PluginError> {
    load()
        .into_iter()
        .find(|e| e.template.name == name)
        .ok_or_else(|| PluginError::not_found(format!("no template named `{name}`; `mcpod templates list` shows them")))
}

/// The plugin.
pub struct Builtin;

impl Plugin for Builtin {
    fn info() -> PluginInfo {
        plugin_info(
            "builtin",
            env!("CARGO_PKG_VERSION"),
            "Templates for popular MCP servers, as MCP Registry server.json documents",
        )
    }
}

impl TemplateCatalog for Builtin {
    fn list_templates() -> Vec<Template> {
        load().into_iter().map(|e| e.template).collect()
    }

    fn describe(name: String) -> Result<Template, PluginError> {
        find(&name).map(|e| e.template)
    }

    fn render(name: String, params: Vec<KeyValue>, secrets: Vec<KeyValue>) -> Result<ServerConfig, PluginError> {
        server_json::render(&find(&name)?, &params, &secrets)
    }
}

mcpod_plugin_sdk::export_template_catalog!(Builtin);

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        catalog(None).0.into_iter().find(|e| e.template.name == name).unwrap()
    }

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue { key: k.into(), value: v.into() }
    }

    #[test]
    fn every_builtin_document_converts() {
        let (entries, warnings) = catalog(None);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(entries.len() >= 15);
        let names: Vec<&str> = entries.iter().map(|e| e.template.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted, no duplicates");
        for (file, _) in BUILTIN {
            assert!(names.contains(&file), "{file}.json's template is named after its file");
        }
        assert_eq!(entry("time").template.server_type, "uv");
        assert_eq!(entry("everything").template.package.as_deref(), Some("@modelcontextprotocol/server-everything"));
        assert_eq!(entry("playwright").template.package.as_deref(), Some("@playwright/mcp"));
        assert_eq!(entry("git").template.package.as_deref(), Some("mcp-server-git"));
    }

    #[test]
    fn filesystem_takes_several_paths() {
        let c = server_json::render(&entry("filesystem"), &[kv("allowed-paths", "/tmp,/srv/data")], &[]).unwrap();
        assert_eq!(c.args, ["/tmp", "/srv/data"]);
        let c = server_json::render(&entry("filesystem"), &[kv("allowed-paths", r#"["/a b","/c"]"#)], &[]).unwrap();
        assert_eq!(c.args, ["/a b", "/c"]);
        assert_eq!(c.server_type, "npx");
    }

    #[test]
    fn missing_inputs_are_all_listed() {
        let err = server_json::render(&entry("brave-search"), &[], &[]).unwrap_err();
        assert!(err.message.contains("BRAVE_API_KEY"), "{}", err.message);
        let err = server_json::render(&entry("slack"), &[], &[]).unwrap_err();
        assert!(err.message.contains("SLACK_BOT_TOKEN") && err.message.contains("SLACK_TEAM_ID"), "{}", err.message);
        let c = server_json::render(&entry("slack"), &[kv("SLACK_TEAM_ID", "T1")], &[kv("SLACK_BOT_TOKEN", "xoxb")])
            .unwrap();
        assert_eq!(c.env.len(), 2);
    }

    #[test]
    fn named_args_defaults_and_unknown_inputs() {
        let c = server_json::render(&entry("sqlite"), &[kv("db-path", "/tmp/x.db")], &[]).unwrap();
        assert_eq!(c.args, ["--db-path", "/tmp/x.db"]);
        let c = server_json::render(&entry("gitlab"), &[], &[kv("GITLAB_PERSONAL_ACCESS_TOKEN", "t")]).unwrap();
        assert!(c.env.iter().any(|e| e.key == "GITLAB_API_URL" && e.value == "https://gitlab.com/api/v4"));
        let c = server_json::render(&entry("playwright"), &[kv("headless", "true")], &[]).unwrap();
        assert_eq!(c.args, ["--headless"]);
        let err = server_json::render(&entry("time"), &[kv("timezone", "UTC")], &[]).unwrap_err();
        assert!(err.message.contains("param `timezone`") && err.message.contains("local-timezone"), "{}", err.message);
        let c = server_json::render(&entry("postgres"), &[], &[kv("database-url", "postgresql://u:p@h/db")]).unwrap();
        assert_eq!(c.args, ["postgresql://u:p@h/db"]);
        assert_eq!(entry("postgres").template.secrets[0].name, "database-url");
    }

    #[test]
    fn handed_in_documents_join_and_broken_ones_are_reported() {
        let extra = r#"[
            {"name": "io.example/weather", "description": "Weather", "packages": [{"registryType": "pypi", "identifier": "mcp-weather", "transport": {"type": "stdio"}}]},
            {"name": "io.example/broken", "packages": []},
            {"description": "no name"},
            {"name": "io.example/time-override", "packages": [{"registryType": "npm", "identifier": "other-time"}], "_meta": {"dev.mcpod/template": {"name": "time"}}}
        ]"#;
        let (entries, warnings) = catalog(Some(extra));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(entries.iter().any(|e| e.template.name == "weather" && e.template.server_type == "uv"));
        let time = entries.iter().find(|e| e.template.name == "time").unwrap();
        assert_eq!(time.template.package.as_deref(), Some("other-time"), "a handed-in document replaces a built-in");
        let (_, warnings) = catalog(Some("not json"));
        assert_eq!(warnings.len(), 1);
    }
}
