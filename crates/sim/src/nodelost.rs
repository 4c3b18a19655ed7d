//! A lost node, as the control plane of Kubernetes 1.32 handles it when a kubelet stops
//! reporting: the node lifecycle controller sets the Node's conditions to `Unknown`
//! (`NodeStatusUnknown`), taints it `node.kubernetes.io/unreachable` (`NoSchedule` and
//! `NoExecute`), marks its pods not Ready (Warning `NodeNotReady` events); the taint eviction
//! controller then deletes each pod that does not tolerate the `NoExecute` taint (at once, or
//! after its `tolerationSeconds`), with a `DisruptionTarget` condition `DeletionByTaintManager`.
//! The pods stay Terminating, since no kubelet confirms their end. When the machine is gone for
//! good ([`remove_node`]), the Node object is deleted and the pod garbage collector fails and
//! force-deletes the pods bound to it (`DeletionByPodGC`).
//!
//! Meanwhile the kubelet side is silent: no status, events or kills for pods bound to the node
//! (`Shared::node_lost`); new pods stay Pending, the taint being untolerated.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use super::Shared;
use super::delete::{self, Options};
use super::events::{self, Source};
use super::kubelet::NODE;
use super::resources;
use super::store::Key;
use super::time;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Pods bound to the node and not finished.
fn bound_pods(shared: &Shared) -> Vec<Key> {
    shared.store.scan_kind("pods", None, |k, p| {
        let here = p["spec"]["nodeName"] == NODE;
        let finished = matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
        (here && !finished).then(|| k.clone())
    })
}

/// How long a pod tolerates the unreachable `NoExecute` taint: `None` forever, zero when it
/// does not tolerate it.
fn toleration(pod: &Value) -> Option<Duration> {
    let mut longest = Duration::ZERO;
    for t in pod["spec"]["tolerations"].as_array().into_iter().flatten() {
        let key_ok = match t["operator"].as_str().unwrap_or("Equal") {
            "Exists" => t["key"].as_str().is_none_or(|k| k.is_empty() || k == UNREACHABLE),
            _ => t["key"] == UNREACHABLE,
        };
        let effect_ok = t["effect"].as_str().is_none_or(|e| e.is_empty() || e == "NoExecute");
        if key_ok && effect_ok {
            // One without seconds tolerates forever; otherwise the longest wins.
            let secs = t["tolerationSeconds"].as_i64()?;
            longest = longest.max(Duration::from_secs(secs.max(0) as u64));
        }
    }
    Some(longest)
}

/// The node stops reporting: see the module documentation.
pub fn lose(shared: &Arc<Shared>) {
    if shared.node_lost.swap(true, Ordering::SeqCst) {
        return;
    }
    let now = time::now();
    shared.store.update(&Key::new("nodes", "", NODE), |n| {
        for c in n["status"]["conditions"].as_array_mut().into_iter().flatten() {
            c["status"] = json!("Unknown");
            c["reason"] = json!("NodeStatusUnknown");
            c["message"] = json!("Kubelet stopped posting node status.");
            c["lastTransitionTime"] = json!(now);
        }
        let taints = [
            json!({"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now}),
            json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now}),
        ];
        match n["spec"]["taints"].as_array_mut() {
            Some(list) => list.extend(taints),
            None => n["spec"]["taints"] = json!(taints),
        }
    });
    for key in bound_pods(shared) {
        let Some(pod) = shared.store.update(&key, |p| {
            for c in p["status"]["conditions"].as_array_mut().into_iter().flatten() {
                if c["type"] == "Ready" && c["status"] != "False" {
                    c["status"] = json!("False");
                    c["lastTransitionTime"] = json!(now);
                }
            }
        }) else {
            continue;
        };
        events::record(
            shared,
            &pod,
            true,
            "NodeNotReady",
            "Node is not ready",
            Source::NodeController,
            None,
        );
        let Some(after) = toleration(&pod) else { continue };
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let s = shared.clone();
        shared.spawn(async move {
            tokio::time::sleep(after).await;
            evict(&s, &key, &uid);
        });
    }
}

/// The taint eviction controller deletes one pod (if it is still the same pod, on the lost node).
fn evict(shared: &Shared, key: &Key, uid: &str) {
    let Some(pod) = shared.store.get(key) else { return };
    if pod["metadata"]["uid"] != uid || pod["metadata"]["deletionTimestamp"].is_string() {
        return;
    }
    let (ns, name) = (&key.namespace, &key.name);
    events::record(
        shared,
        &pod,
        false,
        "TaintManagerEviction",
        &format!("Marking for deletion Pod {ns}/{name}"),
        Source::TaintEviction,
        None,
    );
    delete::mark_disruption(
        shared,
        key,
        "DeletionByTaintManager",
        "Taint manager: deleting due to NoExecute taint",
    );
    if let Some(def) = resources::by_plural("pods") {
        let _ = delete::delete(shared, def, key, &Options::default());
    }
}

/// The machine is gone: the Node object is deleted and the pod garbage collector fails and
/// removes every pod still bound to it. Loses the node first if that has not happened.
pub fn remove_node(shared: &Arc<Shared>) {
    lose(shared);
    delete::remove_now(shared, &Key::new("nodes", "", NODE));
    let pods: Vec<Key> = shared
        .store
        .scan(|k, p| (k.plural == "pods" && p["spec"]["nodeName"] == NODE).then(|| k.clone()));
    for key in pods {
        let now = time::now();
        shared.store.update(&key, |p| {
            if !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
                p["status"]["phase"] = json!("Failed");
            }
            let cond = json!({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists", "lastTransitionTime": now});
            match p["status"]["conditions"].as_array_mut() {
                Some(list) => {
                    list.retain(|c| c["type"] != "DisruptionTarget");
                    list.push(cond);
                }
                None => p["status"]["conditions"] = json!([cond]),
            }
        });
        if let Some(def) = resources::by_plural("pods") {
            let _ = delete::delete(
                shared,
                def,
                &key,
                &Options {
                    grace: Some(0),
                    ..Options::default()
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_of_the_unreachable_taint() {
        let pod = |t: Value| json!({"spec": {"tolerations": t}});
        assert_eq!(toleration(&json!({"spec": {}})), Some(Duration::ZERO));
        let secs = json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]);
        assert_eq!(toleration(&pod(secs)), Some(Duration::from_secs(300)));
        assert_eq!(toleration(&pod(json!([{"operator": "Exists"}]))), None);
        let other = json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]);
        assert_eq!(toleration(&pod(other)), Some(Duration::ZERO));
        let both = json!([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 5},
                          {"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 60}]);
        assert_eq!(toleration(&pod(both)), Some(Duration::from_secs(60)));
    }
}
