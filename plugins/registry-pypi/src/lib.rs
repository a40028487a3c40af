//! PyPI: versions and facts from the JSON API (`/pypi/<name>/json`), and a
//! search built on the Simple API project list (PEP 691 JSON), because PyPI
//! has no search API: names are filtered here, and the top hits enriched
//! from the JSON API. Base URL from config `registry_url`.

use mcpod_package_names::{
    RegistryStatus, check_pep440, check_pypi_name, normalize_pypi_name, percent_encode, registry_status,
};
use mcpod_plugin_sdk::package_registry::*;
use serde::Deserialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The public index.
pub const DEFAULT_REGISTRY: &str = "https://pypi.org";
/// Search hits enriched with the JSON API, at most.
const ENRICH: usize = 10;

/// The plugin.
pub struct Pypi;

impl Plugin for Pypi {
    fn info() -> PluginInfo {
        plugin_info("pypi", env!("CARGO_PKG_VERSION"), "PyPI: versions, package facts, search over the Simple API")
    }
}

#[derive(Deserialize)]
struct ProjectJson {
    info: Info,
    #[serde(default)]
    releases: BTreeMap<String, Vec<ReleaseFile>>,
}

#[derive(Deserialize)]
struct Info {
    name: String,
    version: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    license_expression: Option<String>,
    #[serde(default)]
    classifiers: Vec<String>,
    #[serde(default)]
    home_page: Option<String>,
    #[serde(default)]
    project_urls: Option<BTreeMap<String, String>>,
    #[serde(default)]
    requires_dist: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ReleaseFile {
    #[serde(default)]
    yanked: bool,
}

/// A PEP 440 version's sort key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionKey {
    epoch: u64,
    release: Vec<u64>,
    pre: (i8, u64),
    post: (i8, u64),
    dev: (i8, u64),
}

fn split_num(s: &str) -> (&str, u64) {
    let i = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    (&s[..i], s[i..].parse().unwrap_or(0))
}

/// The PEP 440 ordering key of `v` (good enough for release segments with
/// pre, post and dev suffixes).
pub fn version_key(v: &str) -> VersionKey {
    let v = v.trim().to_ascii_lowercase();
    let v = v.strip_prefix('v').unwrap_or(&v);
    let (epoch, rest) = match v.split_once('!') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, v),
    };
    let rest = rest.split('+').next().unwrap_or(rest);
    let mut release = Vec::new();
    let mut tail = "";
    for (i, part) in rest.split('.').enumerate() {
        if let Ok(n) = part.parse::<u64>() {
            release.push(n);
        } else {
            let digits = part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len());
            if digits > 0 {
                release.push(part[..digits].parse().unwrap_or(0));
            }
            tail = &rest[rest.split('.').take(i).map(|p| p.len() + 1).sum::<usize>() + digits..];
            break;
        }
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let (mut pre, mut post, mut dev) = (None, None, None);
    for seg in tail.split(['.', '-', '_']).filter(|s| !s.is_empty()) {
        let (word, n) = split_num(seg);
        match word {
            "a" | "alpha" => pre = Some((0, n)),
            "b" | "beta" => pre = Some((1, n)),
            "rc" | "c" | "pre" | "preview" => pre = Some((2, n)),
            "post" | "rev" | "r" | "" => post = Some(n),
            "dev" => dev = Some(n),
            _ => {}
        }
    }
    VersionKey {
        epoch,
        release,
        pre: match (pre, post, dev) {
            (Some(p), _, _) => p,
            (None, None, Some(_)) => (-1, 0),
            _ => (3, 0),
        },
        post: post.map_or((-1, 0), |n| (0, n)),
        dev: dev.map_or((1, 0), |n| (0, n)),
    }
}

/// Sorts PEP 440 versions, oldest first.
pub fn sort_versions(v: &mut [String]) {
    v.sort_by(|a, b| version_key(a).cmp(&version_key(b)).then_with(|| a.cmp(b)));
}

/// Versions (yanked ones left out) of a JSON API body.
pub fn parse_versions(body: &[u8]) -> Result<PackageVersions, String> {
    let p: ProjectJson = serde_json::from_slice(body).map_err(|e| format!("not a PyPI project document: {e}"))?;
    let mut versions: Vec<String> = p
        .releases
        .into_iter()
        .filter(|(_, files)| files.is_empty() || !files.iter().all(|f| f.yanked))
        .map(|(v, _)| v)
        .collect();
    sort_versions(&mut versions);
    Ok(PackageVersions {
        name: p.info.name,
        versions,
        tags: vec![KeyValue { key: "latest".into(), value: p.info.version }],
    })
}

