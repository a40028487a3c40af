//! The set of loaded plugins: loads every plugin the config names (plus the
//! built-ins), refuses broken ones with a clear error while keeping the
//! rest, and hands out typed handles per kind.

use crate::config::{Config, PluginEntry, PluginKind};
use crate::metrics::Metrics;
use crate::plugin::bindings::{self, PluginInfo};
use crate::plugin::builtin::{self, Builtin};
use crate::plugin::cache::{CacheOutcome, CompileCache};
use crate::plugin::engine::PluginEngine;
use crate::plugin::error::{CallError, HostError, LoadError};
use crate::plugin::imports::config::ConfigValues;
use crate::plugin::imports::http::{AllowHosts, HttpGate};
use crate::plugin::instance::{Calls, guarded, guarded_sync, new_store};
use crate::plugin::kinds::{AdapterPlugin, CatalogPlugin, RegistryPlugin, ServerTypePlugin, native};
use crate::plugin::limits::Limits;
use crate::plugin::state::{CallTimers, PluginContext, PluginState};
use crate::plugin::world;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

/// A plugin's pre-instantiated component, typed by its world.
pub(crate) enum KindPre {
    ServerType(bindings::server_type::ServerTypePre<PluginState>),
    TemplateCatalog(bindings::template_catalog::TemplateCatalogPre<PluginState>),
    PackageRegistry(bindings::package_registry::PackageRegistryPre<PluginState>),
    ProtocolAdapter(bindings::protocol_adapter::ProtocolAdapterPre<PluginState>),
}

/// One loaded plugin.
pub struct LoadedPlugin {
    /// Its name in the config.
    pub name: String,
    /// Its kind.
    pub kind: PluginKind,
    /// `builtin:NAME` or the file it came from.
    pub source: String,
    /// What the plugin says about itself.
    pub info: PluginInfo,
    /// Whether its compiled code came from the cache.
    pub cache: CacheOutcome,
    /// How long loading took (compile or cache load, link, first call).
    pub load_time: Duration,
    pub(crate) engine: Engine,
    pub(crate) ctx: Arc<PluginContext>,
    pub(crate) pre: KindPre,
    /// Whether its sessions run the built-in adapter's code natively (see `kinds::native`).
    pub(crate) native: bool,
}

impl LoadedPlugin {
    /// The world it implements.
    pub fn world(&self) -> String {
        world::world_name(self.kind)
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.ctx.limits
    }

    /// A fresh store for one call (or, for an adapter, one session).
    pub(crate) fn store(&self) -> Store<PluginState> {
        let calls = if self.kind == PluginKind::ProtocolAdapter { Calls::Sync } else { Calls::Async };
        new_store(&self.engine, &self.ctx, calls)
    }
}

/// Where a plugin's bytes come from, resolved.
struct Resolved {
    entry: PluginEntry,
    source_desc: String,
    wasm: Result<std::borrow::Cow<'static, [u8]>, String>,
    builtin: Option<&'static Builtin>,
    native: bool,
}

/// Every loaded plugin, and the ones that failed to load.
pub struct PluginHost {
    engine: PluginEngine,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    failures: Vec<LoadError>,
    metrics: Arc<Metrics>,
}

impl PluginHost {
    /// Loads every plugin of `config`. Broken plugins are logged and listed
    /// in [`PluginHost::failures`]; the others load regardless.
    pub async fn load(config: &Config) -> Result<PluginHost, HostError> {
        Self::load_reporting_to(config, Arc::new(Metrics::new())).await
    }

