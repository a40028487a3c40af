//! What each principal may do with servers, written as Cedar policies (the
//! `cedar-policy` crate, the language ToolHive also uses): who may connect
//! to which server, and which tools, prompts and resources each may see
//! and use. The file is read again when it changes; a policy that does not
//! parse is refused with its line and reason and the policies in force
//! stay. Without a policy file every authenticated principal may do all of
//! this (roles still keep users from running code).
//!
//! The model a policy is written against:
//! - principal `User::"<name>"` with `name`, `issuer`, `role` (`"user"` or
//!   `"admin"`), `groups` and `scopes` (sets of strings); it is `in` each
//!   `Group::"<group>"` it belongs to and in `Role::"<role>"`.
//! - actions `Action::"connect"` (any MCP traffic to a server),
//!   `Action::"call_tool"`, `Action::"get_prompt"`, `Action::"read_resource"`,
//!   and `Action::"start"` (a user starting a server from a template; admins
//!   start anything, and without a policy file users start nothing).
//! - resources `Server::"<id>"` with `id`, `template` (the template it was
//!   started from, or `""`) and `started_by` (the name of who started it
//!   through the API, or `""`); `Template::"<name>"` with `name`; and `Tool`,
//!   `Prompt`, `Resource` entities with `name` (a resource's URI) and their
//!   server's `server` (its id), `template` and `started_by`, each `in` its
//!   `Server`.

use crate::identity::Principal;
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// What a principal asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Speak MCP to a server at all.
    Connect,
    /// Call (and see) a tool.
    CallTool,
    /// Get (and see) a prompt.
    GetPrompt,
    /// Read (and see) a resource.
    ReadResource,
    /// Start a server from a template (the "server" asked about is the
    /// template's name).
    Start,
}

impl Act {
    fn action(self) -> &'static str {
        match self {
            Act::Connect => "connect",
            Act::CallTool => "call_tool",
            Act::GetPrompt => "get_prompt",
            Act::ReadResource => "read_resource",
            Act::Start => "start",
        }
    }

    fn entity(self) -> &'static str {
        match self {
            Act::Connect => "Server",
            Act::CallTool => "Tool",
            Act::GetPrompt => "Prompt",
            Act::ReadResource => "Resource",
            Act::Start => "Template",
        }
    }

    /// The act a client method asks for, if policies govern it.
    pub fn of_method(method: &str) -> Option<Act> {
        match method {
            "tools/call" => Some(Act::CallTool),
            "prompts/get" => Some(Act::GetPrompt),
            "resources/read" | "resources/subscribe" => Some(Act::ReadResource),
            _ => None,
        }
    }
}

/// The server an act is on, as policies see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFacts {
    /// Its id.
    pub id: String,
    /// The template it was started from (`""`: none).
    pub template: String,
    /// The name of the principal that started it through the API (`""`: the
    /// config, the operator or an adopted server).
    pub started_by: String,
}

impl ServerFacts {
    /// A server known only by its id.
    pub fn named(id: &str) -> ServerFacts {
        ServerFacts { id: id.to_string(), ..ServerFacts::default() }
    }
}

/// A decision and why: which policies permitted or forbade it, or that none
/// permitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether it may go ahead.
    pub allowed: bool,
    /// Why, for the client's error and the audit record.
    pub reason: String,
}

/// Why the policies could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The file could not be read.
    #[error("policy file {path}: {source}; check [access] policies and the file's permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A policy does not parse.
    #[error("policy file {path}, line {line}: {reason}; fix the policy (the policies in force stay until it parses)")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the first error.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

struct Loaded {
    modified: Option<SystemTime>,
    policies: Arc<PolicySet>,
    /// Counts the policy sets taken into force (0: the one read at start).
    generation: u64,
}

/// How many decisions are remembered at most (the cache starts afresh when full).
const DECISIONS_MAX: usize = 16_384;

