//! A lost node as a sim event: the control plane's view (Node Unknown and tainted, pods not
//! Ready, the taint eviction controller's deletion, new pods unschedulable, the pod garbage
//! collector once the Node is deleted), and a step on it through the backend: it fails with a
//! reason that says so, and nothing of the workflow is left once the machine is gone.

use std::time::Duration;

use serde_json::json;
use sim::ScriptRule;
use woodpecker_k8s_agent::backend::Backend;

use super::{NS, event_reasons, phase, pod, pods_path};
use crate::common::{Raw, start_sim, wait_for, wait_pod};
use crate::lifecycle::harness::{self, assert_clean, pod_name, step, workflow};

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

fn condition<'a>(o: &'a serde_json::Value, t: &str) -> &'a serde_json::Value {
    o["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == t))
        .unwrap_or(&serde_json::Value::Null)
}

#[tokio::test]
async fn a_lost_node_is_tainted_and_its_pods_are_deleted_by_the_taint_manager() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    sim.script(ScriptRule::name("busy").run_until_deleted());
    sim.script(ScriptRule::name("patient").run_until_deleted());
    assert_eq!(raw.post(&pods_path(), &pod("busy")).await.status, 201);
    let mut patient = pod("patient");
    patient["spec"]["tolerations"] =
        json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3600}]);
    assert_eq!(raw.post(&pods_path(), &patient).await.status, 201);
    for name in ["busy", "patient"] {
        wait_pod(&sim, NS, name, "Running", |p| condition(p, "Ready")["status"] == "True").await;
    }

    sim.lose_node();
    let node = sim.object("nodes", "", sim::NODE).unwrap();
    assert_eq!(condition(&node, "Ready")["status"], "Unknown", "{node}");
    assert_eq!(condition(&node, "Ready")["reason"], "NodeStatusUnknown");
    let taints: Vec<(&str, &str)> = node["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["effect"].as_str().unwrap()))
        .collect();
    assert_eq!(taints, [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]);

    // Without a toleration: deleted at once, and left Terminating (no kubelet confirms it).
    let busy = wait_pod(&sim, NS, "busy", "deleted by the taint manager", |p| {
        p["metadata"]["deletionTimestamp"].is_string()
    })
    .await;
    assert_eq!(condition(&busy, "Ready")["status"], "False");
    let d = condition(&busy, "DisruptionTarget");
    assert_eq!(
        (d["reason"].as_str(), d["message"].as_str()),
        (
            Some("DeletionByTaintManager"),
            Some("Taint manager: deleting due to NoExecute taint")
        )
    );
    assert_eq!(phase(&busy), "Running", "the last status the kubelet sent");
    let reasons = event_reasons(&sim, "busy");
    assert!(
        reasons.ends_with(&["NodeNotReady".to_string(), "TaintManagerEviction".to_string()]),
        "{reasons:?}"
    );
    // Tolerating for an hour: not Ready, but not deleted.
    let patient = sim.object("pods", NS, "patient").unwrap();
    assert_eq!(condition(&patient, "Ready")["status"], "False");
    assert!(patient["metadata"]["deletionTimestamp"].is_null());

    // The scheduler keeps new pods off the tainted node.
    assert_eq!(raw.post(&pods_path(), &pod("late")).await.status, 201);
    let late = wait_pod(&sim, NS, "late", "unschedulable", |p| {
        condition(p, "PodScheduled")["reason"] == "Unschedulable"
    })
    .await;
    let msg = condition(&late, "PodScheduled")["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
        "{msg}"
    );

    // The machine is gone: the pod garbage collector removes what was bound to it.
    sim.remove_lost_node();
    assert!(sim.object("nodes", "", sim::NODE).is_none());
    wait_for("the lost node's pods to go", 10, || {
        let left: Vec<String> = ["busy", "patient"]
            .iter()
            .filter(|n| sim.object("pods", NS, n).is_some())
            .map(|n| n.to_string())
            .collect();
        async move { left.is_empty().then_some(()) }
    })
    .await;
    let late = sim.object("pods", NS, "late").unwrap();
    assert!(
        late["spec"]["nodeName"].is_null() && phase(&late) == "Pending",
        "{late}"
    );
    sim.shutdown().await;
}

/// The step's pod is on the node that is lost: the backend reports the taint manager's
/// deletion as the step's error (not a success, not a hang), and once the machine is gone
/// nothing of the workflow is left.
#[tokio::test]
async fn a_step_on_a_lost_node_fails_with_the_reason_and_leaves_nothing() {
    let h = harness::harness().await;
    h.sim
        .script(ScriptRule::image("t/lost").logs(["building"]).run_until_deleted());
    let s = step("lost", "t/lost", "61");
    let conf = workflow("61", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "61").await.unwrap();
    h.backend.start_step(&s, "61").await.unwrap();
    let mut logs = h.backend.tail_step(&s, "61").await.unwrap();
    assert_eq!(&logs.recv().await.expect("a first line")[..], b"building");

    h.sim.lose_node();
    // The log stream of a pod on an unreachable node never ends: the backend gives it its
    // drain time (15 s) after the pod is known to be over, then reports.
    let state = tokio::time::timeout(Duration::from_secs(40), h.backend.wait_step(&s, "61"))
        .await
        .expect("the step on the lost node ended")
        .unwrap();
    let error = state.error.clone().expect("a lost node is an error");
    assert_eq!(
        error, "DeletionByTaintManager: Taint manager: deleting due to NoExecute taint",
        "{state:?}"
    );
    assert!(!state.oom_killed);
    // The log stream ends too (the backend stops following a pod it is done with).
    tokio::time::timeout(Duration::from_secs(30), async { while logs.recv().await.is_some() {} })
        .await
        .expect("the log stream of the lost step ended");
    h.backend.destroy_step(&s, "61").await.unwrap();
    h.backend.destroy_workflow(&conf, "61").await.unwrap();
    // Everything the agent made is gone or being deleted; the pod and the claim it holds wait
    // for a node that will not answer.
    let pod = h
        .sim
        .object("pods", NS, &pod_name(&s))
        .expect("Terminating on the lost node");
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    for plural in ["persistentvolumeclaims", "services", "secrets"] {
        for o in h.sim.objects(plural, Some(NS)) {
            assert!(o["metadata"]["deletionTimestamp"].is_string(), "{plural} left: {o}");
        }
    }
    h.sim.remove_lost_node();
    assert_clean(&h.sim, "61").await;
    h.sim.shutdown().await;
}
