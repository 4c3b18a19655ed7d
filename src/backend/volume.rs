//! The workflow PVC (spec §5): the shared workspace every step mounts, named from
//! `conf.volume`, sized by `VOLUME_SIZE`, RWX or RWO by `STORAGE_RWX`; and the PVC volumes and
//! mounts of a step. No I/O.

use super::names;
use super::options::Options;
use super::pod::{BuildError, PodContext};
use super::types::{Step, WorkflowConfig};
use kube::types::{
    Container, PersistentVolumeClaim, Pod, PodSpec, PvcSpec, PvcVolumeSource, ResourceRequirements, Volume,
    VolumeMount, VolumeResources,
};

/// The PVC for `conf.volume`, or `None` when the workflow has no volume (local `exec` payloads).
pub fn workflow_pvc(
    conf: &WorkflowConfig,
    opts: &Options,
    ctx: &PodContext,
) -> Result<Option<PersistentVolumeClaim>, BuildError> {
    if conf.volume.is_empty() || opts.workspace_emptydir.is_some() {
        return Ok(None);
    }
    let name = names::volume_claim_name(&conf.volume).map_err(|e| BuildError::Workflow {
        what: "volume name",
        source: Box::new(e),
    })?;
    let mode = if opts.storage_rwx {
        "ReadWriteMany"
    } else {
        "ReadWriteOnce"
    };
    Ok(Some(PersistentVolumeClaim {
        api_version: "v1".into(),
        kind: "PersistentVolumeClaim".into(),
        metadata: ctx.meta(name),
        spec: PvcSpec {
            access_modes: vec![mode.into()],
            storage_class_name: (!opts.storage_class.is_empty()).then(|| opts.storage_class.clone()),
            resources: VolumeResources {
                requests: [("storage".to_string(), opts.volume_size.clone())].into(),
            },
            ..Default::default()
        },
        status: None,
    }))
}

/// The label of a workflow's workspace holder pod (`WORKSPACE_EMPTYDIR`).
pub const WORKSPACE_HOLDER_LABEL: &str = "woodpecker-k8s-agent/workspace-holder";
/// The name of the holder's `emptyDir` volume.
const HOLDER_VOLUME: &str = "workspace";

/// The workspace holder of a workflow (`WORKSPACE_EMPTYDIR`): `wp-ws-<task>`, a pod that sleeps
/// for the workflow's life and owns the `emptyDir` (with `medium` and `sizeLimit`) the steps
/// mount from its node. `None` without the option or without a workflow volume.
pub fn workspace_holder(conf: &WorkflowConfig, opts: &Options, ctx: &PodContext) -> Result<Option<Pod>, BuildError> {
    let Some(ws) = opts.workspace_emptydir.as_ref().filter(|_| !conf.volume.is_empty()) else {
        return Ok(None);
    };
    let name = names::to_dns_name(&format!("wp-ws-{}", ctx.task)).map_err(|e| BuildError::Workflow {
        what: "workspace holder name",
        source: Box::new(e),
    })?;
    let mut metadata = ctx.meta(name.clone());
    metadata.labels.insert(WORKSPACE_HOLDER_LABEL.into(), "true".into());
    let mut empty_dir = serde_json::Map::new();
    if let Some(m) = &ws.medium {
        empty_dir.insert("medium".into(), m.clone().into());
    }
    if let Some(l) = &ws.size_limit {
        empty_dir.insert("sizeLimit".into(), l.clone().into());
    }
    let tiny = std::collections::BTreeMap::from([
        ("cpu".to_string(), "5m".to_string()),
        ("memory".to_string(), "12Mi".to_string()),
    ]);
    let container = Container {
        name: "workspace".into(),
        image: opts.permission_init_image.clone(),
        // Sleeps until deleted; the trap makes PID 1 end at once on SIGTERM.
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done".into(),
        ],
        volume_mounts: vec![VolumeMount {
            name: HOLDER_VOLUME.into(),
            mount_path: "/workspace".into(),
            ..Default::default()
        }],
        resources: Some(ResourceRequirements {
            requests: tiny.clone(),
            limits: tiny,
        }),
        security_context: Some(
            serde_json::json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}),
        ),
        ..Default::default()
    };
    let spec = PodSpec {
        containers: vec![container],
        volumes: vec![Volume {
            name: HOLDER_VOLUME.into(),
            empty_dir: Some(serde_json::Value::Object(empty_dir)),
            ..Default::default()
        }],
        restart_policy: "Never".into(),
        node_selector: opts.pod_node_selector.clone(),
        tolerations: opts.pod_tolerations.iter().map(|t| t.to_value()).collect(),
        affinity: opts.pod_affinity.clone(),
        automount_service_account_token: Some(false),
        security_context: opts.fs_group.map(|g| serde_json::json!({"fsGroup": g})),
        priority_class_name: opts.priority_class.clone(),
        // Like every pod of the workflow, under its headless service.
        subdomain: names::headless_service_name(&ctx.task).unwrap_or_default(),
        ..Default::default()
    };
    Ok(Some(Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata,
        spec,
        status: None,
    }))
}

