//! The workflow PVC (spec §5): the shared workspace every step mounts, named from
//! `conf.volume`, sized by `VOLUME_SIZE`, RWX or RWO by `STORAGE_RWX`. No I/O.

use super::names;
use super::options::Options;
use super::pod::{BuildError, PodContext};
use super::types::Config;
use crate::kube::types::{PersistentVolumeClaim, PvcSpec, VolumeResources};

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
