//! Abnormal ends: OOMKilled, eviction, the deadline backstop and a pod deleted from outside are
//! reported as such, never as a silent success.

use sim::ScriptRule;
use woodpecker_k8s_agent::backend::Backend;

use super::harness::*;

#[tokio::test]
async fn oom_killed_is_reported_as_such() {
    let h = harness().await;
    h.sim
        .script(ScriptRule::image("t/oom").logs(["allocating"]).oom_killed());
    let s = step("mem", "t/oom", "13");
    let conf = workflow("13", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "13").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "13").await;
    assert_eq!(lines, ["allocating"]);
    assert!(state.oom_killed, "{state:?}");
    assert_eq!(state.exit_code, 137);
    h.backend.destroy_workflow(&conf, "13").await.unwrap();
    assert_clean(&h.sim, "13").await;
}

#[tokio::test]
async fn a_pod_deleted_from_outside_is_an_error_not_a_success() {
    let h = harness().await;
    h.sim
        .script(ScriptRule::image("t/forever").logs(["started"]).run_until_deleted());
    let s = step("victim", "t/forever", "19");
    let conf = workflow("19", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "19").await.unwrap();
    h.backend.start_step(&s, "19").await.unwrap();
    let mut logs = h.backend.tail_step(&s, "19").await.unwrap();
    let first = logs.recv().await.expect("a first line");
    assert_eq!(&first[..], b"started");
    h.sim.delete_pod_externally(NS, &pod_name(&s));
    while logs.recv().await.is_some() {}
    let state = h.backend.wait_step(&s, "19").await.unwrap();
    h.backend.destroy_step(&s, "19").await.unwrap();
    let error = state.error.expect("deleted from outside is an error");
    assert!(error.starts_with("Deleted"), "{error}");
    h.backend.destroy_workflow(&conf, "19").await.unwrap();
    assert_clean(&h.sim, "19").await;
}

/// `kubectl drain` evicts through the API: the step ends at once, as an error that says so.
#[tokio::test]
async fn a_drained_node_evicts_the_step_with_that_reason() {
    let h = harness().await;
    h.sim
        .script(ScriptRule::image("t/drained").logs(["building"]).run_until_deleted());
    let s = step("drained", "t/drained", "24");
    let conf = workflow("24", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "24").await.unwrap();
    h.backend.start_step(&s, "24").await.unwrap();
    let mut logs = h.backend.tail_step(&s, "24").await.unwrap();
    assert_eq!(&logs.recv().await.expect("a first line")[..], b"building");
    evict(&h, &pod_name(&s)).await;
    let state = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while logs.recv().await.is_some() {}
        h.backend.wait_step(&s, "24").await.unwrap()
    })
    .await
    .expect("the evicted step ended");
    let error = state.error.expect("an eviction is an error");
    assert_eq!(error, "EvictionByEvictionAPI: Eviction API: evicting");
    h.backend.destroy_workflow(&conf, "24").await.unwrap();
    assert_clean(&h.sim, "24").await;
}

/// `POST .../pods/{pod}/eviction`, as `kubectl drain` does.
async fn evict(h: &H, pod: &str) {
    let eviction = serde_json::json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": pod, "namespace": NS}});
    let reply = crate::common::Raw::new(&h.sim)
        .post(&format!("/api/v1/namespaces/{NS}/pods/{pod}/eviction"), &eviction)
        .await;
    assert_eq!(reply.status, 201);
}

/// Evicts the step's pod once the sim has bound it, before its container starts.
async fn evict_while_pending(h: &H, pod: &str) {
    crate::common::wait_pod(&h.sim, NS, pod, "bound", |p| p["spec"]["nodeName"].is_string()).await;
    evict(h, pod).await;
}

/// With INFRA_RETRIES, a pod the cluster takes away before the command starts is replaced,
/// and the step runs; without, it is an error naming the reason.
#[tokio::test]
async fn a_pod_evicted_before_it_started_is_replaced_when_retries_are_on() {
    for (retries, task) in [("1", "25"), ("0", "26")] {
        let h = harness_with(&[("STORAGE_RWX", "false"), ("INFRA_RETRIES", retries)]).await;
        h.sim.script(
            ScriptRule::image("t/slow-start")
                .logs(["ran"])
                .start_delay(std::time::Duration::from_millis(1500)),
        );
        let s = step("slow-start", "t/slow-start", task);
        let conf = workflow(task, std::slice::from_ref(&s));
        h.backend.setup_workflow(&conf, task).await.unwrap();
        h.backend.start_step(&s, task).await.unwrap();
        let pod = pod_name(&s);
        let (_, (lines, state)) = tokio::join!(evict_while_pending(&h, &pod), async {
            let lines = drain(&h.backend, &s, task).await;
            (lines, h.backend.wait_step(&s, task).await.unwrap())
        });
        let creates = h
            .sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/pods") && r.status == 201)
            .count();
        if retries == "1" {
            assert_eq!((state.exit_code, state.error.as_deref()), (0, None), "{lines:?}");
            assert_eq!(lines.last().map(String::as_str), Some("ran"), "{lines:?}");
            assert!(
                lines.iter().any(
                    |l| l.contains("taken away before the step started (EvictionByEvictionAPI")
                        && l.contains("retry 1 of 1")
                ),
                "{lines:?}"
            );
            assert_eq!(creates, 2, "one replacement pod");
        } else {
            assert_eq!(
                state.error.as_deref(),
                Some("EvictionByEvictionAPI: Eviction API: evicting")
            );
            assert!(!lines.iter().any(|l| l == "ran"), "{lines:?}");
            assert_eq!(creates, 1);
        }
        h.backend.destroy_step(&s, task).await.unwrap();
        h.backend.destroy_workflow(&conf, task).await.unwrap();
        assert_clean(&h.sim, task).await;
    }
}

#[tokio::test]
async fn eviction_is_an_error_with_its_reason() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/evicted").logs(["working"]).evicted());
    let s = step("evicted", "t/evicted", "22");
    let conf = workflow("22", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "22").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "22").await;
    assert_eq!(lines.first().map(String::as_str), Some("working"));
    let error = state.error.expect("eviction is an error");
    assert!(error.starts_with("Evicted"), "{error}");
    h.backend.destroy_workflow(&conf, "22").await.unwrap();
    assert_clean(&h.sim, "22").await;
}

#[tokio::test]
async fn the_active_deadline_backstop_is_an_error_with_its_reason() {
    let h = harness_with(&[("STORAGE_RWX", "false"), ("POD_ACTIVE_DEADLINE", "1")]).await;
    h.sim
        .script(ScriptRule::image("t/forever").logs(["spinning"]).run_until_deleted());
    let s = step("hang", "t/forever", "24");
    let conf = workflow("24", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "24").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "24").await;
    assert_eq!(lines.first().map(String::as_str), Some("spinning"));
    let error = state.error.expect("an error");
    assert!(error.starts_with("DeadlineExceeded"), "{error}");
    h.backend.destroy_workflow(&conf, "24").await.unwrap();
    assert_clean(&h.sim, "24").await;
}
