//! A virtual server's session, as a pure state machine (no I/O), like the
//! mux: one client session in front of one session on each member server.
//! `from_client` and `from_member` route each direction and return
//! [`Action`]s; the glue (`servers::virtuals`) carries them out.
//!
//! The rules, each pinned by a test below:
//! - Tools and prompts are shown as `KEY__NAME`, always (KEY is the
//!   member's key: stable across restarts, so a client's saved tool names
//!   keep working, and a member joining never renames another's tools).
//!   A member whose key is empty shows its names as they are (the first
//!   such member wins a collision): for one server behind a virtual
//!   endpoint, or servers known not to collide.
//!   Resources keep their URIs (a URI names its server already); the first
//!   member to list one owns it.
//! - Listings gather every live member's whole list (following their
//!   cursors), apply each member's exposure rules, sort by name, and page
//!   by name: a cursor is the last name given, so it survives a member's
//!   list changing between pages. The pages after the first are read from
//!   the first's merged list until a member says its list changed or the
//!   members change; then they gather again.
//! - A call goes to the member its name or URI belongs to, under the
//!   client's own id (each member session is this client's alone); a
//!   member that is down answers at once with an error that names it.
//! - A member's request to the client (sampling, elicitation, roots) gets
//!   an id of the virtual session's own, and its answer goes back under the
//!   member's id; progress, logging and list changes pass through.

use crate::expose::{Expose, NameRules, Resolved};
use crate::jsonrpc::{Id, Message, code, raw};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A member's index in its federation (stable for the session's life).
pub type MemberId = usize;

/// Between a member's key and a tool or prompt name.
pub const SEPARATOR: &str = "__";

/// Items per page of a merged listing.
pub const PAGE: usize = 100;

/// MCP's error code for a resource that does not exist.
const RESOURCE_NOT_FOUND: i64 = -32002;

/// The most pages fetched from one member for one listing.
const MAX_MEMBER_PAGES: u32 = 100;

use crate::rev_2026_07_28::HANDSHAKE_VERSIONS;

/// What to do.
#[derive(Debug)]
pub enum Action {
    /// Send `msg` on member `member`'s session.
    ToMember {
        /// The member.
        member: MemberId,
        /// The message.
        msg: Message,
    },
    /// Deliver `msg` to the client; `related` is the client request it
    /// answers or reports on.
    ToClient {
        /// The message.
        msg: Message,
        /// The client's request it relates to.
        related: Option<Id>,
    },
}

/// One member as the session sees it.
#[derive(Debug)]
struct Member {
    key: String,
    expose: Option<Arc<Expose>>,
    /// Its server's `initialize` result (capabilities, instructions).
    init: Option<Value>,
    alive: bool,
}

/// The four listings a virtual session merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Listing {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl Listing {
    fn of(method: &str) -> Option<Listing> {
        Some(match method {
            "tools/list" => Listing::Tools,
            "prompts/list" => Listing::Prompts,
            "resources/list" => Listing::Resources,
            "resources/templates/list" => Listing::Templates,
            _ => return None,
        })
    }

    fn method(self) -> &'static str {
        match self {
            Listing::Tools => "tools/list",
            Listing::Prompts => "prompts/list",
            Listing::Resources => "resources/list",
            Listing::Templates => "resources/templates/list",
        }
    }

    /// The result's array and each item's name field.
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            Listing::Tools => ("tools", "name"),
            Listing::Prompts => ("prompts", "name"),
            Listing::Resources => ("resources", "uri"),
            Listing::Templates => ("resourceTemplates", "uriTemplate"),
        }
    }

    fn rules(self, expose: &Expose) -> &NameRules {
        match self {
            Listing::Tools => &expose.tools,
            Listing::Prompts => &expose.prompts,
            Listing::Resources | Listing::Templates => &expose.resources,
        }
    }
}

/// A listing being gathered from the members.
#[derive(Debug)]
struct Gather {
    client: Id,
    listing: Listing,
    after: Option<String>,
    waiting: usize,
    items: Vec<(MemberId, Value)>,
    pages: HashMap<MemberId, u32>,
}

