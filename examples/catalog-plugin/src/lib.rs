//! A template catalog with one team's MCP servers: `notes`, whose folder
//! defaults to the `notes_dir` config value. Written from docs/plugins.md as
//! a third-party author would.

use mcpod_plugin_sdk::template_catalog::*;

struct Team;

impl Plugin for Team {
    fn info() -> PluginInfo {
        plugin_info("team", env!("CARGO_PKG_VERSION"), "The team's MCP servers")
    }
}

fn notes() -> Template {
    Template {
        name: "notes".to_string(),
        title: "Team notes".to_string(),
        description: "Reads and writes the team's notes as files.".to_string(),
        server_type: "npx".to_string(),
        package: Some("@modelcontextprotocol/server-filesystem".to_string()),
        image: None,
        transport: Transport::Stdio,
        secrets: Vec::new(),
        params: vec![TemplateInput {
            name: "notes-dir".to_string(),
            description: "The folder the notes live in".to_string(),
            required: true,
            default: config_value("notes_dir"),
        }],
        tags: vec!["notes".to_string()],
        homepage: None,
    }
}

impl TemplateCatalog for Team {
    fn list_templates() -> Vec<Template> {
        vec![notes()]
    }

    fn describe(name: String) -> Result<Template, PluginError> {
        Self::list_templates()
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| PluginError::not_found(format!("the team catalog has no template `{name}`")))
    }

    fn render(name: String, params: Vec<KeyValue>, secrets: Vec<KeyValue>) -> Result<ServerConfig, PluginError> {
        let template = Self::describe(name)?;
        if let Some(s) = secrets.first() {
            return Err(PluginError::invalid(s.key.clone(), format!("`{}` takes no secrets", template.name)));
        }
        if let Some(p) = params.iter().find(|p| !template.params.iter().any(|t| t.name == p.key)) {
            return Err(PluginError::invalid(p.key.clone(), format!("`{}` has no param `{}`", template.name, p.key)));
        }
        let mut args = Vec::new();
        let mut missing = Vec::new();
        for input in &template.params {
            match params.iter().find(|p| p.key == input.name).map(|p| p.value.clone()).or(input.default.clone()) {
                Some(value) => args.push(value),
                None if input.required => missing.push(format!("param {}", input.name)),
                None => {}
            }
        }
        if !missing.is_empty() {
            return Err(PluginError::invalid("params", format!("missing {}", missing.join(", "))));
        }
        log(Level::Debug, "rendered a template", &[("template", &template.name)]);
        Ok(ServerConfig {
            server_type: template.server_type,
            package: template.package,
            version: None,
            image: None,
            args,
            env: Vec::new(),
            transport: Some(template.transport),
            port: None,
            path: None,
            options: Vec::new(),
        })
    }
}

mcpod_plugin_sdk::export_template_catalog!(Team);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpod_plugin_sdk::testing::set_config;

    #[test]
    fn the_folder_defaults_to_the_notes_dir_config_value() {
        set_config("notes_dir", "/srv/notes");
        let config = Team::render("notes".to_string(), Vec::new(), Vec::new()).unwrap();
        assert_eq!(config.args, ["/srv/notes"]);
    }

    #[test]
    fn without_a_folder_rendering_names_the_missing_param() {
        let err = Team::render("notes".to_string(), Vec::new(), Vec::new()).unwrap_err();
        assert_eq!(err.message, "missing param notes-dir");
    }
}
