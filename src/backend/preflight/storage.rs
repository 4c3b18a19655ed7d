//! Whether the workflow volume can be provisioned: the storage class the PVC will get (the
//! configured one, or the cluster's default) exists, and its provisioner can give the access
//! mode `STORAGE_RWX` asks for. Pure: it judges a list of StorageClasses it is handed.
//!
//! A StorageClass does not state its access modes; they are a property of the provisioner.
//! We know the common ones; for the rest we say we cannot tell.

use serde::{Deserialize, Serialize};

use super::report::CheckOutcome;
use kube::types::{ObjectMeta, resource};

/// `storage.k8s.io/v1` StorageClass, the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageClass {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub provisioner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_binding_mode: Option<String>,
}
resource!(
    StorageClass,
    "storage.k8s.io/v1",
    "StorageClass",
    "storageclasses",
    false
);

const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// Pre-GA annotation, still set by some installers.
const DEFAULT_CLASS_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// Provisioners that only give node- or zone-local block volumes: ReadWriteOnce at most.
const RWO_ONLY: &[&str] = &[
    "rancher.io/local-path",
    "kubernetes.io/no-provisioner",
    "openebs.io/local",
    "topolvm.io",
    "ebs.csi.aws.com",
    "kubernetes.io/aws-ebs",
    "pd.csi.storage.gke.io",
    "kubernetes.io/gce-pd",
    "disk.csi.azure.com",
    "kubernetes.io/azure-disk",
    "cinder.csi.openstack.org",
    "rook-ceph.rbd.csi.ceph.com",
    "rbd.csi.ceph.com",
    "dobs.csi.digitalocean.com",
    "csi.hetzner.cloud",
    "k8s.io/minikube-hostpath",
];

/// Provisioners known to give shared filesystems: ReadWriteMany.
const RWX: &[&str] = &[
    "nfs.csi.k8s.io",
    "cluster.local/nfs-subdir-external-provisioner",
    "k8s-sigs.io/nfs-subdir-external-provisioner",
    "efs.csi.aws.com",
    "file.csi.azure.com",
    "kubernetes.io/azure-file",
    "filestore.csi.storage.gke.io",
    "cephfs.csi.ceph.com",
    "rook-ceph.cephfs.csi.ceph.com",
    "driver.longhorn.io",
];

/// Judges the class a workflow PVC would get. `wanted` is `STORAGE_CLASS` (`""`: the default).
pub fn judge(classes: &[StorageClass], wanted: &str, rwx: bool) -> CheckOutcome {
    let class = if wanted.is_empty() {
        let defaults: Vec<&StorageClass> = classes.iter().filter(|c| is_default(c)).collect();
        match defaults.as_slice() {
            [] => {
                return CheckOutcome::Fail(format!(
                    "no storage class is set (WOODPECKER_BACKEND_K8S_STORAGE_CLASS) and the \
                     cluster has no default class; workflow volumes would stay Pending ({})",
                    names(classes)
                ));
            }
            [one] => *one,
            // The apiserver picks the newest default; any of them will do for this check.
            [first, ..] => *first,
        }
    } else {
        match classes.iter().find(|c| c.metadata.name == wanted) {
            Some(c) => c,
            None => {
                return CheckOutcome::Fail(format!("storage class `{wanted}` does not exist ({})", names(classes)));
            }
        }
    };
    let label = if wanted.is_empty() {
        format!("default class `{}` ({})", class.metadata.name, class.provisioner)
    } else {
        format!("class `{}` ({})", class.metadata.name, class.provisioner)
    };
    let provisioner = class.provisioner.as_str();
    if !rwx {
        return CheckOutcome::Ok(format!("{label}, ReadWriteOnce"));
    }
    if RWO_ONLY.contains(&provisioner) {
        CheckOutcome::Warn(format!(
            "{label} gives ReadWriteOnce volumes only, but STORAGE_RWX asks for ReadWriteMany: \
             workflow volumes will not bind; set WOODPECKER_BACKEND_K8S_STORAGE_RWX=false or pick \
             an RWX class"
        ))
    } else if RWX.contains(&provisioner) {
        CheckOutcome::Ok(format!("{label}, ReadWriteMany"))
    } else {
        CheckOutcome::Warn(format!(
            "{label}: cannot tell whether this provisioner gives ReadWriteMany (STORAGE_RWX=true); \
             if it does not, set WOODPECKER_BACKEND_K8S_STORAGE_RWX=false"
        ))
    }
}

fn is_default(class: &StorageClass) -> bool {
    let ann = &class.metadata.annotations;
    [DEFAULT_CLASS, DEFAULT_CLASS_BETA]
        .iter()
        .any(|key| ann.get(*key).is_some_and(|v| v == "true"))
}

fn names(classes: &[StorageClass]) -> String {
    if classes.is_empty() {
        return "the cluster has no storage classes".into();
    }
    let list: Vec<&str> = classes.iter().map(|c| c.metadata.name.as_str()).collect();
    format!("classes: {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, provisioner: &str, default: bool) -> StorageClass {
        let mut c = StorageClass {
            provisioner: provisioner.into(),
            ..Default::default()
        };
        c.metadata.name = name.into();
        if default {
            c.metadata.annotations.insert(DEFAULT_CLASS.into(), "true".into());
        }
        c
    }

    #[test]
    fn default_local_path_warns_for_rwx_and_passes_for_rwo() {
        let classes = [class("local-path", "rancher.io/local-path", true)];
        let warn = judge(&classes, "", true);
        assert!(
            matches!(&warn, CheckOutcome::Warn(m) if m.contains("default class `local-path`")
            && m.contains("STORAGE_RWX=false"))
        );
        assert!(matches!(judge(&classes, "", false), CheckOutcome::Ok(m) if m.contains("ReadWriteOnce")));
    }

    #[test]
    fn named_class_must_exist() {
        let classes = [
            class("standard", "pd.csi.storage.gke.io", true),
            class("nfs", "nfs.csi.k8s.io", false),
        ];
        assert!(matches!(judge(&classes, "nfs", true), CheckOutcome::Ok(m) if m.contains("class `nfs`")));
        let missing = judge(&classes, "fast", true);
        assert!(
            matches!(&missing, CheckOutcome::Fail(m) if m.contains("`fast` does not exist")
            && m.contains("standard, nfs"))
        );
    }

    #[test]
    fn no_default_class_fails_and_unknown_provisioner_warns() {
        let classes = [class("nfs", "nfs.csi.k8s.io", false)];
        assert!(matches!(judge(&classes, "", true), CheckOutcome::Fail(m) if m.contains("no default class")));
        assert!(matches!(judge(&[], "", false), CheckOutcome::Fail(m) if m.contains("no storage classes")));
        let mut beta = class("odd", "example.com/odd", false);
        beta.metadata
            .annotations
            .insert(DEFAULT_CLASS_BETA.into(), "true".into());
        assert!(matches!(judge(&[beta], "", true), CheckOutcome::Warn(m) if m.contains("cannot tell")));
    }
}
