//! Pods that cannot start: each fails the step with the Kubernetes reason, bounded in time,
//! with the reason and the Warning events in the step log.

use std::time::Duration;

use sim::ScriptRule;
use woodpecker_k8s_agent::backend::Backend;

use super::harness::*;

#[tokio::test]
async fn an_image_pull_failure_fails_after_the_grace_with_its_reason() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/missing").image_pull_failure());
    let s = step("pull", "t/missing", "14");
    let conf = workflow("14", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "14").await.unwrap();
    let t0 = std::time::Instant::now();
    let (lines, state) = run_step(&h.backend, &s, "14").await;
    let error = state.error.clone().expect("an error");
    assert!(
        error.contains("ErrImagePull") || error.contains("ImagePullBackOff"),
        "{error}"
    );
    assert_ne!(state.exit_code, 0);
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "failed after the grace, not the start timeout"
    );
    assert!(lines.iter().any(|l| l.contains("could not start")), "{lines:#?}");
    let warning = format!("[kubernetes] pod {}: Failed", pod_name(&s));
    assert!(
        lines.iter().any(|l| l.starts_with(&warning)),
        "the pull's Warning event: {lines:#?}"
    );
    h.backend.destroy_workflow(&conf, "14").await.unwrap();
    assert_clean(&h.sim, "14").await;
}

#[tokio::test]
async fn an_unschedulable_pod_fails_at_the_start_timeout_with_the_reason_in_the_log() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/huge").unschedulable());
    let s = step("big", "t/huge", "15");
    let conf = workflow("15", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "15").await.unwrap();
    let t0 = std::time::Instant::now();
    let (lines, state) = run_step(&h.backend, &s, "15").await;
    assert!(t0.elapsed() >= limits().start_timeout);
    let error = state.error.expect("an error");
    assert!(error.contains("Unschedulable"), "{error}");
    assert!(
        lines.iter().any(|l| l.contains("FailedScheduling")),
        "the Warning event is in the log: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("is waiting: Unschedulable")),
        "{lines:#?}"
    );
    h.backend.destroy_workflow(&conf, "15").await.unwrap();
    assert_clean(&h.sim, "15").await;
}

#[tokio::test]
async fn an_unbindable_volume_is_reported_not_waited_on() {
    // Woodpecker's default RWX workspace on k3s's local-path (RWO only) never binds.
    let h = harness_with(&[]).await;
    h.sim.script(ScriptRule::image("t/pass").logs(["never"]));
    let s = step("clone", "t/pass", "16");
    let conf = workflow("16", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "16").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "16").await;
    assert!(state.error.is_some(), "{state:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("persistentvolumeclaim") && l.contains("ProvisioningFailed")),
        "the volume's events are in the log: {lines:#?}"
    );
    h.backend.destroy_workflow(&conf, "16").await.unwrap();
    assert_clean(&h.sim, "16").await;
}

#[tokio::test]
async fn a_missing_secret_fails_after_the_grace_with_the_kubelets_message() {
    let h = harness().await;
    let msg = "secret \"registry-token\" not found";
    h.sim.script(ScriptRule::image("t/needs-secret").config_error(msg));
    let s = step("deploy", "t/needs-secret", "23");
    let conf = workflow("23", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "23").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "23").await;
    let error = state.error.expect("an error");
    assert!(
        error.contains("CreateContainerConfigError") && error.contains(msg),
        "{error}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("is waiting: CreateContainerConfigError")),
        "{lines:#?}"
    );
    h.backend.destroy_workflow(&conf, "23").await.unwrap();
    assert_clean(&h.sim, "23").await;
}

#[tokio::test]
async fn a_watch_that_never_works_is_named_not_the_pod() {
    use sim::{FaultReply, RequestMatch, Times};
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/pass").logs(["fine"]));
    // Every list and watch of pods fails (as when RBAC forbids them); creating pods works.
    let pods = RequestMatch::path("/namespaces/woodpecker/pods").method("GET");
    h.sim.faults().fail(pods, FaultReply::Internal, Times::Always);
    let s = step("blind", "t/pass", "25");
    let conf = workflow("25", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "25").await.unwrap();
    let (_, state) = run_step(&h.backend, &s, "25").await;
    let error = state.error.expect("an error");
    assert!(
        error.contains("NotWatched") && error.contains("list and watch pods"),
        "{error}"
    );
    h.sim.faults().clear();
    h.backend.destroy_workflow(&conf, "25").await.unwrap();
    assert_clean(&h.sim, "25").await;
}
