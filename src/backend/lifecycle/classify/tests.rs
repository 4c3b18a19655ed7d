//! Unit tests of the pod classifier: one pod shape per case, written as the apiserver sends it.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

fn pod(status: Value) -> Pod {
    let mut v = json!({
        "metadata": {"name": "wp-01", "namespace": "ci"},
        "spec": {"containers": [{"name": "wp-01", "image": "alpine"}]},
        "status": status,
    });
    if v["status"].is_null() {
        v.as_object_mut().unwrap().remove("status");
    }
    serde_json::from_value(v).unwrap()
}

fn obs(pod: &Pod, pending_secs: u64) -> Observation<'_> {
    Observation {
        pod,
        gone: false,
        deleted_by_us: false,
        pending_for: Duration::from_secs(pending_secs),
    }
}

fn limits() -> Limits {
    Limits {
        start_timeout: Duration::from_secs(120),
        grace: Duration::from_secs(30),
    }
}

fn run(p: &Pod, pending_secs: u64) -> Verdict {
    classify(obs(p, pending_secs), &limits())
}

fn terminated(code: i32, reason: &str) -> Value {
    json!({"phase": if code == 0 { "Succeeded" } else { "Failed" },
           "containerStatuses": [{"name": "wp-01", "state": {"terminated": {"exitCode": code, "reason": reason}}}]})
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"phase": "Pending",
           "containerStatuses": [{"name": "wp-01", "state": {"waiting": {"reason": reason, "message": message}}}]})
}

fn state_of(v: Verdict) -> State {
    match v {
        Verdict::Finished { state, .. } => state,
        other => panic!("expected Finished, got {other:?}"),
    }
}

#[test]
fn a_fresh_pod_waits() {
    assert_eq!(run(&pod(Value::Null), 0), Verdict::Waiting(None));
    assert_eq!(run(&pod(json!({"phase": "Pending"})), 5), Verdict::Waiting(None));
    assert_eq!(run(&pod(waiting("ContainerCreating", "")), 5), Verdict::Waiting(None));
}

#[test]
fn a_running_container_has_started() {
    let p = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "wp-01", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}));
    assert_eq!(run(&p, 500), Verdict::Started);
}

#[test]
fn exit_codes_are_exact() {
    let s = state_of(run(&pod(terminated(0, "Completed")), 0));
    assert_eq!((s.exit_code, s.exited, s.oom_killed, s.error), (0, true, false, None));
    let s = state_of(run(&pod(terminated(3, "Error")), 0));
    assert_eq!((s.exit_code, s.exited, s.oom_killed, s.error), (3, true, false, None));
}

#[test]
fn oom_killed_is_reported() {
    let s = state_of(run(&pod(terminated(137, "OOMKilled")), 0));
    assert_eq!((s.exit_code, s.oom_killed), (137, true));
}

#[test]
fn terminated_waits_for_the_final_phase_which_carries_the_reason() {
    // The kubelet may publish the container's end before the pod's phase and reason.
    let p = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "wp-01", "state": {"terminated": {"exitCode": 137}}}]}));
    assert_eq!(run(&p, 0), Verdict::Started);
    let p = pod(json!({"phase": "Failed", "reason": "Evicted", "message": "low memory",
        "containerStatuses": [{"name": "wp-01", "state": {"terminated": {"exitCode": 137}}}]}));
    let s = state_of(run(&p, 0));
    assert_eq!((s.exit_code, s.error.as_deref()), (137, Some("Evicted: low memory")));
}

#[test]
fn succeeded_without_terminated_state_keeps_waiting() {
    let p = pod(json!({"phase": "Succeeded",
        "containerStatuses": [{"name": "wp-01", "state": {"running": {}}}]}));
    assert_eq!(run(&p, 0), Verdict::Waiting(None));
}

#[test]
fn the_step_container_is_found_by_name() {
    let mut v = terminated(4, "Error");
    v["containerStatuses"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "sidecar", "state": {"terminated": {"exitCode": 0}}}));
    assert_eq!(state_of(run(&pod(v), 0)).exit_code, 4);
}

