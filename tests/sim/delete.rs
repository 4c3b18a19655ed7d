//! Deletion: grace periods, preconditions, garbage collection, namespaces, storage and PVC protection.

use serde_json::{Value, json};
use sim::ScriptRule;

use super::{NS, event_reasons, phase, pod, pods_path};
use crate::common::{Raw, start_sim, wait_for, wait_pod};

async fn gone(sim: &sim::Sim, plural: &str, ns: &str, name: &str) {
    wait_for(&format!("{plural}/{name} to disappear"), 10, || {
        let present = sim.object(plural, ns, name).is_some();
        async move { (!present).then_some(()) }
    })
    .await
}

/// Returns once the garbage collector has swept after everything done so far: a fresh owner is
/// deleted in the background and its dependent collected. What should survive a sweep and is
/// still there after this has survived one.
async fn gc_swept(sim: &sim::Sim, raw: &Raw) {
    let secrets = format!("/api/v1/namespaces/{NS}/secrets");
    let owner = raw
        .post(&secrets, &json!({"metadata": {"name": "barrier"}}))
        .await
        .json();
    let dep = owned_by(json!({"metadata": {"name": "barrier-dep"}}), &owner, "Secret");
    assert_eq!(raw.post(&secrets, &dep).await.status, 201);
    raw.delete(&format!("{secrets}/barrier"), None).await;
    gone(sim, "secrets", NS, "barrier-dep").await;
}

fn owned_by(mut obj: Value, owner: &Value, kind: &str) -> Value {
    obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": kind,
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]);
    obj
}

#[tokio::test]
async fn a_running_pod_terminates_gracefully_then_disappears() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("svc").run_until_deleted());
    let raw = Raw::new(&sim);
    let created = raw.post(&pods_path(), &pod("svc")).await.json();
    wait_pod(&sim, NS, "svc", "Running", |p| phase(p) == "Running").await;
    let r = raw
        .delete(&format!("{}/svc", pods_path()), Some(&json!({"gracePeriodSeconds": 5})))
        .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 5);
    gone(&sim, "pods", NS, "svc").await;
    assert!(event_reasons(&sim, "svc").contains(&"Killing".to_string()));
    // 404 on a second delete; a wrong UID precondition is a 409.
    assert_eq!(raw.delete(&format!("{}/svc", pods_path()), None).await.status, 404);
    raw.post(&pods_path(), &pod("svc")).await;
    let r = raw
        .delete(
            &format!("{}/svc", pods_path()),
            Some(&json!({"preconditions": {"uid": created["metadata"]["uid"]}})),
        )
        .await;
    assert_eq!(r.status, 409);
    sim.shutdown().await;
}

