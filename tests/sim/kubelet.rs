//! Kubelet transitions for each script rule: phases, container states, conditions, events.

use std::time::Duration;

use serde_json::{Value, json};
use sim::{ScriptRule, SimConfig};

use super::{NS, event_reasons, phase, pod, pods_path};
use crate::common::{Raw, fast_config, start_sim, start_sim_with, wait_for, wait_pod};

fn main_state(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]["state"]
}

fn condition<'a>(p: &'a Value, kind: &str) -> &'a str {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn a_pod_goes_pending_running_succeeded_with_statuses_conditions_and_events() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("ok").logs(["x"]).every(Duration::from_millis(150)));
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("ok")).await;
    let p = wait_pod(&sim, NS, "ok", "ContainerCreating", |p| {
        main_state(p)["waiting"]["reason"] == "ContainerCreating"
    })
    .await;
    assert_eq!(phase(&p), "Pending");
    assert_eq!(condition(&p, "PodScheduled"), "True");
    let p = wait_pod(&sim, NS, "ok", "Running", |p| phase(p) == "Running").await;
    assert_eq!(sim.pod_ended_at(NS, "ok"), None, "running, not ended");
    assert_eq!(condition(&p, "Ready"), "True");
    assert!(main_state(&p)["running"]["startedAt"].is_string());
    assert!(
        p["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://")
    );
    let p = wait_pod(&sim, NS, "ok", "Succeeded", |p| phase(p) == "Succeeded").await;
    let seen = std::time::Instant::now();
    let ended = sim
        .pod_ended_at(NS, "ok")
        .expect("the end of a Succeeded pod is recorded");
    assert!(ended <= seen, "recorded before the final status was written");
    let t = &main_state(&p)["terminated"];
    assert_eq!(
        (t["exitCode"].as_i64(), t["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    assert!(t["finishedAt"].is_string() && t["startedAt"].is_string());
    assert_eq!(condition(&p, "Ready"), "False");
    assert_eq!(
        event_reasons(&sim, "ok"),
        ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    );
    raw.delete(&format!("{}/ok", pods_path()), None).await;
    wait_for("pod ok removed", 10, || {
        let gone = sim.object("pods", NS, "ok").is_none().then_some(());
        async move { gone }
    })
    .await;
    assert_eq!(sim.pod_ended_at(NS, "ok"), None, "forgotten with the pod");
    sim.shutdown().await;
}

#[tokio::test]
async fn exit_codes_init_containers_and_oom() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("fails").exit(3));
    sim.script(ScriptRule::name("oom").oom_killed());
    sim.script(ScriptRule::image("init-bad:1").exit(1));
    let raw = Raw::new(&sim);
    for n in ["fails", "oom"] {
        raw.post(&pods_path(), &pod(n)).await;
    }
    let p = wait_pod(&sim, NS, "fails", "Failed", |p| phase(p) == "Failed").await;
    assert_eq!(
        (
            main_state(&p)["terminated"]["exitCode"].as_i64(),
            main_state(&p)["terminated"]["reason"].as_str()
        ),
        (Some(3), Some("Error"))
    );
    let p = wait_pod(&sim, NS, "oom", "Failed", |p| phase(p) == "Failed").await;
    assert_eq!(
        (
            main_state(&p)["terminated"]["exitCode"].as_i64(),
            main_state(&p)["terminated"]["reason"].as_str()
        ),
        (Some(137), Some("OOMKilled"))
    );

    // Init containers run first; a failing one fails the pod and the main container never starts.
    let mut good = pod("init-ok");
    good["spec"]["initContainers"] = json!([{"name": "setup", "image": "init:1"}]);
    let mut bad = pod("init-bad");
    bad["spec"]["initContainers"] = json!([{"name": "setup", "image": "init-bad:1"}]);
    raw.post(&pods_path(), &good).await;
    raw.post(&pods_path(), &bad).await;
    let p = wait_pod(&sim, NS, "init-ok", "Succeeded", |p| phase(p) == "Succeeded").await;
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(condition(&p, "Initialized"), "True");
    let p = wait_pod(&sim, NS, "init-bad", "Failed", |p| phase(p) == "Failed").await;
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        1
    );
    assert!(main_state(&p)["waiting"].is_object(), "{p}");
    sim.shutdown().await;
}

