//! Storage as on k3s: a default `local-path` StorageClass (rancher.io/local-path, RWO only,
//! `WaitForFirstConsumer`), PVC provisioning (Bound with a `pvc-<uid>` volume, or Pending with a
//! ProvisioningFailed event for an unknown class or ReadWriteMany on local-path), and the host
//! folder that backs each claim under the sim's directory (the host runner mounts it).
//!
//! A claim of a `WaitForFirstConsumer` class stays Pending (a `WaitForFirstConsumer` event)
//! until the scheduler places the first pod that mounts it: then the claim gets the node
//! (`volume.kubernetes.io/selected-node`), is provisioned and bound, and the pod is scheduled.
//! A claim of an `Immediate` class is provisioned at once. (A claim the provisioner refuses is
//! refused at creation in either mode; a real WaitForFirstConsumer provisioner refuses it once a
//! pod is placed.)

use std::path::PathBuf;

use serde_json::{Value, json};

use super::Shared;
use super::events::{self, Source};
use super::store::Key;

pub const LOCAL_PATH: &str = "local-path";
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

/// Whether a pod that has not finished mounts the claim (what the pvc-protection controller
/// checks before letting a terminating claim go).
pub fn claim_in_use(shared: &Shared, ns: &str, claim: &str) -> bool {
    !shared
        .store
        .scan(|k, p| {
            let uses = k.plural == "pods"
                && k.namespace == ns
                && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                && p["spec"]["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v["persistentVolumeClaim"]["claimName"] == claim);
            uses.then_some(())
        })
        .is_empty()
}

/// The StorageClass a fresh cluster has.
pub fn local_path_class() -> Value {
    json!({"kind": "StorageClass", "apiVersion": "storage.k8s.io/v1",
           "metadata": {"name": LOCAL_PATH, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
           "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
           "allowVolumeExpansion": false})
}

/// The name of the class marked default, if any.
pub fn default_class(shared: &Shared) -> Option<String> {
    let (classes, _) = shared.store.list("storageclasses", None);
    classes
        .iter()
        .find(|c| c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true")
        .and_then(|c| c["metadata"]["name"].as_str().map(String::from))
}

/// The host folder backing a claim.
pub fn claim_dir(shared: &Shared, ns: &str, claim: &str) -> PathBuf {
    shared.dir.join("volumes").join(ns).join(claim)
}

/// Whether a claim waits for its first consumer: its class binds that way and it is not bound.
pub fn waits_for_consumer(shared: &Shared, pvc: &Value) -> bool {
    let class = pvc["spec"]["storageClassName"].as_str().unwrap_or("");
    pvc["status"]["phase"] != "Bound"
        && pvc["metadata"]["annotations"][SELECTED_NODE].is_null()
        && shared
            .store
            .get(&Key::new("storageclasses", "", class))
            .is_some_and(|sc| sc["volumeBindingMode"] == "WaitForFirstConsumer")
}

const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// A new claim: bound now, Pending until its first consumer, or Pending with the provisioner's
/// Warning event.
pub fn claim_created(shared: &Shared, pvc: &Value) {
    if refusal(shared, pvc).is_none() && waits_for_consumer(shared, pvc) {
        events::record(
            shared,
            pvc,
            false,
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding",
            Source::VolumeController,
            None,
        );
        return;
    }
    provision(shared, pvc);
}

/// The scheduler placed the first pod that mounts a waiting claim on `node`: provision it there.
pub fn first_consumer(shared: &Shared, pvc: &Value, node: &str) {
    let ns = pvc["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pvc["metadata"]["name"].as_str().unwrap_or("");
    let Some(selected) = shared.store.update(&Key::new("persistentvolumeclaims", ns, name), |o| {
        o["metadata"]["annotations"][SELECTED_NODE] = json!(node);
    }) else {
        return;
    };
    events::record(
        shared,
        &selected,
        false,
        "ExternalProvisioning",
        "Waiting for a volume to be created either by the external provisioner 'rancher.io/local-path' or manually by the system administrator. If volume creation is delayed, please verify that your external provisioner is running and correctly registered.",
        Source::VolumeController,
        None,
    );
    events::record(
        shared,
        &selected,
        false,
        "Provisioning",
        &format!("External provisioner is provisioning volume for claim \"{ns}/{name}\""),
        Source::Provisioner,
        None,
    );
    provision(shared, &selected);
}

/// Why the provisioner cannot make a volume for the claim (reason, message), if it cannot.
fn refusal(shared: &Shared, pvc: &Value) -> Option<(String, String)> {
    let class = pvc["spec"]["storageClassName"].as_str().unwrap_or("");
    let sc = shared.store.get(&Key::new("storageclasses", "", class));
    let modes = access_modes(pvc);
    match &sc {
        None if class.is_empty() => Some((
            "FailedBinding".to_string(),
            "no persistent volumes available for this claim and no storage class is set".to_string(),
        )),
        None => Some((
            "ProvisioningFailed".to_string(),
            format!("storageclass.storage.k8s.io \"{class}\" not found"),
        )),
        Some(sc)
            if sc["provisioner"] == "rancher.io/local-path"
                && modes.iter().any(|m| *m != "ReadWriteOnce" && *m != "ReadWriteOncePod") =>
        {
            Some((
                "ProvisioningFailed".to_string(),
                format!(
                    "failed to provision volume with StorageClass \"{class}\": Only support ReadWriteOnce access mode"
                ),
            ))
        }
        Some(_) => None,
    }
}

fn access_modes(pvc: &Value) -> Vec<&str> {
    pvc["spec"]["accessModes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Binds a claim to a new volume, or leaves it Pending with the provisioner's Warning event.
fn provision(shared: &Shared, pvc: &Value) {
    let ns = pvc["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pvc["metadata"]["name"].as_str().unwrap_or("");
    let modes = access_modes(pvc);
    if let Some((reason, message)) = refusal(shared, pvc) {
        events::record(shared, pvc, true, &reason, &message, Source::Provisioner, None);
        return;
    }
    let dir = claim_dir(shared, ns, name);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        events::record(
            shared,
            pvc,
            true,
            "ProvisioningFailed",
            &format!("create {}: {e}", dir.display()),
            Source::Provisioner,
            None,
        );
        return;
    }
    let uid = pvc["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let storage = pvc["spec"]["resources"]["requests"]["storage"].clone();
    let key = Key::new("persistentvolumeclaims", ns, name);
    let volume = format!("pvc-{uid}");
    let bound = shared.store.update(&key, |o| {
        o["spec"]["volumeName"] = json!(volume);
        o["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
        o["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] = json!("rancher.io/local-path");
        o["status"] = json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": storage}});
    });
    if let Some(b) = bound {
        events::record(
            shared,
            &b,
            false,
            "ProvisioningSucceeded",
            &format!("Successfully provisioned volume {volume}"),
            Source::Provisioner,
            None,
        );
    }
}
