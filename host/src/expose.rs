//! What a server shows its clients: per-server allow and deny globs on the
//! names of its tools, prompts and resources (resources by URI), and tools
//! or prompts renamed or described anew. Set in the start request, a
//! template's start, or an `McpServer`'s `spec.expose`, under the
//! operator's rules for the template (`[expose.templates.NAME]` in the
//! config), which a start request can narrow but never widen; applied by
//! the mux to every session on every transport, so a hidden tool is absent
//! from `tools/list` and a call to it is refused before it reaches the server.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The rules for one kind of name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameRules {
    /// Globs (`*` matches any run) of the names shown; empty shows all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Globs of names hidden, even if allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Shown names for original ones (`{"echo": "say"}`); the original
    /// name is then hidden. Not for resources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    /// New descriptions, by original name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub descriptions: BTreeMap<String, String>,
    /// Allow lists of rules these were put under ([`Expose::under`]): a
    /// name must match one glob of each, besides `allow`.
    #[serde(skip)]
    #[schemars(skip)]
    pub also_allow: Vec<Vec<String>>,
}

/// A server's exposure rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expose {
    /// Tools, by name.
    #[serde(default)]
    pub tools: NameRules,
    /// Prompts, by name.
    #[serde(default)]
    pub prompts: NameRules,
    /// Resources and resource templates, by URI (or URI template).
    #[serde(default)]
    pub resources: NameRules,
}

/// `*`-glob match of `text` against `pattern`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// What a call's name resolves to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// Shown: call the server with this (original) name.
    Call(&'a str),
    /// Hidden by the rules: the client is told so.
    Hidden,
}

impl NameRules {
    /// True if no rule is set.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.deny.is_empty()
            && self.rename.is_empty()
            && self.descriptions.is_empty()
            && self.also_allow.is_empty()
    }

    /// Whether the original name `name` passes the allow and deny globs.
    fn passes(&self, name: &str) -> bool {
        let allowed = |globs: &Vec<String>| globs.is_empty() || globs.iter().any(|g| glob_match(g, name));
        allowed(&self.allow) && self.also_allow.iter().all(allowed) && !self.deny.iter().any(|g| glob_match(g, name))
    }

    /// These rules under `base`: a name is shown only if both show it (the
    /// deny lists add up, each allow list must match); renames and
    /// descriptions of these win over the base's.
    fn under(&self, base: &NameRules) -> NameRules {
        let mut out = self.clone();
        out.deny.extend(base.deny.iter().cloned());
        out.also_allow.extend(base.also_allow.iter().cloned());
        if !base.allow.is_empty() {
            out.also_allow.push(base.allow.clone());
        }
        for (original, new) in &base.rename {
            out.rename.entry(original.clone()).or_insert_with(|| new.clone());
        }
        for (original, text) in &base.descriptions {
            out.descriptions.entry(original.clone()).or_insert_with(|| text.clone());
        }
        out
    }

    /// The name shown for original name `name`, if it is shown.
    pub fn shown<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.passes(name).then(|| self.rename.get(name).map(String::as_str).unwrap_or(name))
    }

    /// The original name a client's `name` calls, or hidden.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Resolved<'a> {
        if let Some((original, _)) = self.rename.iter().find(|(_, shown)| shown.as_str() == name) {
            return if self.passes(original) { Resolved::Call(original) } else { Resolved::Hidden };
        }
        if self.rename.contains_key(name) || !self.passes(name) {
            return Resolved::Hidden;
        }
        Resolved::Call(name)
    }
}

