//! The simulated cluster's own semantics, over raw HTTP(S).

use serde_json::json;

use crate::common::{Raw, start_sim, wait_pod};

fn pod(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "alpine:3"}]}})
}

#[tokio::test]
async fn smoke_create_pod_and_it_completes() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let r = raw.post("/api/v1/namespaces/woodpecker/pods", &pod("p1")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let p = wait_pod(&sim, "woodpecker", "p1", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(p["spec"]["nodeName"], "sim-node-1");
    sim.shutdown().await;
}
