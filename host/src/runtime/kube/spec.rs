//! The Kubernetes objects of one server instance, built from its launch
//! request: the Pod (restricted Pod Security Standard), the Secret holding
//! its secret env values, and its NetworkPolicy. Pure functions, no I/O.

use crate::launch::{LaunchSpec, Transport};
use crate::runtime::LaunchRequest;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, Pod, PodSecurityContext,
    PodSpec, Probe, ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext, TCPSocketAction,
    Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Label every object mcpod creates carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "mcpod");
/// Label naming the host instance that owns an object.
pub const INSTANCE_LABEL: &str = "mcpod.dev/instance";
/// Label naming the server an object belongs to.
pub const SERVER_LABEL: &str = "mcpod.dev/server";
/// Label naming the server instance (one pod) an object belongs to.
pub const INSTANCE_ID_LABEL: &str = "mcpod.dev/instance-id";
/// Label naming the template a server was started from.
pub const TEMPLATE_LABEL: &str = "mcpod.dev/template";
/// The container's name in every server pod.
pub const CONTAINER: &str = "server";
/// Where the writable home (and package caches) is mounted.
pub const HOME: &str = "/home/mcpod";

/// How pods are shaped, from `[kubernetes]`, `[policy]` and the host.
#[derive(Debug, Clone)]
pub struct PodSettings {
    /// The namespace.
    pub namespace: String,
    /// This host's instance name.
    pub instance: String,
    /// uid and gid of the server process.
    pub run_as_user: i64,
    /// Image pull policy.
    pub image_pull_policy: String,
    /// Grace period of a deleted pod.
    pub termination_grace_secs: i64,
    /// Whether stdio servers are reached by exec (the container idles).
    pub exec_bridge: bool,
    /// Whether servers may reach the internet.
    pub internet_access: bool,
    /// Labels of the host's pods (the only allowed ingress).
    pub host_pod_labels: BTreeMap<String, String>,
    /// The host's registry mirrors and proxies (`runtime::package_source_env`),
    /// given to every pod unless its spec sets them.
    pub package_env: Vec<(String, String)>,
}

/// The pod name of instance `instance_id` of host instance `instance`: a
/// DNS-1123 label, unique per host instance.
pub fn pod_name(instance: &str, instance_id: &str) -> String {
    let raw = format!("mcpod-{instance}-{instance_id}");
    let mut name: String =
        raw.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    if name.len() > 63 {
        let hash = fnv(&raw);
        name.truncate(63 - 9);
        name = format!("{}-{hash:08x}", name.trim_end_matches('-'));
    }
    name.trim_end_matches('-').to_string()
}

/// The Secret holding the secret env values of pod `pod`.
pub fn secret_name(pod: &str) -> String {
    format!("{pod}-env")
}

/// A label value made of `value`: at most 63 characters of `[A-Za-z0-9._-]`,
/// starting and ending with a letter or digit.
pub fn label_value(value: &str) -> String {
    let mut v: String = value
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .take(63)
        .collect();
    while v.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        v.pop();
    }
    v.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// The label selector of every pod of host instance `instance`.
pub fn instance_selector(instance: &str) -> String {
    format!("{}={},{INSTANCE_LABEL}={}", MANAGED_BY.0, MANAGED_BY.1, label_value(instance))
}

/// The ConfigMap that keeps host instance `instance`'s next server number
/// (`Runtime::keep_server_number`): in the cluster, so that a host in a
/// new pod, whose disk is new, never gives an old server's id again.
pub fn numbers_config_map(instance: &str, next: u64) -> k8s_openapi::api::core::v1::ConfigMap {
    let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
    cm.metadata.name = Some(numbers_name(instance));
    cm.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (INSTANCE_LABEL.to_string(), label_value(instance)),
    ]));
    cm.data = Some(BTreeMap::from([(NUMBERS_KEY.to_string(), next.to_string())]));
    cm
}

/// The name of [`numbers_config_map`].
pub fn numbers_name(instance: &str) -> String {
    pod_name(instance, "server-numbers")
}

/// The key of the next server number in [`numbers_config_map`].
pub const NUMBERS_KEY: &str = "next-server-number";