/// Which member serves which resource URI, learned from listings and
/// reads, by member key: shared by every session of one virtual server,
/// so that a 2026-07-28 client (a session per request) can read what it
/// listed in an earlier request.
#[derive(Debug, Default)]
pub struct Routes {
    uris: HashMap<String, String>,
    /// A URI template's fixed prefix (up to its first `{`) → member key.
    templates: Vec<(String, String)>,
}

/// A read of a URI no listing showed, asked of every member with resources.
#[derive(Debug)]
struct Probe {
    client: Id,
    uri: String,
    waiting: usize,
    failure: Option<Message>,
}

/// What an id of the session's own stands for.
#[derive(Debug)]
enum Internal {
    /// A page of a gathered listing.
    Gather(u64),
    /// One member's answer to a probe.
    Probe(u64),
    /// An answer nobody waits for (a member's `initialize`, `logging/setLevel`).
    Ignore,
}

/// One virtual session.
#[derive(Debug)]
pub struct Federation {
    name: String,
    members: Vec<Member>,
    /// The client's `initialize` params, once it has sent them (handshake
    /// era); new members are initialized with them.
    client_init: Option<Box<serde_json::value::RawValue>>,
    /// A 2026-07-28 session: its member sessions need no handshake.
    stateless: bool,
    next: u64,
    /// Client request id → the member handling it.
    forwarded: HashMap<Id, MemberId>,
    internal: HashMap<Id, Internal>,
    gathers: HashMap<u64, Gather>,
    /// Client-facing id of a member's request → the member and its id.
    asks: HashMap<Id, (MemberId, Id)>,
    /// Resource URI → its member (the first to list it).
    routes: Arc<std::sync::Mutex<Routes>>,
    /// Reads of a URI nobody listed, asked of several members: the first
    /// success answers.
    probes: HashMap<u64, Probe>,
    /// The last merged list of each listing, which the pages after the
    /// first are read from until a member's list or the members change.
    snapshots: HashMap<Listing, Vec<(String, Value)>>,
}

fn result(id: Id, value: Value) -> Message {
    Message::response(id, raw(&value))
}

fn error(id: Id, code: i64, message: &str) -> Message {
    Message::error_response(Some(id), code, message)
}

fn to_client(msg: Message, related: Option<Id>) -> Action {
    Action::ToClient { msg, related }
}

/// `msg` with params `params`.
fn with_params(mut msg: Message, params: &Value) -> Message {
    msg.params = Some(raw(params));
    msg
}

/// The page of `merged` (sorted by name) after `cursor` (`after:NAME`).
fn page_of(listing: Listing, merged: &[(String, Value)], cursor: Option<&str>) -> Value {
    let (field, _) = listing.fields();
    let after = cursor.and_then(|c| c.strip_prefix("after:"));
    let rest: Vec<&(String, Value)> =
        merged.iter().filter(|(name, _)| after.is_none_or(|a| name.as_str() > a)).collect();
    let page = &rest[..rest.len().min(PAGE)];
    let mut out = json!({ field: page.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>() });
    if rest.len() > PAGE
        && let Some((last, _)) = page.last()
    {
        out["nextCursor"] = json!(format!("after:{last}"));
    }
    out
}

impl Federation {
    /// A session of virtual server `name`; `stateless` for a 2026-07-28
    /// request (no handshake with the members).
    pub fn new(name: &str, stateless: bool, routes: Arc<std::sync::Mutex<Routes>>) -> Federation {
        Federation {
            name: name.to_string(),
            members: Vec::new(),
            client_init: None,
            stateless,
            next: 0,
            forwarded: HashMap::new(),
            internal: HashMap::new(),
            gathers: HashMap::new(),
            asks: HashMap::new(),
            routes,
            probes: HashMap::new(),
            snapshots: HashMap::new(),
        }
    }

