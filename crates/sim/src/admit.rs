//! What the apiserver does to an object before storing it (unknown fields are `fields`' job):
//! name and spec validation (422 with field causes, texts as the real server
//! prints them) and defaulting (pod defaults, the default StorageClass, Secret `stringData`,
//! Service cluster IPs, Namespace phase). Pure; the store assigns identity afterwards.

use base64::Engine;
use serde_json::{Value, json};

use super::resources::ResourceDef;
use super::status::{ApiError, Cause};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Errors for a DNS-1123 label field (length first, then the pattern, as the apiserver does).
fn label_causes(field: &str, v: &str, out: &mut Vec<Cause>) {
    if v.len() > 63 {
        out.push(Cause::invalid(field, v, "must be no more than 63 characters"));
    }
    if !(is_dns_label(v) || v.len() > 63 && is_dns_label(&v[..63])) {
        out.push(Cause::invalid(field, v, LABEL_MSG));
    }
}

/// Validates and defaults a new object of `def` in `namespace`. Returns it with kind and
/// apiVersion set.
pub fn admit_create(
    def: &ResourceDef,
    namespace: &str,
    mut obj: Value,
    default_sc: Option<&str>,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: expected an object",
            def.kind, def.version, def.kind
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the object kind {k:?} does not match the resource {}",
            def.plural
        )));
    }
    obj["kind"] = json!(def.kind);
    obj["apiVersion"] = json!(def.api_version());
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let meta = &mut obj["metadata"];
    if meta.get("creationTimestamp").is_some_and(Value::is_null) {
        meta.as_object_mut().map(|m| m.remove("creationTimestamp"));
    }
    if def.namespaced {
        let given = meta["namespace"].as_str().unwrap_or("");
        if !given.is_empty() && given != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let name = meta["name"].as_str().unwrap_or("").to_string();
    let generate = meta["generateName"].as_str().unwrap_or("").to_string();
    let mut causes = Vec::new();
    if name.is_empty() && generate.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        });
    } else if !name.is_empty() {
        let label_only = matches!(def.plural, "namespaces" | "services");
        let ok = if label_only {
            is_dns_label(&name)
        } else {
            is_dns_subdomain(&name)
        };
        if !ok {
            causes.push(Cause::invalid(
                "metadata.name",
                &name,
                if label_only { LABEL_MSG } else { SUBDOMAIN_MSG },
            ));
        }
    }
    match def.plural {
        "pods" => pod(&mut obj, &mut causes),
        "persistentvolumeclaims" => pvc(&mut obj, &mut causes, default_sc),
        "services" => service(&mut obj),
        "secrets" => secret(&mut obj, &mut causes),
        "namespaces" => {
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        "storageclasses" if obj["provisioner"].as_str().unwrap_or("").is_empty() => {
            causes.push(Cause::required("provisioner"));
        }
        _ => {}
    }
    if !causes.is_empty() {
        let shown = if name.is_empty() { generate } else { name };
        return Err(ApiError::invalid(def.kind, &shown, causes));
    }
    Ok(obj)
}

fn pod(obj: &mut Value, causes: &mut Vec<Cause>) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    if spec["containers"].as_array().is_none_or(Vec::is_empty) {
        causes.push(Cause::required("spec.containers"));
    }
    let volumes: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    for list in ["initContainers", "containers"] {
        // `get_mut`, not `spec[list]`: indexing a missing key mutably would insert a `null`.
        for (i, c) in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("spec.{list}[{i}]");
            match c["name"].as_str() {
                None | Some("") => causes.push(Cause::required(format!("{field}.name"))),
                Some(n) => label_causes(&format!("{field}.name"), n, causes),
            }
            if c["image"].as_str().unwrap_or("").is_empty() {
                causes.push(Cause::required(format!("{field}.image")));
            }
            for (j, m) in c["volumeMounts"].as_array().into_iter().flatten().enumerate() {
                let n = m["name"].as_str().unwrap_or("");
                if !volumes.iter().any(|v| v == n) {
                    causes.push(Cause {
                        reason: "FieldValueNotFound",
                        field: format!("{field}.volumeMounts[{j}].name"),
                        message: format!("Not found: \"{n}\""),
                    });
                }
            }
            if c["imagePullPolicy"].is_null() {
                let latest = c["image"]
                    .as_str()
                    .is_some_and(|i| !i.rsplit('/').next().unwrap_or("").contains(':') || i.ends_with(":latest"));
                c["imagePullPolicy"] = json!(if latest { "Always" } else { "IfNotPresent" });
            }
            if c["terminationMessagePolicy"].is_null() {
                c["terminationMessagePolicy"] = json!("File");
                c["terminationMessagePath"] = json!("/dev/termination-log");
            }
            if c["resources"].is_null() {
                c["resources"] = json!({});
            }
        }
    }
    for (field, default) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("serviceAccountName", json!("default")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
    ] {
        if spec[field].is_null() {
            spec[field] = default;
        }
    }
    obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
}

