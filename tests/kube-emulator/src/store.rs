//! Objects by kind, namespace and name, with one resourceVersion counter
//! and a history of watch events so that a watch can resume from a version.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The plural resource (`pods`).
    pub resource: String,
    /// `ADDED`, `MODIFIED`, `DELETED`.
    pub kind: &'static str,
    /// The object after the change.
    pub object: Value,
    /// Its resourceVersion.
    pub rv: u64,
}

/// Key of one object.
pub type Key = (String, String, String);

/// The object store.
pub struct Store {
    objects: Mutex<BTreeMap<Key, Value>>,
    history: Mutex<Vec<Change>>,
    rv: std::sync::atomic::AtomicU64,
    changes: broadcast::Sender<Change>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            objects: Mutex::new(BTreeMap::new()),
            history: Mutex::new(Vec::new()),
            rv: std::sync::atomic::AtomicU64::new(1),
            changes: broadcast::channel(4096).0,
        }
    }
}

/// Now, as the API server writes timestamps (RFC 3339, whole seconds).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Store {
    /// The current resourceVersion.
    pub fn version(&self) -> u64 {
        self.rv.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bump(&self) -> u64 {
        self.rv.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// The oldest resourceVersion a watch can still resume after.
    pub fn oldest(&self) -> u64 {
        self.history.lock().expect("history").first().map(|c| c.rv.saturating_sub(1)).unwrap_or(0)
    }

    /// Subscribes to changes after `since`: the history first, then live ones.
    pub fn watch(&self, since: u64) -> (Vec<Change>, broadcast::Receiver<Change>) {
        let history = self.history.lock().expect("history");
        let rx = self.changes.subscribe();
        (history.iter().filter(|c| c.rv > since).cloned().collect(), rx)
    }

    fn record(&self, resource: &str, kind: &'static str, object: Value, rv: u64) {
        let change = Change { resource: resource.to_string(), kind, object, rv };
        let mut history = self.history.lock().expect("history");
        history.push(change.clone());
        if history.len() > 20_000 {
            history.drain(..10_000);
        }
        let _ = self.changes.send(change);
    }

    /// One object.
    pub fn get(&self, key: &Key) -> Option<Value> {
        self.objects.lock().expect("objects").get(key).cloned()
    }

    /// Every object of `resource` in `ns` (all namespaces if empty).
    pub fn list(&self, resource: &str, ns: &str) -> Vec<Value> {
        self.objects
            .lock()
            .expect("objects")
            .iter()
            .filter(|((r, n, _), _)| r == resource && (ns.is_empty() || n == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Creates an object; `Err` if it exists.
    pub fn create(&self, resource: &str, ns: &str, mut obj: Value) -> Result<Value, Value> {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string);
        let name = match name {
            Some(n) => n,
            None => match obj.pointer("/metadata/generateName").and_then(Value::as_str) {
                Some(prefix) => format!("{prefix}{:05x}", self.version() * 7919 % 0xfffff),
                None => return Err(status(422, "Invalid", "metadata.name: Required value")),
            },
        };
        let key = (resource.to_string(), ns.to_string(), name.clone());
        let mut objects = self.objects.lock().expect("objects");
        if objects.contains_key(&key) {
            return Err(status(409, "AlreadyExists", &format!("{resource} \"{name}\" already exists")));
        }
        let rv = self.bump();
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(format!("uid-{rv}-{name}"));
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(now());
        meta["generation"] = json!(1);
        objects.insert(key, obj.clone());
        drop(objects);
        self.record(resource, "ADDED", obj.clone(), rv);
        Ok(obj)
    }

    /// Applies `change` to an existing object; `None` if it does not exist.
    /// A change that changes nothing is no write: no new resourceVersion, no
    /// watch event (as the API server does).
    pub fn update(&self, key: &Key, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let mut objects = self.objects.lock().expect("objects");
        let obj = objects.get_mut(key)?;
        let before = obj.clone();
        change(obj);
        if *obj == before {
            return Some(before);
        }
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let out = obj.clone();
        drop(objects);
        self.record(&key.0, "MODIFIED", out.clone(), rv);
        Some(out)
    }

    /// Removes an object.
    pub fn delete(&self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.lock().expect("objects").remove(key)?;
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(&key.0, "DELETED", obj.clone(), rv);
        Some(obj)
    }

    /// Keys of every object owned by uid `uid`.
    pub fn owned_by(&self, uid: &str) -> Vec<Key> {
        self.objects
            .lock()
            .expect("objects")
            .iter()
            .filter(|(_, v)| {
                v.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// A `Status` object for an error.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

/// The terms of a label selector, split at the commas outside parentheses.
fn selector_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(selector[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(selector[start..].trim());
    terms.into_iter().filter(|t| !t.is_empty()).collect()
}

/// True if `obj` matches label selector `selector`: `a=b`, `a==b`, `a!=b`,
/// `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, joined by commas.
pub fn labels_match(obj: &Value, selector: &str) -> bool {
    let labels = obj.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
    let label = |k: &str| labels.get(k.trim()).and_then(Value::as_str).map(str::to_string);
    let set = |values: &str| -> Vec<String> {
        values.trim().trim_start_matches('(').trim_end_matches(')').split(',').map(|v| v.trim().to_string()).collect()
    };
    selector_terms(selector).into_iter().all(|term| {
        if let Some((k, values)) = term.split_once(" notin ") {
            label(k).is_none_or(|v| !set(values).contains(&v))
        } else if let Some((k, values)) = term.split_once(" in ") {
            label(k).is_some_and(|v| set(values).contains(&v))
        } else if let Some((k, v)) = term.split_once("!=") {
            label(k).as_deref() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            label(k).as_deref() == Some(v.trim_start_matches('=').trim())
        } else if let Some(k) = term.strip_prefix('!') {
            label(k).is_none()
        } else {
            label(term).is_some()
        }
    })
}

/// True if `obj` matches field selector `selector` (`metadata.name=x,involvedObject.name=y`).
pub fn fields_match(obj: &Value, selector: &str) -> bool {
    selector.split(',').map(str::trim).filter(|s| !s.is_empty()).all(|term| {
        let (path, want, negate) = match term.split_once("!=") {
            Some((p, v)) => (p, v, true),
            None => match term.split_once('=') {
                Some((p, v)) => (p, v.trim_start_matches('='), false),
                None => return true,
            },
        };
        let pointer = format!("/{}", path.trim().replace('.', "/"));
        let got = obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
        (got == want.trim()) != negate
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_like_the_api_server() {
        let pod =
            json!({"metadata": {"name": "p", "labels": {"app": "x", "tier": "web"}}, "status": {"phase": "Running"}});
        assert!(labels_match(&pod, "app=x,tier"));
        assert!(labels_match(&pod, "app==x,env!=prod,!env"));
        assert!(!labels_match(&pod, "app=y"));
        assert!(labels_match(&pod, "app in (x, z),tier notin (db)"));
        assert!(!labels_match(&pod, "app in (y,z)"));
        assert!(labels_match(&pod, "env notin (prod)"), "notin matches a missing label");
        assert!(fields_match(&pod, "metadata.name=p,status.phase=Running"));
        assert!(!fields_match(&pod, "metadata.name!=p"));
    }

    #[test]
    fn watches_resume_after_a_version_and_owners_are_found() {
        let store = Store::default();
        let a = store.create("pods", "ns", json!({"metadata": {"name": "a"}})).unwrap();
        let since = store.version();
        let uid = a["metadata"]["uid"].as_str().unwrap().to_string();
        store.create("secrets", "ns", json!({"metadata": {"name": "s", "ownerReferences": [{"uid": uid}]}})).unwrap();
        assert_eq!(store.create("pods", "ns", json!({"metadata": {"name": "a"}})).unwrap_err()["code"], 409);
        let (history, _) = store.watch(since);
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].resource, "secrets");
        assert_eq!(store.owned_by(&uid).len(), 1);
        assert!(now().ends_with('Z') && now().len() == 20, "{}", now());
    }
}