#[test]
fn invalid_image_fails_at_once() {
    let p = pod(waiting("InvalidImageName", "couldn't parse image name \"UPPER:case\""));
    let Verdict::FailedToStart(why) = run(&p, 0) else {
        panic!()
    };
    assert_eq!(why.reason, "InvalidImageName");
    assert!(why.message.contains("couldn't parse"));
    let p = pod(waiting("ErrImageNeverPull", "image not present"));
    assert!(matches!(run(&p, 0), Verdict::FailedToStart(_)));
}

#[test]
fn pull_errors_fail_after_the_grace() {
    for reason in ["ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"] {
        let p = pod(waiting(reason, "details"));
        assert_eq!(
            run(&p, 29),
            Verdict::Waiting(Some(Why::new(reason, "details"))),
            "{reason}"
        );
        assert_eq!(
            run(&p, 30),
            Verdict::FailedToStart(Why::new(reason, "details")),
            "{reason}"
        );
    }
}

#[test]
fn init_container_pull_errors_count_too() {
    let p = pod(json!({"phase": "Pending",
        "initContainerStatuses": [{"name": "init-wp-01", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "back-off"}}}],
        "containerStatuses": [{"name": "wp-01", "state": {"waiting": {"reason": "PodInitializing"}}}]}));
    assert_eq!(
        run(&p, 31),
        Verdict::FailedToStart(Why::new("ImagePullBackOff", "back-off"))
    );
}

#[test]
fn failed_init_container_fails_to_start() {
    let p = pod(json!({"phase": "Failed",
        "initContainerStatuses": [{"name": "init-wp-01", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
        "containerStatuses": [{"name": "wp-01", "state": {"waiting": {"reason": "PodInitializing"}}}]}));
    let Verdict::FailedToStart(why) = run(&p, 0) else {
        panic!()
    };
    assert_eq!(why.reason, "Error");
    assert!(why.message.contains("init-wp-01"), "{why}");
}

#[test]
fn unschedulable_waits_then_fails_with_the_schedulers_message() {
    let msg = "0/3 nodes are available: 3 Insufficient cpu.";
    let p = pod(json!({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]}));
    assert_eq!(run(&p, 119), Verdict::Waiting(Some(Why::new("Unschedulable", msg))));
    let Verdict::FailedToStart(why) = run(&p, 120) else {
        panic!()
    };
    assert_eq!(why.reason, "Unschedulable");
    assert!(why.message.starts_with(msg), "{why}");
    assert!(why.message.contains("120s"), "{why}");
}

#[test]
fn unbound_pvc_is_reported_by_the_scheduler_condition() {
    let msg = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.";
    let p = pod(json!({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]}));
    let Verdict::FailedToStart(why) = run(&p, 500) else {
        panic!()
    };
    assert!(why.message.contains("unbound immediate PersistentVolumeClaims"));
}

#[test]
fn stuck_in_container_creating_fails_at_the_start_timeout() {
    // A volume that never mounts leaves the container in ContainerCreating; the events say why.
    let p = pod(waiting("ContainerCreating", ""));
    assert_eq!(run(&p, 119), Verdict::Waiting(None));
    let Verdict::FailedToStart(why) = run(&p, 121) else {
        panic!()
    };
    assert_eq!(why.reason, "StartTimeout");
}

#[test]
fn eviction_is_an_error_with_its_reason() {
    let p = pod(json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}));
    let s = state_of(run(&p, 0));
    assert!(!s.exited);
    assert_ne!(s.exit_code, 0);
    assert_eq!(
        s.error.as_deref(),
        Some("Evicted: The node was low on resource: memory.")
    );
    // Evicted after the container was killed: the exit code is kept, the error still set.
    let mut v = terminated(137, "Error");
    v["reason"] = json!("Evicted");
    v["message"] = json!("low on memory");
    let s = state_of(run(&pod(v), 0));
    assert_eq!((s.exit_code, s.error.as_deref()), (137, Some("Evicted: low on memory")));
}

#[test]
fn deadline_exceeded_is_an_error() {
    let p = pod(json!({"phase": "Failed", "reason": "DeadlineExceeded",
        "message": "Pod was active on the node longer than the specified deadline"}));
    let s = state_of(run(&p, 0));
    assert!(s.error.unwrap().starts_with("DeadlineExceeded: "));
}

