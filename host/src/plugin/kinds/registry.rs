//! Calls into `package-registry` plugins.

use super::RegistryPlugin;
use super::fresh_call;
use crate::plugin::bindings::{PackageInfo, PackageSummary, PackageVersions};
use crate::plugin::error::CallError;
use crate::plugin::instance::plugin_result;

impl RegistryPlugin {
    /// Packages matching `query`.
    pub async fn search(&self, query: &str, limit: u32) -> Result<Vec<PackageSummary>, CallError> {
        let out = fresh_call!(self, "search", |inst, s| inst.mcpod_plugin_registry().call_search(s, query, limit));
        plugin_result(&self.ctx, out)
    }

    /// The versions of `name`.
    pub async fn versions(&self, name: &str) -> Result<PackageVersions, CallError> {
        let out = fresh_call!(self, "versions", |inst, s| inst.mcpod_plugin_registry().call_versions(s, name));
        plugin_result(&self.ctx, out)
    }

    /// Facts about `name` at `version` (newest if `None`).
    pub async fn describe_package(&self, name: &str, version: Option<&str>) -> Result<PackageInfo, CallError> {
        let out = fresh_call!(self, "describe", |inst, s| inst.mcpod_plugin_registry().call_describe(s, name, version));
        plugin_result(&self.ctx, out)
    }

    /// Whether `name` (at `version`) is published.
    pub async fn exists(&self, name: &str, version: Option<&str>) -> Result<bool, CallError> {
        let out = fresh_call!(self, "exists", |inst, s| inst.mcpod_plugin_registry().call_exists(s, name, version));
        plugin_result(&self.ctx, out)
    }
}
