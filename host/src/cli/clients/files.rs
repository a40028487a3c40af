//! The AI clients' own config files: where each keeps its MCP servers,
//! the entry it expects for a server of mcpod, and safe edits of them (a
//! backup first, atomic writes, never an entry mcpod did not write).
//!
//! Pure and injectable: every path comes from [`Places`] and the clock is passed in as `now`
//! (unix seconds). Shapes and locations are documented with sources in `FORMATS.md`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// An AI client whose user-level MCP config file mcpod can edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// Claude Desktop (`claude_desktop_config.json`; stdio only, so bridged through `mcp-remote`).
    ClaudeDesktop,
    /// Claude Code, user scope (`~/.claude.json`).
    ClaudeCode,
    /// Cursor, global scope (`~/.cursor/mcp.json`).
    Cursor,
    /// VS Code, user profile (`Code/User/mcp.json`).
    VsCode,
    /// Windsurf (`~/.codeium/windsurf/mcp_config.json`).
    Windsurf,
    /// Gemini CLI, user scope (`~/.gemini/settings.json`).
    GeminiCli,
}

impl Client {
    /// Every supported client, in display order.
    pub const ALL: [Client; 6] = [
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Cursor,
        Client::VsCode,
        Client::Windsurf,
        Client::GeminiCli,
    ];

    /// The client's command-line name, e.g. `claude-code`.
    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::VsCode => "vscode",
            Client::Windsurf => "windsurf",
            Client::GeminiCli => "gemini-cli",
        }
    }

    /// Parses a command-line name (case-insensitive) back into a client.
    pub fn parse(s: &str) -> Option<Client> {
        Self::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(s.trim()))
    }

    fn servers_key(self) -> &'static str {
        if self == Client::VsCode { "servers" } else { "mcpServers" }
    }
}

/// The operating system whose path conventions apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    /// Linux and other XDG systems.
    Linux,
    /// macOS.
    Mac,
    /// Windows.
    Windows,
}

/// Where the user's files live; the only source of paths in this module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Places {
    /// The user's home directory (`HOME`, or `USERPROFILE` on Windows).
    pub home: PathBuf,
    /// `XDG_CONFIG_HOME` if set to an absolute path (Linux only).
    pub xdg_config_home: Option<PathBuf>,
    /// `APPDATA` (Windows only).
    pub appdata: Option<PathBuf>,
    /// Which OS's conventions to follow.
    pub os: Os,
}

impl Places {
    /// Builds places from an environment lookup such as `|k| std::env::var(k).ok()`; `None` without a home.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, os: Os) -> Option<Places> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = match os {
            Os::Windows => get("USERPROFILE").or_else(|| get("HOME")),
            _ => get("HOME"),
        }?;
        let xdg_config_home = get("XDG_CONFIG_HOME").filter(|p| p.is_absolute());
        Some(Places { home, xdg_config_home, appdata: get("APPDATA"), os })
    }

    /// The per-user application data directory that Electron apps (VS Code, Claude Desktop) use.
    fn app_config_dir(&self) -> PathBuf {
        match self.os {
            Os::Linux => self.xdg_config_home.clone().unwrap_or_else(|| self.home.join(".config")),
            Os::Mac => self.home.join("Library").join("Application Support"),
            Os::Windows => self.appdata.clone().unwrap_or_else(|| self.home.join("AppData").join("Roaming")),
        }
    }
}

/// The user-level config file that `client` reads its MCP servers from.
pub fn config_file(client: Client, places: &Places) -> PathBuf {
    let (home, apps) = (&places.home, places.app_config_dir());
    match client {
        Client::ClaudeDesktop => apps.join("Claude").join("claude_desktop_config.json"),
        Client::ClaudeCode => home.join(".claude.json"),
        Client::Cursor => home.join(".cursor").join("mcp.json"),
        Client::VsCode => apps.join("Code").join("User").join("mcp.json"),
        Client::Windsurf => home.join(".codeium").join("windsurf").join("mcp_config.json"),
        Client::GeminiCli => home.join(".gemini").join("settings.json"),
    }
}

/// A directory whose existence shows the client is installed even before it has a config file.
fn install_marker(client: Client, places: &Places) -> PathBuf {
    let (home, apps) = (&places.home, places.app_config_dir());
    match client {
        Client::ClaudeDesktop => apps.join("Claude"),
        Client::ClaudeCode => home.join(".claude"),
        Client::Cursor => home.join(".cursor"),
        Client::VsCode => apps.join("Code"),
        Client::Windsurf => home.join(".codeium").join("windsurf"),
        Client::GeminiCli => home.join(".gemini"),
    }
}

/// The MCP transport an entry's URL speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP.
    Http,
    /// Legacy HTTP+SSE.
    Sse,
}

/// One remote MCP server mcpod wants a client to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The server's key in the client's config, e.g. `mcpod`.
    pub name: String,
    /// The server's URL, e.g. `http://127.0.0.1:8080/mcp`.
    pub url: String,
    /// Which transport the URL speaks.
    pub transport: Transport,
    /// HTTP headers to send, e.g. `Authorization: Bearer …`.
    pub headers: BTreeMap<String, String>,
}

