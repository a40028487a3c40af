//! Templates and packages across every loaded catalog and registry plugin:
//! the one place the API and the CLI ask.

use crate::config::PluginKind;
use crate::plugin::bindings::{
    KeyValue, PackageInfo, PackageSummary, PackageVersions, ServerConfig, Template, TemplateInput,
};
use crate::plugin::kinds::catalog::input_name_problems;
use crate::plugin::{CallError, CatalogPlugin, PluginHost, RegistryPlugin};

/// A template and the catalog plugin it came from. As JSON it is the
/// template's fields plus `catalog`, with the transport spelled as requests
/// spell it (`stdio`, `streamable-http`, `sse`, `websocket`).
#[derive(Debug, Clone)]
pub struct CatalogTemplate {
    /// The catalog plugin.
    pub catalog: String,
    /// The template.
    pub template: Template,
}

/// A template as the API and the CLI show it: [`CatalogTemplate`] in JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TemplateJson {
    /// The catalog plugin it came from.
    pub catalog: String,
    /// A short unique name.
    pub name: String,
    /// A one-line title.
    pub title: String,
    /// What the server does.
    pub description: String,
    /// The server type that runs it.
    pub server_type: String,
    /// The package it runs.
    pub package: Option<String>,
    /// The image it runs.
    pub image: Option<String>,
    /// `stdio`, `streamable-http`, `sse` or `websocket`.
    pub transport: String,
    /// Environment variables that hold secrets.
    pub secrets: Vec<TemplateInput>,
    /// Other inputs, given as `--param NAME=VALUE`.
    pub params: Vec<TemplateInput>,
    /// Search tags.
    pub tags: Vec<String>,
    /// The server's home page.
    pub homepage: Option<String>,
}

impl From<&CatalogTemplate> for TemplateJson {
    fn from(c: &CatalogTemplate) -> Self {
        let t = c.template.clone();
        TemplateJson {
            catalog: c.catalog.clone(),
            name: t.name,
            title: t.title,
            description: t.description,
            server_type: t.server_type,
            package: t.package,
            image: t.image,
            transport: t.transport.name().to_string(),
            secrets: t.secrets,
            params: t.params,
            tags: t.tags,
            homepage: t.homepage,
        }
    }
}

impl serde::Serialize for CatalogTemplate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TemplateJson::from(self).serialize(s)
    }
}

/// A catalog whose listing failed, or one template it withheld because the
/// template breaks the contract; the other catalogs' templates are listed regardless.
#[derive(Debug, serde::Serialize)]
pub struct CatalogFailure {
    /// The catalog plugin.
    pub catalog: String,
    /// The template withheld, when the failure is one template's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Why: the plugin's fault, or what is wrong with the template.
    #[serde(serialize_with = "as_text")]
    pub error: CallError,
}

fn as_text<S: serde::Serializer>(e: &CallError, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// Every template that could be listed, sorted by name, and beside them
/// what failed. As JSON, one array: the templates, then one entry per
/// failure (`catalog`, `error` and, for a withheld template, `template`).
#[derive(Debug, Default)]
pub struct TemplateListing {
    /// The templates.
    pub templates: Vec<CatalogTemplate>,
    /// The catalogs and templates that could not be listed.
    pub failures: Vec<CatalogFailure>,
}

impl serde::Serialize for TemplateListing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.templates.len() + self.failures.len()))?;
        for t in &self.templates {
            seq.serialize_element(t)?;
        }
        for f in &self.failures {
            seq.serialize_element(f)?;
        }
        seq.end()
    }
}

/// Every template of every catalog, sorted by name; a name in two catalogs
/// is listed once, from the catalog loaded first by name. A catalog that
/// fails costs only its own templates, and a template whose input names
/// break the rules ([`input_name_problems`]) only itself: each is logged and
/// reported in [`TemplateListing::failures`].
pub async fn listing(plugins: &PluginHost) -> TemplateListing {
    let mut out = TemplateListing::default();
    for catalog in plugins.catalogs() {
        let templates = match catalog.list_templates().await {
            Ok(t) => t,
            Err(error) => {
                tracing::error!(plugin = %catalog.name, "its templates are not listed: {error}");
                out.failures.push(CatalogFailure { catalog: catalog.name.clone(), template: None, error });
                continue;
            }
        };
        for template in templates {
            if let Err(error) = checked(&catalog, "list-templates", &template) {
                tracing::error!(plugin = %catalog.name, template = %template.name, "template withheld: {error}");
                out.failures.push(CatalogFailure {
                    catalog: catalog.name.clone(),
                    template: Some(template.name),
                    error,
                });
            } else if !out.templates.iter().any(|t| t.template.name == template.name) {
                out.templates.push(CatalogTemplate { catalog: catalog.name.clone(), template });
            }
        }
    }
    out.templates.sort_by(|a, b| a.template.name.cmp(&b.template.name));
    out
}

/// Every template of every catalog, sorted by name, or the first failure of
/// [`listing`] when anything could not be listed.
pub async fn list_templates(plugins: &PluginHost) -> Result<Vec<CatalogTemplate>, CallError> {
    let listing = listing(plugins).await;
    match listing.failures.into_iter().next() {
        Some(f) => Err(f.error),
        None => Ok(listing.templates),
    }
}

/// `template` if its input names follow the rules, else a `BadOutput` of `function`.
fn checked(catalog: &CatalogPlugin, function: &'static str, template: &Template) -> Result<(), CallError> {
    let problems = input_name_problems(template);
    if problems.is_empty() {
        return Ok(());
    }
    Err(CallError::BadOutput { plugin: catalog.name.clone(), function, reason: problems.join("; ") })
}

/// The template `name` from the first catalog that has it. A catalog that
/// fails is passed over; its error is the answer only if no other catalog
/// has the template.
pub async fn find_template(plugins: &PluginHost, name: &str) -> Result<CatalogTemplate, CallError> {
    let mut not_found = None;
    let mut fault = None;
    for catalog in plugins.catalogs() {
        match catalog.describe_template(name).await {
            Ok(template) => match checked(&catalog, "describe", &template) {
                Ok(()) => return Ok(CatalogTemplate { catalog: catalog.name.clone(), template }),
                Err(e) => fault = fault.or(Some(e)),
            },
            Err(e) if e.code() == Some(crate::plugin::bindings::ErrorCode::NotFound) => not_found = Some(e),
            Err(e) => {
                tracing::error!(plugin = %catalog.name, template = name, "describe failed: {e}");
                fault = fault.or(Some(e));
            }
        }
    }
    Err(fault.or(not_found).unwrap_or(CallError::Unknown { name: name.to_string(), kind: PluginKind::TemplateCatalog }))
}

/// Renders template `name` with `params` and `secrets`.
pub async fn render_template(
    plugins: &PluginHost,
    name: &str,
    params: &[KeyValue],
    secrets: &[KeyValue],
) -> Result<ServerConfig, CallError> {
    let found = find_template(plugins, name).await?;
    plugins.catalog(&found.catalog)?.render_template(name, params, secrets).await
}

/// The registry plugin `name` (`npm`, `pypi`).
fn registry(plugins: &PluginHost, name: &str) -> Result<RegistryPlugin, CallError> {
    plugins.registry(name)
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