    /// As [`PluginHost::load`], with call durations recorded in `metrics`
    /// (the app's, so that `/metrics` shows them).
    pub async fn load_reporting_to(config: &Config, metrics: Arc<Metrics>) -> Result<PluginHost, HostError> {
        let resolved = resolve(config);
        let max_memory =
            resolved.iter().map(|r| limits_for(r).memory_bytes).max().unwrap_or(Limits::default().memory_bytes);
        let rt = &config.plugin_runtime;
        let engine = PluginEngine::new(rt.pooling, rt.max_instances, max_memory)
            .map_err(|e| HostError::Engine(e.to_string()))?;
        let cache_dir = if rt.cache { rt.cache_dir.clone().or_else(CompileCache::default_dir) } else { None };
        let cache = CompileCache::new(cache_dir);
        let linkers = Linkers::new(engine.engine()).map_err(|e| HostError::Link(e.to_string()))?;
        let mut host = PluginHost { engine, plugins: BTreeMap::new(), failures: Vec::new(), metrics };
        for r in resolved {
            match host.load_one(&cache, &linkers, r).await {
                Ok(p) => {
                    tracing::info!(plugin = %p.name, kind = %p.kind, source = %p.source, version = %p.info.version, cache = ?p.cache, ms = p.load_time.as_millis() as u64, "plugin loaded");
                    host.plugins.insert(p.name.clone(), p);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    host.failures.push(e);
                }
            }
        }
        Ok(host)
    }

    async fn load_one(
        &self,
        cache: &CompileCache,
        linkers: &Linkers,
        r: Resolved,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let started = Instant::now();
        let fail = |message: String| LoadError {
            name: r.entry.name.clone(),
            kind: r.entry.kind,
            source_desc: r.source_desc.clone(),
            message,
        };
        let wasm = r.wasm.as_ref().map_err(|e| fail(e.clone()))?;
        let engine = self.engine.engine();
        let (component, outcome) = cache.load(engine, wasm).map_err(|e| {
            fail(format!(
                "is not a WebAssembly component this host can compile ({e}); build it for wasm32-wasip2 as a cdylib, as docs/plugins.md shows"
            ))
        })?;
        world::check(engine, &component, r.entry.kind).map_err(&fail)?;
        let limits = limits_for(&r);
        let ctx = Arc::new(context(&r, limits, self.metrics.clone()).map_err(&fail)?);
        let pre = linkers.pre(&component, r.entry.kind).map_err(|e| fail(format!("{e}")))?;
        let mut plugin = LoadedPlugin {
            name: r.entry.name.clone(),
            kind: r.entry.kind,
            source: r.source_desc.clone(),
            info: PluginInfo { name: String::new(), version: String::new(), description: String::new() },
            cache: outcome,
            load_time: Duration::ZERO,
            engine: engine.clone(),
            ctx,
            pre,
            native: r.native,
        };
        plugin.info = plugin.call_info().await.map_err(|e| fail(format!("its `info` call failed: {e}")))?;
        let mut plugin = Arc::new(plugin);
        if let Some(catalog) = CatalogPlugin::of(&plugin) {
            catalog.check_templates().await;
        }
        if let Some(p) = Arc::get_mut(&mut plugin) {
            p.load_time = started.elapsed();
        }
        Ok(plugin)
    }

    /// Every loaded plugin, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    /// The plugins that failed to load, with why.
    pub fn failures(&self) -> &[LoadError] {
        &self.failures
    }

    /// Why plugin `name` of `kind` failed to load, if it did.
    pub fn load_failure(&self, name: &str, kind: PluginKind) -> Option<&LoadError> {
        self.failures.iter().find(|f| f.name == name && f.kind == kind)
    }

    /// The loaded plugin `name` of `kind`.
    pub fn get(&self, name: &str, kind: PluginKind) -> Result<&Arc<LoadedPlugin>, CallError> {
        self.plugins
            .get(name)
            .filter(|p| p.kind == kind)
            .ok_or_else(|| CallError::Unknown { name: name.to_string(), kind })
    }

    /// The server-type plugin `name`.
    pub fn server_type(&self, name: &str) -> Result<ServerTypePlugin, CallError> {
        self.typed(name, PluginKind::ServerType, ServerTypePlugin::of)
    }

    /// The template-catalog plugin `name`.
    pub fn catalog(&self, name: &str) -> Result<CatalogPlugin, CallError> {
        self.typed(name, PluginKind::TemplateCatalog, CatalogPlugin::of)
    }

    /// The package-registry plugin `name`.
    pub fn registry(&self, name: &str) -> Result<RegistryPlugin, CallError> {
        self.typed(name, PluginKind::PackageRegistry, RegistryPlugin::of)
    }

    /// The protocol-adapter plugin `name`.
    pub fn adapter(&self, name: &str) -> Result<AdapterPlugin, CallError> {
        self.typed(name, PluginKind::ProtocolAdapter, AdapterPlugin::of)
    }