/// Where the holder's `emptyDir` is on its node: `<kubeletDir>/pods/<uid>/volumes/
/// kubernetes.io~empty-dir/workspace`.
pub fn holder_dir(opts: &Options, holder_uid: &str) -> Option<String> {
    let ws = opts.workspace_emptydir.as_ref()?;
    Some(format!(
        "{}/pods/{holder_uid}/volumes/kubernetes.io~empty-dir/{HOLDER_VOLUME}",
        ws.kubelet_dir
    ))
}

/// The volumes and mounts of a step: every `name:path[:mode]` entry is a PVC claim (as
/// Woodpecker), one volume per claim; `drop_workspace` (a service with `workspaceVolume: false`)
/// leaves out entries mounted at the workspace base. With `workspace_dir` (`WORKSPACE_EMPTYDIR`)
/// the first entry, the workflow's workspace, is that directory of the node instead.
pub fn step_volumes(
    step: &Step,
    drop_workspace: bool,
    workspace_dir: Option<&str>,
) -> Result<(Vec<Volume>, Vec<VolumeMount>), BuildError> {
    let mut volumes: Vec<Volume> = Vec::new();
    let mut mounts = Vec::new();
    for (i, entry) in step.volumes.iter().enumerate() {
        let path = names::volume_mount_path(entry);
        if drop_workspace && path == step.workspace_base {
            continue;
        }
        let claim = names::volume_claim_name(entry).map_err(|source| BuildError::Volume {
            step: step.name.clone(),
            entry: entry.clone(),
            source,
        })?;
        if let (0, Some(dir)) = (i, workspace_dir) {
            let vol_name = names::to_dns_label(&claim);
            volumes.push(Volume {
                name: vol_name.clone(),
                host_path: Some(serde_json::json!({"path": dir, "type": "Directory"})),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: vol_name,
                mount_path: path.to_string(),
                ..Default::default()
            });
            continue;
        }
        let mut vol_name = names::to_dns_label(&claim);
        let existing = volumes.iter().find(|v| v.name == vol_name);
        let same_claim = existing.is_some_and(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == claim)
        });
        if existing.is_some() && !same_claim {
            vol_name = names::hashed_label(&claim);
        }
        if !same_claim {
            volumes.push(Volume {
                name: vol_name.clone(),
                persistent_volume_claim: Some(PvcVolumeSource {
                    claim_name: claim,
                    read_only: false,
                }),
                ..Default::default()
            });
        }
        mounts.push(VolumeMount {
            name: vol_name,
            mount_path: path.to_string(),
            ..Default::default()
        });
    }

    Ok((volumes, mounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvc_from_options() {
        let conf = WorkflowConfig {
            volume: "wp_01hz_42_default".into(),
            ..Default::default()
        };
        let ctx = PodContext {
            namespace: "ci".into(),
            task: "42".into(),
            ..Default::default()
        };
        let pvc = workflow_pvc(&conf, &Options::default(), &ctx).unwrap().unwrap();
        let json = serde_json::to_value(&pvc).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "wp-01hz-42-default", "namespace": "ci",
                             "labels": {"woodpecker-ci.org/task-uuid": "42"}},
                "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10G"}}}})
        );
        let opts = Options {
            storage_rwx: false,
            storage_class: "local-path".into(),
            volume_size: "1Gi".into(),
            ..Default::default()
        };
        let pvc = workflow_pvc(&conf, &opts, &ctx).unwrap().unwrap();
        assert_eq!(pvc.spec.access_modes, ["ReadWriteOnce"]);
        assert_eq!(pvc.spec.storage_class_name.as_deref(), Some("local-path"));
        assert_eq!(pvc.spec.resources.requests["storage"], "1Gi");
        assert!(workflow_pvc(&WorkflowConfig::default(), &opts, &ctx).unwrap().is_none());
        let bad = WorkflowConfig {
            volume: "!!!".into(),
            ..Default::default()
        };
        assert!(workflow_pvc(&bad, &opts, &ctx).is_err());
    }
}