/// The JSON value `client` expects for `entry` under its servers key.
pub fn render(client: Client, entry: &Entry) -> Value {
    let kind = if entry.transport == Transport::Http { "http" } else { "sse" };
    let mut value = match client {
        Client::ClaudeDesktop => return mcp_remote(entry),
        Client::ClaudeCode | Client::VsCode | Client::GeminiCli => {
            json!({ "type": kind, "url": entry.url })
        }
        Client::Cursor => json!({ "url": entry.url }),
        Client::Windsurf => json!({ "serverUrl": entry.url }),
    };
    if let (Some(map), false) = (value.as_object_mut(), entry.headers.is_empty()) {
        map.insert("headers".into(), json!(entry.headers));
    }
    value
}

/// Claude Desktop only launches stdio commands, so bridge through `mcp-remote`, with header
/// values in `env` (no spaces in `args`, which Claude Desktop on Windows mangles).
fn mcp_remote(entry: &Entry) -> Value {
    let mut args = vec!["-y".to_string(), "mcp-remote".into(), entry.url.clone()];
    if needs_allow_http(&entry.url) {
        args.push("--allow-http".into());
    }
    if entry.transport == Transport::Sse {
        args.extend(["--transport".into(), "sse-only".into()]);
    }
    let mut env = Map::new();
    for (name, value) in &entry.headers {
        let var = if name.eq_ignore_ascii_case("authorization") {
            "AUTH_HEADER".to_string()
        } else {
            let upper: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
            format!("{upper}_HEADER")
        };
        args.extend(["--header".into(), format!("{name}:${{{var}}}")]);
        env.insert(var, Value::String(value.clone()));
    }
    let mut value = json!({ "command": "npx", "args": args });
    if let (Some(map), false) = (value.as_object_mut(), env.is_empty()) {
        map.insert("env".into(), Value::Object(env));
    }
    value
}

/// mcp-remote refuses plain `http://` except to `localhost`/`127.0.0.1` unless given `--allow-http`.
fn needs_allow_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    !(host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1")
}

/// Everything that can stop mcpod from editing a client's config; each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// The file `.0` exists but could not be read.
    #[error("could not read {path}: {1}. Check that you may read it, then try again.", path = .0.display())]
    Read(PathBuf, #[source] io::Error),
    /// The file, backup or directory `.0` could not be written.
    #[error("could not write {path}: {1}. Check its directory's permissions and free space, then try again.", path = .0.display())]
    Write(PathBuf, #[source] io::Error),
    /// The config file `.0` cannot be rewritten without losing content: `.1` says why, `.2` what to do by hand.
    #[error("{path} cannot be updated safely: {1}. mcpod left it untouched. {2}", path = .0.display())]
    NotJson(PathBuf, String, String),
    /// The config file `.0` has an entry named `.1` that mcpod did not write.
    #[error("{path} already has an MCP server named \"{1}\" that mcpod did not write, so mcpod left it alone. Use another name, edit or remove that entry by hand, or pass force to let mcpod replace or remove it.", path = .0.display())]
    Foreign(PathBuf, String),
    /// The entry `.1` that mcpod wrote to `.0` was changed by hand since.
    #[error("the \"{1}\" entry in {path} was changed by hand since mcpod wrote it, so mcpod left it alone. Edit or remove it by hand, or pass force to discard those changes.", path = .0.display())]
    Edited(PathBuf, String),
    /// mcpod's manifest `.0` could not be parsed (`.1`).
    #[error("mcpod's record of the entries it wrote, {path}, is damaged ({1}). Fix or delete it; once it is deleted, mcpod treats existing entries as not its own.", path = .0.display())]
    Manifest(PathBuf, String),
}

/// Who an entry in a client's config belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// mcpod wrote it and it is unchanged.
    Mcpod,
    /// mcpod wrote it but it was changed since.
    Edited,
    /// mcpod did not write it.
    Other,
}

/// One server entry found in a client's config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The entry's name.
    pub name: String,
    /// Whether mcpod wrote it.
    pub owner: Owner,
}

/// What [`list`] found for one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The client.
    pub client: Client,
    /// Its config file.
    pub file: PathBuf,
    /// Whether the config file exists.
    pub exists: bool,
    /// Whether the client looks installed (its config file or directory exists).
    pub installed: bool,
    /// The server entries in the file, in file order.
    pub servers: Vec<Server>,
    /// Why the file could not be read, if it could not.
    pub problem: Option<String>,
}

/// What [`add`] or [`remove`] did to a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The config file.
    pub file: PathBuf,
    /// The copy of the previous file, if one was made.
    pub backup: Option<PathBuf>,
    /// Whether the file was rewritten.
    pub changed: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct Manifest {
    #[serde(default)]
    version: u32,
    #[serde(default)]
    entries: Vec<Record>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    client: String,
    file: PathBuf,
    name: String,
    entry: Value,
}

impl Manifest {
    fn find(&self, client: Client, file: &Path, name: &str) -> Option<usize> {
        self.entries.iter().position(|r| r.client == client.name() && r.file == file && r.name == name)
    }

