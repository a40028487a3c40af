//! The HTTP surface: discovery, generic REST with watch for every kind of
//! `kinds`, finalizers and the status subresource, and the pod
//! subresources (attach, exec, portforward over WebSocket; log).

use crate::State;
use crate::kinds::{self, Kind};
use crate::store::{Change, Key, fields_match, labels_match, status};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The router.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/version", get(|| async { axum::Json(json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-mcpod-emulator", "platform": "linux/amd64"})) }))
        .route("/api", get(|| async { axum::Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})) }))
        .route("/apis", get(|AxState(st): AxState<Arc<State>>| async move { axum::Json(kinds::group_list(&st.store)) }))
        .fallback(resource)
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn count(
    AxState(st): AxState<Arc<State>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let watch = req.uri().query().is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"));
    let verb = if watch { "WATCH".to_string() } else { req.method().to_string() };
    if let Ok(mut c) = st.requests.lock() {
        *c.entry(verb).or_default() += 1;
    }
    next.run(req).await
}

/// The query's `key=value` pairs, percent-decoded; repeated keys kept in order.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect()
}

fn error(v: Value) -> Response {
    let code = v["code"]
        .as_u64()
        .and_then(|c| StatusCode::from_u16(c as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(v)).into_response()
}

/// 201 Created with the object, or its error Status.
fn created(out: Result<Value, Value>) -> Response {
    match out {
        Ok(v) => (StatusCode::CREATED, axum::Json(v)).into_response(),
        Err(e) => error(e),
    }
}

fn not_found(what: &str, name: &str) -> Response {
    error(status(404, "NotFound", &format!("{what} \"{name}\" not found")))
}

/// A request path taken apart: `/api/v1/namespaces/NS/RES/NAME/SUB` or
/// `/apis/G/V/...`, namespaced or cluster-scoped.
#[derive(Debug, PartialEq)]
struct Target {
    group_version: String,
    namespace: String,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let owned = |s: &&str| s.to_string();
    let target = match rest {
        // A namespace itself: `/api/v1/namespaces[/NAME]`.
        ["namespaces"] | ["namespaces", _] if group_version == "v1" => Target {
            group_version,
            namespace: String::new(),
            resource: "namespaces".into(),
            name: rest.get(1).map(owned),
            sub: None,
        },
        ["namespaces", ns, resource, more @ ..] if more.len() <= 2 => Target {
            group_version,
            namespace: ns.to_string(),
            resource: resource.to_string(),
            name: more.first().map(owned),
            sub: more.get(1).map(owned),
        },
        [resource, more @ ..] if more.len() <= 2 => Target {
            group_version,
            namespace: String::new(),
            resource: resource.to_string(),
            name: more.first().map(owned),
            sub: more.get(1).map(owned),
        },
        _ => return None,
    };
    Some(target)
}

/// Every request below `/api/v1` and `/apis/G/V`.
async fn resource(
    AxState(st): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if path == "/openapi/v3" {
        return axum::Json(crate::openapi::root(&st.store)).into_response();
    }
    if let Some(doc) = path.strip_prefix("/openapi/v3/") {
        return match crate::openapi::document(&st.store, doc) {
            Some(d) => axum::Json(d).into_response(),
            None => error(status(404, "NotFound", &format!("no OpenAPI document for {doc}"))),
        };
    }
    if path == "/api/v1" || (path.starts_with("/apis/") && path.trim_matches('/').split('/').count() == 3) {
        let gv = path.trim_start_matches("/api/").trim_start_matches("/apis/").trim_matches('/');
        return axum::Json(kinds::resource_list(&st.store, gv)).into_response();
    }
    let Some(t) = parse_target(path) else {
        return error(status(404, "NotFound", "the server could not find the requested resource"));
    };
    let Some(kind) = kinds::find(&st.store, &t.group_version, &t.resource) else {
        return error(status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({} {})", t.group_version, t.resource),
        ));
    };
    if kind.namespaced == t.namespace.is_empty() && (t.name.is_some() || method != Method::GET) {
        let scope = if kind.namespaced { "namespaced" } else { "cluster-scoped" };
        return error(status(404, "NotFound", &format!("{} are {scope}", kind.plural)));
    }
    if kind.computed {
        let q: HashMap<String, String> = query_pairs(query.as_deref()).into_iter().collect();
        return match (&method, t.sub.is_none()) {
            (&Method::GET, true) => match crate::metrics::pods(&st, &t.namespace, t.name.as_deref(), &q) {
                Ok(v) => axum::Json(v).into_response(),
                Err(e) => error(e),
            },
            _ => error(status(405, "MethodNotAllowed", "metrics are read-only: get and list")),
        };
    }
    if kind.create_only {
        return match (&method, &t.name) {
            (&Method::POST, None) => created(crate::auth::review(&st, &body)),
            _ => error(status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )),
        };
    }
    let q: HashMap<String, String> = query_pairs(query.as_deref()).into_iter().collect();
    let key = |name: &str| -> Key { (kind.plural.clone(), t.namespace.clone(), name.to_string()) };
    match (&method, t.name.as_deref(), t.sub.as_deref()) {
        (&Method::GET, None, None) => list_or_watch(&st, &kind, &t.namespace, &q),
        (&Method::POST, None, None) => match decode(&kind, &headers, &body) {
            Ok(obj) => create(&st, &kind, &t.namespace, obj),
            Err(e) => error(e),
        },
        (&Method::GET, Some(name), None | Some("status")) => fetch(&st, &kind, key(name)),
        (&Method::PUT, Some(name), sub @ (None | Some("status"))) => match decode(&kind, &headers, &body) {
            Ok(obj) => replace(&st, &kind, key(name), obj, sub.is_some()),
            Err(e) => error(e),
        },
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            patch(&st, &kind, key(name), &headers, &body, sub.is_some())
        }
        (&Method::DELETE, Some(name), None) => remove(&st, &kind, key(name)),
        (&Method::POST, Some(name), Some("token")) if kind.plural == "serviceaccounts" => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            created(crate::auth::request(&st, &t.namespace, name, ct, &body))
        }
        (_, Some(name), Some(sub)) if kind.plural == "pods" => {
            pod_sub(&st, key(name), sub, query.as_deref(), ws, &q).await
        }
        _ => error(status(405, "MethodNotAllowed", &format!("{method} is not supported on {path}"))),
    }
}

