//! Unknown-field detection for `fieldValidation=Strict|Warn`: the known fields of the object
//! parts we can check (top level, metadata, pod spec, containers). Other parts are open. Pure.

use serde_json::{Map, Value};

use super::resources::ResourceDef;

/// Known fields per object part, for `fieldValidation=Strict|Warn`. Unlisted parts are open.
fn known_fields(path: &str) -> Option<&'static [&'static str]> {
    Some(match path {
        "" => &[
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "status",
            "data",
            "stringData",
            "binaryData",
            "type",
            "immutable",
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "eventTime",
            "reportingComponent",
            "reportingInstance",
            "action",
            "related",
            "series",
            "provisioner",
            "parameters",
            "reclaimPolicy",
            "volumeBindingMode",
            "allowVolumeExpansion",
            "mountOptions",
            "allowedTopologies",
        ],
        "metadata" => &[
            "name",
            "generateName",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "generation",
            "managedFields",
            "selfLink",
        ],
        "spec.containers[]" | "spec.initContainers[]" => &[
            "name",
            "image",
            "command",
            "args",
            "workingDir",
            "ports",
            "env",
            "envFrom",
            "resources",
            "volumeMounts",
            "volumeDevices",
            "imagePullPolicy",
            "securityContext",
            "stdin",
            "stdinOnce",
            "tty",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
            "terminationMessagePath",
            "terminationMessagePolicy",
            "restartPolicy",
            "resizePolicy",
        ],
        _ => return None,
    })
}

const POD_SPEC_FIELDS: &[&str] = &[
    "initContainers",
    "containers",
    "ephemeralContainers",
    "volumes",
    "restartPolicy",
    "nodeName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "dnsConfig",
    "dnsPolicy",
    "hostAliases",
    "securityContext",
    "runtimeClassName",
    "priorityClassName",
    "priority",
    "activeDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "schedulerName",
    "enableServiceLinks",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "readinessGates",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
];

fn unknown_in(obj: &Map<String, Value>, known: &[&str], prefix: &str, out: &mut Vec<String>) {
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            out.push(if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            });
        }
    }
}

/// The unknown fields of an object, as dotted paths (`spec.foo`, `spec.containers[0].bar`).
pub fn unknown_fields(def: &ResourceDef, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(top) = obj.as_object() {
        unknown_in(top, known_fields("").unwrap_or(&[]), "", &mut out);
    }
    if let Some(m) = obj["metadata"].as_object() {
        unknown_in(m, known_fields("metadata").unwrap_or(&[]), "metadata", &mut out);
    }
    if def.plural == "pods" {
        if let Some(spec) = obj["spec"].as_object() {
            unknown_in(spec, POD_SPEC_FIELDS, "spec", &mut out);
        }
        for list in ["containers", "initContainers"] {
            for (i, c) in obj["spec"][list].as_array().into_iter().flatten().enumerate() {
                if let Some(c) = c.as_object() {
                    let known = known_fields("spec.containers[]").unwrap_or(&[]);
                    unknown_in(c, known, &format!("spec.{list}[{i}]"), &mut out);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_plural;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"foo": 1, "containers": [{"name": "a", "bar": 2}]}});
        assert_eq!(
            unknown_fields(by_plural("pods").unwrap(), &pod),
            ["spec.foo", "spec.containers[0].bar"]
        );
    }
}
