//! What a pod's status says about a server instance: ready, still coming
//! up (and why), or failed with the reason Kubernetes gives
//! (ImagePullBackOff, CrashLoopBackOff, OOMKilled, Unschedulable...).

use k8s_openapi::api::core::v1::Pod;

/// A pod's health as the bridge needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Ready to serve.
    Ready,
    /// Not ready yet; the reason so far.
    Waiting(String),
    /// It will not become ready without a change: the reason.
    Failed(String),
}

/// Waiting reasons that do not resolve by themselves.
const FATAL_WAITING: [&str; 5] =
    ["ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError"];

/// Restarts after which a crash-looping container counts as failed: fewer
/// are a server coming back after a crash, which the kubelet restarts.
pub const CRASH_LOOP_LIMIT: i32 = 3;

/// Assesses `pod`.
pub fn assess(pod: &Pod) -> Health {
    if pod.metadata.deletion_timestamp.is_some() {
        return Health::Failed("the pod is being deleted".to_string());
    }
    let Some(status) = &pod.status else { return Health::Waiting("Pending: not scheduled yet".to_string()) };
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    let restarted_by_kubelet = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("Never");
    for cs in statuses {
        let last_oom = cs
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .filter(|t| t.reason.as_deref() == Some("OOMKilled"))
            .map(|_| " (last exit: OOMKilled, the container hit its memory limit)")
            .unwrap_or_default();
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_else(|| "Waiting".to_string());
            let message = w.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            let text = format!("{reason}{message}{last_oom}");
            let crash_loop = reason == "CrashLoopBackOff" && cs.restart_count >= CRASH_LOOP_LIMIT;
            if FATAL_WAITING.contains(&reason.as_str()) || crash_loop {
                return Health::Failed(text);
            }
            return Health::Waiting(text);
        }
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let reason = t.reason.clone().unwrap_or_else(|| "Terminated".to_string());
            let exited = format!("{reason}: the container exited with code {}", t.exit_code);
            if restarted_by_kubelet && cs.restart_count < CRASH_LOOP_LIMIT {
                return Health::Waiting(format!("{exited}; the kubelet restarts it"));
            }
            return Health::Failed(exited);
        }
    }
    match status.phase.as_deref() {
        Some("Failed") | Some("Succeeded") => {
            let why = status.reason.clone().or_else(|| status.message.clone()).unwrap_or_default();
            return Health::Failed(format!(
                "the pod ended (phase {}) {why}",
                status.phase.as_deref().unwrap_or_default()
            ));
        }
        _ => {}
    }
    let conditions = status.conditions.as_deref().unwrap_or_default();
    if conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True") {
        return Health::Ready;
    }
    if let Some(c) = conditions.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False") {
        return Health::Waiting(format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("Unschedulable"),
            c.message.as_deref().unwrap_or("the pod cannot be scheduled")
        ));
    }
    Health::Waiting(format!("{}: the container is not ready", status.phase.as_deref().unwrap_or("Pending")))
}

/// The restart count of the server container.
pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map(|c| c.restart_count)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    #[test]
    fn ready_condition_means_ready() {
        let p = pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "server", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"running": {}}}]}));
        assert_eq!(assess(&p), Health::Ready);
    }

    #[test]
    fn image_pull_back_off_and_crash_loops_fail_with_the_reason() {
        let p = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "server", "ready": false, "restartCount": 0,
            "image": "i", "imageID": "", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}),
        );
        assert_eq!(assess(&p), Health::Failed("ImagePullBackOff: Back-off pulling image \"x\"".to_string()));
        let p =
            pod(json!({"phase": "Running", "containerStatuses": [{"name": "server", "ready": false, "restartCount": 3,
            "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}));
        let Health::Failed(why) = assess(&p) else { panic!("{:?}", assess(&p)) };
        assert!(why.starts_with("CrashLoopBackOff") && why.contains("OOMKilled"), "{why}");
        assert_eq!(restarts(&p), 3);
    }

    #[test]
    fn unschedulable_pods_wait_with_the_scheduler_message() {
        let p = pod(json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]}));
        assert_eq!(
            assess(&p),
            Health::Waiting("Unschedulable: 0/3 nodes are available: 3 Insufficient memory.".to_string())
        );
    }

    #[test]
    fn pulling_images_and_running_but_unready_containers_wait() {
        let p =
            pod(json!({"phase": "Pending", "containerStatuses": [{"name": "server", "ready": false, "restartCount": 0,
            "image": "i", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(assess(&p), Health::Waiting("ContainerCreating".to_string()));
        let p = pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "server", "ready": false, "restartCount": 0, "image": "i", "imageID": "", "state": {"running": {}}}]}));
        assert!(matches!(assess(&p), Health::Waiting(_)));
    }

    #[test]
    fn deleted_and_exited_pods_fail() {
        let mut p = pod(json!({"phase": "Running"}));
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()));
        assert!(matches!(assess(&p), Health::Failed(_)));
        let exited = |restarts: i32, policy: &str| {
            let mut p = pod(json!({"phase": "Running", "containerStatuses": [{"name": "server", "ready": false,
                "restartCount": restarts, "image": "i", "imageID": "", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}));
            p.spec = Some(serde_json::from_value(json!({"containers": [], "restartPolicy": policy})).unwrap());
            assess(&p)
        };
        assert_eq!(exited(0, "Never"), Health::Failed("Error: the container exited with code 1".to_string()));
        assert_eq!(
            exited(0, "Always"),
            Health::Waiting("Error: the container exited with code 1; the kubelet restarts it".to_string()),
            "a crash is a restart, not a failure"
        );
        assert!(matches!(exited(CRASH_LOOP_LIMIT, "Always"), Health::Failed(_)), "until it keeps crashing");
    }

    #[test]
    fn a_first_crash_loop_back_off_waits_for_the_restart() {
        let p = pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "server", "ready": false, "restartCount": 1,
            "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}}]}),
        );
        assert_eq!(assess(&p), Health::Waiting("CrashLoopBackOff: back-off 10s".to_string()));
    }
}