    fn owner(&self, client: Client, file: &Path, name: &str, current: &Value) -> Owner {
        match self.find(client, file, name).map(|i| &self.entries[i].entry) {
            Some(written) if written == current => Owner::Mcpod,
            Some(_) => Owner::Edited,
            None => Owner::Other,
        }
    }
}

/// Adds or replaces `entry` in `client`'s config, recording it in the `manifest` file.
pub fn add(
    client: Client,
    places: &Places,
    manifest: &Path,
    entry: &Entry,
    force: bool,
    now: u64,
) -> Result<Change, ClientsError> {
    let file = config_file(client, places);
    let (key, name) = (client.servers_key(), &entry.name);
    let value = render(client, entry);
    let todo = || {
        let snippet = json!({ key: { name.as_str(): value.clone() } });
        format!("Add this under \"{key}\" by hand:\n{}", pretty(&snippet))
    };
    let mut records = load_manifest(manifest)?;
    let mut doc = read_doc(&file, key, &todo)?;
    if let Some(current) = doc.servers.get(name) {
        match records.owner(client, &file, name, current) {
            Owner::Mcpod if *current == value => {
                return Ok(Change { file, backup: None, changed: false });
            }
            Owner::Other if !force => return Err(ClientsError::Foreign(file, name.clone())),
            Owner::Edited if !force => return Err(ClientsError::Edited(file, name.clone())),
            _ => {}
        }
    }
    doc.servers.insert(name.clone(), value.clone());
    let backup = save_doc(&file, key, doc, now)?;
    let record = Record { client: client.name().into(), file: file.clone(), name: name.clone(), entry: value };
    match records.find(client, &file, name) {
        Some(i) => records.entries[i] = record,
        None => records.entries.push(record),
    }
    save_manifest(manifest, &mut records)?;
    Ok(Change { file, backup, changed: true })
}

/// Removes the entry `name` that mcpod wrote to `client`'s config and drops it from the `manifest`.
pub fn remove(
    client: Client,
    places: &Places,
    manifest: &Path,
    name: &str,
    force: bool,
    now: u64,
) -> Result<Change, ClientsError> {
    let file = config_file(client, places);
    let key = client.servers_key();
    let todo = || format!("Remove the \"{name}\" entry under \"{key}\" by hand.");
    let mut records = load_manifest(manifest)?;
    let mut doc = read_doc(&file, key, &todo)?;
    let recorded = records.find(client, &file, name);
    let Some(current) = doc.servers.get(name) else {
        if let Some(i) = recorded {
            records.entries.remove(i);
            save_manifest(manifest, &mut records)?;
        }
        return Ok(Change { file, backup: None, changed: false });
    };
    match records.owner(client, &file, name, current) {
        Owner::Other if !force => return Err(ClientsError::Foreign(file, name.into())),
        Owner::Edited if !force => return Err(ClientsError::Edited(file, name.into())),
        _ => {}
    }
    doc.servers.shift_remove(name);
    let backup = save_doc(&file, key, doc, now)?;
    if let Some(i) = recorded {
        records.entries.remove(i);
        save_manifest(manifest, &mut records)?;
    }
    Ok(Change { file, backup, changed: true })
}

/// Reports every client's config file, whether it is installed, and which entries mcpod wrote.
pub fn list(places: &Places, manifest: &Path) -> Result<Vec<Found>, ClientsError> {
    let records = load_manifest(manifest)?;
    let found = Client::ALL.into_iter().map(|client| {
        let file = config_file(client, places);
        let exists = file.exists();
        let installed = exists || install_marker(client, places).exists();
        let todo = || "Fix the file to list its entries.".to_string();
        let (servers, problem) = match read_doc(&file, client.servers_key(), &todo) {
            Ok(doc) => {
                let servers = doc.servers.iter().map(|(name, value)| Server {
                    name: name.clone(),
                    owner: records.owner(client, &file, name, value),
                });
                (servers.collect(), None)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Found { client, file, exists, installed, servers, problem }
    });
    Ok(found.collect())
}

/// A parsed config file: its original bytes (if it existed), permissions, and its servers map.
struct Doc {
    original: Option<Vec<u8>>,
    perms: Option<fs::Permissions>,
    root: Map<String, Value>,
    servers: Map<String, Value>,
}

fn read_doc(path: &Path, key: &str, todo: &dyn Fn() -> String) -> Result<Doc, ClientsError> {
    let bytes = match fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Doc { original: None, perms: None, root: Map::new(), servers: Map::new() });
        }
        Err(e) => return Err(ClientsError::Read(path.into(), e)),
        Ok(bytes) => bytes,
    };
    let refuse = |reason: String| ClientsError::NotJson(path.into(), reason, todo());
    let text = std::str::from_utf8(&bytes).map_err(|_| refuse("it is not UTF-8 text".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = match serde_json::from_str::<Value>(text) {
        _ if text.trim().is_empty() => Map::new(),
        Ok(Value::Object(root)) => root,
        Ok(_) => return Err(refuse("its top level is not a JSON object".into())),
        Err(e) => {
            let why = format!("it is not plain JSON ({e}); comments and trailing commas are not supported");
            return Err(refuse(why));
        }
    };
    let servers = match root.get(key) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(servers)) => servers.clone(),
        Some(_) => return Err(refuse(format!("its \"{key}\" value is not a JSON object"))),
    };
    let perms = fs::metadata(path).ok().map(|m| m.permissions());
    Ok(Doc { original: Some(bytes), perms, root, servers })
}

