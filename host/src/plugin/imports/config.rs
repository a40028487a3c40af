//! `mcpod:plugin/config`: the plugin's own `config` table from the host's TOML.

use crate::plugin::bindings::services::mcpod::plugin::config::Host;
use crate::plugin::state::PluginState;
use std::collections::BTreeMap;

/// A plugin's config values, flattened to the strings the WIT interface returns.
#[derive(Debug, Clone, Default)]
pub struct ConfigValues(BTreeMap<String, String>);

impl ConfigValues {
    /// Flattens `table`: strings stay as they are, other values become JSON text.
    pub fn from_table(table: &toml::Table) -> Self {
        let values = table
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                (k.clone(), text)
            })
            .collect();
        ConfigValues(values)
    }

    /// Sets one value (the host adds `documents` for template catalogs).
    pub fn insert(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

impl Host for PluginState {
    fn get(&mut self, key: String) -> Option<String> {
        self.ctx.config.get(&key).map(str::to_string)
    }

    fn keys(&mut self) -> Vec<String> {
        self.ctx.config.0.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_stay_and_other_values_become_json() {
        let table: toml::Table = toml::from_str("a = \"x\"\nb = 3\nc = [\"p\", \"q\"]\n[d]\ne = true\n").unwrap();
        let v = ConfigValues::from_table(&table);
        assert_eq!(v.get("a"), Some("x"));
        assert_eq!(v.get("b"), Some("3"));
        assert_eq!(v.get("c"), Some(r#"["p","q"]"#));
        assert_eq!(v.get("d"), Some(r#"{"e":true}"#));
        assert_eq!(v.get("z"), None);
    }
}
