//! The RBAC the agent needs, in one table, and the SelfSubjectAccessReview that asks the
//! apiserver about one entry. `deploy/base/role.yaml` must grant exactly this table (a test in
//! `tests/deploy.rs` compares them). Pure: no I/O.

use serde::{Deserialize, Serialize};

use kube::types::{ObjectMeta, resource};

/// One verb on one (sub)resource of one API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// `""` for the core group.
    pub group: &'static str,
    pub resource: &'static str,
    /// `""` when none (`log` for `pods/log`).
    pub subresource: &'static str,
    pub verb: &'static str,
}

const fn core(resource: &'static str, verb: &'static str) -> Permission {
    Permission {
        group: "",
        resource,
        subresource: "",
        verb,
    }
}

/// `KEEP_FAILED_PODS` only: a failed step's pod is labelled and released from its workflow
/// (a merge patch) instead of deleted. Not in [`NAMESPACED`]: the default Role does not grant it.
pub const PATCH_PODS: Permission = core("pods", "patch");

/// Every call the backend makes in the agent's namespace (`backend::lifecycle::kubeio` and its
/// callers). Keep in step with them, and with `deploy/base/role.yaml`.
pub const NAMESPACED: &[Permission] = &[
    // One step = one pod, followed on one shared list+watch of the namespace's pods (no
    // per-step GET); the start-up sweep lists what an earlier run left behind.
    core("pods", "create"),
    core("pods", "list"),
    core("pods", "watch"),
    core("pods", "delete"),
    Permission {
        group: "",
        resource: "pods",
        subresource: "log",
        verb: "get",
    },
    // The workflow's workspace volume.
    core("persistentvolumeclaims", "create"),
    core("persistentvolumeclaims", "list"),
    core("persistentvolumeclaims", "delete"),
    // The headless Service that gives steps DNS names and anchors the workflow's objects
    // (read back when a retried setup finds it already there).
    core("services", "create"),
    core("services", "get"),
    core("services", "list"),
    core("services", "delete"),
    // Per-step secret env and registry credentials.
    core("secrets", "create"),
    core("secrets", "list"),
    core("secrets", "delete"),
    // Why a pod is still pending: its Warning events, listed now and then.
    core("events", "list"),
];

/// The agent's Lease (held, renewed, released; it keeps the agent id) and the reaper (lists the
/// Leases, deletes an ended exec run's): always in the base namespace, so a Role grants them.
pub const LEASES: &[Permission] = &[
    lease("get"),
    lease("list"),
    lease("create"),
    lease("update"),
    lease("delete"),
];

const fn lease(verb: &'static str) -> Permission {
    Permission {
        group: "coordination.k8s.io",
        resource: "leases",
        subresource: "",
        verb,
    }
}

/// Only with namespace-per-organisation: the org namespaces are created on demand. Namespaces
/// are cluster-scoped, so this needs a ClusterRole (`deploy/overlays/namespace-per-org/clusterrole.yaml`).
pub const PER_ORG: &[Permission] = &[core("namespaces", "get"), core("namespaces", "create")];

impl Permission {
    /// `create pods`, `get pods/log`, `create namespaces` (cluster-wide reads the same).
    pub fn describe(&self) -> String {
        let mut resource = self.resource.to_string();
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        if !self.group.is_empty() {
            resource = format!("{resource}.{}", self.group);
        }
        format!("{} {resource}", self.verb)
    }

    /// The review that asks whether we may do this in `namespace` (`""`: cluster-wide).
    pub fn review(&self, namespace: &str) -> SelfSubjectAccessReview {
        SelfSubjectAccessReview {
            api_version: "authorization.k8s.io/v1".into(),
            kind: "SelfSubjectAccessReview".into(),
            metadata: ObjectMeta::default(),
            spec: ReviewSpec {
                resource_attributes: ResourceAttributes {
                    namespace: namespace.to_string(),
                    verb: self.verb.to_string(),
                    group: self.group.to_string(),
                    resource: self.resource.to_string(),
                    subresource: self.subresource.to_string(),
                },
            },
            status: None,
        }
    }
}

/// `authorization.k8s.io/v1` SelfSubjectAccessReview: POSTed, answered with `status` filled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSubjectAccessReview {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: ReviewSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReviewStatus>,
}

resource!(
    SelfSubjectAccessReview,
    "authorization.k8s.io/v1",
    "SelfSubjectAccessReview",
    "selfsubjectaccessreviews",
    false
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewSpec {
    pub resource_attributes: ResourceAttributes,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub verb: String,
    #[serde(default)]
    pub group: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStatus {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default)]
    pub denied: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub evaluation_error: String,
}

/// Whether a review's answer allows the permission, and the apiserver's words when not.
pub fn verdict(answer: &SelfSubjectAccessReview) -> Result<(), String> {
    let status = answer.status.clone().unwrap_or_default();
    if status.allowed && !status.denied {
        return Ok(());
    }
    let mut why = if status.reason.is_empty() {
        "no RBAC rule allows it".to_string()
    } else {
        status.reason
    };
    if !status.evaluation_error.is_empty() {
        why = format!("{why} (evaluation error: {})", status.evaluation_error);
    }
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_body_matches_the_api_shape() {
        let log = NAMESPACED.iter().find(|p| p.subresource == "log").unwrap();
        let body = serde_json::to_value(log.review("ci")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {},
                "spec": {"resourceAttributes": {
                    "namespace": "ci", "verb": "get", "group": "", "resource": "pods",
                    "subresource": "log"
                }}
            })
        );
        assert_eq!(log.describe(), "get pods/log");
        let cluster = serde_json::to_value(PER_ORG[1].review("")).unwrap();
        assert!(cluster["spec"]["resourceAttributes"].get("namespace").is_none());
    }

    #[test]
    fn verdict_reads_allowed_denied_and_reason() {
        let mut answer = NAMESPACED[0].review("ci");
        assert_eq!(verdict(&answer), Err("no RBAC rule allows it".into()));
        answer.status = Some(ReviewStatus {
            allowed: true,
            ..Default::default()
        });
        assert_eq!(verdict(&answer), Ok(()));
        answer.status = Some(ReviewStatus {
            denied: true,
            reason: "blocked by webhook".into(),
            evaluation_error: "rule 3 unreadable".into(),
            ..Default::default()
        });
        assert_eq!(
            verdict(&answer),
            Err("blocked by webhook (evaluation error: rule 3 unreadable)".into())
        );
    }

    #[test]
    fn the_table_has_no_duplicates() {
        let mut all: Vec<_> = NAMESPACED.iter().chain(PER_ORG).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
