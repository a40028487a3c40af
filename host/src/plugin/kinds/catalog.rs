//! Calls into `template-catalog` plugins, and the rules a template's input
//! names follow.

use super::CatalogPlugin;
use super::fresh_call;
use crate::plugin::bindings::{KeyValue, ServerConfig, Template};
use crate::plugin::error::CallError;
use crate::plugin::instance::plugin_result;

impl CatalogPlugin {
    /// Every template of the catalog.
    pub async fn list_templates(&self) -> Result<Vec<Template>, CallError> {
        let list = fresh_call!(self, "list-templates", |inst, s| inst.mcpod_plugin_catalog().call_list_templates(s));
        if let Some(t) = list.iter().find(|t| t.name.trim().is_empty()) {
            return Err(CallError::BadOutput {
                plugin: self.name.clone(),
                function: "list-templates",
                reason: format!("a template has an empty name (title {:?})", t.title),
            });
        }
        Ok(list)
    }

    /// Lists the catalog once, as the host does at load, and says what is
    /// wrong: every template whose input names break the rules (the host
    /// withholds those), or why the listing failed. Empty when all is well.
    pub async fn check_templates(&self) -> Vec<String> {
        let problems = match self.list_templates().await {
            Ok(list) => list.iter().flat_map(input_name_problems).collect(),
            Err(e) => vec![format!("`list-templates` failed: {e}")],
        };
        for p in &problems {
            tracing::error!(plugin = %self.name, "{p}");
        }
        problems
    }

    /// One template.
    pub async fn describe_template(&self, name: &str) -> Result<Template, CallError> {
        let out = fresh_call!(self, "describe", |inst, s| inst.mcpod_plugin_catalog().call_describe(s, name));
        plugin_result(&self.ctx, out)
    }

    /// A template rendered into a server config.
    pub async fn render_template(
        &self,
        name: &str,
        params: &[KeyValue],
        secrets: &[KeyValue],
    ) -> Result<ServerConfig, CallError> {
        let out =
            fresh_call!(self, "render", |inst, s| inst.mcpod_plugin_catalog().call_render(s, name, params, secrets));
        plugin_result(&self.ctx, out)
    }
}

/// What is wrong with the names of `template`'s params and secrets, one
/// sentence each naming the input and what is allowed; empty when every
/// name is valid. Callers give params as `--param NAME=VALUE` and secrets
/// as `--env NAME=VALUE` (or as JSON keys of the start request), so a name
/// is ASCII letters, digits, `-`, `_` and `.`, starting with a letter, a
/// digit or `_`: no space, no `=`.
pub fn input_name_problems(template: &Template) -> Vec<String> {
    let params = template.params.iter().map(|p| ("param", "--param", &p.name));
    let secrets = template.secrets.iter().map(|s| ("secret", "--env", &s.name));
    params
        .chain(secrets)
        .filter(|(_, _, name)| !valid_input_name(name))
        .map(|(what, flag, name)| {
            format!(
                "template `{}`: {what} {name:?} is not a valid name; use ASCII letters, digits, `-`, `_` and `.`, starting with a letter, a digit or `_` (it is given as `{flag} NAME=VALUE`)",
                template.name
            )
        })
        .collect()
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]*`.
fn valid_input_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{TemplateInput, Transport};

    fn template(params: &[&str], secrets: &[&str]) -> Template {
        let input =
            |n: &&str| TemplateInput { name: n.to_string(), description: String::new(), required: true, default: None };
        Template {
            name: "t".into(),
            title: String::new(),
            description: String::new(),
            server_type: "npx".into(),
            package: None,
            image: None,
            transport: Transport::Stdio,
            secrets: secrets.iter().map(input).collect(),
            params: params.iter().map(input).collect(),
            tags: Vec::new(),
            homepage: None,
        }
    }

    #[test]
    fn the_names_the_built_in_templates_use_are_valid() {
        let t = template(&["allowed-paths", "GITLAB_API_URL", "v1.2_x"], &["BRAVE_API_KEY", "_TOKEN", "database-url"]);
        assert_eq!(input_name_problems(&t), Vec::<String>::new());
    }

    #[test]
    fn inputs_with_a_space_an_equals_sign_or_a_leading_dash_are_named_with_what_is_allowed() {
        let problems = input_name_problems(&template(&["user agent", "", "-x", "a=b"], &["API KEY", "KEY=1"]));
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(
            problems[0].contains("param \"user agent\"") && problems[0].contains("letters, digits"),
            "{problems:?}"
        );
        assert!(problems[4].contains("secret \"API KEY\"") && problems[4].contains("`--env NAME=VALUE`"));
    }
}
