//! The workflow's headless Service `wp-hsvc-<task>` (spec §6.10): it gives every step and service
//! pod a DNS name, and it is our **anchor**: created first, every other object of the workflow
//! holds an ownerReference to it, so deleting it cascades. (Service steps are ordinary pods,
//! built in `pod.rs`; Woodpecker 3.x creates no per-service Service.) No I/O.

use std::collections::BTreeMap;

use super::names;
use super::pod::{BuildError, PodContext};
use kube::types::{OwnerReference, Service, ServiceSpec};

/// The headless Service selecting every pod of the task. It carries no ownerReference itself.
pub fn headless_service(ctx: &PodContext) -> Result<Service, BuildError> {
    let name = names::headless_service_name(&ctx.task).map_err(|e| BuildError::Workflow {
        what: "headless service name",
        source: Box::new(e),
    })?;
    let mut metadata = ctx.meta(name);
    metadata.owner_references.clear();
    Ok(Service {
        api_version: "v1".into(),
        kind: "Service".into(),
        metadata,
        spec: ServiceSpec {
            cluster_ip: "None".into(),
            type_: "ClusterIP".into(),
            selector: BTreeMap::from([(names::TASK_LABEL.to_string(), names::task_label_value(&ctx.task))]),
            ..Default::default()
        },
    })
}

/// The ownerReference every other object of the workflow carries: to the anchor as created (its
/// `uid` comes from the apiserver). Not a controller reference, and it does not block the
/// owner's deletion: the garbage collector removes dependents in the background.
pub fn owner_ref(anchor: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: anchor.metadata.name.clone(),
        uid: anchor.metadata.uid.clone(),
        controller: None,
        block_owner_deletion: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headless_service_and_anchor() {
        let ctx = PodContext {
            namespace: "ci".into(),
            task: "11301".into(),
            agent: "agent-a".into(),
            ..Default::default()
        };
        let svc = headless_service(&ctx).unwrap();
        let json = serde_json::to_value(&svc).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "wp-hsvc-11301", "namespace": "ci", "labels": {
                    "woodpecker-ci.org/task-uuid": "11301", "woodpecker-k8s-agent/agent": "agent-a"}},
                "spec": {"clusterIP": "None", "type": "ClusterIP",
                         "selector": {"woodpecker-ci.org/task-uuid": "11301"}}})
        );
        let mut created = svc.clone();
        created.metadata.uid = "u-1".into();
        let r = owner_ref(&created);
        assert_eq!(
            (r.name.as_str(), r.uid.as_str(), r.kind.as_str()),
            ("wp-hsvc-11301", "u-1", "Service")
        );
        let odd = PodContext {
            task: "invalid_task_uuid!".into(),
            ..Default::default()
        };
        let svc = headless_service(&odd).unwrap();
        assert_eq!(svc.metadata.name, "wp-hsvc-invalid-task-uuid");
        assert_eq!(svc.spec.selector[names::TASK_LABEL], "invalid_task_uuid");
    }
}
