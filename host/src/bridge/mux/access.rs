//! The mux's use of the access policies ([`crate::access`]): a call the
//! session's principal may not make is answered at once with an error
//! naming the policy outcome, and listings lose what it may not use. The
//! names checked are the ones the client sees (after the exposure rules'
//! renaming), so a policy is written against what clients see.

use super::*;
use crate::access::{Access, Act};
use crate::identity::Principal;
use expose::Listing;

/// The policies of one server's mux.
#[derive(Clone)]
pub(super) struct Governed {
    pub(super) access: Arc<Access>,
    pub(super) server: Arc<str>,
}

impl std::fmt::Debug for Governed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governed").field("server", &self.server).finish_non_exhaustive()
    }
}

impl Listing {
    /// The result's array, the field naming each item, and what using one is.
    fn items(self) -> Option<(&'static str, &'static str, Act)> {
        match self {
            Listing::Tools => Some(("tools", "name", Act::CallTool)),
            Listing::Prompts => Some(("prompts", "name", Act::GetPrompt)),
            Listing::Resources => Some(("resources", "uri", Act::ReadResource)),
            // A template names no one resource; reads of what it yields are checked.
            Listing::ResourceTemplates => None,
        }
    }
}

/// `Err(reason)` if `who` may not make the call `msg` is.
pub(super) fn check_call(g: &Governed, who: &Principal, msg: &Message) -> Result<(), String> {
    let Some(act) = Act::of_method(msg.method()) else { return Ok(()) };
    let field = if act == Act::ReadResource { "uri" } else { "name" };
    let params = msg.params_value();
    let Some(name) = params.get(field).and_then(Value::as_str) else { return Ok(()) };
    let verdict = g.access.decide(who, act, &g.server, Some(name));
    if verdict.allowed {
        return Ok(());
    }
    let what = match act {
        Act::CallTool => "call tool",
        Act::GetPrompt => "get prompt",
        _ => "read resource",
    };
    Err(format!(
        "denied by policy: `{}` may not {what} `{name}` on server `{}` ({})",
        who.name, g.server, verdict.reason
    ))
}

/// Filters a listing's answer to what `who` may use. A server's own
/// `cacheScope` becomes `private` (mcpod's 2026-07-28 front makes a missing
/// one private), so that no shared cache hands one principal's list to another.
pub(super) fn filter_listing(g: &Governed, who: &Principal, listing: Listing, msg: &mut Message) {
    let Some((array, field, act)) = listing.items() else { return };
    let Some(result) = &msg.result else { return };
    let Ok(mut value) = serde_json::from_str::<Value>(result.get()) else { return };
    let Some(items) = value.get_mut(array).and_then(Value::as_array_mut) else { return };
    items.retain(|item| {
        item.get(field)
            .and_then(Value::as_str)
            .is_some_and(|name| g.access.decide(who, act, &g.server, Some(name)).allowed)
    });
    if let Some(obj) = value.as_object_mut().filter(|o| o.contains_key("cacheScope")) {
        obj.insert("cacheScope".to_string(), Value::String("private".to_string()));
    }
    msg.result = Some(raw(&value));
}
