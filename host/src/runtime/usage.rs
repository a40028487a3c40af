//! What instances use: CPU time and resident memory of a local instance's
//! process group (the server and everything it spawned), read from `/proc`,
//! and a pod's CPU rate and memory from the metrics API (`metrics.k8s.io`).
//! Pure parsing beside one directory walk.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one instance uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time its processes have used so far (user and system, with that
    /// of children they have reaped), in seconds: the local runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// CPU it uses now, in cores, as the metrics API averages it over its
    /// window: Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Resident memory of its processes now (a pod's working set), in bytes.
    pub memory_bytes: u64,
}

impl Usage {
    /// Adds `other` to this.
    pub fn add(&mut self, other: Usage) {
        let sum = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.cpu_seconds = sum(self.cpu_seconds, other.cpu_seconds);
        self.cpu_cores = sum(self.cpu_cores, other.cpu_cores);
        self.memory_bytes += other.memory_bytes;
    }
}

/// The usage in a `PodMetricsList` of each pod carrying label `id_label`
/// (keyed by that label's value: the instance id), its containers summed.
pub fn pod_metrics(list: &serde_json::Value, id_label: &str) -> BTreeMap<String, Usage> {
    let mut out = BTreeMap::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let Some(id) = item["metadata"]["labels"][id_label].as_str() else { continue };
        let mut usage = Usage { cpu_cores: Some(0.0), ..Usage::default() };
        for c in item["containers"].as_array().into_iter().flatten() {
            let cores = c["usage"]["cpu"].as_str().and_then(super::quantity::cores).unwrap_or(0.0);
            let bytes = c["usage"]["memory"].as_str().and_then(super::quantity::bytes).unwrap_or(0);
            usage.add(Usage { cpu_seconds: None, cpu_cores: Some(cores), memory_bytes: bytes });
        }
        out.insert(id.to_string(), usage);
    }
    out
}

/// One `/proc/PID/stat` line: its process group, its CPU clock ticks
/// (utime, stime, cutime, cstime) and its resident pages. The command name
/// may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn proc_stat(line: &str) -> Option<(i32, u64, u64)> {
    let after = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state (field 3), ppid, pgrp (5), ... utime (14),
    // stime, cutime, cstime (17), ... rss (24).
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let pgrp = fields.get(2)?.parse().ok()?;
    let ticks = num(11)? + num(12)? + num(13)? + num(14)?;
    Some((pgrp, ticks, num(21)?))
}

/// The usage of each process group of `groups` (pgid → instance id),
/// summed over the live processes `/proc` lists.
pub fn of_process_groups(groups: &BTreeMap<i32, String>) -> BTreeMap<String, Usage> {
    let zero = Usage { cpu_seconds: Some(0.0), ..Usage::default() };
    let mut out: BTreeMap<String, Usage> = groups.values().map(|id| (id.clone(), zero)).collect();
    if groups.is_empty() {
        return out;
    }
    let tick = clock_ticks_per_second();
    let page = page_size();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        // A process may exit between the listing and the read.
        let Ok(line) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((pgrp, ticks, pages)) = proc_stat(&line) else { continue };
        if let Some(usage) = groups.get(&pgrp).and_then(|id| out.get_mut(id)) {
            usage.add(Usage { cpu_seconds: Some(ticks as f64 / tick), cpu_cores: None, memory_bytes: pages * page });
        }
    }
    out
}

fn clock_ticks_per_second() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(p)) if p > 0 => p as u64,
        _ => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_group_ticks_and_pages_even_with_a_hostile_command_name() {
        let line =
            "4242 (node ) 1 2 (x) S 1 4240 4240 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 11 0 5000 123456789 2500 184467";
        assert_eq!(proc_stat(line), Some((4240, 210, 2500)));
        assert_eq!(proc_stat("garbage"), None);
        assert_eq!(proc_stat("1 (init) S"), None, "too short: no figure rather than a wrong one");
    }

    #[test]
    fn this_process_group_is_measured_and_an_unknown_one_is_zero() {
        let me = nix::unistd::getpgrp().as_raw();
        // Burn a little CPU so that the figure is not zero on a fast machine.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let groups = BTreeMap::from([(me, "me".to_string()), (i32::MAX, "nobody".to_string())]);
        let usage = of_process_groups(&groups);
        assert!(usage["me"].memory_bytes > 1 << 20, "{usage:?}");
        assert!(usage["me"].cpu_seconds.is_some_and(|s| s > 0.0), "{usage:?}");
        assert_eq!(usage["nobody"], Usage { cpu_seconds: Some(0.0), ..Usage::default() });
    }

    #[test]
    fn pod_metrics_sum_containers_by_instance_and_skip_pods_of_others() {
        let list = serde_json::json!({"kind": "PodMetricsList", "items": [
            {"metadata": {"name": "mcpod-a-time-1-1", "labels": {"mcpod.dev/instance-id": "time-1-1"}},
             "containers": [{"name": "server", "usage": {"cpu": "1500000n", "memory": "20480Ki"}},
                            {"name": "sidecar", "usage": {"cpu": "1m", "memory": "1Mi"}}]},
            {"metadata": {"name": "someone-else", "labels": {}}, "containers": []}]});
        let usage = pod_metrics(&list, "mcpod.dev/instance-id");
        assert_eq!(usage.len(), 1, "{usage:?}");
        let u = usage["time-1-1"];
        assert!((u.cpu_cores.unwrap() - 0.0025).abs() < 1e-12, "{u:?}");
        assert_eq!((u.memory_bytes, u.cpu_seconds), (21 << 20, None));
    }
}