/// Decisions already made under one policy set: a decision depends on
/// nothing but the principal, the act, the server's facts, the name and the
/// policies, so a repeated one is a look-up (about 20 µs saved per call).
#[derive(Default)]
struct Decisions {
    /// The generation of the policy set they were made under, so that a
    /// decision of an old set is never kept for a new one.
    generation: u64,
    made: HashMap<Vec<u8>, Verdict>,
}

/// The cache key of a decision: each part length-prefixed, so that no two
/// different questions share a key.
fn question(who: &Principal, act: Act, server: &ServerFacts, name: Option<&str>) -> Vec<u8> {
    let mut key = Vec::with_capacity(128);
    let mut part = |s: &str| {
        key.extend_from_slice(&(s.len() as u32).to_le_bytes());
        key.extend_from_slice(s.as_bytes());
    };
    part(&who.name);
    part(&who.issuer);
    part(who.role.as_str());
    part(act.action());
    part(&server.id);
    part(&server.template);
    part(&server.started_by);
    part(name.unwrap_or(""));
    part(if name.is_some() { "1" } else { "0" });
    for list in [&who.groups, &who.scopes] {
        part(&list.len().to_string());
        for item in list {
            part(item);
        }
    }
    key
}

/// The policies a running host enforces, re-read when their file changes.
pub struct Access {
    path: Option<PathBuf>,
    state: RwLock<Loaded>,
    authorizer: Authorizer,
    decisions: std::sync::Mutex<Decisions>,
    /// The generation in force, watched so that open sessions can be told
    /// their lists changed.
    changes: tokio::sync::watch::Sender<u64>,
}

/// Parses `text` (from `path`, named in errors) into a policy set.
pub fn parse(text: &str, path: &Path) -> Result<PolicySet, AccessError> {
    PolicySet::from_str(text).map_err(|e| {
        use miette::Diagnostic;
        let offset = e.labels().and_then(|mut l| l.next()).map(|l| l.offset()).unwrap_or(0);
        let line = text[..offset.min(text.len())].matches('\n').count() + 1;
        let reason = e.to_string();
        let help = e.help().map(|h| format!(" ({h})")).unwrap_or_default();
        AccessError::Invalid { path: path.to_path_buf(), line, reason: format!("{reason}{help}") }
    })
}

fn uid(kind: &str, id: &str) -> Option<EntityUid> {
    Some(EntityUid::from_type_name_and_id(EntityTypeName::from_str(kind).ok()?, EntityId::new(id)))
}

fn strings(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(items.iter().map(|s| RestrictedExpression::new_string(s.clone())))
}

