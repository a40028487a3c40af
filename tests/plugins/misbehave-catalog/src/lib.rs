//! A deliberately bad template catalog. Its `mode` config value says how:
//! `panic` (every call panics), `trap` (every call aborts), `bad-secret`
//! (template `keyed` has a secret named `API KEY=`), `good` (one good
//! template, `extra`); unset (as `mcpod plugins check` loads it), it offers
//! `extra` and `spaced`, whose param is named `user agent`.

use mcpod_plugin_sdk::template_catalog::*;

/// The plugin.
pub struct Misbehave;

impl Plugin for Misbehave {
    fn info() -> PluginInfo {
        plugin_info("misbehave-catalog", "0.0.1", "misbehaves on request")
    }
}

fn input(name: &str) -> TemplateInput {
    TemplateInput { name: name.to_string(), description: format!("the {name}"), required: true, default: None }
}

fn template(name: &str, params: &[&str], secrets: &[&str]) -> Template {
    Template {
        name: name.to_string(),
        title: format!("The {name} template"),
        description: "a fixture".to_string(),
        server_type: "npx".to_string(),
        package: Some("@modelcontextprotocol/server-everything".to_string()),
        image: None,
        transport: Transport::Stdio,
        secrets: secrets.iter().map(|s| input(s)).collect(),
        params: params.iter().map(|p| input(p)).collect(),
        tags: Vec::new(),
        homepage: None,
    }
}

fn templates() -> Vec<Template> {
    match config_value("mode").as_deref() {
        Some("panic") => panic!("deliberate panic for the test suite"),
        Some("trap") => std::process::abort(),
        Some("bad-secret") => vec![template("keyed", &[], &["API KEY="])],
        Some("good") => vec![template("extra", &["greeting"], &["EXTRA_TOKEN"])],
        _ => vec![template("extra", &["greeting"], &["EXTRA_TOKEN"]), template("spaced", &["user agent"], &[])],
    }
}

impl TemplateCatalog for Misbehave {
    fn list_templates() -> Vec<Template> {
        templates()
    }

    fn describe(name: String) -> Result<Template, PluginError> {
        templates()
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| PluginError::not_found(format!("no template named `{name}`")))
    }

    fn render(name: String, _params: Vec<KeyValue>, _secrets: Vec<KeyValue>) -> Result<ServerConfig, PluginError> {
        Err(PluginError::invalid("name", format!("the fixture does not render `{name}`")))
    }
}

mcpod_plugin_sdk::export_template_catalog!(Misbehave);
