//! The mux's use of a server's exposure rules ([`crate::expose`]): a call
//! to a hidden name is answered at once with an error naming the rule; a
//! renamed one reaches the server by its own name; listings lose what is
//! hidden and show new names and descriptions.

use super::*;
use crate::expose::{Expose, NameRules, Resolved};

/// Which listing a request asks for, so that its answer can be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl Listing {
    pub(super) fn of(method: &str) -> Option<Listing> {
        match method {
            "tools/list" => Some(Listing::Tools),
            "prompts/list" => Some(Listing::Prompts),
            "resources/list" => Some(Listing::Resources),
            "resources/templates/list" => Some(Listing::ResourceTemplates),
            _ => None,
        }
    }

    /// The result's array, the field naming each item, and the rules.
    fn parts(self, expose: &Expose) -> (&'static str, &'static str, &NameRules) {
        match self {
            Listing::Tools => ("tools", "name", &expose.tools),
            Listing::Prompts => ("prompts", "name", &expose.prompts),
            Listing::Resources => ("resources", "uri", &expose.resources),
            Listing::ResourceTemplates => ("resourceTemplates", "uriTemplate", &expose.resources),
        }
    }
}

/// Checks a client's call against the rules and, for a renamed tool or
/// prompt, puts the server's own name in it. `Err` is the client's answer.
pub(super) fn check_call(expose: &Expose, msg: &mut Message) -> Result<(), String> {
    let (rules, field, kind) = match msg.method() {
        "tools/call" => (&expose.tools, "name", "tool"),
        "prompts/get" => (&expose.prompts, "name", "prompt"),
        "resources/read" | "resources/subscribe" => (&expose.resources, "uri", "resource"),
        _ => return Ok(()),
    };
    if rules.is_empty() {
        return Ok(());
    }
    let mut params = msg.params_value();
    let Some(name) = params.get(field).and_then(Value::as_str).map(str::to_string) else { return Ok(()) };
    match rules.resolve(&name) {
        Resolved::Hidden => Err(format!(
            "Unknown {kind}: `{name}` is not offered by this server (hidden by its expose.{}s rules)",
            if kind == "resource" { "resource" } else { kind }
        )),
        Resolved::Call(original) if original == name => Ok(()),
        Resolved::Call(original) => {
            params[field] = Value::String(original.to_string());
            msg.params = Some(raw(&params));
            Ok(())
        }
    }
}

/// Filters a listing's answer by the rules: hidden items go, renamed ones
/// and new descriptions show. An answer it cannot read passes unchanged.
pub(super) fn filter_listing(expose: &Expose, listing: Listing, msg: &mut Message) {
    let (array, field, rules) = listing.parts(expose);
    if rules.is_empty() {
        return;
    }
    let Some(result) = &msg.result else { return };
    let Ok(mut value) = serde_json::from_str::<Value>(result.get()) else { return };
    let Some(items) = value.get_mut(array).and_then(Value::as_array_mut) else { return };
    items.retain_mut(|item| {
        let Some(name) = item.get(field).and_then(Value::as_str).map(str::to_string) else { return false };
        let Some(shown) = rules.shown(&name) else { return false };
        if shown != name {
            item[field] = Value::String(shown.to_string());
        }
        if let Some(d) = rules.descriptions.get(&name) {
            item["description"] = Value::String(d.clone());
        }
        true
    });
    msg.result = Some(raw(&value));
}