fn list_or_watch(st: &Arc<State>, kind: &Kind, ns: &str, q: &HashMap<String, String>) -> Response {
    let labels = q.get("labelSelector").cloned().unwrap_or_default();
    let fields = q.get("fieldSelector").cloned().unwrap_or_default();
    let matches = move |o: &Value| labels_match(o, &labels) && fields_match(o, &fields);
    let resource = kind.plural.clone();
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let since: u64 = q.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        let (mut history, mut rx) = st.store.watch(since);
        if since == 0 {
            history = st
                .store
                .list(&resource, ns)
                .into_iter()
                .filter(|o| matches(o))
                .map(|o| Change { resource: resource.clone(), kind: "ADDED", object: o, rv: 0 })
                .collect();
        } else if since < st.store.oldest() {
            let gone = status(410, "Expired", &format!("too old resource version: {since}"));
            return (
                [(header::CONTENT_TYPE, "application/json")],
                format!("{}\n", json!({"type": "ERROR", "object": gone})),
            )
                .into_response();
        }
        let timeout = q.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(1800u64);
        let mut down = st.down.subscribe();
        let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
        let ns = ns.to_string();
        tokio::spawn(async move {
            let wanted = |c: &Change| {
                c.resource == resource
                    && (ns.is_empty() || c.object.pointer("/metadata/namespace").and_then(Value::as_str) == Some(&ns))
                    && matches(&c.object)
            };
            let line = |c: &Change| Bytes::from(format!("{}\n", json!({"type": c.kind, "object": c.object})));
            for c in history.iter().filter(|c| wanted(c)) {
                if tx.send(Ok(line(c))).await.is_err() {
                    return;
                }
            }
            let deadline = tokio::time::sleep(std::time::Duration::from_secs(timeout));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    c = rx.recv() => match c {
                        Ok(c) if wanted(&c) => {
                            if tx.send(Ok(line(&c))).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let gone = status(410, "Expired", "too old resource version");
                            let _ = tx.send(Ok(Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": gone}))))).await;
                            return;
                        }
                        Err(_) => return,
                    },
                    _ = &mut deadline => return,
                    _ = down.changed() => {
                        let _ = tx.send(Err(std::io::Error::other("api server going down"))).await;
                        return;
                    }
                }
            }
        });
        let stream =
            futures_util::stream::unfold(body_rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        return ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response();
    }
    let items: Vec<Value> = st.store.list(&resource, ns).into_iter().filter(|o| matches(o)).collect();
    axum::Json(json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.group_version(),
        "metadata": {"resourceVersion": st.store.version().to_string()}, "items": items}))
    .into_response()
}

