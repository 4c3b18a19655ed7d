//! Guaranteed cleanup: deleting a step's objects, a whole workflow (the anchor with cascading
//! propagation, then explicitly whatever still carries the task label), and the start-up sweep
//! of what an earlier run of this agent left behind. Keeps going past every individual error
//! and reports them all; NotFound counts as done.
//!
//! Knows object kinds and labels; knows nothing of steps' progress.

use std::collections::HashSet;

use super::error::LifecycleError;
use super::kubeio::KubeIo;
use crate::backend::labels;
use crate::backend::names::TASK_LABEL;
use kube::types::{PersistentVolumeClaim, Pod, Resource, Secret, Service};

/// Collects failed deletes; NotFound is success (already gone, or never created).
#[derive(Debug, Default)]
pub struct Failures(Vec<(String, kube::Error)>);

impl Failures {
    pub fn record(&mut self, object: String, result: Result<(), kube::Error>) {
        match result {
            Err(e) if !e.is_not_found() => self.0.push((object, e)),
            _ => {}
        }
    }

    pub fn into_result(self, what: impl Into<String>) -> Result<(), LifecycleError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(LifecycleError::Cleanup {
                what: what.into(),
                failures: self.0,
            })
        }
    }
}

/// `kind name`, for error lists.
fn object<K: Resource>(name: &str) -> String {
    format!("{} {name}", K::KIND.to_lowercase())
}

/// Deletes one object, recording a failure.
pub async fn delete<K: Resource>(kube: &KubeIo, ns: &str, name: &str, grace: Option<i64>, out: &mut Failures) {
    out.record(object::<K>(name), kube.delete::<K>(ns, name, grace).await);
}

/// Deletes every object of kind `K` in `ns` (or every namespace when `ns` is `None`) matching
/// `selector`, except those whose task label is in `keep`. Returns how many were deleted.
async fn delete_labelled<K: Resource>(
    kube: &KubeIo,
    ns: Option<&str>,
    selector: &str,
    keep: &HashSet<String>,
    grace: Option<i64>,
    out: &mut Failures,
) -> usize {
    let items = match kube.list::<K>(ns, selector).await {
        Ok(items) => items,
        Err(e) => {
            out.record(format!("{} with {selector}", K::PLURAL), Err(e));
            return 0;
        }
    };
    let mut deleted = 0;
    for item in items {
        let meta = item.meta();
        if meta.deletion_timestamp.is_some() || meta.labels.get(TASK_LABEL).is_some_and(|t| keep.contains(t)) {
            continue;
        }
        // A failed step's pod kept for debugging goes when its time is up, not with its workflow.
        if kept_until(meta).is_some_and(|t| t > now_unix()) {
            continue;
        }
        let r = kube.delete::<K>(&meta.namespace, &meta.name, grace).await;
        if r.is_ok() {
            deleted += 1;
        }
        out.record(
            format!("{} {}/{}", K::KIND.to_lowercase(), meta.namespace, meta.name),
            r,
        );
    }
    deleted
}

/// The Unix time a kept pod may be deleted after (`KEEP_FAILED_PODS`), if it is one.
pub fn kept_until(meta: &kube::types::ObjectMeta) -> Option<u64> {
    meta.labels.get(labels::KEPT_UNTIL_LABEL)?.parse().ok()
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Keeps a failed step's pod for `ttl` seconds instead of deleting it: labels it with the time
/// it may go and drops its ownerReference to the workflow's anchor, so neither the workflow's
/// cleanup nor the garbage collector takes it. Its Secrets are deleted as usual.
pub async fn keep_pod(kube: &KubeIo, ns: &str, pod: &str, ttl: i64) -> Result<u64, kube::Error> {
    let until = now_unix() + ttl.max(0) as u64;
    let patch = serde_json::json!({"metadata": {
        "labels": {labels::KEPT_UNTIL_LABEL: until.to_string()},
        "ownerReferences": null,
    }});
    kube.merge_patch::<Pod>(ns, pod, &patch).await?;
    Ok(until)
}

/// Deletes this agent's kept pods whose time is up; returns how many were deleted and the
/// earliest time a remaining one is due.
pub async fn reap_kept(kube: &KubeIo, ns: Option<&str>, agent: &str) -> Result<(usize, Option<u64>), LifecycleError> {
    let mut out = Failures::default();
    let selector = match labels::agent_selector(agent) {
        Some(s) => format!("{s},{}", labels::KEPT_UNTIL_LABEL),
        None => labels::KEPT_UNTIL_LABEL.to_string(),
    };
    let pods = match kube.list::<Pod>(ns, &selector).await {
        Ok(p) => p,
        Err(e) => {
            out.record(format!("pods with {selector}"), Err(e));
            out.into_result("reap kept pods")?;
            return Ok((0, None));
        }
    };
    let now = now_unix();
    let (mut deleted, mut next) = (0, None::<u64>);
    for p in pods {
        let meta = &p.metadata;
        let Some(until) = kept_until(meta) else { continue };
        if meta.deletion_timestamp.is_some() {
            continue;
        }
        if until > now {
            next = Some(next.map_or(until, |n| n.min(until)));
            continue;
        }
        let r = kube.delete::<Pod>(&meta.namespace, &meta.name, Some(0)).await;
        deleted += usize::from(r.is_ok());
        out.record(format!("pod {}/{}", meta.namespace, meta.name), r);
    }
    out.into_result("reap kept pods")?;
    Ok((deleted, next))
}

/// What `destroy_workflow` needs to know about the workflow.
pub struct WorkflowObjects<'a> {
    pub namespace: &'a str,
    pub task: &'a str,
    /// The anchor (headless Service) name.
    pub anchor: Option<&'a str>,
    pub volume: Option<&'a str>,
    pub grace: Option<i64>,
}

