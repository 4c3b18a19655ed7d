//! The simulated cluster's own semantics, over raw HTTP(S): one file per area.

use serde_json::{Value, json};

// CRUD, error codes, selectors, validation, auth, discovery, Tables.
mod api;
// Discovery, OpenAPI, Tables, access reviews, authentication.
mod discovery;
// Deletion, grace periods, garbage collection, namespaces, storage.
mod delete;
// Fault injection and the request record.
mod faults;
// The host runner (processes in a mount namespace).
mod host;
// Kubelet transitions for each script rule.
mod kubelet;
// Container limits on the host runner: cgroups, OOMKilled.
mod limits;
// The same on cgroup v2, in a small VM (the build machines have v1 only).
mod cgroup2;
// A lost node: taints, the taint manager, the pod garbage collector; a step on it.
mod nodelost;
// Leases: kubectl, and replace races with resourceVersion conflicts.
mod lease;
// Logs: follow, timestamps, sinceTime, tailLines, 400 while waiting.
mod logs;
// Watch: resourceVersion semantics, selectors, bookmarks, 410, Tables.
mod watch;

pub const NS: &str = "woodpecker";

/// A minimal pod with one container `main`.
pub fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "alpine:3"}]}})
}

pub fn pods_path() -> String {
    format!("/api/v1/namespaces/{NS}/pods")
}

pub fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("")
}

/// The reasons of the events about `name`, in order.
pub fn event_reasons(sim: &sim::Sim, name: &str) -> Vec<String> {
    let mut evs = sim.objects("events", Some(NS));
    evs.retain(|e| e["involvedObject"]["name"] == name);
    evs.sort_by_key(|e| {
        e["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap_or(0)
    });
    evs.iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}