impl Access {
    /// The policies of `path` (none: everything is allowed). A file that
    /// cannot be used is an error at start, so a typo never opens all.
    pub fn load(path: Option<PathBuf>) -> Result<Arc<Access>, AccessError> {
        let (policies, when) = match &path {
            None => (PolicySet::new(), None),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| AccessError::Io { path: p.clone(), source })?;
                (parse(&text, p)?, crate::reread::modified(p))
            }
        };
        Ok(Arc::new(Access {
            path,
            state: RwLock::new(Loaded { modified: when, policies: Arc::new(policies), generation: 0 }),
            authorizer: Authorizer::new(),
            decisions: std::sync::Mutex::new(Decisions::default()),
            changes: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// Changes each time new policies come into force (a reload that fails
    /// to parse changes nothing).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// True if policies govern access (a policy file is configured).
    pub fn is_on(&self) -> bool {
        self.path.is_some()
    }

    /// Whether `who` may do `act` on server `server` (for [`Act::Start`],
    /// the template of that name), known by its id alone (`name`: the tool,
    /// prompt or resource URI, as the client sees it).
    pub fn decide(&self, who: &Principal, act: Act, server: &str, name: Option<&str>) -> Verdict {
        self.decide_on(who, act, &ServerFacts::named(server), name)
    }

    /// Whether `who` may do `act` on `server` (`name`: the tool, prompt or
    /// resource URI, as the client sees it).
    pub fn decide_on(&self, who: &Principal, act: Act, server: &ServerFacts, name: Option<&str>) -> Verdict {
        if !self.is_on() && act == Act::Start {
            return Verdict {
                allowed: false,
                reason: "users start servers only where an [access] policy permits Action::\"start\"".to_string(),
            };
        }
        if !self.is_on() {
            return Verdict { allowed: true, reason: "no policies are configured".to_string() };
        }
        let Ok(state) = self.state.read() else {
            return Verdict { allowed: false, reason: "the policy store is unusable".to_string() };
        };
        let (policies, set) = (state.policies.clone(), state.generation);
        drop(state);
        let key = question(who, act, server, name);
        if let Ok(mut cache) = self.decisions.lock() {
            if cache.generation != set {
                *cache = Decisions { generation: set, made: HashMap::new() };
            }
            if let Some(v) = cache.made.get(&key) {
                return v.clone();
            }
        }
        let verdict = match self.ask(&policies, who, act, server, name) {
            Ok(v) => v,
            Err(why) => Verdict { allowed: false, reason: format!("the request could not be evaluated ({why})") },
        };
        if let Ok(mut cache) = self.decisions.lock()
            && cache.generation == set
        {
            if cache.made.len() >= DECISIONS_MAX {
                cache.made.clear();
            }
            cache.made.insert(key, verdict.clone());
        }
        verdict
    }

    fn ask(
        &self,
        policies: &PolicySet,
        who: &Principal,
        act: Act,
        facts: &ServerFacts,
        name: Option<&str>,
    ) -> Result<Verdict, String> {
        let server = facts.id.as_str();
        let bad = |what: &str| format!("{what} is not a valid entity id");
        let principal = uid("User", &who.name).ok_or_else(|| bad("the principal"))?;
        let mut parents: HashSet<EntityUid> = who.groups.iter().filter_map(|g| uid("Group", g)).collect();
        parents.extend(uid("Role", who.role.as_str()));
        let attrs = HashMap::from([
            ("name".to_string(), RestrictedExpression::new_string(who.name.clone())),
            ("issuer".to_string(), RestrictedExpression::new_string(who.issuer.clone())),
            ("role".to_string(), RestrictedExpression::new_string(who.role.as_str().to_string())),
            ("groups".to_string(), strings(&who.groups)),
            ("scopes".to_string(), strings(&who.scopes)),
        ]);
        let user = Entity::new(principal.clone(), attrs, parents).map_err(|e| e.to_string())?;
        let text = |s: &str| RestrictedExpression::new_string(s.to_string());
        let of_server = || {
            [("template", text(&facts.template)), ("started_by", text(&facts.started_by))]
                .map(|(k, v)| (k.to_string(), v))
        };
        let (server_uid, attrs) = if act == Act::Start {
            (uid("Template", server), HashMap::from([("name".to_string(), text(server))]))
        } else {
            let mut attrs = HashMap::from(of_server());
            attrs.insert("id".to_string(), text(server));
            (uid("Server", server), attrs)
        };
        let server_uid = server_uid.ok_or_else(|| bad("the server"))?;
        let server_entity = Entity::new(server_uid.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?;
        let mut entities = vec![user, server_entity];
        let resource = match (act, name) {
            (Act::Connect | Act::Start, _) | (_, None) => server_uid,
            (_, Some(name)) => {
                let item = uid(act.entity(), &format!("{server}/{name}")).ok_or_else(|| bad("the item"))?;
                let mut attrs = HashMap::from(of_server());
                attrs.insert("name".to_string(), text(name));
                attrs.insert("server".to_string(), text(server));
                entities
                    .push(Entity::new(item.clone(), attrs, HashSet::from([server_uid])).map_err(|e| e.to_string())?);
                item
            }
        };
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        let action = uid("Action", act.action()).ok_or_else(|| bad("the action"))?;
        let request = Request::new(principal, action, resource, Context::empty(), None).map_err(|e| e.to_string())?;
        let answer = self.authorizer.is_authorized(&request, policies, &entities);
        let named = |id: &PolicyId| {
            policies.policy(id).and_then(|p| p.annotation("id").map(str::to_string)).unwrap_or_else(|| id.to_string())
        };
        let ids: Vec<String> = answer.diagnostics().reason().map(named).collect();
        Ok(match answer.decision() {
            Decision::Allow => Verdict { allowed: true, reason: format!("permitted by {}", ids.join(", ")) },
            Decision::Deny if ids.is_empty() => Verdict { allowed: false, reason: "no policy permits it".to_string() },
            Decision::Deny => Verdict { allowed: false, reason: format!("forbidden by {}", ids.join(", ")) },
        })
    }

    /// Re-reads the file if it changed. A file that no longer parses is
    /// logged with its line and reason, and the policies in force stay.
    pub fn refresh(&self) {
        let Some(path) = &self.path else { return };
        let now = crate::reread::modified(path);
        if self.state.read().map(|s| s.modified == now).unwrap_or(true) {
            return;
        }
        let loaded = std::fs::read_to_string(path)
            .map_err(|source| AccessError::Io { path: path.clone(), source })
            .and_then(|text| parse(&text, path));
        match loaded {
            Ok(policies) => {
                tracing::info!(path = %path.display(), policies = policies.policies().count(), "access policies reloaded");
                if let Ok(mut state) = self.state.write() {
                    let generation = state.generation + 1;
                    *state = Loaded { modified: now, policies: Arc::new(policies), generation };
                    self.changes.send_replace(generation);
                }
            }
            Err(e) => {
                tracing::error!("{e}");
                // Not again until the file changes again.
                if let Ok(mut state) = self.state.write() {
                    state.modified = now;
                }
            }
        }
    }

    /// Re-reads the file whenever it changes, checking every `every`,
    /// until the policies are dropped.
    pub fn refresh_every(self: &Arc<Self>, every: std::time::Duration) {
        if self.path.is_none() {
            return;
        }
        crate::reread::every(self, every, Self::refresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Role;

    const POLICIES: &str = r#"
@id("everyone-connects")
permit(principal, action == Action::"connect", resource);

@id("developers-read")
permit(principal in Group::"developers", action == Action::"call_tool", resource in Server::"github")
when { resource.name like "get_*" };

@id("admins")
permit(principal in Role::"admin", action, resource);

@id("no-deletes")
forbid(principal, action == Action::"call_tool", resource) when { resource.name == "delete_repo" };
"#;

    fn access(text: &str) -> (tempfile::TempDir, Arc<Access>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policies.cedar");
        std::fs::write(&path, text).unwrap();
        let a = Access::load(Some(path)).unwrap();
        (dir, a)
    }

    fn dev() -> Principal {
        Principal { groups: vec!["developers".to_string()], ..Principal::new("alice", "https://idp", Role::User) }
    }

    #[test]
    fn a_group_may_call_the_tools_its_policy_names_and_nothing_else() {
        let (_d, a) = access(POLICIES);
        let v = a.decide(&dev(), Act::CallTool, "github", Some("get_issue"));
        assert_eq!(v, Verdict { allowed: true, reason: "permitted by developers-read".to_string() });
        let v = a.decide(&dev(), Act::CallTool, "github", Some("create_issue"));
        assert_eq!(v, Verdict { allowed: false, reason: "no policy permits it".to_string() });
        assert!(!a.decide(&dev(), Act::CallTool, "postgres", Some("get_rows")).allowed, "another server");
        assert!(a.decide(&dev(), Act::Connect, "postgres", None).allowed);
        let stranger = Principal::new("bob", "static", Role::User);
        assert!(!a.decide(&stranger, Act::CallTool, "github", Some("get_issue")).allowed);
    }

    #[test]
    fn a_forbid_wins_over_a_permit_and_is_named() {
        let (_d, a) = access(POLICIES);
        let admin = Principal::new("root", "static", Role::Admin);
        assert!(a.decide(&admin, Act::GetPrompt, "github", Some("triage")).allowed);
        let v = a.decide(&admin, Act::CallTool, "github", Some("delete_repo"));
        assert_eq!(v, Verdict { allowed: false, reason: "forbidden by no-deletes".to_string() });
    }

    #[test]
    fn the_teams_example_policies_do_what_docs_security_says() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/k8s/overlays/example/team.cedar");
        let a = Access::load(Some(path)).unwrap();
        let member = |name: &str, group: &str| Principal {
            groups: vec![group.to_string()],
            ..Principal::new(name, "https://idp", Role::User)
        };
        let (dev, analyst, admin) =
            (member("dana", "developers"), member("ali", "analysts"), member("pat", "platform-admins"));
        let agent = Principal::new("system:serviceaccount:agents:researcher", "kubernetes", Role::User);
        let may = |p: &Principal, act, server, name: Option<&str>| a.decide(p, act, server, name).allowed;
        assert!(may(&dev, Act::CallTool, "github", Some("create_issue")));
        assert!(!may(&dev, Act::CallTool, "github", Some("delete_repository")), "no one deletes");
        assert!(!may(&admin, Act::CallTool, "github", Some("delete_repository")), "not even admins");
        assert!(may(&admin, Act::CallTool, "postgres", Some("drop_table")));
        assert!(may(&analyst, Act::CallTool, "github", Some("get_issue")));
        assert!(!may(&analyst, Act::CallTool, "github", Some("create_issue")));
        assert!(may(&analyst, Act::CallTool, "postgres", Some("query")));
        assert!(!may(&analyst, Act::CallTool, "postgres", Some("execute")));
        assert!(!may(&dev, Act::Connect, "postgres", None), "developers do not connect to postgres");
        assert!(may(&agent, Act::Connect, "fetch", None) && may(&agent, Act::CallTool, "fetch", Some("fetch")));
        assert!(!may(&agent, Act::Connect, "github", None));
        // Developers start fetch servers of their own, and use what they start.
        assert!(may(&dev, Act::Start, "fetch", None) && !may(&dev, Act::Start, "github", None));
        assert!(!may(&analyst, Act::Start, "fetch", None) && !may(&agent, Act::Start, "fetch", None));
        let danas = ServerFacts { id: "fetch-7".into(), template: "fetch".into(), started_by: "dana".into() };
        assert!(a.decide_on(&dev, Act::Connect, &danas, None).allowed);
        assert!(a.decide_on(&dev, Act::CallTool, &danas, Some("fetch")).allowed);
        assert!(!a.decide_on(&analyst, Act::Connect, &danas, None).allowed, "not the analysts'");
    }

    #[test]
    fn without_a_policy_file_everything_is_allowed_but_starting_servers() {
        let a = Access::load(None).unwrap();
        assert!(!a.is_on());
        assert!(a.decide(&dev(), Act::CallTool, "x", Some("anything")).allowed);
        let v = a.decide(&dev(), Act::Start, "time", None);
        assert!(!v.allowed && v.reason.contains("Action::\"start\""), "{v:?}");
    }

    #[test]
    fn a_group_may_start_the_templates_its_policy_names() {
        let (_d, a) = access(
            "@id(\"devs-start-time\")\npermit(principal in Group::\"developers\", action == Action::\"start\", resource)\n\
             when { resource.name == \"time\" };\n",
        );
        let v = a.decide(&dev(), Act::Start, "time", None);
        assert_eq!(v, Verdict { allowed: true, reason: "permitted by devs-start-time".to_string() });
        assert!(!a.decide(&dev(), Act::Start, "github", None).allowed);
        assert!(!a.decide(&Principal::new("bob", "static", Role::User), Act::Start, "time", None).allowed);
        // A template is not a server: a rule on Server::"time" does not let anyone start it.
        let (_d, b) = access("permit(principal, action == Action::\"start\", resource == Server::\"time\");\n");
        assert!(!b.decide(&dev(), Act::Start, "time", None).allowed);
    }

    #[test]
    fn a_policy_may_name_a_servers_template_and_who_started_it() {
        let (_d, a) = access(
            "permit(principal, action, resource) when { resource.template == \"fetch\" };\n\
             permit(principal, action, resource) when { resource.started_by == principal.name };\n",
        );
        let fetch = ServerFacts { id: "fetch-3".into(), template: "fetch".into(), started_by: String::new() };
        let alices = ServerFacts { id: "git-4".into(), template: "git".into(), started_by: "alice".into() };
        assert!(a.decide_on(&dev(), Act::CallTool, &fetch, Some("fetch")).allowed, "by template, on a tool too");
        assert!(a.decide_on(&dev(), Act::Connect, &alices, None).allowed, "alice started it");
        assert!(a.decide_on(&dev(), Act::CallTool, &alices, Some("git_log")).allowed);
        let bob = Principal::new("bob", "static", Role::User);
        assert!(!a.decide_on(&bob, Act::Connect, &alices, None).allowed, "bob did not");
        assert!(!a.decide(&dev(), Act::Connect, "git-4", None).allowed, "an id alone names no starter");
    }

    #[test]
    fn a_remembered_decision_answers_only_the_same_question_under_the_same_policies() {
        let (dir, a) = access(POLICIES);
        let ask = |p: &Principal, name: &str| a.decide(p, Act::CallTool, "github", Some(name));
        assert!(ask(&dev(), "get_issue").allowed);
        assert!(ask(&dev(), "get_issue").allowed, "asked again: remembered");
        let outsider = Principal { groups: vec!["designers".to_string()], ..dev() };
        assert!(!ask(&outsider, "get_issue").allowed, "another group is another question");
        let joined = Principal { groups: vec!["develop".to_string(), "ers".to_string()], ..dev() };
        assert!(!ask(&joined, "get_issue").allowed, "groups are not run together");
        let path = dir.path().join("policies.cedar");
        std::fs::write(&path, "forbid(principal, action, resource);\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        a.refresh();
        assert!(!ask(&dev(), "get_issue").allowed, "new policies: nothing remembered from the old ones");
    }

    #[test]
    fn a_reload_that_takes_effect_is_announced_and_a_broken_one_is_not() {
        let (dir, a) = access(POLICIES);
        let mut changes = a.changes();
        let path = dir.path().join("policies.cedar");
        let touch = |text: &str, secs: u64| {
            std::fs::write(&path, text).unwrap();
            let later = SystemTime::now() + std::time::Duration::from_secs(secs);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        };
        touch("permit(principal, action, resource);\n", 5);
        a.refresh();
        assert!(changes.has_changed().unwrap(), "a new policy set is announced");
        changes.mark_unchanged();
        touch("permit(principal action, resource);\n", 10);
        a.refresh();
        assert!(!changes.has_changed().unwrap(), "a broken edit changes nothing");
    }

    #[test]
    fn a_policy_that_does_not_parse_is_refused_with_its_line_and_the_old_ones_stay() {
        let bad =
            "permit(principal, action, resource);\n\npermit(principal, action == Action::\"connect\" resource);\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.cedar");
        std::fs::write(&path, bad).unwrap();
        let err = Access::load(Some(path.clone())).err().expect("refused").to_string();
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&path, POLICIES).unwrap();
        let a = Access::load(Some(path.clone())).unwrap();
        std::fs::write(&path, bad).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        a.refresh();
        assert!(a.decide(&dev(), Act::CallTool, "github", Some("get_issue")).allowed, "the old policies stay");
        assert!(!a.decide(&dev(), Act::CallTool, "github", Some("create_issue")).allowed);
    }
}