    /// Every template catalog, by name.
    pub fn catalogs(&self) -> impl Iterator<Item = CatalogPlugin> + '_ {
        self.plugins.values().filter_map(CatalogPlugin::of)
    }

    fn typed<T>(
        &self,
        name: &str,
        kind: PluginKind,
        of: impl FnOnce(&Arc<LoadedPlugin>) -> Option<T>,
    ) -> Result<T, CallError> {
        self.plugins.get(name).and_then(of).ok_or_else(|| CallError::Unknown { name: name.to_string(), kind })
    }

    /// The loaded plugins of `kind`.
    pub fn of_kind(&self, kind: PluginKind) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values().filter(move |p| p.kind == kind)
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.engine.pooling
    }
}

impl LoadedPlugin {
    /// Calls the plugin's `info` export.
    pub async fn call_info(&self) -> Result<PluginInfo, CallError> {
        let mut store = self.store();
        let info = match &self.pre {
            KindPre::ServerType(pre) => {
                guarded(&mut store, "info", async |s| {
                    pre.instantiate_async(&mut *s).await?.mcpod_plugin_launcher().call_info(s).await
                })
                .await?
            }
            KindPre::TemplateCatalog(pre) => {
                guarded(&mut store, "info", async |s| {
                    pre.instantiate_async(&mut *s).await?.mcpod_plugin_catalog().call_info(s).await
                })
                .await?
            }
            KindPre::PackageRegistry(pre) => {
                guarded(&mut store, "info", async |s| {
                    pre.instantiate_async(&mut *s).await?.mcpod_plugin_registry().call_info(s).await
                })
                .await?
            }
            KindPre::ProtocolAdapter(pre) => {
                guarded_sync(&mut store, "info", |s| pre.instantiate(&mut *s)?.mcpod_plugin_codec().call_info(s))?
            }
        };
        crate::plugin::instance::check_output(&self.ctx, "info", &info)?;
        if info.name.trim().is_empty() || info.version.trim().is_empty() {
            return Err(CallError::BadOutput {
                plugin: self.name.clone(),
                function: "info",
                reason: "`info` must return a non-empty name and version".to_string(),
            });
        }
        Ok(info)
    }
}

/// One linker per import set: adapters get logging only, every other kind
/// gets logging, config and HTTP. WASI is linked for both with a context
/// that grants nothing, because Rust guests import parts of it regardless.
/// The adapters' linker is synchronous, with streams and poll that never
/// wait (`no_wait_io`); the other kinds' is async.
struct Linkers {
    services: Linker<PluginState>,
    adapter: Linker<PluginState>,
}

impl Linkers {
    fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        let mut services = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut services)?;
        bindings::server_type::ServerType::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut services, |s| s)?;
        let mut adapter = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut adapter)?;
        crate::plugin::imports::no_wait_io::add_to_linker(&mut adapter, PluginState::no_wait)?;
        bindings::protocol_adapter::ProtocolAdapter::add_to_linker::<PluginState, HasSelf<PluginState>>(
            &mut adapter,
            |s| s,
        )?;
        Ok(Linkers { services, adapter })
    }

    fn pre(&self, component: &Component, kind: PluginKind) -> wasmtime::Result<KindPre> {
        let linker = if kind == PluginKind::ProtocolAdapter { &self.adapter } else { &self.services };
        let pre = linker.instantiate_pre(component).map_err(|e| {
            wasmtime::Error::msg(format!("imports something this host does not provide to {kind} plugins: {e}"))
        })?;
        let typed = |e: wasmtime::Error| {
            wasmtime::Error::msg(format!(
                "its exports do not match world `{}`: {e}; rebuild it against wit/ of this version",
                world::world_name(kind)
            ))
        };
        Ok(match kind {
            PluginKind::ServerType => {
                KindPre::ServerType(bindings::server_type::ServerTypePre::new(pre).map_err(typed)?)
            }
            PluginKind::TemplateCatalog => {
                KindPre::TemplateCatalog(bindings::template_catalog::TemplateCatalogPre::new(pre).map_err(typed)?)
            }
            PluginKind::PackageRegistry => {
                KindPre::PackageRegistry(bindings::package_registry::PackageRegistryPre::new(pre).map_err(typed)?)
            }
            PluginKind::ProtocolAdapter => {
                KindPre::ProtocolAdapter(bindings::protocol_adapter::ProtocolAdapterPre::new(pre).map_err(typed)?)
            }
        })
    }
}