/// Fills in what the API server adds to a written object of `kind`.
fn normalize(kind: &Kind, obj: &mut Value) {
    obj["kind"] = json!(kind.kind);
    obj["apiVersion"] = json!(kind.group_version());
    if kind.plural == "secrets" {
        // stringData is write-only: it lands in data, base64-encoded.
        if let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() {
            use base64::Engine;
            for (k, v) in sd {
                obj["data"][k] =
                    json!(base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default()));
            }
            obj.as_object_mut().map(|o| o.remove("stringData"));
        }
        // An empty type is defaulted, as the API server does.
        if obj["type"].as_str().is_none_or(str::is_empty) {
            obj["type"] = json!("Opaque");
        }
    }
}

/// The object a create or replace sends: JSON, or protobuf as typed clients
/// (`kubectl create namespace|secret|configmap`) send it.
fn decode(kind: &Kind, headers: &HeaderMap, body: &Bytes) -> Result<Value, Value> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/vnd.kubernetes.protobuf") {
        return serde_json::from_slice::<Value>(body).map_err(|_| status(400, "BadRequest", "the body is not JSON"));
    }
    let obj = crate::proto::object(body).map_err(|e| status(415, "UnsupportedMediaType", &e))?;
    if obj["kind"] != kind.kind.as_str() {
        return Err(status(400, "BadRequest", &format!("a {} sent to the {} endpoint", obj["kind"], kind.plural)));
    }
    Ok(obj)
}

fn create(st: &Arc<State>, kind: &Kind, ns: &str, mut obj: Value) -> Response {
    if !obj.is_object() || !obj["metadata"].is_object() {
        return error(status(422, "Invalid", "the object needs metadata"));
    }
    normalize(kind, &mut obj);
    if kind.plural == "customresourcedefinitions" {
        obj["status"] = json!({"conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}],
            "acceptedNames": obj["spec"]["names"].clone(), "storedVersions": [obj.pointer("/spec/versions/0/name").cloned().unwrap_or(json!("v1"))]});
    }
    match st.store.create(&kind.plural, ns, obj) {
        Ok(created) => {
            if kind.plural == "pods" {
                let name = created["metadata"]["name"].as_str().unwrap_or_default().to_string();
                st.kubelet.start(st.store.clone(), ("pods".into(), ns.to_string(), name));
            }
            (StatusCode::CREATED, axum::Json(created)).into_response()
        }
        Err(e) => error(e),
    }
}

fn fetch(st: &Arc<State>, kind: &Kind, key: Key) -> Response {
    match st.store.get(&key) {
        Some(o) => axum::Json(o).into_response(),
        None => not_found(&kind.plural, &key.2),
    }
}