/// The labels of instance `req` of host instance `instance`.
pub fn labels(req: &LaunchRequest, instance: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        ("app.kubernetes.io/name".to_string(), "mcp-server".to_string()),
        (INSTANCE_LABEL.to_string(), label_value(instance)),
        (SERVER_LABEL.to_string(), label_value(&req.server_id)),
        (INSTANCE_ID_LABEL.to_string(), label_value(&req.instance_id)),
    ]);
    if let Some(t) = req.labels.get("template").filter(|t| !t.is_empty()) {
        labels.insert(TEMPLATE_LABEL.to_string(), label_value(t));
    }
    labels
}

/// Whether env var `name` of `req` is secret (by the spec or the policy).
fn is_secret(req: &LaunchRequest, name: &str) -> bool {
    req.spec.env.iter().any(|e| e.name == name && e.secret) || req.secret_env.iter().any(|s| s == name)
}

/// The Secret with `req`'s secret env values, if it has any.
pub fn secret(req: &LaunchRequest, settings: &PodSettings) -> Option<Secret> {
    let data: BTreeMap<String, ByteString> = req
        .spec
        .env
        .iter()
        .filter(|e| is_secret(req, &e.name))
        .map(|e| (e.name.clone(), ByteString(e.value.clone().into_bytes())))
        .collect();
    if data.is_empty() {
        return None;
    }
    let pod = pod_name(&settings.instance, &req.instance_id);
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&pod)),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels(req, &settings.instance)),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_string()),
        ..Default::default()
    })
}

/// An owner reference to `pod`, so that the API collects what it owns with it.
pub fn owned_by(pod: &Pod) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "v1".to_string(),
        kind: "Pod".to_string(),
        name: pod.metadata.name.clone()?,
        uid: pod.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Env every server container gets unless its spec sets the name: a
/// writable home and package caches on the pod's emptyDir volumes (the
/// root filesystem is read-only).
const WRITABLE_ENV: [(&str, &str); 5] = [
    ("HOME", HOME),
    ("TMPDIR", "/tmp"),
    ("XDG_CACHE_HOME", "/home/mcpod/.cache"),
    ("npm_config_cache", "/home/mcpod/.npm"),
    ("UV_CACHE_DIR", "/home/mcpod/.cache/uv"),
];

fn env(req: &LaunchRequest, settings: &PodSettings, pod: &str) -> Vec<EnvVar> {
    let mut out: Vec<EnvVar> = req
        .spec
        .env
        .iter()
        .map(|e| {
            if is_secret(req, &e.name) {
                EnvVar {
                    name: e.name.clone(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: secret_name(pod),
                            key: e.name.clone(),
                            optional: Some(false),
                        }),
                        ..Default::default()
                    }),
                }
            } else {
                EnvVar { name: e.name.clone(), value: Some(e.value.clone()), value_from: None }
            }
        })
        .collect();
    let defaults = WRITABLE_ENV.iter().map(|(n, v)| (*n, *v));
    for (name, value) in defaults.chain(settings.package_env.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
        if !req.spec.env.iter().any(|e| e.name == name) {
            out.push(EnvVar { name: name.to_string(), value: Some(value.to_string()), value_from: None });
        }
    }
    out
}

fn resources(spec: &LaunchSpec) -> ResourceRequirements {
    let pair = |cpu: &Option<String>, memory: &Option<String>| {
        let mut m = BTreeMap::new();
        if let Some(c) = cpu {
            m.insert("cpu".to_string(), Quantity(c.clone()));
        }
        if let Some(mem) = memory {
            m.insert("memory".to_string(), Quantity(mem.clone()));
        }
        (!m.is_empty()).then_some(m)
    };
    let r = &spec.resources;
    ResourceRequirements {
        requests: pair(&r.cpu_request, &r.memory_request),
        limits: pair(&r.cpu_limit, &r.memory_limit),
        ..Default::default()
    }
}

/// The restricted Pod Security Standard, for the container.
fn container_security(uid: i64) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_string()]), add: None }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), localhost_profile: None }),
        ..Default::default()
    }
}

/// The command an `exec`-bridged container idles with.
pub const IDLE_COMMAND: [&str; 2] = ["sleep", "infinity"];