#[tokio::test]
async fn image_pull_failures_and_invalid_names() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("pull").image_pull_failure());
    sim.script(ScriptRule::name("inv").invalid_image());
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("pull")).await;
    raw.post(&pods_path(), &pod("inv")).await;
    wait_pod(&sim, NS, "pull", "ErrImagePull", |p| {
        main_state(p)["waiting"]["reason"] == "ErrImagePull"
    })
    .await;
    let p = wait_pod(&sim, NS, "pull", "ImagePullBackOff", |p| {
        main_state(p)["waiting"]["reason"] == "ImagePullBackOff"
    })
    .await;
    assert_eq!(phase(&p), "Pending");
    let reasons = event_reasons(&sim, "pull");
    assert!(
        reasons.contains(&"BackOff".to_string()) && reasons.contains(&"Failed".to_string()),
        "{reasons:?}"
    );
    let p = wait_pod(&sim, NS, "inv", "InvalidImageName", |p| {
        main_state(p)["waiting"]["reason"] == "InvalidImageName"
    })
    .await;
    assert_eq!(phase(&p), "Pending");
    // As a kubelet, it pulls again after the back-off, fails the same way and backs off again:
    // still Pending, never Running.
    // A repeat is the first event's count going up, as client-go's correlator records it.
    let count = |reason: &str| -> Vec<i64> {
        sim.objects("events", Some(NS))
            .iter()
            .filter(|e| e["involvedObject"]["name"] == "pull" && e["reason"] == reason)
            .map(|e| e["count"].as_i64().unwrap())
            .collect()
    };
    crate::common::wait_for("a second pull of the missing image", 10, || async {
        (count("Pulling").iter().sum::<i64>() >= 2 && count("BackOff").iter().sum::<i64>() >= 2).then_some(())
    })
    .await;
    assert_eq!(count("Pulling").len(), 1, "one Pulling event, counted");
    assert_eq!(count("BackOff").len(), 1, "one BackOff event, counted");
    let p = sim.object("pods", NS, "pull").unwrap();
    let reason = main_state(&p)["waiting"]["reason"].clone();
    assert!(reason == "ErrImagePull" || reason == "ImagePullBackOff", "{p}");
    assert_eq!(phase(&p), "Pending");
    assert!(p["status"]["containerStatuses"][0]["state"]["running"].is_null(), "{p}");
    sim.shutdown().await;
}

#[tokio::test]
async fn unschedulable_evicted_and_config_errors() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("nosched").unschedulable());
    sim.script(ScriptRule::name("evict").logs(["working"]).evicted());
    sim.script(ScriptRule::name("cfg").config_error("secret \"x\" not found"));
    let raw = Raw::new(&sim);
    for n in ["nosched", "evict", "cfg"] {
        raw.post(&pods_path(), &pod(n)).await;
    }
    let p = wait_pod(&sim, NS, "nosched", "Unschedulable", |p| {
        condition(p, "PodScheduled") == "False"
    })
    .await;
    let c = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .unwrap()
        .clone();
    assert_eq!(c["reason"], "Unschedulable");
    assert!(p["spec"]["nodeName"].is_null());
    crate::common::wait_for("FailedScheduling", 5, || {
        let r = event_reasons(&sim, "nosched");
        async move { r.contains(&"FailedScheduling".to_string()).then_some(()) }
    })
    .await;
    let p = wait_pod(&sim, NS, "evict", "Evicted", |p| phase(p) == "Failed").await;
    assert_eq!(p["status"]["reason"], "Evicted");
    let p = wait_pod(&sim, NS, "cfg", "CreateContainerConfigError", |p| {
        main_state(p)["waiting"]["reason"] == "CreateContainerConfigError"
    })
    .await;
    assert_eq!(main_state(&p)["waiting"]["message"], "secret \"x\" not found");

    // A real missing secret blocks the start until the secret appears.
    let mut p = pod("needs-secret");
    p["spec"]["containers"][0]["env"] =
        json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "later", "key": "t"}}}]);
    raw.post(&pods_path(), &p).await;
    let p = wait_pod(&sim, NS, "needs-secret", "config error", |p| {
        main_state(p)["waiting"]["reason"] == "CreateContainerConfigError"
    })
    .await;
    assert_eq!(main_state(&p)["waiting"]["message"], "secret \"later\" not found");
    raw.post(
        &format!("/api/v1/namespaces/{NS}/secrets"),
        &json!({"metadata": {"name": "later"}, "stringData": {"t": "v"}}),
    )
    .await;
    wait_pod(&sim, NS, "needs-secret", "Succeeded", |p| phase(p) == "Succeeded").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn services_run_until_deleted_and_deadlines_fail_pods() {
    let sim = start_sim().await;
    sim.script(ScriptRule::prefix("svc-").run_until_deleted());
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("svc-db")).await;
    // So does a pod with the configured `run_until_deleted_label` (the tests' config: `service`).
    let mut labelled = pod("wp-svc-1-cache");
    labelled["metadata"]["labels"] = json!({"service": "cache"});
    raw.post(&pods_path(), &labelled).await;
    let mut dl = pod("deadline");
    dl["spec"]["activeDeadlineSeconds"] = json!(1);
    sim.script(ScriptRule::name("deadline").run_until_deleted());
    raw.post(&pods_path(), &dl).await;
    wait_pod(&sim, NS, "svc-db", "Running", |p| phase(p) == "Running").await;
    wait_pod(&sim, NS, "wp-svc-1-cache", "Running", |p| phase(p) == "Running").await;
    let p = wait_pod(&sim, NS, "deadline", "DeadlineExceeded", |p| phase(p) == "Failed").await;
    assert_eq!(p["status"]["reason"], "DeadlineExceeded");
    // A second after they started (the deadline), both still run: a pod without a rule exits
    // within a few 5 ms ticks.
    assert_eq!(phase(&sim.object("pods", NS, "svc-db").unwrap()), "Running");
    assert_eq!(phase(&sim.object("pods", NS, "wp-svc-1-cache").unwrap()), "Running");
    sim.shutdown().await;
}

