//! The npm registry: search (`/-/v1/search`), versions and dist-tags (the
//! abbreviated package document), one version's facts (`/<name>/<version>`),
//! existence. Base URL from config `registry_url` (mirrors, private registries).

use mcpod_package_names::{RegistryStatus, check_npm_name, check_npm_version, percent_encode, registry_status};
use mcpod_plugin_sdk::package_registry::*;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The public registry.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

/// The plugin.
pub struct Npm;

impl Plugin for Npm {
    fn info() -> PluginInfo {
        plugin_info("npm", env!("CARGO_PKG_VERSION"), "The npm registry: search, versions, package facts")
    }
}

/// The path segment of a package: `@scope%2Fname` for scoped names.
pub fn name_segment(name: &str) -> String {
    name.replacen('/', "%2F", 1)
}

/// Parsed `/-/v1/search` response.
#[derive(Deserialize)]
struct SearchResponse {
    objects: Vec<SearchObject>,
}

#[derive(Deserialize)]
struct SearchObject {
    package: SearchPackage,
}

#[derive(Deserialize)]
struct SearchPackage {
    name: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
}

/// The hits of a search response body.
pub fn parse_search(body: &[u8]) -> Result<Vec<PackageSummary>, String> {
    let r: SearchResponse = serde_json::from_slice(body).map_err(|e| format!("not a search response: {e}"))?;
    Ok(r.objects
        .into_iter()
        .map(|o| PackageSummary {
            name: o.package.name,
            version: o.package.version,
            description: o.package.description,
        })
        .collect())
}

/// The abbreviated (or full) package document.
#[derive(Deserialize)]
struct Packument {
    name: String,
    #[serde(default, rename = "dist-tags")]
    dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    versions: BTreeMap<String, serde_json::Value>,
}

/// A semver version's sort key: numbers, then release after pre-release.
fn semver_key(v: &str) -> (Vec<u64>, bool, String) {
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, p.split('+').next().unwrap_or("")),
        None => (v.split('+').next().unwrap_or(v), ""),
    };
    let nums = core.split('.').map(|n| n.parse().unwrap_or(0)).collect();
    (nums, pre.is_empty(), pre.to_string())
}

/// Versions (oldest first) and tags of a package document body.
pub fn parse_versions(body: &[u8]) -> Result<PackageVersions, String> {
    let p: Packument = serde_json::from_slice(body).map_err(|e| format!("not a package document: {e}"))?;
    let mut versions: Vec<String> = p.versions.into_keys().collect();
    versions.sort_by_key(|v| semver_key(v));
    Ok(PackageVersions {
        name: p.name,
        versions,
        tags: p.dist_tags.into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
    })
}

#[derive(Deserialize)]
struct Manifest {
    name: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    license: Option<serde_json::Value>,
    #[serde(default)]
    repository: Option<serde_json::Value>,
    #[serde(default)]
    homepage: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    bin: Option<serde_json::Value>,
}

/// `git+https://github.com/x/y.git` → `https://github.com/x/y`.
pub fn normalize_repository(url: &str) -> String {
    let url = url.strip_prefix("git+").unwrap_or(url);
    let url = url.strip_suffix(".git").unwrap_or(url);
    match url.strip_prefix("git://") {
        Some(rest) => format!("https://{rest}"),
        None => url.to_string(),
    }
}

/// Facts of one version document body.
pub fn parse_manifest(body: &[u8]) -> Result<PackageInfo, String> {
    let m: Manifest = serde_json::from_slice(body).map_err(|e| format!("not a version document: {e}"))?;
    let license = match m.license {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Object(o)) => o.get("type").and_then(|t| t.as_str()).map(str::to_string),
        _ => None,
    };
    let repository = match m.repository {
        Some(serde_json::Value::String(s)) => Some(normalize_repository(&s)),
        Some(serde_json::Value::Object(o)) => o.get("url").and_then(|u| u.as_str()).map(normalize_repository),
        _ => None,
    };
    let unscoped = m.name.rsplit('/').next().unwrap_or(&m.name).to_string();
    let executables = match m.bin {
        Some(serde_json::Value::String(_)) => vec![unscoped],
        Some(serde_json::Value::Object(o)) => o.keys().cloned().collect(),
        _ => Vec::new(),
    };
    Ok(PackageInfo {
        name: m.name,
        version: m.version,
        description: m.description,
        license,
        repository,
        homepage: m.homepage,
        dependencies: m.dependencies.into_iter().map(|(name, requirement)| Dependency { name, requirement }).collect(),
        executables,
    })
}

fn base() -> String {
    config_value("registry_url").unwrap_or_else(|| DEFAULT_REGISTRY.to_string()).trim_end_matches('/').to_string()
}

/// GETs `url`; `Ok(None)` for 404, errors for everything else that is not 2xx.
fn get(url: &str, accept: &str, what: &str) -> Result<Option<Vec<u8>>, PluginError> {
    let resp = http_get(url, &[("accept", accept)])
        .map_err(|e| PluginError { message: format!("npm registry: {}", e.message), ..e })?;
    match registry_status(resp.status) {
        RegistryStatus::Ok => Ok(Some(resp.body)),
        RegistryStatus::NotFound => Ok(None),
        RegistryStatus::RateLimited => {
            Err(PluginError::unavailable(format!("the npm registry rate-limited the request for {what}; retry later")))
        }
        RegistryStatus::Failed => {
            Err(PluginError::unavailable(format!("the npm registry answered {} for {what}", resp.status)))
        }
    }
}

