//! Templates and packages across every loaded catalog and registry plugin:
//! the one place the API and the CLI ask.

use crate::config::PluginKind;
use crate::plugin::bindings::{KeyValue, PackageInfo, PackageSummary, PackageVersions, ServerConfig, Template};
use crate::plugin::{CallError, PluginHost};

/// A template and the catalog plugin it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CatalogTemplate {
    /// The catalog plugin.
    pub catalog: String,
    /// The template.
    #[serde(flatten)]
    pub template: Template,
}

/// Every template of every catalog, sorted by name; a name in two catalogs
/// is listed once, from the catalog loaded first by name.
pub async fn list_templates(plugins: &PluginHost) -> Result<Vec<CatalogTemplate>, CallError> {
    let mut out: Vec<CatalogTemplate> = Vec::new();
    for catalog in plugins.of_kind(PluginKind::TemplateCatalog) {
        for template in catalog.list_templates().await? {
            if !out.iter().any(|t| t.template.name == template.name) {
                out.push(CatalogTemplate { catalog: catalog.name.clone(), template });
            }
        }
    }
    out.sort_by(|a, b| a.template.name.cmp(&b.template.name));
    Ok(out)
}

/// The template `name` from the first catalog that has it.
pub async fn find_template(plugins: &PluginHost, name: &str) -> Result<CatalogTemplate, CallError> {
    let mut last = None;
    for catalog in plugins.of_kind(PluginKind::TemplateCatalog) {
        match catalog.describe_template(name).await {
            Ok(template) => return Ok(CatalogTemplate { catalog: catalog.name.clone(), template }),
            Err(e) if e.code() == Some(crate::plugin::bindings::ErrorCode::NotFound) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(CallError::Unknown { name: name.to_string(), kind: PluginKind::TemplateCatalog }))
}

/// Renders template `name` with `params` and `secrets`.
pub async fn render_template(
    plugins: &PluginHost,
    name: &str,
    params: &[KeyValue],
    secrets: &[KeyValue],
) -> Result<ServerConfig, CallError> {
    let found = find_template(plugins, name).await?;
    plugins.get(&found.catalog, PluginKind::TemplateCatalog)?.render_template(name, params, secrets).await
}

/// The registry plugin `name` (`npm`, `pypi`).
fn registry<'a>(
    plugins: &'a PluginHost,
    name: &str,
) -> Result<&'a std::sync::Arc<crate::plugin::LoadedPlugin>, CallError> {
    plugins.get(name, PluginKind::PackageRegistry)
}

/// Searches registry `name`.
pub async fn search_packages(
    plugins: &PluginHost,
    name: &str,
    query: &str,
    limit: u32,
) -> Result<Vec<PackageSummary>, CallError> {
    registry(plugins, name)?.search(query, limit).await
}

/// Describes a package of registry `name`.
pub async fn package_info(
    plugins: &PluginHost,
    name: &str,
    package: &str,
    version: Option<&str>,
) -> Result<PackageInfo, CallError> {
    registry(plugins, name)?.describe_package(package, version).await
}

/// The versions of a package of registry `name`.
pub async fn package_versions(plugins: &PluginHost, name: &str, package: &str) -> Result<PackageVersions, CallError> {
    registry(plugins, name)?.versions(package).await
}