impl Expose {
    /// True if no rule is set: the server is shown as it is.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.prompts.is_empty() && self.resources.is_empty()
    }

    /// These rules under `base` (an operator's rules for a template): what
    /// either hides stays hidden, so a start request narrows what the
    /// operator shows and never widens it.
    pub fn under(&self, base: &Expose) -> Expose {
        Expose {
            tools: self.tools.under(&base.tools),
            prompts: self.prompts.under(&base.prompts),
            resources: self.resources.under(&base.resources),
        }
    }

    /// Problems with the rules, each naming the rule (checked at start).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.resources.rename.is_empty() {
            out.push("expose.resources.rename: resources cannot be renamed (their URIs are their names)".to_string());
        }
        for (kind, rules) in [("tools", &self.tools), ("prompts", &self.prompts)] {
            let mut shown = std::collections::BTreeSet::new();
            for (original, new) in &rules.rename {
                if new.trim().is_empty() {
                    out.push(format!("expose.{kind}.rename.{original}: the new name is empty"));
                } else if !shown.insert(new) {
                    out.push(format!("expose.{kind}.rename: two names are renamed to `{new}`"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str], rename: &[(&str, &str)]) -> NameRules {
        NameRules {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            rename: rename.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            descriptions: BTreeMap::new(),
            also_allow: Vec::new(),
        }
    }

    #[test]
    fn a_request_under_the_operators_rules_narrows_them_and_never_widens_them() {
        let operator = rules(&["read_*", "list_*"], &["read_secret*"], &[("list_all", "ls")]);
        let wider = rules(&["*"], &[], &[]);
        let merged = wider.under(&operator);
        assert_eq!(merged.shown("read_file"), Some("read_file"));
        assert_eq!(merged.shown("write_file"), None, "the operator's allow list still holds");
        assert_eq!(merged.shown("read_secrets"), None, "the operator's deny list still holds");
        assert_eq!(merged.shown("list_all"), Some("ls"), "the operator's rename stays");
        let narrower = rules(&["read_*"], &["read_log"], &[("list_all", "everything")]);
        let merged = narrower.under(&operator);
        assert_eq!(merged.shown("read_file"), Some("read_file"));
        assert_eq!(merged.shown("read_log"), None);
        assert_eq!(merged.shown("list_all"), None, "the request's own allow list hides it");
        assert_eq!(merged.resolve("ls"), Resolved::Hidden, "the request's rename wins, and is hidden too");
        let open = NameRules::default().under(&NameRules::default());
        assert!(open.is_empty());
        let two = Expose { tools: rules(&["a*"], &[], &[]), ..Expose::default() };
        let twice = Expose::default().under(&two).under(&two);
        assert_eq!(twice.tools.shown("b"), None);
        assert_eq!(twice.tools.shown("ab"), Some("ab"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*_KEY", "BRAVE_API_KEY"));
        assert!(!glob_match("*_KEY", "KEYRING"));
        assert!(glob_match("*PASSWORD*", "DB_PASSWORD_FILE"));
        assert!(glob_match("@modelcontextprotocol/*", "@modelcontextprotocol/server-memory"));
        assert!(!glob_match("@modelcontextprotocol/*", "@evil/server-memory"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXc"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("exact", "exact"));
    }

    #[test]
    fn deny_wins_over_allow_and_an_empty_allow_shows_everything() {
        let r = rules(&["read_*", "list_*"], &["read_secret*"], &[]);
        assert_eq!(r.shown("read_file"), Some("read_file"));
        assert_eq!(r.shown("read_secrets"), None);
        assert_eq!(r.shown("write_file"), None);
        let open = rules(&[], &["delete_*"], &[]);
        assert_eq!(open.shown("anything"), Some("anything"));
        assert_eq!(open.shown("delete_repo"), None);
    }

    #[test]
    fn a_renamed_name_is_called_by_its_new_name_only() {
        let r = rules(&[], &["crash"], &[("echo", "say"), ("crash", "boom")]);
        assert_eq!(r.shown("echo"), Some("say"));
        assert_eq!(r.resolve("say"), Resolved::Call("echo"));
        assert_eq!(r.resolve("echo"), Resolved::Hidden, "the old name is gone");
        assert_eq!(r.resolve("boom"), Resolved::Hidden, "renaming does not undo a deny");
        assert_eq!(r.resolve("add"), Resolved::Call("add"));
    }

    #[test]
    fn rules_that_cannot_work_are_named() {
        let mut e = Expose::default();
        e.resources.rename.insert("file:///a".into(), "b".into());
        e.tools.rename.insert("a".into(), "x".into());
        e.tools.rename.insert("b".into(), "x".into());
        let p = e.problems();
        assert!(p.iter().any(|p| p.contains("resources cannot be renamed")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("two names are renamed to `x`")), "{p:?}");
    }
}