fn check_name(name: &str) -> Result<(), PluginError> {
    check_npm_name(name).map_err(|e| PluginError::invalid("name", e.message))
}

fn malformed(url: &str, why: String) -> PluginError {
    PluginError::unavailable(format!("the npm registry's answer to {url} is malformed: {why}"))
}

impl PackageRegistry for Npm {
    fn search(query: String, limit: u32) -> Result<Vec<PackageSummary>, PluginError> {
        if query.trim().is_empty() {
            return Err(PluginError::invalid("query", "the search query is empty"));
        }
        let url = format!("{}/-/v1/search?text={}&size={}", base(), percent_encode(query.trim()), limit.clamp(1, 250));
        let body = get(&url, "application/json", "a search")?.unwrap_or_default();
        let mut hits = parse_search(&body).map_err(|e| malformed(&url, e))?;
        hits.truncate(limit as usize);
        Ok(hits)
    }

    fn versions(name: String) -> Result<PackageVersions, PluginError> {
        check_name(&name)?;
        let url = format!("{}/{}", base(), name_segment(&name));
        let body = get(&url, "application/vnd.npm.install-v1+json", &name)?
            .ok_or_else(|| PluginError::not_found(format!("npm has no package `{name}`")))?;
        parse_versions(&body).map_err(|e| malformed(&url, e))
    }

    fn describe(name: String, version: Option<String>) -> Result<PackageInfo, PluginError> {
        check_name(&name)?;
        if let Some(v) = &version {
            check_npm_version(v).map_err(|e| PluginError::invalid("version", e.message))?;
        }
        let v = version.unwrap_or_else(|| "latest".to_string());
        let url = format!("{}/{}/{}", base(), name_segment(&name), percent_encode(&v));
        let body = get(&url, "application/json", &format!("{name}@{v}"))?
            .ok_or_else(|| PluginError::not_found(format!("npm has no `{name}` at version {v}")))?;
        parse_manifest(&body).map_err(|e| malformed(&url, e))
    }

    fn exists(name: String, version: Option<String>) -> Result<bool, PluginError> {
        check_name(&name)?;
        let url = format!("{}/{}", base(), name_segment(&name));
        let Some(body) = get(&url, "application/vnd.npm.install-v1+json", &name)? else { return Ok(false) };
        let Some(v) = version else { return Ok(true) };
        let versions = parse_versions(&body).map_err(|e| malformed(&url, e))?;
        Ok(versions.versions.contains(&v) || versions.tags.iter().any(|t| t.key == v))
    }
}

mcpod_plugin_sdk::export_package_registry!(Npm);

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../../tests/fixtures/registries/npm/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn parses_recorded_documents() {
        let v = parse_versions(&fixture("@modelcontextprotocol/server-everything.json")).unwrap();
        assert_eq!(v.name, "@modelcontextprotocol/server-everything");
        assert!(v.versions.len() > 5);
        let latest = v.tags.iter().find(|t| t.key == "latest").unwrap();
        assert_eq!(v.versions.last(), Some(&latest.value), "oldest first, latest last");
        let info = parse_manifest(&fixture("@modelcontextprotocol/server-everything/latest.json")).unwrap();
        assert_eq!(info.name, "@modelcontextprotocol/server-everything");
        assert_eq!(info.executables, ["mcp-server-everything"]);
        assert!(info.repository.as_deref().unwrap().starts_with("https://github.com/"), "{:?}", info.repository);
        assert!(info.dependencies.iter().any(|d| d.name == "@modelcontextprotocol/sdk"));
        let hits = parse_search(&fixture("-/v1/search.json")).unwrap();
        assert!(hits.iter().any(|h| h.name == "@playwright/mcp"));
    }

    #[test]
    fn semver_order_and_normalisation() {
        let mut v = vec!["1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.9", "2025.4.8"];
        v.sort_by_key(|x| semver_key(x));
        assert_eq!(v, ["0.9.9", "1.2.0-rc.1", "1.2.0", "1.10.0", "2025.4.8"]);
        assert_eq!(normalize_repository("git+https://github.com/a/b.git"), "https://github.com/a/b");
        assert_eq!(normalize_repository("git://github.com/a/b.git"), "https://github.com/a/b");
        assert_eq!(name_segment("@a/b"), "@a%2Fb");
    }

    #[test]
    fn malformed_bodies_say_so() {
        assert!(parse_versions(b"<html>").unwrap_err().contains("not a package document"));
        assert!(parse_manifest(b"{}").is_err());
        assert!(parse_search(b"[]").is_err());
        let m =
            parse_manifest(br#"{"name":"x","version":"1.0.0","license":{"type":"MIT"},"bin":{"a":"a.js","b":"b.js"}}"#)
                .unwrap();
        assert_eq!((m.license.as_deref(), m.executables.len()), (Some("MIT"), 2));
    }
}
