//! The mux's use of the access policies ([`crate::access`]): a call the
//! session's principal may not make is answered at once with an error
//! naming the policy outcome, and listings lose what it may not use. The
//! names checked are the ones the client sees (after the exposure rules'
//! renaming), so a policy is written against what clients see.

use super::*;
use crate::access::{Access, Act, ServerFacts};
use crate::identity::Principal;
use expose::Listing;

/// The policies of one server's mux.
#[derive(Clone)]
pub(super) struct Governed {
    pub(super) access: Arc<Access>,
    pub(super) server: Arc<ServerFacts>,
}

impl std::fmt::Debug for Governed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governed").field("server", &self.server.id).finish_non_exhaustive()
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
    let verdict = g.access.decide_on(who, act, &g.server, Some(name));
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
        who.name, g.server.id, verdict.reason
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
            .is_some_and(|name| g.access.decide_on(who, act, &g.server, Some(name)).allowed)
    });
    if let Some(obj) = value.as_object_mut().filter(|o| o.contains_key("cacheScope")) {
        obj.insert("cacheScope".to_string(), Value::String("private".to_string()));
    }
    msg.result = Some(raw(&value));
}

/// The lists a server's `initialize` result says it has (`tools`,
/// `prompts`, `resources`).
const LISTS: [(&str, &str); 3] = [
    ("tools", "notifications/tools/list_changed"),
    ("prompts", "notifications/prompts/list_changed"),
    ("resources", "notifications/resources/list_changed"),
];

/// The `initialize` result a governed server's clients see: each list it
/// has says `listChanged`, since a policy edit changes what a client may
/// see whether or not the server's own lists ever change.
pub(super) fn announce_list_changes(result: Box<RawValue>) -> Box<RawValue> {
    let Ok(mut value) = serde_json::from_str::<Value>(result.get()) else { return result };
    let Some(caps) = value.get_mut("capabilities").and_then(Value::as_object_mut) else { return result };
    let mut changed = false;
    for (list, _) in LISTS {
        if let Some(cap) = caps.get_mut(list).and_then(Value::as_object_mut)
            && cap.get("listChanged") != Some(&Value::Bool(true))
        {
            cap.insert("listChanged".to_string(), Value::Bool(true));
            changed = true;
        }
    }
    if changed { raw(&value) } else { result }
}

impl Mux {
    /// New policies came into force: every session of a governed server is
    /// told each of the server's lists changed, so that clients list again
    /// and see what they may now use (MCP's `list_changed` notifications).
    pub fn policies_changed(&self) -> Vec<Action> {
        let (Some(_), Some(result)) = (&self.governed, self.initialize_result()) else { return Vec::new() };
        let caps = serde_json::from_str::<Value>(result.get()).ok().and_then(|v| v.get("capabilities").cloned());
        let Some(caps) = caps else { return Vec::new() };
        let mut out = Vec::new();
        for (list, method) in LISTS {
            if caps.get(list).is_some() {
                let all: Vec<SessionId> = self.sessions.keys().copied().collect();
                out.extend(self.broadcast(&all, Message::notification(method, None)));
            }
        }
        out
    }
}