#[tokio::test]
async fn unscheduled_and_finished_pods_go_at_once_and_externally_deleted_pods_too() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("ns").unschedulable());
    sim.script(ScriptRule::name("ext").run_until_deleted());
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("ns")).await;
    raw.post(&pods_path(), &pod("done")).await;
    raw.post(&pods_path(), &pod("ext")).await;
    wait_pod(&sim, NS, "done", "Succeeded", |p| phase(p) == "Succeeded").await;
    raw.delete(&format!("{}/ns", pods_path()), None).await;
    raw.delete(&format!("{}/done", pods_path()), None).await;
    assert!(sim.object("pods", NS, "ns").is_none() && sim.object("pods", NS, "done").is_none());
    wait_pod(&sim, NS, "ext", "Running", |p| phase(p) == "Running").await;
    sim.delete_pod_externally(NS, "ext");
    assert!(sim.object("pods", NS, "ext").unwrap()["metadata"]["deletionTimestamp"].is_string());
    gone(&sim, "pods", NS, "ext").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn garbage_collection_background_foreground_and_orphan() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let secrets = format!("/api/v1/namespaces/{NS}/secrets");
    for (owner, policy) in [("bg", "Background"), ("fg", "Foreground"), ("or", "Orphan")] {
        let o = raw.post(&secrets, &json!({"metadata": {"name": owner}})).await.json();
        let dep = owned_by(json!({"metadata": {"name": format!("{owner}-dep")}}), &o, "Secret");
        assert_eq!(raw.post(&secrets, &dep).await.status, 201);
        let r = raw
            .delete(
                &format!("{secrets}/{owner}"),
                Some(&json!({"propagationPolicy": policy})),
            )
            .await;
        assert_eq!(r.status, 200);
        if policy == "Foreground" {
            assert!(
                r.json()["metadata"]["finalizers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f == "foregroundDeletion")
            );
        }
    }
    gone(&sim, "secrets", NS, "bg").await;
    gone(&sim, "secrets", NS, "bg-dep").await;
    gone(&sim, "secrets", NS, "fg-dep").await;
    gone(&sim, "secrets", NS, "fg").await;
    gone(&sim, "secrets", NS, "or").await;
    gc_swept(&sim, &raw).await;
    let orphan = sim
        .object("secrets", NS, "or-dep")
        .expect("orphaned dependent survives");
    assert!(orphan["metadata"]["ownerReferences"].is_null());
    sim.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_cascades() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("long").run_until_deleted());
    let raw = Raw::new(&sim);
    assert_eq!(
        raw.post("/api/v1/namespaces", &json!({"metadata": {"name": "tmp"}}))
            .await
            .status,
        201
    );
    raw.post("/api/v1/namespaces/tmp/pods", &pod("long")).await;
    // A finalizer holds the namespace in Terminating until it is removed.
    raw.post(
        "/api/v1/namespaces/tmp/secrets",
        &json!({"metadata": {"name": "s", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    wait_pod(&sim, "tmp", "long", "Running", |p| phase(p) == "Running").await;
    let r = raw.delete("/api/v1/namespaces/tmp", None).await;
    assert_eq!(
        (r.status, r.json()["status"]["phase"].as_str()),
        (200, Some("Terminating"))
    );
    let r = raw
        .post("/api/v1/namespaces/tmp/secrets", &json!({"metadata": {"name": "late"}}))
        .await;
    assert_eq!(r.status, 403);
    gone(&sim, "pods", "tmp", "long").await;
    assert!(sim.object("secrets", "tmp", "s").unwrap()["metadata"]["deletionTimestamp"].is_string());
    assert!(sim.object("namespaces", "", "tmp").is_some());
    let r = raw
        .call(
            http::Method::PATCH,
            "/api/v1/namespaces/tmp/secrets/s",
            Some(&json!({"metadata": {"finalizers": null}})),
        )
        .await;
    assert_eq!(r.status, 200);
    gone(&sim, "namespaces", "", "tmp").await;
    assert!(sim.objects("pods", Some("tmp")).is_empty() && sim.objects("secrets", Some("tmp")).is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn pvcs_bind_on_local_path_and_fail_like_k3s_otherwise() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let pvcs = format!("/api/v1/namespaces/{NS}/persistentvolumeclaims");
    let claim = |name: &str, mode: &str, class: Option<&str>| {
        let mut c = json!({"metadata": {"name": name}, "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(sc) = class {
            c["spec"]["storageClassName"] = json!(sc);
        }
        c
    };
    let r = raw.post(&pvcs, &claim("ok", "ReadWriteOnce", None)).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json()["spec"]["storageClassName"],
        "local-path",
        "the default class is filled in"
    );
    raw.post(&pvcs, &claim("rwx", "ReadWriteMany", Some("local-path")))
        .await;
    raw.post(&pvcs, &claim("nosc", "ReadWriteOnce", Some("fast-ssd"))).await;
    // local-path binds on first consumer: Pending, said by the volume controller, until a pod
    // that mounts it is placed; then provisioned on that node and Bound, and the pod runs.
    let ok = sim.object("persistentvolumeclaims", NS, "ok").unwrap();
    assert_eq!(ok["status"]["phase"], "Pending");
    assert!(!sim.claim_dir(NS, "ok").exists());
    let reasons = |name: &str| -> Vec<String> {
        sim.objects("events", Some(NS))
            .iter()
            .filter(|e| e["involvedObject"]["name"] == name)
            .map(|e| e["reason"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(reasons("ok"), ["WaitForFirstConsumer"]);
    let mut p = pod("uses-ok");
    p["spec"]["volumes"] = json!([{"name": "ws", "persistentVolumeClaim": {"claimName": "ok"}}]);
    raw.post(&pods_path(), &p).await;
    wait_pod(&sim, NS, "uses-ok", "scheduled", |p| p["spec"]["nodeName"].is_string()).await;
    let ok = sim.object("persistentvolumeclaims", NS, "ok").unwrap();
    assert_eq!(ok["status"]["phase"], "Bound");
    assert_eq!(
        ok["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
        "sim-node-1"
    );
    assert!(sim.claim_dir(NS, "ok").is_dir());
    assert_eq!(
        reasons("ok"),
        [
            "WaitForFirstConsumer",
            "ExternalProvisioning",
            "Provisioning",
            "ProvisioningSucceeded"
        ]
    );
    for n in ["rwx", "nosc"] {
        assert_eq!(
            sim.object("persistentvolumeclaims", NS, n).unwrap()["status"]["phase"],
            "Pending"
        );
        let evs = sim.objects("events", Some(NS));
        let ev = evs.iter().find(|e| e["involvedObject"]["name"] == n).expect("an event");
        assert_eq!(
            (ev["reason"].as_str(), ev["type"].as_str()),
            (Some("ProvisioningFailed"), Some("Warning"))
        );
    }
    // A pod using a Pending claim is unschedulable.
    let mut p = pod("uses-rwx");
    p["spec"]["volumes"] = json!([{"name": "ws", "persistentVolumeClaim": {"claimName": "rwx"}}]);
    raw.post(&pods_path(), &p).await;
    let p = wait_pod(&sim, NS, "uses-rwx", "unschedulable", |p| {
        p["status"]["conditions"][0]["reason"] == "Unschedulable"
    })
    .await;
    assert!(
        p["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unbound immediate PersistentVolumeClaims")
    );
    raw.delete(&format!("{pods_path}/uses-ok", pods_path = pods_path()), None)
        .await;
    raw.delete(&format!("{pvcs}/ok"), None).await;
    gone(&sim, "persistentvolumeclaims", NS, "ok").await;
    assert!(!sim.claim_dir(NS, "ok").exists());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_claim_in_use_is_held_by_pvc_protection_until_its_pod_is_gone() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("user").run_until_deleted());
    let raw = Raw::new(&sim);
    let pvcs = format!("/api/v1/namespaces/{NS}/persistentvolumeclaims");
    let claim = json!({"metadata": {"name": "ws"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let created = raw.post(&pvcs, &claim).await.json();
    assert_eq!(
        created["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    let mut p = pod("user");
    p["spec"]["volumes"] = json!([{"name": "ws", "persistentVolumeClaim": {"claimName": "ws"}}]);
    raw.post(&pods_path(), &p).await;
    wait_pod(&sim, NS, "user", "Running", |p| phase(p) == "Running").await;
    let r = raw.delete(&format!("{pvcs}/ws"), None).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());
    // An unused claim deleted now goes at once: the controllers have run since `ws` was deleted.
    let unused = json!({"metadata": {"name": "unused"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    raw.post(&pvcs, &unused).await;
    raw.delete(&format!("{pvcs}/unused"), None).await;
    gone(&sim, "persistentvolumeclaims", NS, "unused").await;
    gc_swept(&sim, &raw).await;
    assert!(
        sim.object("persistentvolumeclaims", NS, "ws").is_some(),
        "held while the pod runs"
    );
    raw.delete(&format!("{}/user", pods_path()), None).await;
    gone(&sim, "persistentvolumeclaims", NS, "ws").await;
    // An unused claim goes at once (the finalizer is released by the controller).
    raw.post(&pvcs, &claim).await;
    raw.delete(&format!("{pvcs}/ws"), None).await;
    gone(&sim, "persistentvolumeclaims", NS, "ws").await;
    sim.shutdown().await;
}