/// Deletes the anchor (its dependents follow by garbage collection), the volume, then every pod
/// and Secret still labelled with the task, as a belt-and-braces for clusters whose garbage
/// collector is slow or absent.
pub async fn destroy_workflow(kube: &KubeIo, w: WorkflowObjects<'_>) -> Result<(), LifecycleError> {
    let mut out = Failures::default();
    let ns = w.namespace;
    let selector = labels::task_selector(w.task);
    let none = HashSet::new();
    // Pods first, so services and detached steps stop before their network name goes.
    delete_labelled::<Pod>(kube, Some(ns), &selector, &none, w.grace, &mut out).await;
    delete_labelled::<Secret>(kube, Some(ns), &selector, &none, None, &mut out).await;
    if let Some(anchor) = w.anchor {
        out.record(
            object::<Service>(anchor),
            kube.delete_cascading::<Service>(ns, anchor).await,
        );
    }
    if let Some(volume) = w.volume {
        delete::<PersistentVolumeClaim>(kube, ns, volume, None, &mut out).await;
    }
    out.into_result(format!("destroy workflow {}", w.task))
}

/// Deletes every object labelled with this agent whose task is not in `running`, in `ns` (or in
/// every namespace with `None`, for namespace-per-organisation). Returns how many were deleted.
pub async fn sweep(
    kube: &KubeIo,
    ns: Option<&str>,
    agent: &str,
    running: &HashSet<String>,
) -> Result<usize, LifecycleError> {
    let mut out = Failures::default();
    let Some(selector) = labels::agent_selector(agent) else {
        return Ok(0); // without an agent id nothing tells our objects from other agents'
    };
    let mut n = 0;
    n += delete_labelled::<Pod>(kube, ns, &selector, running, Some(0), &mut out).await;
    n += delete_labelled::<Secret>(kube, ns, &selector, running, None, &mut out).await;
    n += delete_labelled::<Service>(kube, ns, &selector, running, None, &mut out).await;
    n += delete_labelled::<PersistentVolumeClaim>(kube, ns, &selector, running, None, &mut out).await;
    out.into_result(format!("sweep leftovers of agent {agent}"))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::types::Status;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api {
            what: "DELETE /api/v1/namespaces/ci/pods/wp-1".into(),
            status: Box::new(Status {
                code,
                reason: reason.into(),
                message: format!("{reason} message"),
                ..Status::default()
            }),
        }
    }

    #[test]
    fn not_found_is_done_and_every_other_failure_is_reported() {
        let mut f = Failures::default();
        f.record("pod wp-1".into(), Ok(()));
        f.record("pod wp-2".into(), Err(api_error(404, "NotFound")));
        assert!(f.0.is_empty());
        f.record("pod wp-3".into(), Err(api_error(403, "Forbidden")));
        f.record("secret s".into(), Err(api_error(500, "InternalError")));
        let err = f.into_result("destroy workflow 7").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("destroy workflow 7: 2 object(s) not deleted"),
            "{text}"
        );
        assert!(text.contains("pod wp-3") && text.contains("Forbidden"), "{text}");
        assert!(text.contains("secret s") && text.contains("InternalError"), "{text}");
        assert!(Failures::default().into_result("x").is_ok());
    }
}
