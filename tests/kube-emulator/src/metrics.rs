//! `metrics.k8s.io/v1beta1`, as metrics-server serves it: `PodMetrics` of
//! each running pod, from the kubelet's process group of it — CPU as a
//! rate in cores (here over the pod's life, where metrics-server uses its
//! scrape window) and resident memory as the working set. Read-only: list
//! (with a label selector, in a namespace or across all) and get.

use crate::State;
use crate::store::{Key, labels_match, now, status};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The group version served.
pub const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// `GET …/pods` (`name` `None`) or `GET …/pods/NAME` in `ns` (empty: all).
pub fn pods(st: &State, ns: &str, name: Option<&str>, q: &HashMap<String, String>) -> Result<Value, Value> {
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    let mut items = Vec::new();
    for pod in st.store.list("pods", ns) {
        let meta = &pod["metadata"];
        let pod_name = meta["name"].as_str().unwrap_or_default().to_string();
        let pod_ns = meta["namespace"].as_str().unwrap_or_default().to_string();
        if name.is_some_and(|n| n != pod_name) || !labels_match(&pod, &selector) {
            continue;
        }
        let key: Key = ("pods".into(), pod_ns.clone(), pod_name.clone());
        let Some((cpu_seconds, memory, age)) = st.kubelet.get(&key).and_then(|r| r.usage()) else { continue };
        let container = pod.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or("main");
        let nanocores = (cpu_seconds / age.as_secs_f64().max(1.0) * 1e9) as u64;
        items.push(json!({
            "metadata": {"name": pod_name, "namespace": pod_ns, "labels": meta["labels"], "creationTimestamp": now()},
            "timestamp": now(),
            "window": format!("{}s", age.as_secs().max(1)),
            "containers": [{"name": container, "usage": {"cpu": format!("{nanocores}n"), "memory": format!("{}Ki", memory / 1024)}}],
        }));
    }
    match name {
        Some(n) => {
            items.pop().ok_or_else(|| status(404, "NotFound", &format!("podmetrics.metrics.k8s.io \"{n}\" not found")))
        }
        None => Ok(json!({"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})),
    }
}

/// One `/proc/PID/stat` line: process group, CPU ticks (with reaped
/// children's) and resident pages, counted after the command name's `)`.
pub fn proc_stat(line: &str) -> Option<(i32, u64, u64)> {
    let fields: Vec<&str> = line[line.rfind(')')? + 1..].split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((fields.get(2)?.parse().ok()?, num(11)? + num(12)? + num(13)? + num(14)?, num(21)?))
}

/// CPU seconds and resident bytes of process group `pgid`, from `/proc`.
pub fn group_usage(pgid: i32) -> (f64, u64) {
    let (mut ticks, mut pages) = (0u64, 0u64);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(line) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if let Some((_, t, p)) = proc_stat(&line).filter(|(group, _, _)| *group == pgid) {
            ticks += t;
            pages += p;
        }
    }
    // /proc counts in USER_HZ (100 on Linux's ABIs) and pages (4 KiB on x86-64).
    (ticks as f64 / 100.0, pages * 4096)
}