/// Facts of a JSON API body. PyPI's JSON has no console scripts, so
/// `executables` stays empty.
pub fn parse_info(body: &[u8]) -> Result<PackageInfo, String> {
    let p: ProjectJson = serde_json::from_slice(body).map_err(|e| format!("not a PyPI project document: {e}"))?;
    let i = p.info;
    let license = i
        .license_expression
        .filter(|s| !s.is_empty())
        .or(i.license.filter(|s| !s.is_empty() && s.len() < 100))
        .or_else(|| {
            i.classifiers.iter().find_map(|c| c.strip_prefix("License :: OSI Approved :: ").map(str::to_string))
        });
    let urls = i.project_urls.unwrap_or_default();
    let pick = |keys: &[&str]| {
        urls.iter().find(|(k, _)| keys.iter().any(|w| k.eq_ignore_ascii_case(w))).map(|(_, v)| v.clone())
    };
    let dependencies = i
        .requires_dist
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !r.contains("extra =="))
        .map(|r| {
            let end = r.find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c))).unwrap_or(r.len());
            Dependency { name: r[..end].to_string(), requirement: r[end..].trim().to_string() }
        })
        .collect();
    Ok(PackageInfo {
        name: i.name,
        version: i.version,
        description: i.summary,
        license,
        repository: pick(&["Source", "Repository", "Source Code", "Code"]),
        homepage: pick(&["Homepage", "Home"]).or(i.home_page.filter(|h| !h.is_empty())),
        dependencies,
        executables: Vec::new(),
    })
}

#[derive(Deserialize)]
struct SimpleIndex {
    projects: Vec<SimpleProject>,
}

#[derive(Deserialize)]
struct SimpleProject {
    name: String,
}

/// Names of the Simple API project list matching `query`, best first:
/// exact match, then prefix, then substring; shorter names first.
pub fn rank(body: &[u8], query: &str, limit: usize) -> Result<Vec<String>, String> {
    let index: SimpleIndex = serde_json::from_slice(body).map_err(|e| format!("not a PEP 691 project list: {e}"))?;
    let q = normalize_pypi_name(query);
    let mut hits: Vec<(u8, usize, String)> = index
        .projects
        .into_iter()
        .filter_map(|p| {
            let n = normalize_pypi_name(&p.name);
            let class = if n == q {
                0
            } else if n.starts_with(&q) {
                1
            } else if n.contains(&q) {
                2
            } else {
                return None;
            };
            Some((class, n.len(), p.name))
        })
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then_with(|| a.2.cmp(&b.2)));
    Ok(hits.into_iter().take(limit).map(|(_, _, n)| n).collect())
}

fn base() -> String {
    config_value("registry_url").unwrap_or_else(|| DEFAULT_REGISTRY.to_string()).trim_end_matches('/').to_string()
}

fn get(url: &str, accept: &str, what: &str) -> Result<Option<Vec<u8>>, PluginError> {
    let resp = http_get(url, &[("accept", accept)])
        .map_err(|e| PluginError { message: format!("PyPI: {}", e.message), ..e })?;
    match registry_status(resp.status) {
        RegistryStatus::Ok => Ok(Some(resp.body)),
        RegistryStatus::NotFound => Ok(None),
        RegistryStatus::RateLimited => {
            Err(PluginError::unavailable(format!("PyPI rate-limited the request for {what}; retry later")))
        }
        RegistryStatus::Failed => Err(PluginError::unavailable(format!("PyPI answered {} for {what}", resp.status))),
    }
}

fn malformed(url: &str, why: String) -> PluginError {
    PluginError::unavailable(format!("PyPI's answer to {url} is malformed: {why}"))
}

fn project(name: &str, version: Option<&str>) -> Result<Option<(String, Vec<u8>)>, PluginError> {
    check_pypi_name(name).map_err(|e| PluginError::invalid("name", e.message))?;
    let url = match version {
        Some(v) => format!("{}/pypi/{}/{}/json", base(), name, percent_encode(v)),
        None => format!("{}/pypi/{}/json", base(), name),
    };
    Ok(get(&url, "application/json", name)?.map(|b| (url, b)))
}