/// Writes `new` over the stored object: a status write changes only the
/// status; any other write keeps it where status is a subresource, and a
/// change beyond metadata and status bumps `metadata.generation`.
fn write(
    st: &Arc<State>,
    kind: &Kind,
    key: &Key,
    status_write: bool,
    new: impl FnOnce(&Value) -> Result<Value, String>,
) -> Response {
    let mut failure = None;
    let out = st.store.update(key, |obj| {
        let mut next = match new(obj) {
            Ok(v) => v,
            Err(why) => {
                failure = Some(why);
                return;
            }
        };
        normalize(kind, &mut next);
        if status_write {
            obj["status"] = next["status"].clone();
            return;
        }
        if kind.status_subresource {
            next["status"] = obj["status"].clone();
        }
        for k in ["uid", "creationTimestamp", "namespace", "name", "deletionTimestamp", "generation"] {
            match obj["metadata"].get(k) {
                Some(v) => next["metadata"][k] = v.clone(),
                None => {
                    next["metadata"].as_object_mut().map(|m| m.remove(k));
                }
            }
        }
        let body = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
                o.remove("status");
            }
            v
        };
        if body(&next) != body(obj) {
            next["metadata"]["generation"] = json!(obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
        }
        *obj = next;
    });
    if let Some(why) = failure {
        return error(status(422, "Invalid", &why));
    }
    let Some(obj) = out else { return not_found(&kind.plural, &key.2) };
    // The last finalizer of an object being deleted is gone: delete it now.
    let finalizers = obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
    if obj.pointer("/metadata/deletionTimestamp").is_some() && !finalizers {
        purge(st, key);
    }
    axum::Json(obj).into_response()
}

fn replace(st: &Arc<State>, kind: &Kind, key: Key, new: Value, status_write: bool) -> Response {
    write(st, kind, &key, status_write, |_| Ok(new))
}

/// RFC 7386 JSON merge patch (strategic merge patches are applied as merge patches).
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn patch(st: &Arc<State>, kind: &Kind, key: Key, headers: &HeaderMap, body: &Bytes, status_write: bool) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Ok(p) = serde_json::from_slice::<Value>(body) else {
        return error(status(400, "BadRequest", "the patch is not JSON"));
    };
    if ct.starts_with("application/json-patch+json") {
        let ops: json_patch::Patch = match serde_json::from_value(p) {
            Ok(ops) => ops,
            Err(e) => return error(status(400, "BadRequest", &format!("not a JSON patch: {e}"))),
        };
        return write(st, kind, &key, status_write, |old| {
            let mut next = old.clone();
            // A `test` for null passes where the path is missing, as the API
            // server's JSON patch does (kube's finalizer helper relies on it).
            let ops: Vec<json_patch::PatchOperation> = ops
                .0
                .iter()
                .filter(|op| match op {
                    json_patch::PatchOperation::Test(t) => {
                        !(t.value.is_null() && old.pointer(t.path.as_str()).is_none())
                    }
                    _ => true,
                })
                .cloned()
                .collect();
            json_patch::patch(&mut next, &ops).map_err(|e| format!("the JSON patch does not apply: {e}"))?;
            Ok(next)
        });
    }
    if ct.starts_with("application/apply-patch") {
        return error(status(
            415,
            "UnsupportedMediaType",
            "the emulator has no server-side apply; use client-side kubectl apply",
        ));
    }
    write(st, kind, &key, status_write, |old| {
        let mut next = old.clone();
        merge(&mut next, &p);
        Ok(next)
    })
}

/// Removes an object for good, and what it owned (garbage collection).
fn purge(st: &Arc<State>, key: &Key) -> Option<Value> {
    if key.0 == "pods" {
        st.kubelet.stop(key);
    }
    let obj = st.store.delete(key)?;
    if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) {
        for owned in st.store.owned_by(uid) {
            purge(st, &owned);
        }
    }
    if key.0 == "pods" {
        crate::kubelet::event(&st.store, key, "Normal", "Killing", "Stopping container server");
    }
    Some(obj)
}

