//! Pod placement: the affinity a pod gets (the step's if allowed, else the agent's) merged with
//! our workflow co-location for ReadWriteOnce workspaces, plus the node selector. Pure JSON
//! manipulation; knows nothing of steps beyond their options.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::names::TASK_LABEL;

pub const HOSTNAME_KEY: &str = "kubernetes.io/hostname";
pub const ARCH_KEY: &str = "kubernetes.io/arch";

/// How the pods of one workflow are kept on one node (needed when the workspace PVC is RWO).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Colocation {
    /// No constraint (RWX workspaces).
    #[default]
    None,
    /// A required pod affinity to the other pods of the task on the same hostname. The first pod
    /// schedules anywhere (a term its own labels satisfy counts as met when no pod matches).
    SameNodeAsTask,
    /// A required node affinity to this node: what the lifecycle uses once it knows where the
    /// first pod of the workflow ran (the pod affinity alone no longer holds once all earlier
    /// pods have finished, because the scheduler ignores terminated pods).
    Node(String),
}

/// Adds the co-location constraint to `affinity` (a Kubernetes `Affinity` object, possibly
/// absent), keeping every term the user or admin set.
pub fn with_colocation(affinity: Option<Value>, colocation: &Colocation, task_label: &str) -> Option<Value> {
    let term = match colocation {
        Colocation::None => return affinity,
        Colocation::SameNodeAsTask => json!({
            "labelSelector": {"matchLabels": {TASK_LABEL: task_label}},
            "topologyKey": HOSTNAME_KEY,
        }),
        Colocation::Node(node) => json!({"key": HOSTNAME_KEY, "operator": "In", "values": [node]}),
    };
    let mut affinity = match affinity {
        Some(Value::Object(m)) => Value::Object(m),
        _ => json!({}),
    };
    match colocation {
        Colocation::SameNodeAsTask => {
            let required = entry(&mut affinity, "podAffinity", json!({}));
            let list = entry(required, "requiredDuringSchedulingIgnoredDuringExecution", json!([]));
            if let Value::Array(a) = list {
                a.push(term);
            }
        }
        Colocation::Node(_) => {
            let node = entry(&mut affinity, "nodeAffinity", json!({}));
            let required = entry(node, "requiredDuringSchedulingIgnoredDuringExecution", json!({}));
            let terms = entry(required, "nodeSelectorTerms", json!([]));
            if let Value::Array(terms) = terms {
                // Terms are ORed, so the node must be required in each of them.
                if terms.is_empty() {
                    terms.push(json!({"matchExpressions": [term]}));
                } else {
                    for t in terms.iter_mut() {
                        if let Value::Array(e) = entry(t, "matchExpressions", json!([])) {
                            e.push(term.clone());
                        }
                    }
                }
            }
        }
        Colocation::None => unreachable!(),
    }
    Some(affinity)
}

/// The object at `key` of `v`, inserted as `default` when missing or of the wrong kind.
fn entry<'a>(v: &'a mut Value, key: &str, default: Value) -> &'a mut Value {
    if !v.is_object() {
        *v = json!({});
    }
    let m = v.as_object_mut().expect("made an object above");
    let slot = m.entry(key.to_string()).or_insert_with(|| default.clone());
    if std::mem::discriminant(slot) != std::mem::discriminant(&default) {
        *slot = default;
    }
    slot
}

/// The node selector, merged in Woodpecker's order (later wins): `kubernetes.io/arch` from
/// `CI_SYSTEM_PLATFORM`, the agent's selector, the step's (already gated). A platform without `/`
/// (Woodpecker panics) adds no arch entry and returns a warning.
pub fn node_selector(
    platform: Option<&str>,
    agent: &BTreeMap<String, String>,
    step: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        match p.split_once('/') {
            Some((_, arch)) => {
                out.insert(ARCH_KEY.to_string(), arch.to_string());
            }
            None => warnings.push(format!(
                "CI_SYSTEM_PLATFORM {p:?} has no '/', no {ARCH_KEY} node selector set"
            )),
        }
    }
    out.extend(agent.iter().map(|(k, v)| (k.clone(), v.clone())));
    out.extend(step.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colocation_merges_with_user_affinity() {
        let user = json!({
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}
            ]},
            "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}
        });
        let got = with_colocation(Some(user.clone()), &Colocation::SameNodeAsTask, "42").unwrap();
        let req = &got["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(req.as_array().unwrap().len(), 2);
        assert_eq!(
            req[0],
            user["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        );
        assert_eq!(req[1]["labelSelector"]["matchLabels"][TASK_LABEL], "42");
        assert_eq!(req[1]["topologyKey"], HOSTNAME_KEY);
        assert_eq!(got["nodeAffinity"], user["nodeAffinity"]);

        assert_eq!(with_colocation(Some(user.clone()), &Colocation::None, "42"), Some(user));
        let fresh = with_colocation(None, &Colocation::SameNodeAsTask, "42").unwrap();
        assert_eq!(
            fresh["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn node_colocation_is_added_to_every_term() {
        let user = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]}
        ]}}});
        let got = with_colocation(Some(user), &Colocation::Node("n1".into()), "42").unwrap();
        let terms = got["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(terms.len(), 2);
        for t in &terms {
            let last = t["matchExpressions"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last, json!({"key": HOSTNAME_KEY, "operator": "In", "values": ["n1"]}));
        }
        assert_eq!(terms[0]["matchExpressions"].as_array().unwrap().len(), 2);
        let fresh = with_colocation(None, &Colocation::Node("n1".into()), "42").unwrap();
        assert_eq!(
            fresh["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
                [0]["values"][0],
            "n1"
        );
    }

    #[test]
    fn node_selector_order() {
        let agent = BTreeMap::from([
            (ARCH_KEY.to_string(), "amd64".to_string()),
            ("pool".into(), "ci".into()),
        ]);
        let step = BTreeMap::from([("pool".to_string(), "big".to_string())]);
        let mut w = Vec::new();
        let got = node_selector(Some("linux/arm64"), &BTreeMap::new(), &step, &mut w);
        assert_eq!(got[ARCH_KEY], "arm64");
        let got = node_selector(Some("linux/arm64"), &agent, &step, &mut w);
        assert_eq!((got[ARCH_KEY].as_str(), got["pool"].as_str()), ("amd64", "big"));
        assert!(w.is_empty());
        let got = node_selector(Some("linux"), &BTreeMap::new(), &BTreeMap::new(), &mut w);
        assert!(got.is_empty());
        assert_eq!(w.len(), 1);
        assert!(node_selector(None, &BTreeMap::new(), &BTreeMap::new(), &mut w).is_empty());
    }
}