    /// Adds a member under `key` (its tools become `KEY__NAME`), shown
    /// through `expose`, with its server's `initialize` result; it is
    /// initialized at once if the client is, and the client hears that
    /// the lists changed if `announce`.
    pub fn add_member(
        &mut self,
        key: &str,
        expose: Option<Arc<Expose>>,
        init: Option<Value>,
        announce: bool,
    ) -> (MemberId, Vec<Action>) {
        let id = self.members.len();
        self.members.push(Member { key: key.to_string(), expose, init, alive: true });
        self.snapshots.clear();
        let mut out = self.handshake(id);
        if announce {
            out.extend(self.lists_changed());
        }
        (id, out)
    }

    /// The member keys, by member id.
    pub fn keys(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.key.as_str()).collect()
    }

    /// Marks member `member` up or down; a change is announced as changed
    /// lists (a down member's tools are absent until it is back).
    pub fn set_alive(&mut self, member: MemberId, alive: bool) -> Vec<Action> {
        match self.members.get_mut(member) {
            Some(m) if m.alive != alive => {
                m.alive = alive;
                self.snapshots.clear();
                self.lists_changed()
            }
            _ => Vec::new(),
        }
    }

    /// Gives member `member` its server's `initialize` result (known once
    /// the server is ready).
    pub fn set_init(&mut self, member: MemberId, init: Value) {
        if let Some(m) = self.members.get_mut(member) {
            m.init = Some(init);
        }
    }

    fn internal_id(&mut self, what: Internal) -> Id {
        self.next += 1;
        let id = Id::Str(format!("mcpod.virtual/{}", self.next));
        self.internal.insert(id.clone(), what);
        id
    }

    /// The `initialize` and `initialized` member `member` needs, if the
    /// client has made its handshake.
    fn handshake(&mut self, member: MemberId) -> Vec<Action> {
        let Some(params) = self.client_init.clone() else { return Vec::new() };
        let id = self.internal_id(Internal::Ignore);
        vec![
            Action::ToMember { member, msg: Message::request(id, "initialize", Some(params)) },
            Action::ToMember { member, msg: Message::notification("notifications/initialized", None) },
        ]
    }

    fn lists_changed(&self) -> Vec<Action> {
        if self.client_init.is_none() && !self.stateless {
            return Vec::new();
        }
        ["tools", "prompts", "resources"]
            .into_iter()
            .map(|kind| to_client(Message::notification(&format!("notifications/{kind}/list_changed"), None), None))
            .collect()
    }

    /// The `initialize` result of the virtual server at `version`: the union
    /// of the members' capabilities (list changes always announced, since
    /// members come and go), their instructions under their keys.
    pub fn initialize_result(&self, version: &str) -> Value {
        let mut caps = serde_json::Map::new();
        let mut instructions = Vec::new();
        for m in &self.members {
            let Some(init) = &m.init else { continue };
            let theirs = &init["capabilities"];
            for kind in ["tools", "prompts"] {
                if theirs.get(kind).is_some() {
                    caps.insert(kind.into(), json!({"listChanged": true}));
                }
            }
            if theirs.get("resources").is_some() {
                let subscribe = theirs["resources"]["subscribe"] == json!(true)
                    || caps.get("resources").is_some_and(|r| r["subscribe"] == json!(true));
                caps.insert("resources".into(), json!({"listChanged": true, "subscribe": subscribe}));
            }
            for kind in ["logging", "completions"] {
                if theirs.get(kind).is_some() {
                    caps.insert(kind.into(), json!({}));
                }
            }
            if let Some(text) = init["instructions"].as_str() {
                instructions.push(format!("{}: {text}", m.key));
            }
        }
        let mut out = json!({
            "protocolVersion": version,
            "capabilities": caps,
            "serverInfo": {"name": format!("mcpod virtual server {}", self.name), "version": env!("CARGO_PKG_VERSION")},
        });
        if !instructions.is_empty() {
            out["instructions"] = json!(format!(
                "Tools and prompts of each server are named KEY{SEPARATOR}NAME.\n{}",
                instructions.join("\n")
            ));
        }
        out
    }

    /// Routes one message from the client.
    pub fn from_client(&mut self, msg: Message) -> Vec<Action> {
        let id = msg.id.value().cloned();
        match (msg.method.clone(), id) {
            (None, Some(id)) => match self.asks.remove(&id) {
                Some((member, theirs)) => {
                    let mut msg = msg;
                    msg.id = crate::jsonrpc::IdField::Value(theirs);
                    vec![Action::ToMember { member, msg }]
                }
                None => Vec::new(),
            },
            (Some(method), Some(id)) => self.client_request(&method, id, msg),
            (Some(method), None) => self.client_notification(&method, msg),
            (None, None) => Vec::new(),
        }
    }

    fn client_request(&mut self, method: &str, id: Id, msg: Message) -> Vec<Action> {
        let params = msg.params_value();
        match method {
            "initialize" => {
                let asked = params["protocolVersion"].as_str().unwrap_or_default();
                let version = if HANDSHAKE_VERSIONS.contains(&asked) { asked } else { HANDSHAKE_VERSIONS[0] };
                self.client_init = msg.params.clone();
                let mut out: Vec<Action> = (0..self.members.len()).flat_map(|m| self.handshake(m)).collect();
                out.push(to_client(result(id.clone(), self.initialize_result(version)), Some(id)));
                out
            }
            "ping" => vec![to_client(result(id.clone(), json!({})), Some(id))],
            "logging/setLevel" => {
                let mut out = Vec::new();
                for member in self.live() {
                    let internal = self.internal_id(Internal::Ignore);
                    out.push(Action::ToMember { member, msg: Message::request(internal, method, msg.params.clone()) });
                }
                out.push(to_client(result(id.clone(), json!({})), Some(id)));
                out
            }
            _ => {
                if let Some(listing) = Listing::of(method) {
                    let cursor = params["cursor"].as_str();
                    if let (Some(after), Some(merged)) = (cursor, self.snapshots.get(&listing)) {
                        let answer = page_of(listing, merged, Some(after));
                        return vec![to_client(result(id.clone(), answer), Some(id))];
                    }
                    return self.gather(id, listing, cursor);
                }
                if method == "resources/read"
                    && let Some(uri) = params["uri"].as_str()
                    && let Ok(None) = self.resolve_uri(uri)
                {
                    return self.probe(id, uri, &msg);
                }
                match self.route(method, &params) {
                    Ok((member, params)) => {
                        self.forwarded.insert(id, member);
                        vec![Action::ToMember { member, msg: with_params(msg, &params) }]
                    }
                    Err((code, why)) => vec![to_client(error(id.clone(), code, &why), Some(id))],
                }
            }
        }
    }

    fn client_notification(&mut self, method: &str, msg: Message) -> Vec<Action> {
        match method {
            "notifications/cancelled" => {
                let params = msg.params_value();
                let target = serde_json::from_value::<Id>(params["requestId"].clone()).ok();
                match target.and_then(|t| self.forwarded.get(&t).copied()) {
                    Some(member) => vec![Action::ToMember { member, msg }],
                    None => Vec::new(),
                }
            }
            "notifications/roots/list_changed" => {
                self.live().into_iter().map(|member| Action::ToMember { member, msg: msg.clone() }).collect()
            }
            // `initialized` was sent to each member with its `initialize`.
            _ => Vec::new(),
        }
    }

    fn live(&self) -> Vec<MemberId> {
        (0..self.members.len()).filter(|m| self.members[*m].alive).collect()
    }

    /// The live member named `key`.
    fn member(&self, key: &str) -> Result<MemberId, (i64, String)> {
        match self.members.iter().position(|m| m.key == key) {
            Some(m) if self.members[m].alive => Ok(m),
            Some(_) => Err((
                code::SERVER_UNAVAILABLE,
                format!("member `{key}` of virtual server `{}` is down or restarting; retry shortly", self.name),
            )),
            None => Err((code::INVALID_PARAMS, format!("virtual server `{}` has no member `{key}`", self.name))),
        }
    }

    /// A prefixed tool or prompt name: its member, and the name that member knows.
    fn resolve_name(&self, listing: Listing, shown: &str) -> Result<(MemberId, String), (i64, String)> {
        let kind = if listing == Listing::Tools { "tool" } else { "prompt" };
        let unknown = || (code::INVALID_PARAMS, format!("unknown {kind} `{shown}` (names are KEY{SEPARATOR}NAME)"));
        let prefixed = shown.split_once(SEPARATOR).filter(|(key, _)| self.members.iter().any(|m| m.key == *key));
        let unprefixed = || self.members.iter().any(|m| m.key.is_empty()).then_some(("", shown));
        let (key, name) = prefixed.or_else(unprefixed).ok_or_else(unknown)?;
        let member = self.member(key)?;
        match self.members[member].expose.as_deref().map(|e| listing.rules(e).resolve(name)) {
            Some(Resolved::Hidden) => Err(unknown()),
            Some(Resolved::Call(original)) => Ok((member, original.to_string())),
            None => Ok((member, name.to_string())),
        }
    }

    /// Members that declare resources.
    fn with_resources(&self) -> Vec<MemberId> {
        (0..self.members.len())
            .filter(|m| self.members[*m].init.as_ref().is_some_and(|i| i["capabilities"].get("resources").is_some()))
            .collect()
    }

    /// The member a resource URI belongs to: the one that listed it (or a
    /// template it fits), else the only member with resources, else the
    /// member shown without a key; `Ok(None)`: nobody knows, ask them all.
    fn resolve_uri(&self, uri: &str) -> Result<Option<MemberId>, (i64, String)> {
        let key = self.routes.lock().ok().and_then(|r| {
            r.uris.get(uri).cloned().or_else(|| {
                let matching = r.templates.iter().filter(|(prefix, _)| uri.starts_with(prefix.as_str()));
                matching.max_by_key(|(p, _)| p.len()).map(|(_, k)| k.clone())
            })
        });
        let with_resources = self.with_resources();
        let found = key
            .and_then(|k| self.members.iter().position(|m| m.key == k))
            .or_else(|| (with_resources.len() == 1).then(|| with_resources[0]))
            .or_else(|| self.members.iter().position(|m| m.key.is_empty()));
        match found {
            Some(m) if self.members[m].alive => Ok(Some(m)),
            Some(m) => self.member(&self.members[m].key.clone()).map(Some),
            None if with_resources.iter().any(|m| self.members[*m].alive) => Ok(None),
            None => Err((
                RESOURCE_NOT_FOUND,
                format!("no member of virtual server `{}` serves resource `{uri}`", self.name),
            )),
        }
    }

    /// Remembers that member `member` serves `uri`.
    fn learn(&self, uri: &str, member: MemberId) {
        if let (Ok(mut r), Some(m)) = (self.routes.lock(), self.members.get(member)) {
            r.uris.entry(uri.to_string()).or_insert_with(|| m.key.clone());
        }
    }

    /// Asks every live member with resources to read `uri`.
    fn probe(&mut self, client: Id, uri: &str, msg: &Message) -> Vec<Action> {
        self.next += 1;
        let key = self.next;
        let asked: Vec<MemberId> = self.with_resources().into_iter().filter(|m| self.members[*m].alive).collect();
        self.probes.insert(key, Probe { client, uri: uri.to_string(), waiting: asked.len(), failure: None });
        asked
            .into_iter()
            .map(|member| {
                let id = self.internal_id(Internal::Probe(key));
                Action::ToMember { member, msg: Message::request(id, "resources/read", msg.params.clone()) }
            })
            .collect()
    }

    /// One member's answer to probe `key`.
    fn probed(&mut self, key: u64, member: MemberId, msg: Message) -> Vec<Action> {
        let Some(mut probe) = self.probes.remove(&key) else { return Vec::new() };
        probe.waiting = probe.waiting.saturating_sub(1);
        if msg.result.is_some() {
            self.learn(&probe.uri, member);
            let mut msg = msg;
            msg.id = crate::jsonrpc::IdField::Value(probe.client.clone());
            return vec![to_client(msg, Some(probe.client))];
        }
        probe.failure = Some(msg);
        if probe.waiting > 0 {
            self.probes.insert(key, probe);
            return Vec::new();
        }
        let mut failure = probe.failure.unwrap_or_else(|| error(probe.client.clone(), RESOURCE_NOT_FOUND, "not found"));
        failure.id = crate::jsonrpc::IdField::Value(probe.client.clone());
        vec![to_client(failure, Some(probe.client))]
    }

    /// Where a request goes and the params it goes with.
    fn route(&self, method: &str, params: &Value) -> Result<(MemberId, Value), (i64, String)> {
        let mut params = params.clone();
        let missing = |what: &str| (code::INVALID_PARAMS, format!("`{method}` needs `{what}`"));
        let member = match method {
            "tools/call" | "prompts/get" => {
                let listing = if method == "tools/call" { Listing::Tools } else { Listing::Prompts };
                let shown = params["name"].as_str().ok_or_else(|| missing("name"))?;
                let (member, name) = self.resolve_name(listing, shown)?;
                params["name"] = json!(name);
                member
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let uri = params["uri"].as_str().ok_or_else(|| missing("uri"))?;
                self.resolve_uri(uri)?.ok_or_else(|| (RESOURCE_NOT_FOUND, format!("no member lists `{uri}`")))?
            }
            "completion/complete" => match params["ref"]["type"].as_str() {
                Some("ref/prompt") => {
                    let shown = params["ref"]["name"].as_str().ok_or_else(|| missing("ref.name"))?;
                    let (member, name) = self.resolve_name(Listing::Prompts, shown)?;
                    params["ref"]["name"] = json!(name);
                    member
                }
                _ => {
                    let uri = params["ref"]["uri"].as_str().ok_or_else(|| missing("ref.uri"))?;
                    self.resolve_uri(uri)?.ok_or_else(|| (RESOURCE_NOT_FOUND, format!("no member lists `{uri}`")))?
                }
            },
            _ => {
                return Err((
                    code::METHOD_NOT_FOUND,
                    format!("virtual server `{}` does not serve `{method}`", self.name),
                ));
            }
        };
        Ok((member, params))
    }

    fn gather(&mut self, client: Id, listing: Listing, cursor: Option<&str>) -> Vec<Action> {
        self.next += 1;
        let key = self.next;
        let members = self.live();
        let mut gather = Gather {
            client,
            listing,
            after: cursor.map(str::to_string),
            waiting: members.len(),
            items: Vec::new(),
            pages: HashMap::new(),
        };
        if members.is_empty() {
            gather.waiting = 0;
            return self.finish(gather);
        }
        self.gathers.insert(key, gather);
        members
            .into_iter()
            .map(|member| {
                let id = self.internal_id(Internal::Gather(key));
                Action::ToMember { member, msg: Message::request(id, listing.method(), None) }
            })
            .collect()
    }

    /// A member's page of a gathered listing.
    fn gathered(&mut self, key: u64, member: MemberId, msg: &Message) -> Vec<Action> {
        let Some(mut gather) = self.gathers.remove(&key) else { return Vec::new() };
        let result: Value = msg.result.as_ref().and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default();
        let (field, _) = gather.listing.fields();
        if let Some(items) = result[field].as_array() {
            gather.items.extend(items.iter().map(|item| (member, item.clone())));
        }
        let pages = gather.pages.entry(member).or_default();
        *pages += 1;
        let mut out = Vec::new();
        match result["nextCursor"].as_str() {
            Some(next) if *pages < MAX_MEMBER_PAGES => {
                let id = self.internal_id(Internal::Gather(key));
                let params = raw(&json!({"cursor": next}));
                out.push(Action::ToMember { member, msg: Message::request(id, gather.listing.method(), Some(params)) });
            }
            _ => gather.waiting = gather.waiting.saturating_sub(1),
        }
        if gather.waiting == 0 {
            out.extend(self.finish(gather));
        } else {
            self.gathers.insert(key, gather);
        }
        out
    }

    /// Merges a gathered listing and answers one page of it.
    fn finish(&mut self, gather: Gather) -> Vec<Action> {
        let listing = gather.listing;
        let (_, name_field) = listing.fields();
        let mut merged: BTreeMap<String, Value> = BTreeMap::new();
        for (member, mut item) in gather.items {
            let Some(original) = item[name_field].as_str().map(str::to_string) else { continue };
            let m = &self.members[member];
            let rules = m.expose.as_deref().map(|e| listing.rules(e));
            let Some(shown) = rules.map_or(Some(original.as_str()), |r| r.shown(&original)).map(str::to_string) else {
                continue;
            };
            if let Some(text) = rules.and_then(|r| r.descriptions.get(&original)) {
                item["description"] = json!(text);
            }
            let name = match listing {
                Listing::Tools | Listing::Prompts if m.key.is_empty() => shown,
                Listing::Tools | Listing::Prompts => format!("{}{SEPARATOR}{shown}", m.key),
                Listing::Resources => {
                    self.learn(&original, member);
                    original
                }
                Listing::Templates => {
                    let prefix = original.split('{').next().unwrap_or_default().to_string();
                    if let Ok(mut r) = self.routes.lock()
                        && !r.templates.iter().any(|(p, _)| *p == prefix)
                    {
                        r.templates.push((prefix, m.key.clone()));
                    }
                    original
                }
            };
            item[name_field] = json!(name);
            merged.entry(name).or_insert(item);
        }
        let merged: Vec<(String, Value)> = merged.into_iter().collect();
        let out = page_of(listing, &merged, gather.after.as_deref());
        self.snapshots.insert(listing, merged);
        vec![to_client(result(gather.client.clone(), out), Some(gather.client))]
    }

    /// Routes one message from member `member`; `related` is the client
    /// request its session says it relates to.
    pub fn from_member(&mut self, member: MemberId, mut msg: Message, related: Option<Id>) -> Vec<Action> {
        let id = msg.id.value().cloned();
        match (msg.method.clone(), id) {
            (None, Some(id)) => match self.internal.remove(&id) {
                Some(Internal::Gather(key)) => self.gathered(key, member, &msg),
                Some(Internal::Probe(key)) => self.probed(key, member, msg),
                Some(Internal::Ignore) => Vec::new(),
                None => match self.forwarded.remove(&id) {
                    Some(_) => vec![to_client(msg, Some(id))],
                    None => Vec::new(),
                },
            },
            (Some(_), Some(theirs)) => {
                self.next += 1;
                let key = self.members.get(member).map_or("?", |m| m.key.as_str());
                let ours = Id::Str(format!("mcpod.virtual/{key}/{}", self.next));
                self.asks.insert(ours.clone(), (member, theirs));
                msg.id = crate::jsonrpc::IdField::Value(ours);
                vec![to_client(msg, related)]
            }
            (Some(method), None) if method == "notifications/cancelled" => {
                let mut params = msg.params_value();
                let theirs = serde_json::from_value::<Id>(params["requestId"].clone()).ok();
                let ours = self.asks.iter().find(|(_, (m, t))| *m == member && Some(t) == theirs.as_ref());
                match ours.map(|(o, _)| o.clone()) {
                    Some(ours) => {
                        self.asks.remove(&ours);
                        params["requestId"] = serde_json::to_value(&ours).unwrap_or_default();
                        vec![to_client(with_params(msg, &params), related)]
                    }
                    None => Vec::new(),
                }
            }
            (Some(method), None) => {
                if method.ends_with("/list_changed") {
                    self.snapshots.clear();
                }
                vec![to_client(msg, related)]
            }
            (None, None) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