/// The plugins to load: the config's entries, then every built-in the config does not name.
fn resolve(config: &Config) -> Vec<Resolved> {
    let mut out = Vec::new();
    for entry in &config.plugins {
        out.push(resolve_entry(config, entry.clone()));
    }
    if config.plugin_runtime.builtins {
        for b in builtin::BUILTINS {
            if config.plugins.iter().any(|p| p.name == b.name) {
                continue;
            }
            let mut entry = PluginEntry {
                name: b.name.to_string(),
                kind: b.kind,
                source: format!("builtin:{}", b.name),
                allow_hosts: None,
                limits: Default::default(),
                config: Default::default(),
                documents_dir: None,
            };
            if let Some(over) = config.builtin_overrides.get(b.name) {
                entry.config.extend(over.clone());
            }
            out.push(resolve_entry(config, entry));
        }
    }
    out
}

fn resolve_entry(config: &Config, entry: PluginEntry) -> Resolved {
    if let Some(name) = entry.source.strip_prefix("builtin:") {
        let builtin = builtin::find(name);
        let wasm = match builtin {
            Some(b) if b.kind == entry.kind => Ok(std::borrow::Cow::Borrowed(b.wasm)),
            Some(b) => {
                Err(format!("built-in `{name}` is a {} plugin, but the entry says kind = \"{}\"", b.kind, entry.kind))
            }
            None => Err(format!(
                "there is no built-in plugin `{name}`; built-ins are: {}",
                builtin::BUILTINS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
            )),
        };
        let native = config.plugin_runtime.native_adapters
            && builtin.is_some_and(|b| b.kind == PluginKind::ProtocolAdapter && native::runs_natively(b.name));
        return Resolved { source_desc: entry.source.clone(), entry, wasm, builtin, native };
    }
    let path = resolve_path(&config.base_dir, Path::new(&entry.source));
    let wasm = std::fs::read(&path)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| format!("cannot read {}: {e}; check the `source` path", path.display()));
    Resolved { source_desc: path.display().to_string(), entry, wasm, builtin: None, native: false }
}

fn resolve_path(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn limits_for(r: &Resolved) -> Limits {
    let base = match r.builtin {
        Some(b) => Limits::with_overrides(Limits::default(), &(b.limits)()),
        None => Limits::default(),
    };
    Limits::with_overrides(base, &r.entry.limits)
}

fn context(r: &Resolved, limits: Limits, metrics: Arc<Metrics>) -> Result<PluginContext, String> {
    let hosts: Vec<String> = match (&r.entry.allow_hosts, r.builtin) {
        (Some(h), _) => h.clone(),
        (None, Some(b)) => b.allow_hosts.iter().map(|s| s.to_string()).collect(),
        (None, None) => Vec::new(),
    };
    let allow = AllowHosts::parse(&hosts)?;
    if r.entry.kind == PluginKind::ProtocolAdapter && !allow.is_empty() {
        return Err("protocol adapters never do I/O, so `allow_hosts` must be empty for them".to_string());
    }
    let http = if allow.is_empty() { None } else { Some(Arc::new(HttpGate::new(&r.entry.name, allow, &limits)?)) };
    let mut config = ConfigValues::from_table(&r.entry.config);
    if let Some(dir) = &r.entry.documents_dir {
        if r.entry.kind != PluginKind::TemplateCatalog {
            return Err("`documents_dir` is only for template-catalog plugins".to_string());
        }
        config.insert("documents", read_documents(dir)?);
    }
    Ok(PluginContext { name: r.entry.name.clone(), config, http, limits, timers: CallTimers::new(metrics) })
}

/// Reads every `*.json` file of `dir` into one JSON array (text).
fn read_documents(dir: &Path) -> Result<String, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read documents_dir {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut docs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(doc) => docs.push(doc),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "skipping a server.json document that is not JSON")
            }
        }
    }
    serde_json::to_string(&docs).map_err(|e| format!("cannot encode documents: {e}"))
}