/// The pod of instance `req`; `annotations` record what is needed to adopt it.
pub fn pod(req: &LaunchRequest, settings: &PodSettings, annotations: BTreeMap<String, String>) -> Result<Pod, String> {
    let spec = &req.spec;
    let container = spec
        .container
        .as_ref()
        .ok_or("its launch spec has no container (it runs only as a local process); use the local runtime")?;
    let name = pod_name(&settings.instance, &req.instance_id);
    let stdio = spec.transport == Transport::Stdio;
    let command = if stdio && settings.exec_bridge {
        IDLE_COMMAND.iter().map(|s| s.to_string()).collect()
    } else {
        container.command.clone()
    };
    let probe = match (stdio, spec.port) {
        (false, Some(port)) => Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(i32::from(port)), host: None }),
            period_seconds: Some(2),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        _ => None,
    };
    let liveness = probe.clone().map(|p| Probe { initial_delay_seconds: Some(10), period_seconds: Some(10), ..p });
    let empty_dir =
        |limit: &str| Some(EmptyDirVolumeSource { medium: None, size_limit: Some(Quantity(limit.to_string())) });
    let uid = settings.run_as_user;
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels(req, &settings.instance)),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            restart_policy: Some("Always".to_string()),
            termination_grace_period_seconds: Some(settings.termination_grace_secs),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(uid),
                run_as_group: Some(uid),
                fs_group: Some(uid),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), localhost_profile: None }),
                ..Default::default()
            }),
            containers: vec![Container {
                name: CONTAINER.to_string(),
                image: Some(container.image.clone()),
                image_pull_policy: Some(settings.image_pull_policy.clone()),
                command: Some(command),
                env: Some(env(req, settings, &name)),
                working_dir: spec.working_dir.clone(),
                stdin: Some(stdio && !settings.exec_bridge),
                stdin_once: Some(false),
                tty: Some(false),
                ports: spec.port.filter(|_| !stdio).map(|p| {
                    vec![ContainerPort {
                        container_port: i32::from(p),
                        name: Some("mcp".to_string()),
                        ..Default::default()
                    }]
                }),
                readiness_probe: probe,
                liveness_probe: liveness,
                resources: Some(resources(spec)),
                security_context: Some(container_security(uid)),
                volume_mounts: Some(vec![
                    VolumeMount { name: "home".to_string(), mount_path: HOME.to_string(), ..Default::default() },
                    VolumeMount { name: "tmp".to_string(), mount_path: "/tmp".to_string(), ..Default::default() },
                ]),
                ..Default::default()
            }],
            volumes: Some(vec![
                Volume { name: "home".to_string(), empty_dir: empty_dir("2Gi"), ..Default::default() },
                Volume { name: "tmp".to_string(), empty_dir: empty_dir("512Mi"), ..Default::default() },
            ]),
            ..Default::default()
        }),
        status: None,
    })
}

/// The NetworkPolicy of the pod `pod` (owned by it): ingress only from the
/// host's pods, on the server's port (none for stdio servers, which are
/// reached through the API); egress everywhere if the server may reach the
/// internet, else DNS only.
pub fn network_policy(req: &LaunchRequest, settings: &PodSettings, pod: &Pod) -> NetworkPolicy {
    let name = pod_name(&settings.instance, &req.instance_id);
    let own = labels(req, &settings.instance);
    let selector = BTreeMap::from([
        (INSTANCE_LABEL.to_string(), own[INSTANCE_LABEL].clone()),
        (INSTANCE_ID_LABEL.to_string(), own[INSTANCE_ID_LABEL].clone()),
    ]);
    let ingress = match (req.spec.transport, req.spec.port) {
        (Transport::Stdio, _) | (_, None) => Vec::new(),
        (_, Some(port)) => vec![NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(settings.host_pod_labels.clone()),
                    match_expressions: None,
                }),
                ..Default::default()
            }]),
            ports: Some(vec![NetworkPolicyPort {
                port: Some(IntOrString::Int(i32::from(port))),
                protocol: Some("TCP".to_string()),
                end_port: None,
            }]),
        }],
    };
    let egress = if settings.internet_access && req.spec.network_access {
        vec![NetworkPolicyEgressRule::default()]
    } else {
        let dns = |protocol: &str| NetworkPolicyPort {
            port: Some(IntOrString::Int(53)),
            protocol: Some(protocol.to_string()),
            end_port: None,
        };
        vec![NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector::default()),
                pod_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())])),
                    match_expressions: None,
                }),
                ip_block: None,
            }]),
            ports: Some(vec![dns("UDP"), dns("TCP")]),
        }]
    };
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(settings.namespace.clone()),
            labels: Some(own),
            owner_references: owned_by(pod).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector { match_labels: Some(selector), match_expressions: None }),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }
}

/// FNV-1a, for stable short name suffixes.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests;
