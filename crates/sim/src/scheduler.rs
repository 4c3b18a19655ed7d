//! The scheduler of the one-node cluster: the Node object `sim-node-1` (labels as on a k3s
//! node; tests may patch them) and the fit checks that keep a pod Pending with PodScheduled=False:
//! nodeSelector, required node affinity, and PVCs that are missing or not Bound.

use serde_json::{Value, json};

use super::Shared;
use super::kubelet::NODE;
use super::storage;
use super::store::Key;

/// The Node object created at start.
pub fn node_object() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    // The host runner runs containers on this kernel; say so as a kubelet does.
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let kernel = kernel.trim();
    json!({"kind": "Node", "apiVersion": "v1",
        "metadata": {"name": NODE, "labels": {
            "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
            "node-role.kubernetes.io/control-plane": "true"}},
        "spec": {"podCIDR": "10.42.0.0/24"},
        "status": {
            "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.10"}, {"type": "Hostname", "address": NODE}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-sim", "kubeProxyVersion": "v1.32.0-sim", "operatingSystem": "linux",
                         "architecture": arch, "containerRuntimeVersion": "sim://1.0", "osImage": "simulated", "kernelVersion": kernel}}})
}

fn expression_matches(labels: &Value, e: &Value) -> bool {
    let key = e["key"].as_str().unwrap_or("");
    let value = labels[key].as_str();
    let values: Vec<&str> = e["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match e["operator"].as_str().unwrap_or("") {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Why the node does not fit the pod's nodeSelector / required node affinity.
fn node_mismatch(node: &Value, pod: &Value) -> Option<String> {
    let labels = &node["metadata"]["labels"];
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels[k] == *v);
    let terms =
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            .as_array()
            .cloned()
            .unwrap_or_default();
    let affinity_ok = terms.is_empty()
        || terms.iter().any(|t| {
            t["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|e| expression_matches(labels, e))
        });
    (!(selector_ok && affinity_ok)).then(|| "1 node(s) didn't match Pod's node affinity/selector".to_string())
}

fn claims_unbound(shared: &Shared, pod: &Value) -> Option<String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            let key = Key::new("persistentvolumeclaims", ns, claim);
            let mut pvc = shared.store.get(&key);
            // The first consumer of a WaitForFirstConsumer claim: provisioned on this node now.
            if let Some(p) = pvc.as_ref().filter(|p| storage::waits_for_consumer(shared, p)) {
                storage::first_consumer(shared, p, NODE);
                pvc = shared.store.get(&key);
            }
            match pvc {
                None => return Some(format!("persistentvolumeclaim \"{claim}\" not found")),
                Some(p) if p["status"]["phase"] != "Bound" => {
                    return Some("pod has unbound immediate PersistentVolumeClaims".into());
                }
                _ => {}
            }
        }
    }
    None
}

/// The node's `NoSchedule`/`NoExecute` taints the pod does not tolerate, as the scheduler
/// names them (`{key: value}`).
fn untolerated_taint(node: &Value, pod: &Value) -> Option<String> {
    let tolerations = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    node["spec"]["taints"].as_array().into_iter().flatten().find_map(|t| {
        let effect = t["effect"].as_str().unwrap_or("");
        if !matches!(effect, "NoSchedule" | "NoExecute") {
            return None;
        }
        let (key, value) = (t["key"].as_str().unwrap_or(""), t["value"].as_str().unwrap_or(""));
        let tolerated = tolerations.iter().any(|tol| {
            let key_ok = match tol["operator"].as_str().unwrap_or("Equal") {
                "Exists" => tol["key"].as_str().is_none_or(|k| k.is_empty() || k == key),
                _ => tol["key"] == key && tol["value"].as_str().unwrap_or("") == value,
            };
            key_ok && tol["effect"].as_str().is_none_or(|e| e.is_empty() || e == effect)
        });
        (!tolerated).then(|| format!("1 node(s) had untolerated taint {{{key}: {value}}}"))
    })
}

/// The FailedScheduling message when the pod cannot go to the node, `None` when it can.
pub fn blocker(shared: &Shared, pod: &Value) -> Option<String> {
    let node = match shared.store.get(&Key::new("nodes", "", NODE)) {
        Some(n) => n,
        None if shared.node_lost() => return Some("no nodes available to schedule pods".into()),
        None => node_object(),
    };
    let why = claims_unbound(shared, pod)
        .or_else(|| node_mismatch(&node, pod))
        .or_else(|| untolerated_taint(&node, pod))?;
    Some(format!(
        "0/1 nodes are available: {why}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_selector_and_affinity() {
        let node = node_object();
        let pod = |spec: Value| json!({"spec": spec});
        assert!(node_mismatch(&node, &pod(json!({"nodeSelector": {"kubernetes.io/os": "linux"}}))).is_none());
        assert!(node_mismatch(&node, &pod(json!({"nodeSelector": {"disk": "ssd"}}))).is_some());
        let aff = |op: &str, vals: Value| {
            pod(
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": op, "values": vals}]}]}}}}),
            )
        };
        assert!(node_mismatch(&node, &aff("In", json!([NODE]))).is_none());
        assert!(node_mismatch(&node, &aff("NotIn", json!([NODE]))).is_some());
        assert!(node_mismatch(&node, &aff("Exists", json!([]))).is_none());
    }
}