/// Backs up the old file (if any), then atomically writes the new one; returns the backup's path.
fn save_doc(path: &Path, key: &str, doc: Doc, now: u64) -> Result<Option<PathBuf>, ClientsError> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).unwrap_or_else(|_| path.into()),
        _ => path.to_path_buf(),
    };
    let perms = doc.perms.as_ref();
    let backup = doc.original.as_deref().map(|bytes| backup(&target, bytes, perms, now)).transpose()?;
    let mut root = doc.root;
    root.insert(key.into(), Value::Object(doc.servers));
    let text = pretty(&Value::Object(root)) + "\n";
    write_atomic(&target, text.as_bytes(), perms).map_err(|e| ClientsError::Write(target.clone(), e))?;
    Ok(backup)
}

/// Copies `bytes` to `<file>.mcpod-backup-<now>`, adding `-1`, `-2`, … rather than overwrite one.
fn backup(file: &Path, bytes: &[u8], perms: Option<&fs::Permissions>, now: u64) -> Result<PathBuf, ClientsError> {
    let name = file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let base = format!("{name}.mcpod-backup-{now}");
    let mut n = 0u32;
    loop {
        let path = file.with_file_name(if n == 0 { base.clone() } else { format!("{base}-{n}") });
        match create_new(&path, bytes, perms) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(ClientsError::Write(path, e)),
        }
    }
}

fn load_manifest(path: &Path) -> Result<Manifest, ClientsError> {
    match fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(ClientsError::Read(path.into(), e)),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ClientsError::Manifest(path.into(), e.to_string())),
    }
}

fn save_manifest(path: &Path, manifest: &mut Manifest) -> Result<(), ClientsError> {
    manifest.version = 1;
    let write = |e| ClientsError::Write(path.into(), e);
    let text = serde_json::to_string_pretty(manifest).map_err(|e| write(io::Error::other(e)))? + "\n";
    let perms = fs::metadata(path).ok().map(|m| m.permissions());
    write_atomic(path, text.as_bytes(), perms.as_ref()).map_err(write)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Writes a temp file beside `path` (creating parent directories), then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8], perms: Option<&fs::Permissions>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.mcpod-tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = create_new(&tmp, bytes, perms).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates a file that must not exist yet, with `perms` or else owner-only (it may hold tokens).
