//! Calls into `template-catalog` plugins.

use super::fresh_call;
use crate::plugin::bindings::{KeyValue, ServerConfig, Template};
use crate::plugin::error::CallError;
use crate::plugin::host::LoadedPlugin;
use crate::plugin::instance::plugin_result;

impl LoadedPlugin {
    /// Every template of the catalog.
    pub async fn list_templates(&self) -> Result<Vec<Template>, CallError> {
        let list = fresh_call!(self, TemplateCatalog, "list-templates", |inst, s| inst
            .mcpod_plugin_catalog()
            .call_list_templates(s));
        if let Some(t) = list.iter().find(|t| t.name.trim().is_empty()) {
            return Err(CallError::BadOutput {
                plugin: self.name.clone(),
                function: "list-templates",
                reason: format!("a template has an empty name (title {:?})", t.title),
            });
        }
        Ok(list)
    }

    /// One template.
    pub async fn describe_template(&self, name: &str) -> Result<Template, CallError> {
        let out = fresh_call!(self, TemplateCatalog, "describe", |inst, s| inst
            .mcpod_plugin_catalog()
            .call_describe(s, name));
        plugin_result(&self.ctx, out)
    }

    /// A template rendered into a server config.
    pub async fn render_template(
        &self,
        name: &str,
        params: &[KeyValue],
        secrets: &[KeyValue],
    ) -> Result<ServerConfig, CallError> {
        let out = fresh_call!(self, TemplateCatalog, "render", |inst, s| inst
            .mcpod_plugin_catalog()
            .call_render(s, name, params, secrets));
        plugin_result(&self.ctx, out)
    }
}