#[tokio::test]
async fn without_the_setting_a_labelled_pod_is_an_ordinary_pod() {
    let sim = start_sim_with(SimConfig {
        run_until_deleted_label: None,
        ..fast_config()
    })
    .await;
    let mut labelled = pod("wp-svc-1-cache");
    labelled["metadata"]["labels"] = json!({"service": "cache"});
    Raw::new(&sim).post(&pods_path(), &labelled).await;
    wait_pod(&sim, NS, "wp-svc-1-cache", "Succeeded", |p| phase(p) == "Succeeded").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn node_selectors_must_match_the_node() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let mut fits = pod("fits");
    fits["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
    let mut nofit = pod("nofit");
    nofit["spec"]["nodeSelector"] = json!({"disktype": "ssd"});
    raw.post(&pods_path(), &fits).await;
    raw.post(&pods_path(), &nofit).await;
    wait_pod(&sim, NS, "fits", "Succeeded", |p| phase(p) == "Succeeded").await;
    let p = wait_pod(&sim, NS, "nofit", "unschedulable", |p| {
        condition(p, "PodScheduled") == "False"
    })
    .await;
    let msg = p["status"]["conditions"][0]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("didn't match Pod's node affinity/selector"), "{msg}");
    // Labelling the node lets it schedule.
    let r = raw
        .call(
            http::Method::PATCH,
            "/api/v1/nodes/sim-node-1",
            Some(&json!({"metadata": {"labels": {"disktype": "ssd"}}})),
        )
        .await;
    assert_eq!(r.status, 200);
    wait_pod(&sim, NS, "nofit", "Succeeded", |p| phase(p) == "Succeeded").await;
    // Nodes cannot be created through the API.
    assert_eq!(
        raw.post("/api/v1/nodes", &json!({"metadata": {"name": "n2"}}))
            .await
            .status,
        405
    );
    sim.shutdown().await;
}

/// Paths of JSON nulls, except the ones real apiservers send (`lastProbeTime`).
fn nulls(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::Null if !path.ends_with(".lastProbeTime") => out.push(path),
        Value::Object(m) => m.iter().for_each(|(k, x)| nulls(x, format!("{path}.{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| nulls(x, format!("{path}[{i}]"), out)),
        _ => {}
    }
}

#[tokio::test]
async fn stored_objects_never_gain_null_fields() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("held").run_until_deleted());
    let raw = Raw::new(&sim);
    let pvcs = format!("/api/v1/namespaces/{NS}/persistentvolumeclaims");
    raw.post(&pvcs, &json!({"metadata": {"name": "ws"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).await;
    let mut p = pod("held");
    p["spec"]["volumes"] = json!([{"name": "ws", "persistentVolumeClaim": {"claimName": "ws"}}]);
    raw.post(&pods_path(), &p).await;
    raw.post(&pods_path(), &pod("plain")).await;
    wait_pod(&sim, NS, "held", "Running", |p| phase(p) == "Running").await;
    wait_pod(&sim, NS, "plain", "Succeeded", |p| phase(p) == "Succeeded").await;
    raw.delete(&format!("{pvcs}/ws"), None).await;
    let mut found = Vec::new();
    for plural in [
        "pods",
        "persistentvolumeclaims",
        "events",
        "namespaces",
        "nodes",
        "storageclasses",
    ] {
        for o in sim.objects(plural, None) {
            nulls(
                &o,
                format!("{plural}/{}", o["metadata"]["name"].as_str().unwrap_or("")),
                &mut found,
            );
        }
    }
    assert!(found.is_empty(), "null fields: {found:?}");
    sim.shutdown().await;
}