fn pvc(obj: &mut Value, causes: &mut Vec<Cause>, default_sc: Option<&str>) {
    // The protection controller's finalizer: a claim in use by a pod is not removed.
    let fins = obj["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    if !fins.iter().any(|f| f == super::storage::PVC_PROTECTION) {
        let mut fins = fins;
        fins.push(json!(super::storage::PVC_PROTECTION));
        obj["metadata"]["finalizers"] = json!(fins);
    }
    let spec = &mut obj["spec"];
    if spec["accessModes"].as_array().is_none_or(Vec::is_empty) {
        causes.push(Cause::required("spec.accessModes"));
    }
    if spec["resources"]["requests"]["storage"].is_null() {
        causes.push(Cause::required("spec.resources[storage]"));
    }
    if spec["storageClassName"].is_null()
        && let Some(sc) = default_sc
    {
        spec["storageClassName"] = json!(sc);
    }
    if spec["volumeMode"].is_null() {
        spec["volumeMode"] = json!("Filesystem");
    }
    obj["status"] = json!({"phase": "Pending"});
}

fn service(obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    if spec["type"].is_null() {
        spec["type"] = json!("ClusterIP");
    }
    if spec["clusterIP"].is_null() {
        let n = super::store::random_hex(2);
        let ip = format!(
            "10.43.{}.{}",
            u8::from_str_radix(&n[..2], 16).unwrap_or(1),
            u8::from_str_radix(&n[2..], 16).unwrap_or(1).max(1)
        );
        spec["clusterIP"] = json!(ip);
    }
    spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
    if spec["sessionAffinity"].is_null() {
        spec["sessionAffinity"] = json!("None");
    }
    obj["status"] = json!({"loadBalancer": {}});
}

fn secret(obj: &mut Value, causes: &mut Vec<Cause>) {
    if obj["type"].is_null() {
        obj["type"] = json!("Opaque");
    }
    let string_data = obj.as_object_mut().and_then(|o| o.remove("stringData"));
    if let Some(Value::Object(sd)) = string_data {
        if !obj["data"].is_object() {
            obj["data"] = json!({});
        }
        for (k, v) in sd {
            let plain = v.as_str().unwrap_or("").as_bytes().to_vec();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(plain));
        }
    }
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        let ok = v
            .as_str()
            .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
        if !ok {
            causes.push(Cause::invalid(
                format!("data[{k}]"),
                "<value>",
                "must be base64 encoded",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_plural;

    #[test]
    fn bad_pod_name_gives_both_causes() {
        let pod =
            json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "Bad_Name", "image": "x"}]}});
        let e = admit_create(by_plural("pods").unwrap(), "default", pod, None).unwrap_err();
        assert_eq!(e.code, 422);
        let causes = e.details.unwrap()["causes"].clone();
        assert_eq!(causes[0]["field"], "metadata.name");
        assert_eq!(causes[1]["field"], "spec.containers[0].name");
    }

    #[test]
    fn pod_without_containers_and_long_container_name() {
        let e = admit_create(
            by_plural("pods").unwrap(),
            "d",
            json!({"metadata": {"name": "p"}, "spec": {}}),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("spec.containers: Required value"), "{}", e.message);
        let long = "a".repeat(64);
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": long, "image": "x"}]}});
        let e = admit_create(by_plural("pods").unwrap(), "d", pod, None).unwrap_err();
        assert!(
            e.message.contains("must be no more than 63 characters"),
            "{}",
            e.message
        );
    }

    #[test]
    fn secret_string_data_is_merged() {
        let s = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        let s = admit_create(by_plural("secrets").unwrap(), "d", s, None).unwrap();
        assert_eq!(s["data"]["k"], "dg==");
        assert!(s.get("stringData").is_none());
    }
}