impl PackageRegistry for Pypi {
    fn search(query: String, limit: u32) -> Result<Vec<PackageSummary>, PluginError> {
        if query.trim().is_empty() {
            return Err(PluginError::invalid("query", "the search query is empty"));
        }
        let url = format!("{}/simple/", base());
        let body = get(&url, "application/vnd.pypi.simple.v1+json", "the project list")?
            .ok_or_else(|| PluginError::unavailable(format!("{url} does not serve a project list")))?;
        let names = rank(&body, &query, (limit as usize).min(ENRICH)).map_err(|e| malformed(&url, e))?;
        let mut hits = Vec::new();
        for name in names {
            match project(&name, None).and_then(|p| p.ok_or_else(|| PluginError::not_found(name.clone()))) {
                Ok((url, body)) => match parse_info(&body) {
                    Ok(info) => hits.push(PackageSummary {
                        name: info.name,
                        version: info.version,
                        description: info.description,
                    }),
                    Err(e) => log(
                        Level::Warn,
                        "skipped a search hit",
                        &[("package", &name), ("error", &malformed(&url, e).message)],
                    ),
                },
                Err(e) => log(Level::Warn, "skipped a search hit", &[("package", &name), ("error", &e.message)]),
            }
        }
        Ok(hits)
    }

    fn versions(name: String) -> Result<PackageVersions, PluginError> {
        let (url, body) =
            project(&name, None)?.ok_or_else(|| PluginError::not_found(format!("PyPI has no project `{name}`")))?;
        parse_versions(&body).map_err(|e| malformed(&url, e))
    }

    fn describe(name: String, version: Option<String>) -> Result<PackageInfo, PluginError> {
        if let Some(v) = &version {
            check_pep440(v).map_err(|e| PluginError::invalid("version", e.message))?;
        }
        let (url, body) = project(&name, version.as_deref())?.ok_or_else(|| match &version {
            Some(v) => PluginError::not_found(format!("PyPI has no `{name}` {v}")),
            None => PluginError::not_found(format!("PyPI has no project `{name}`")),
        })?;
        parse_info(&body).map_err(|e| malformed(&url, e))
    }

    fn exists(name: String, version: Option<String>) -> Result<bool, PluginError> {
        if let Some(v) = &version {
            check_pep440(v).map_err(|e| PluginError::invalid("version", e.message))?;
        }
        Ok(project(&name, version.as_deref())?.is_some())
    }
}

mcpod_plugin_sdk::export_package_registry!(Pypi);

/// Orders two versions by PEP 440 (for callers comparing single versions).
pub fn compare(a: &str, b: &str) -> Ordering {
    version_key(a).cmp(&version_key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../../tests/fixtures/registries/pypi/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn parses_recorded_documents() {
        let info = parse_info(&fixture("pypi/mcp-server-time/json.json")).unwrap();
        assert_eq!(info.name, "mcp-server-time");
        assert!(info.dependencies.iter().any(|d| d.name == "mcp"), "{:?}", info.dependencies);
        assert!(info.executables.is_empty());
        let v = parse_versions(&fixture("pypi/mcp/json.json")).unwrap();
        assert!(v.versions.len() > 10);
        assert_eq!(v.versions.last(), Some(&v.tags[0].value), "newest last: {:?}", &v.versions[v.versions.len() - 3..]);
    }

    #[test]
    fn pep440_order() {
        let mut v: Vec<String> =
            ["1.0", "1.0.post1", "1.0rc1", "1.0a2", "1.0.dev3", "0.9", "1.0b1", "2!0.1", "1.0.1", "1.10"]
                .map(String::from)
                .to_vec();
        sort_versions(&mut v);
        assert_eq!(v, ["0.9", "1.0.dev3", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0.post1", "1.0.1", "1.10", "2!0.1"]);
        assert_eq!(compare("1.0", "1.0.0"), Ordering::Equal);
    }

    #[test]
    fn search_ranks_exact_then_prefix_then_substring() {
        let body = fixture("simple/index.json");
        let hits = rank(&body, "mcp", 5).unwrap();
        assert_eq!(hits[0], "mcp");
        assert!(hits[1].starts_with("mcp"), "{hits:?}");
        let hits = rank(&body, "Server_Time", 10).unwrap();
        assert_eq!(hits[0], "mcp-server-time", "normalized substring match: {hits:?}");
        assert!(rank(b"{\"projects\": 3}", "x", 1).is_err());
    }

    #[test]
    fn malformed_bodies_say_so() {
        assert!(parse_info(b"nope").unwrap_err().contains("not a PyPI project document"));
        let lic = parse_info(br#"{"info":{"name":"x","version":"1","classifiers":["License :: OSI Approved :: MIT License"],"project_urls":{"Source":"https://s","Homepage":"https://h"},"requires_dist":["anyio>=4","pytest; extra == \"test\""]}}"#).unwrap();
        assert_eq!(lic.license.as_deref(), Some("MIT License"));
        assert_eq!((lic.repository.as_deref(), lic.homepage.as_deref()), (Some("https://s"), Some("https://h")));
        assert_eq!(lic.dependencies.len(), 1);
        assert_eq!(lic.dependencies[0].requirement, ">=4");
    }
}