#[test]
fn a_lost_node_is_an_error() {
    let p = pod(json!({"phase": "Unknown",
        "containerStatuses": [{"name": "wp-01", "state": {"running": {}}}]}));
    let s = state_of(run(&p, 0));
    assert!(s.error.unwrap().starts_with("NodeLost"));
    let p = pod(json!({"phase": "Running", "reason": "NodeLost", "message": "node n1 lost"}));
    assert_eq!(state_of(run(&p, 0)).error.as_deref(), Some("NodeLost: node n1 lost"));
}

#[test]
fn a_disruption_says_who_took_the_pod_and_why() {
    let cond = |reason: &str, message: &str| {
        json!({"phase": "Running",
            "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message}],
            "containerStatuses": [{"name": "wp-01", "state": {"running": {}}}]})
    };
    // kubectl drain (the eviction API), while the step runs.
    let mut p = pod(cond("EvictionByEvictionAPI", "Eviction API: evicting"));
    p.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
    let s = state_of(run(&p, 0));
    assert_eq!(
        s.error.as_deref(),
        Some("EvictionByEvictionAPI: Eviction API: evicting")
    );
    // An unreachable node's pods are deleted by the taint manager.
    let mut p = pod(cond(
        "DeletionByTaintManager",
        "Taint manager: deleting due to NoExecute taint",
    ));
    p.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
    let s = state_of(run(&p, 0));
    assert!(s.error.unwrap().starts_with("DeletionByTaintManager: Taint manager"));
    // A condition that is not True says nothing.
    let mut p = pod(json!({"phase": "Running",
        "conditions": [{"type": "DisruptionTarget", "status": "False", "reason": "PreemptionByScheduler"}]}));
    p.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
    assert!(state_of(run(&p, 0)).error.unwrap().starts_with("Deleted"));
    // Failed with no container result, only the condition (the kubelet terminated it).
    let p = pod(json!({"phase": "Failed",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                        "message": "Pod was terminated in response to imminent node shutdown."}]}));
    assert!(
        state_of(run(&p, 0))
            .error
            .unwrap()
            .starts_with("TerminationByKubelet: Pod was terminated")
    );
}

#[test]
fn deleted_by_someone_else_is_never_a_success() {
    let mut p = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "wp-01", "state": {"running": {}}}]}));
    p.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
    let s = state_of(run(&p, 0));
    assert!(s.error.unwrap().starts_with("Deleted"));
    // Gone while running, killed by SIGTERM on the way: the code is kept, the error stays.
    let p = pod(terminated(143, "Error"));
    let s = state_of(classify(
        Observation {
            gone: true,
            ..obs(&p, 0)
        },
        &limits(),
    ));
    assert_eq!(s.exit_code, 143);
    assert!(s.error.is_some());
    // Gone while pending.
    let p = pod(json!({"phase": "Pending"}));
    let v = classify(
        Observation {
            gone: true,
            ..obs(&p, 0)
        },
        &limits(),
    );
    assert!(matches!(v, Verdict::Finished { started: false, .. }), "{v:?}");
}

#[test]
fn a_success_deleted_afterwards_stays_a_success() {
    let p = pod(terminated(0, "Completed"));
    let s = state_of(classify(
        Observation {
            gone: true,
            ..obs(&p, 0)
        },
        &limits(),
    ));
    assert_eq!((s.exit_code, s.error), (0, None));
}

#[test]
fn deleted_by_us_ends_with_exit_zero() {
    // Detached steps and services end when DestroyWorkflow deletes them (Woodpecker contract).
    let p = pod(terminated(143, "Error"));
    let o = Observation {
        gone: true,
        deleted_by_us: true,
        ..obs(&p, 0)
    };
    let s = state_of(classify(o, &limits()));
    assert_eq!((s.exit_code, s.exited, s.error), (0, true, None));
}

#[test]
fn infrastructure_reasons_are_told_apart_from_the_steps_own() {
    assert_eq!(
        infra_reason("Evicted: The node was low on resource: memory."),
        Some("Evicted")
    );
    assert_eq!(
        infra_reason("DeletionByTaintManager: Taint manager: deleting due to NoExecute taint"),
        Some("DeletionByTaintManager")
    );
    for not in [
        "ErrImagePull: not found",
        "Unschedulable: 0/1 nodes",
        "Deleted: the pod was deleted",
        "OOMKilled",
    ] {
        assert_eq!(infra_reason(not), None, "{not}");
    }
}