fn remove(st: &Arc<State>, kind: &Kind, key: Key) -> Response {
    let Some(obj) = st.store.get(&key) else { return not_found(&kind.plural, &key.2) };
    let finalizers = obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
    if finalizers {
        // Finalizers hold the object until their controllers remove them.
        let marked = st.store.update(&key, |o| {
            if o.pointer("/metadata/deletionTimestamp").is_none() {
                o["metadata"]["deletionTimestamp"] = json!(crate::store::now());
                o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
        });
        return (StatusCode::ACCEPTED, axum::Json(marked.unwrap_or(obj))).into_response();
    }
    match purge(st, &key) {
        Some(o) => axum::Json(o).into_response(),
        None => not_found(&kind.plural, &key.2),
    }
}

/// `attach`, `exec`, `portforward` (WebSocket) and `log` of a pod.
async fn pod_sub(
    st: &Arc<State>,
    key: Key,
    sub: &str,
    query: Option<&str>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    q: &HashMap<String, String>,
) -> Response {
    if st.store.get(&key).is_none() {
        return not_found("pods", &key.2);
    }
    let running = st.kubelet.get(&key);
    if sub == "log" {
        let text = running.map(|r| r.log_text()).unwrap_or_default();
        let text = match q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("{l}\n")).collect()
            }
            None => text,
        };
        return ([(header::CONTENT_TYPE, "text/plain")], text).into_response();
    }
    let Ok(ws) = ws else {
        return error(status(400, "BadRequest", "upgrade to a WebSocket (v5.channel.k8s.io or v4.channel.k8s.io)"));
    };
    let pairs = query_pairs(query);
    let down = st.down.subscribe();
    match sub {
        "attach" => {
            let Some(running) = running else {
                return error(status(400, "BadRequest", "the container is not running"));
            };
            ws.protocols(crate::streams::CHANNEL_PROTOCOLS)
                .on_upgrade(move |s| until_down(down, crate::streams::attach(s, running)))
        }
        "exec" => {
            let command: Vec<String> = pairs.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
            ws.protocols(crate::streams::CHANNEL_PROTOCOLS)
                .on_upgrade(move |s| until_down(down, crate::streams::exec(s, command, running)))
        }
        "portforward" => {
            let port = pairs
                .iter()
                .find(|(k, _)| k == "ports")
                .and_then(|(_, v)| v.split(',').next()?.parse().ok())
                .unwrap_or(0);
            ws.protocols(["v4.channel.k8s.io", "portforward.k8s.io"])
                .on_upgrade(move |s| until_down(down, crate::streams::port_forward(s, port, running)))
        }
        other => not_found("pods", &format!("{}/{other}", key.2)),
    }
}

async fn until_down(mut down: tokio::sync::watch::Receiver<u64>, session: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = session => {}
        _ = down.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_repeated_keys_in_order() {
        let q = query_pairs(Some("command=sh&command=-c&command=echo+a%20b&stdin=true&container=server"));
        let cmd: Vec<&str> = q.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.as_str()).collect();
        assert_eq!(cmd, ["sh", "-c", "echo a b"]);
    }

    #[test]
    fn merge_patches_replace_add_and_remove() {
        let mut v = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}});
        merge(&mut v, &json!({"metadata": {"labels": {"x": null, "z": "3"}, "ownerReferences": [{"uid": "u"}]}}));
        assert_eq!(
            v,
            json!({"metadata": {"name": "a", "labels": {"y": "2", "z": "3"}, "ownerReferences": [{"uid": "u"}]}})
        );
    }

    #[test]
    fn paths_name_their_group_namespace_resource_and_subresource() {
        let t = parse_target("/apis/mcpod.dev/v1alpha1/namespaces/demo/mcpservers/time/status").unwrap();
        assert_eq!(
            (t.group_version.as_str(), t.namespace.as_str(), t.resource.as_str()),
            ("mcpod.dev/v1alpha1", "demo", "mcpservers")
        );
        assert_eq!((t.name.as_deref(), t.sub.as_deref()), (Some("time"), Some("status")));
        let ns = parse_target("/api/v1/namespaces/demo").unwrap();
        assert_eq!((ns.resource.as_str(), ns.name.as_deref(), ns.namespace.as_str()), ("namespaces", Some("demo"), ""));
        let crds = parse_target("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").unwrap();
        assert_eq!((crds.resource.as_str(), crds.name), ("customresourcedefinitions", None));
        let all_pods = parse_target("/api/v1/pods").unwrap();
        assert_eq!((all_pods.resource.as_str(), all_pods.namespace.as_str()), ("pods", ""));
        assert!(parse_target("/healthz").is_none());
    }
}
