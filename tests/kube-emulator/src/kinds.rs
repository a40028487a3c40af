//! What the emulator serves: the built-in kinds mcpod and its deployment
//! use, and the kinds that CustomResourceDefinitions in the store add.

use crate::store::Store;
use serde_json::{Value, json};

/// One kind of object, as discovery describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kind {
    /// The API group (`""` for core).
    pub group: String,
    /// The version (`v1`).
    pub version: String,
    /// The plural resource name in URLs (`pods`).
    pub plural: String,
    /// The kind (`Pod`).
    pub kind: String,
    /// Namespaced, or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`).
    pub short_names: Vec<String>,
    /// Whether `status` is a subresource (writes to the object keep its status).
    pub status_subresource: bool,
    /// Served for `create` only and never stored, as reviews are (`tokenreviews`).
    pub create_only: bool,
    /// Computed when read, never stored (`metrics.k8s.io` pods): get and list only.
    pub computed: bool,
}

impl Kind {
    /// `v1` or `group/version`.
    pub fn group_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

/// (group, version, plural, kind, namespaced, short names, status subresource)
type Builtin = (&'static str, &'static str, &'static str, &'static str, bool, &'static [&'static str], bool);

const BUILTINS: &[Builtin] = &[
    ("", "v1", "pods", "Pod", true, &["po"], true),
    ("", "v1", "secrets", "Secret", true, &[], false),
    ("", "v1", "events", "Event", true, &["ev"], false),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"], false),
    ("", "v1", "services", "Service", true, &["svc"], true),
    ("", "v1", "namespaces", "Namespace", false, &["ns"], true),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, &["netpol"], false),
    ("apps", "v1", "deployments", "Deployment", true, &["deploy"], true),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[], false),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, &[], false),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, &[], false),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, &[], false),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], true),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
    ),
];

/// Every kind served now: the built-ins plus one per version of each stored CRD.
pub fn all(store: &Store) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = BUILTINS
        .iter()
        .map(|(g, v, p, k, ns, short, status)| Kind {
            group: g.to_string(),
            version: v.to_string(),
            plural: p.to_string(),
            kind: k.to_string(),
            namespaced: *ns,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            status_subresource: *status,
            create_only: false,
            computed: false,
        })
        .collect();
    kinds.push(Kind {
        group: "authentication.k8s.io".into(),
        version: "v1".into(),
        plural: "tokenreviews".into(),
        kind: "TokenReview".into(),
        namespaced: false,
        short_names: Vec::new(),
        status_subresource: false,
        create_only: true,
        computed: false,
    });
    kinds.push(Kind {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        plural: "pods".into(),
        kind: "PodMetrics".into(),
        namespaced: true,
        short_names: Vec::new(),
        status_subresource: false,
        create_only: false,
        computed: true,
    });
    for crd in store.list("customresourcedefinitions", "") {
        let spec = &crd["spec"];
        let names = &spec["names"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        for version in spec["versions"].as_array().into_iter().flatten().filter(|v| v["served"] != false) {
            kinds.push(Kind {
                group: text(&spec["group"]),
                version: text(&version["name"]),
                plural: text(&names["plural"]),
                kind: text(&names["kind"]),
                namespaced: spec["scope"] != "Cluster",
                short_names: names["shortNames"].as_array().into_iter().flatten().map(text).collect(),
                status_subresource: version.pointer("/subresources/status").is_some(),
                create_only: false,
                computed: false,
            });
        }
    }
    kinds
}

/// The kind served at `group_version` (`v1`, `apps/v1`) as `plural`.
pub fn find(store: &Store, group_version: &str, plural: &str) -> Option<Kind> {
    all(store).into_iter().find(|k| k.group_version() == group_version && k.plural == plural)
}

/// `GET /api/v1` or `GET /apis/GROUP/VERSION`.
pub fn resource_list(store: &Store, group_version: &str) -> Value {
    let mut resources = Vec::new();
    for k in all(store).into_iter().filter(|k| k.group_version() == group_version) {
        let verbs: &[&str] = if k.create_only {
            &["create"]
        } else if k.computed {
            &["get", "list"]
        } else {
            &["create", "delete", "get", "list", "patch", "update", "watch"]
        };
        resources
            .push(json!({"name": k.plural, "singularName": k.kind.to_ascii_lowercase(), "namespaced": k.namespaced,
            "kind": k.kind, "shortNames": k.short_names, "verbs": verbs}));
        if k.plural == "serviceaccounts" {
            resources.push(json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
                "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
        }
        if k.status_subresource {
            resources
                .push(json!({"name": format!("{}/status", k.plural), "singularName": "", "namespaced": k.namespaced,
                "kind": k.kind, "verbs": ["get", "patch", "update"]}));
        }
        if k.plural == "pods" && !k.computed {
            for (sub, kind) in [
                ("attach", "PodAttachOptions"),
                ("exec", "PodExecOptions"),
                ("portforward", "PodPortForwardOptions"),
                ("log", "Pod"),
            ] {
                resources.push(json!({"name": format!("pods/{sub}"), "singularName": "", "namespaced": true, "kind": kind, "verbs": ["create", "get"]}));
            }
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// `GET /apis`: every non-core group and its versions.
pub fn group_list(store: &Store) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for k in all(store).into_iter().filter(|k| !k.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == k.group) {
            Some((_, versions)) if !versions.contains(&k.version) => versions.push(k.version),
            Some(_) => {}
            None => groups.push((k.group, vec![k.version])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, versions)| {
            let versions: Vec<Value> =
                versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
            json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}
