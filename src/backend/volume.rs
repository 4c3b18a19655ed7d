//! The workflow PVC (spec §5): the shared workspace every step mounts, named from
//! `conf.volume`, sized by `VOLUME_SIZE`, RWX or RWO by `STORAGE_RWX`; and the PVC volumes and
//! mounts of a step. No I/O.

use super::names;
use super::options::Options;
use super::pod::{BuildError, PodContext};
use super::types::{Config, Step};
use kube::types::{PersistentVolumeClaim, PvcSpec, PvcVolumeSource, Volume, VolumeMount, VolumeResources};

/// The PVC for `conf.volume`, or `None` when the workflow has no volume (local `exec` payloads).
pub fn workflow_pvc(
    conf: &Config,
    opts: &Options,
    ctx: &PodContext,
) -> Result<Option<PersistentVolumeClaim>, BuildError> {
    if conf.volume.is_empty() {
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

/// The volumes and mounts of a step: every `name:path[:mode]` entry is a PVC claim (as
/// Woodpecker), one volume per claim; `drop_workspace` (a service with `workspaceVolume: false`)
/// leaves out entries mounted at the workspace base.
pub fn step_volumes(step: &Step, drop_workspace: bool) -> Result<(Vec<Volume>, Vec<VolumeMount>), BuildError> {
    let mut volumes: Vec<Volume> = Vec::new();
    let mut mounts = Vec::new();
    for entry in &step.volumes {
        let path = names::volume_mount_path(entry);
        if drop_workspace && path == step.workspace_base {
            continue;
        }
        let claim = names::volume_claim_name(entry).map_err(|source| BuildError::Volume {
            step: step.name.clone(),
            entry: entry.clone(),
            source,
        })?;
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
        let conf = Config {
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
        assert!(workflow_pvc(&Config::default(), &opts, &ctx).unwrap().is_none());
        let bad = Config {
            volume: "!!!".into(),
            ..Default::default()
        };
        assert!(workflow_pvc(&bad, &opts, &ctx).is_err());
    }
}
