//! The OpenAPI v3 documents kubectl reads before it writes: one per group
//! version, declaring for every kind a PATCH operation that takes the
//! `fieldValidation` query parameter, so that kubectl leaves validation to
//! the server (the emulator accepts well-formed objects; it has no schemas).

use crate::kinds::{self, Kind};
use crate::store::Store;
use serde_json::{Value, json};

/// The `/openapi/v3` URL path of group version `gv` (`api/v1`, `apis/apps/v1`).
fn gv_path(gv: &str) -> String {
    if gv == "v1" { "api/v1".to_string() } else { format!("apis/{gv}") }
}

/// `GET /openapi/v3`: the group versions and where their documents are.
pub fn root(store: &Store) -> Value {
    let mut paths = serde_json::Map::new();
    for k in kinds::all(store) {
        let path = gv_path(&k.group_version());
        let url = format!("/openapi/v3/{path}?hash={:016X}", store.version());
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

fn operation(k: &Kind) -> Value {
    json!({"patch": {
        "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
        "parameters": [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}}
        ],
        "responses": {"200": {"description": "OK"}}
    }})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`.
pub fn document(store: &Store, path: &str) -> Option<Value> {
    let gv = path.strip_prefix("api/").or_else(|| path.strip_prefix("apis/"))?;
    let mut paths = serde_json::Map::new();
    for k in kinds::all(store).into_iter().filter(|k| k.group_version() == gv) {
        let scope = if k.namespaced { "namespaces/{namespace}/" } else { "" };
        paths.insert(format!("/{}/{scope}{}/{{name}}", gv_path(gv), k.plural), operation(&k));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({"openapi": "3.0.0", "info": {"title": "Kubernetes (mcpod emulator)", "version": "v1.34.0"},
        "paths": paths, "components": {"schemas": {}}}))
}