fn create_new(path: &Path, bytes: &[u8], perms: Option<&fs::Permissions>) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    if let Some(perms) = perms {
        file.set_permissions(perms.clone())?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    const NOW: u64 = 1_767_225_600;

    fn home() -> (TempDir, Places, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let places = Places { home: dir.path().into(), xdg_config_home: None, appdata: None, os: Os::Linux };
        let manifest = dir.path().join(".config/mcpod/clients.json");
        (dir, places, manifest)
    }

    fn entry(token: &str) -> Entry {
        let headers = BTreeMap::from([("Authorization".to_string(), format!("Bearer {token}"))]);
        Entry { name: "mcpod".into(), url: "http://127.0.0.1:7777/mcp".into(), transport: Transport::Http, headers }
    }

    fn put(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(path: &Path) -> Value {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }

    fn keys(value: &Value) -> Vec<&str> {
        value.as_object().unwrap().keys().map(String::as_str).collect()
    }

    const CURSOR: &str = r#"{
  "mcpServers": {
    "playwright": { "command": "npx", "args": ["-y", "@playwright/mcp@latest"] },
    "context7": { "url": "https://mcp.context7.com/mcp", "headers": { "CONTEXT7_API_KEY": "${env:CONTEXT7_API_KEY}" } }
  }
}"#;

    const CLAUDE_JSON: &str = r#"{
  "numStartups": 42,
  "installMethod": "native",
  "autoUpdates": true,
  "projects": { "/home/ana/src/app": { "allowedTools": [], "mcpServers": {}, "hasTrustDialogAccepted": true } },
  "mcpServers": { "sentry": { "type": "http", "url": "https://mcp.sentry.dev/mcp" } },
  "userID": "5f0c",
  "hasCompletedOnboarding": true
}"#;

    const VSCODE: &str = r#"{
  "inputs": [ { "type": "promptString", "id": "perplexity-key", "description": "Perplexity API Key", "password": true } ],
  "servers": {
    "perplexity": {
      "type": "stdio", "command": "npx", "args": ["-y", "server-perplexity-ask"],
      "env": { "PERPLEXITY_API_KEY": "${input:perplexity-key}" }
    }
  }
}"#;

    const DESKTOP: &str = r#"{
  "mcpServers": { "filesystem": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"] } },
  "preferences": { "menuBarEnabled": true, "sidebarMode": "chat" }
}"#;

    const GEMINI: &str = r#"{
  "theme": "Dracula",
  "selectedAuthType": "gemini-api-key",
  "mcpServers": { "git": { "command": "uvx", "args": ["mcp-server-git"] } },
  "mcp": { "allowed": ["git"] }
}"#;

    #[test]
    fn every_client_name_parses_back_to_the_same_client() {
        for client in Client::ALL {
            assert_eq!(Client::parse(client.name()), Some(client));
        }
        assert_eq!((Client::parse(" VSCode "), Client::parse("emacs")), (Some(Client::VsCode), None));
    }

    #[test]
    fn each_client_config_path_follows_its_documented_location_per_os() {
        let linux = Places { home: "/home/ana".into(), xdg_config_home: None, appdata: None, os: Os::Linux };
        let paths: Vec<PathBuf> = Client::ALL.iter().map(|&c| config_file(c, &linux)).collect();
        let want = [
            "/home/ana/.config/Claude/claude_desktop_config.json",
            "/home/ana/.claude.json",
            "/home/ana/.cursor/mcp.json",
            "/home/ana/.config/Code/User/mcp.json",
            "/home/ana/.codeium/windsurf/mcp_config.json",
            "/home/ana/.gemini/settings.json",
        ];
        assert_eq!(paths, want.map(PathBuf::from));
        let xdg = Places { xdg_config_home: Some("/xdg".into()), ..linux };
        assert_eq!(config_file(Client::VsCode, &xdg), PathBuf::from("/xdg/Code/User/mcp.json"));
        assert_eq!(config_file(Client::ClaudeDesktop, &xdg), PathBuf::from("/xdg/Claude/claude_desktop_config.json"));

        let mac = Places { home: "/Users/ana".into(), os: Os::Mac, ..xdg };
        let support = PathBuf::from("/Users/ana/Library/Application Support");
        assert_eq!(config_file(Client::VsCode, &mac), support.join("Code/User/mcp.json"));
        assert_eq!(config_file(Client::ClaudeDesktop, &mac), support.join("Claude/claude_desktop_config.json"));
        assert_eq!(config_file(Client::Cursor, &mac), PathBuf::from("/Users/ana/.cursor/mcp.json"));

        let roaming = PathBuf::from(r"C:\Users\ana\AppData\Roaming");
        let win = Places { home: r"C:\Users\ana".into(), appdata: Some(roaming.clone()), os: Os::Windows, ..mac };
        assert_eq!(config_file(Client::VsCode, &win), roaming.join("Code").join("User").join("mcp.json"));
        assert_eq!(config_file(Client::ClaudeDesktop, &win), roaming.join("Claude").join("claude_desktop_config.json"));
        assert_eq!(config_file(Client::GeminiCli, &win), win.home.join(".gemini").join("settings.json"));
        let no_appdata = Places { appdata: None, ..win.clone() };
        assert_eq!(config_file(Client::VsCode, &no_appdata), win.home.join("AppData/Roaming/Code/User/mcp.json"));
    }

    #[test]
    fn places_come_from_the_injected_environment_only() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/ana".to_string()),
            "USERPROFILE" => Some(r"C:\Users\ana".to_string()),
            "XDG_CONFIG_HOME" => Some("relative/ignored".to_string()),
            "APPDATA" => Some(r"C:\Users\ana\AppData\Roaming".to_string()),
            _ => None,
        };
        let linux = Places::from_env(&env, Os::Linux).unwrap();
        assert_eq!((linux.home, linux.xdg_config_home), (PathBuf::from("/home/ana"), None));
        let win = Places::from_env(&env, Os::Windows).unwrap();
        assert_eq!((win.home, win.appdata), (r"C:\Users\ana".into(), Some(r"C:\Users\ana\AppData\Roaming".into())));
        assert_eq!(Places::from_env(&|_| None, Os::Mac), None);
        assert_eq!(Places::from_env(&|_| Some(String::new()), Os::Linux), None);
    }

    #[test]
    fn each_client_gets_its_own_remote_server_shape() {
        let (e, url) = (entry("t0k"), "http://127.0.0.1:7777/mcp");
        let headers = json!({ "Authorization": "Bearer t0k" });
        for client in [Client::ClaudeCode, Client::VsCode, Client::GeminiCli] {
            assert_eq!(render(client, &e), json!({ "type": "http", "url": url, "headers": headers }));
        }
        assert_eq!(render(Client::Cursor, &e), json!({ "url": url, "headers": headers }));
        assert_eq!(render(Client::Windsurf, &e), json!({ "serverUrl": url, "headers": headers }));
        let sse = Entry { transport: Transport::Sse, headers: BTreeMap::new(), ..e };
        assert_eq!(render(Client::ClaudeCode, &sse), json!({ "type": "sse", "url": url }));
        assert_eq!(render(Client::GeminiCli, &sse), json!({ "type": "sse", "url": url }));
        assert_eq!(keys(&render(Client::VsCode, &sse)), ["type", "url"]);
    }

    #[test]
    fn claude_desktop_gets_an_mcp_remote_bridge_with_header_values_in_env() {
        let mut e = entry("t0k");
        e.headers.insert("X-Api-Key".into(), "k 1".into());
        let header_args = ["--header", "Authorization:${AUTH_HEADER}", "--header", "X-Api-Key:${X_API_KEY_HEADER}"];
        let env = json!({ "AUTH_HEADER": "Bearer t0k", "X_API_KEY_HEADER": "k 1" });
        let args = [["-y", "mcp-remote", e.url.as_str()].as_slice(), &header_args].concat();
        let want = json!({ "command": "npx", "args": args, "env": env });
        assert_eq!(render(Client::ClaudeDesktop, &e), want);
        let lan = Entry {
            url: "http://me@nas.lan:7777/sse".into(),
            transport: Transport::Sse,
            headers: BTreeMap::new(),
            ..e
        };
        let args = ["-y", "mcp-remote", "http://me@nas.lan:7777/sse", "--allow-http", "--transport", "sse-only"];
        assert_eq!(render(Client::ClaudeDesktop, &lan), json!({ "command": "npx", "args": args }));
        assert!(!needs_allow_http("https://mcp.example.com/mcp") && !needs_allow_http("http://localhost:1/mcp"));
        assert!(needs_allow_http("http://[::1]:1/mcp"));
    }

    #[test]
    fn adding_to_a_missing_file_creates_its_directories_without_a_backup() {
        let (_dir, places, manifest) = home();
        let change = add(Client::VsCode, &places, &manifest, &entry("a"), false, NOW).unwrap();
        assert_eq!(change, Change { file: config_file(Client::VsCode, &places), backup: None, changed: true });
        assert_eq!(read(&change.file), json!({ "servers": { "mcpod": render(Client::VsCode, &entry("a")) } }));
        let text = fs::read_to_string(&change.file).unwrap();
        assert!(text.starts_with("{\n  \"servers\": {\n    \"mcpod\": {\n      \"type\""), "{text}");
        assert_eq!(fs::read_dir(change.file.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn adding_to_an_existing_cursor_file_keeps_other_servers_and_makes_a_backup() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::Cursor, &places);
        put(&file, CURSOR);
        let backup = add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW).unwrap().backup.unwrap();
        assert_eq!(backup, file.with_file_name(format!("mcp.json.mcpod-backup-{NOW}")));
        assert_eq!(fs::read_to_string(&backup).unwrap(), CURSOR);
        let (after, before) = (read(&file), serde_json::from_str::<Value>(CURSOR).unwrap());
        assert_eq!(keys(&after["mcpServers"]), ["playwright", "context7", "mcpod"]);
        assert_eq!(after["mcpServers"]["context7"], before["mcpServers"]["context7"]);
        assert_eq!(after["mcpServers"]["mcpod"], render(Client::Cursor, &entry("a")));
    }

    #[test]
    fn adding_keeps_every_other_key_and_server_in_its_original_order() {
        let cases = [(Client::ClaudeCode, CLAUDE_JSON), (Client::VsCode, VSCODE), (Client::ClaudeDesktop, DESKTOP)];
        for (client, fixture) in cases.into_iter().chain([(Client::GeminiCli, GEMINI)]) {
            let (_dir, places, manifest) = home();
            let file = config_file(client, &places);
            put(&file, fixture);
            add(client, &places, &manifest, &entry("a"), false, NOW).unwrap();
            let mut after = read(&file);
            let ours = after[client.servers_key()].as_object_mut().unwrap().shift_remove("mcpod");
            assert_eq!(ours, Some(render(client, &entry("a"))));
            // Compact strings compare key order at every level, not just values.
            assert_eq!(after.to_string(), serde_json::from_str::<Value>(fixture).unwrap().to_string(), "{client:?}");
        }
    }

    #[test]
    fn a_backup_never_overwrites_an_earlier_one() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::Windsurf, &places);
        put(&file, r#"{ "mcpServers": {} }"#);
        let backups: Vec<PathBuf> = ["a", "b", "c"]
            .map(|t| add(Client::Windsurf, &places, &manifest, &entry(t), false, NOW).unwrap().backup.unwrap())
            .into();
        let base = file.with_file_name(format!("mcp_config.json.mcpod-backup-{NOW}")).display().to_string();
        assert_eq!(backups, [base.clone(), format!("{base}-1"), format!("{base}-2")].map(PathBuf::from));
        assert_eq!(fs::read_to_string(&backups[0]).unwrap(), r#"{ "mcpServers": {} }"#);
        assert_eq!(read(&backups[2])["mcpServers"]["mcpod"]["headers"]["Authorization"], "Bearer b");
    }

    #[test]
    fn adding_refuses_to_clobber_a_server_mcpod_did_not_write() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::Cursor, &places);
        let theirs = r#"{ "mcpServers": { "mcpod": { "url": "https://elsewhere.example/mcp" } } }"#;
        put(&file, theirs);
        let err = add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ClientsError::Foreign(..)) && msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains("\"mcpod\"") && msg.contains("pass force"), "{msg}");
        assert_eq!(fs::read_to_string(&file).unwrap(), theirs);
        assert!(!manifest.exists());
    }

    #[test]
    fn adding_refuses_after_the_user_edited_mcpods_entry_and_force_overrides() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::GeminiCli, &places);
        put(&file, GEMINI);
        add(Client::GeminiCli, &places, &manifest, &entry("a"), false, NOW).unwrap();
        let mut edited = read(&file);
        edited["mcpServers"]["mcpod"]["timeout"] = json!(5000);
        put(&file, &edited.to_string());
        let err = add(Client::GeminiCli, &places, &manifest, &entry("b"), false, NOW).unwrap_err();
        assert!(matches!(err, ClientsError::Edited(..)), "{err}");
        assert_eq!(read(&file), edited);
        add(Client::GeminiCli, &places, &manifest, &entry("b"), true, NOW).unwrap();
        assert_eq!(read(&file)["mcpServers"]["mcpod"], render(Client::GeminiCli, &entry("b")));

        let foreign = config_file(Client::Cursor, &places);
        put(&foreign, r#"{ "mcpServers": { "mcpod": { "url": "https://x" } } }"#);
        add(Client::Cursor, &places, &manifest, &entry("c"), true, NOW).unwrap();
        assert_eq!(read(&foreign)["mcpServers"]["mcpod"], render(Client::Cursor, &entry("c")));
        assert_eq!(list(&places, &manifest).unwrap()[2].servers[0].owner, Owner::Mcpod);
    }

    #[test]
    fn re_adding_an_unchanged_mcpod_entry_replaces_it_in_place() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::Cursor, &places);
        put(&file, CURSOR);
        add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW).unwrap();
        let same = add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW + 1).unwrap();
        assert_eq!((same.changed, same.backup), (false, None));
        let mut moved = read(&file);
        let servers = moved["mcpServers"].as_object_mut().unwrap();
        let ours = servers.shift_remove("mcpod").unwrap();
        servers.shift_insert(0, "mcpod".into(), ours);
        put(&file, &pretty(&moved));
        let new = add(Client::Cursor, &places, &manifest, &entry("b"), false, NOW + 2).unwrap();
        assert!(new.changed && new.backup.is_some());
        let after = read(&file);
        assert_eq!(keys(&after["mcpServers"]), ["mcpod", "playwright", "context7"]);
        assert_eq!(after["mcpServers"]["mcpod"]["headers"]["Authorization"], "Bearer b");
        let recorded = read(&manifest)["entries"].clone();
        assert_eq!(
            (recorded.as_array().unwrap().len(), &recorded[0]["entry"]),
            (1, &render(Client::Cursor, &entry("b")))
        );
    }

    #[test]
    fn removing_deletes_only_mcpods_entry_and_keeps_the_rest_in_order() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::ClaudeCode, &places);
        put(&file, CLAUDE_JSON);
        add(Client::ClaudeCode, &places, &manifest, &entry("a"), false, NOW).unwrap();
        let mut with_more = read(&file);
        with_more["mcpServers"]["linear"] = json!({ "type": "sse", "url": "https://mcp.linear.app/sse" });
        with_more["mcpServers"]["notion"] = json!({ "type": "http", "url": "https://mcp.notion.com/mcp" });
        put(&file, &pretty(&with_more));
        let change = remove(Client::ClaudeCode, &places, &manifest, "mcpod", false, NOW + 5).unwrap();
        assert_eq!(fs::read(change.backup.unwrap()).unwrap(), pretty(&with_more).into_bytes());
        let mut want: Value = serde_json::from_str(CLAUDE_JSON).unwrap();
        for name in ["linear", "notion"] {
            want["mcpServers"][name] = with_more["mcpServers"][name].clone();
        }
        assert_eq!(read(&file).to_string(), want.to_string());
        assert_eq!(read(&manifest)["entries"], json!([]));
        let again = remove(Client::ClaudeCode, &places, &manifest, "mcpod", false, NOW + 6).unwrap();
        assert_eq!((again.changed, again.backup), (false, None));
    }

    #[test]
    fn removing_refuses_entries_mcpod_did_not_write_or_that_were_edited_unless_forced() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::Cursor, &places);
        put(&file, CURSOR);
        let err = remove(Client::Cursor, &places, &manifest, "context7", false, NOW).unwrap_err();
        assert!(matches!(err, ClientsError::Foreign(..)), "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), CURSOR);

        add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW).unwrap();
        let mut edited = read(&file);
        edited["mcpServers"]["mcpod"]["url"] = json!("http://127.0.0.1:9999/mcp");
        put(&file, &pretty(&edited));
        let err = remove(Client::Cursor, &places, &manifest, "mcpod", false, NOW).unwrap_err();
        assert!(matches!(err, ClientsError::Edited(..)), "{err}");
        remove(Client::Cursor, &places, &manifest, "mcpod", true, NOW).unwrap();
        remove(Client::Cursor, &places, &manifest, "context7", true, NOW).unwrap();
        assert_eq!(keys(&read(&file)["mcpServers"]), ["playwright"]);
    }

    #[test]
    fn a_jsonc_file_with_comments_is_left_byte_for_byte_unchanged() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::VsCode, &places);
        let jsonc = "// my servers\n{\n  \"servers\": {\n    \"memory\": { \"command\": \"npx\", \"args\": [\"-y\", \"@modelcontextprotocol/server-memory\"] }, // local\n  },\n}\n";
        put(&file, jsonc);
        let msg = add(Client::VsCode, &places, &manifest, &entry("a"), false, NOW).unwrap_err().to_string();
        assert!(msg.contains(&file.display().to_string()) && msg.contains("not plain JSON"), "{msg}");
        assert!(msg.contains("under \"servers\" by hand") && msg.contains("\"Authorization\": \"Bearer a\""), "{msg}");
        let removed = remove(Client::VsCode, &places, &manifest, "mcpod", true, NOW);
        assert!(matches!(removed, Err(ClientsError::NotJson(..))));
        assert_eq!(fs::read_to_string(&file).unwrap(), jsonc);
        assert_eq!(fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);
        assert!(list(&places, &manifest).unwrap()[3].problem.as_deref().unwrap().contains("not plain JSON"));
    }

    #[test]
    fn a_non_object_top_level_or_servers_value_is_refused() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::Windsurf, &places);
        for (text, why) in [("[]", "top level"), (r#"{ "mcpServers": [] }"#, "\"mcpServers\" value")] {
            put(&file, text);
            let msg = add(Client::Windsurf, &places, &manifest, &entry("a"), false, NOW).unwrap_err().to_string();
            assert!(msg.contains(why) && msg.contains("\"serverUrl\""), "{msg}");
            assert_eq!(fs::read_to_string(&file).unwrap(), text);
        }
    }

    #[test]
    fn an_empty_file_or_one_starting_with_a_bom_is_accepted() {
        let (_dir, places, manifest) = home();
        let file = config_file(Client::Cursor, &places);
        for text in ["", "\u{feff}{ \"mcpServers\": {} }"] {
            put(&file, text);
            add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW).unwrap();
            assert_eq!(read(&file), json!({ "mcpServers": { "mcpod": render(Client::Cursor, &entry("a")) } }));
        }
    }

    #[test]
    fn list_marks_mcpods_entries_and_detects_installed_clients() {
        let (dir, places, manifest) = home();
        fs::create_dir_all(dir.path().join(".cursor")).unwrap();
        put(&config_file(Client::ClaudeDesktop, &places), DESKTOP);
        add(Client::ClaudeDesktop, &places, &manifest, &entry("a"), false, NOW).unwrap();
        let found = list(&places, &manifest).unwrap();
        assert_eq!(found.iter().map(|f| f.client).collect::<Vec<_>>(), Client::ALL);
        let pick = |test: fn(&Found) -> bool| found.iter().filter(|f| test(f)).map(|f| f.client).collect::<Vec<_>>();
        assert_eq!(pick(|f| f.exists), [Client::ClaudeDesktop]);
        assert_eq!(pick(|f| f.installed), [Client::ClaudeDesktop, Client::Cursor]);
        let other = Server { name: "filesystem".into(), owner: Owner::Other };
        assert_eq!(found[0].servers, [other, Server { name: "mcpod".into(), owner: Owner::Mcpod }]);
        assert_eq!((&found[0].file, found[2].servers.len()), (&config_file(Client::ClaudeDesktop, &places), 0));

        let mut edited = read(&found[0].file);
        edited["mcpServers"]["mcpod"]["args"][0] = json!("--yes");
        put(&found[0].file, &edited.to_string());
        assert_eq!(list(&places, &manifest).unwrap()[0].servers[1].owner, Owner::Edited);
    }

    #[test]
    fn a_damaged_manifest_is_reported_and_nothing_is_written() {
        let (_dir, places, manifest) = home();
        put(&manifest, "{ nope");
        let err = add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW).unwrap_err();
        assert!(matches!(err, ClientsError::Manifest(..)) && err.to_string().contains("delete it"), "{err}");
        assert!(!config_file(Client::Cursor, &places).exists());
        assert!(list(&places, &manifest).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn replacing_a_file_keeps_its_unix_permissions_and_new_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, places, manifest) = home();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let file = config_file(Client::Cursor, &places);
        put(&file, CURSOR);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let change = add(Client::Cursor, &places, &manifest, &entry("a"), false, NOW).unwrap();
        assert_eq!((mode(&file), mode(&change.backup.unwrap()), mode(&manifest)), (0o640, 0o640, 0o600));
        let fresh = add(Client::GeminiCli, &places, &manifest, &entry("a"), false, NOW).unwrap();
        assert_eq!(mode(&fresh.file), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_config_is_updated_through_the_link() {
        let (dir, places, manifest) = home();
        let real = dir.path().join("dotfiles/claude.json");
        put(&real, CLAUDE_JSON);
        let link = config_file(Client::ClaudeCode, &places);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let change = add(Client::ClaudeCode, &places, &manifest, &entry("a"), false, NOW).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(read(&real)["mcpServers"]["mcpod"]["type"], "http");
        assert_eq!(change.backup.unwrap().parent(), real.canonicalize().unwrap().parent());
    }
}
