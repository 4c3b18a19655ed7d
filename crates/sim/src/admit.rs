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

/// The namespace label the Pod Security admission plugin enforces.
pub const PSS_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The Pod Security admission plugin for a new pod: the level of the namespace's
/// `pod-security.kubernetes.io/enforce` label (`baseline` or `restricted`; `privileged`, absent
/// or unknown admit everything), checked as the plugin checks, with its 403 message:
/// `pods "x" is forbidden: violates PodSecurity "restricted:latest": <check> (<detail>), ...`.
pub fn pod_security(namespace: Option<&Value>, pod: &Value) -> Result<(), ApiError> {
    let level = namespace
        .and_then(|ns| ns["metadata"]["labels"][PSS_ENFORCE_LABEL].as_str())
        .unwrap_or("privileged");
    let restricted = match level {
        "restricted" => true,
        "baseline" => false,
        _ => return Ok(()),
    };
    let version = namespace
        .and_then(|ns| ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"].as_str())
        .unwrap_or("latest");
    let found = pss_violations(pod, restricted);
    if found.is_empty() {
        return Ok(());
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let mut e = ApiError::new(
        403,
        "Forbidden",
        format!(
            "pods {name:?} is forbidden: violates PodSecurity \"{level}:{version}\": {}",
            found.join(", ")
        ),
    );
    e.details = Some(json!({"name": name, "kind": "pods"}));
    Err(e)
}

/// Capabilities the baseline level lets a container add.
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
/// Volume types the restricted level allows.
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];
/// Sysctls the baseline level allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// `"a", "b"` as the plugin lists names.
fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// `container "a"` or `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    let noun = if names.len() == 1 { "container" } else { "containers" };
    format!("{noun} {}", quoted(names))
}

/// The failed checks of the Pod Security Standards (kubernetes.io/docs/concepts/security/
/// pod-security-standards, v1.32), in the plugin's order and wording: baseline, and with
/// `restricted` the restricted checks too.
pub fn pss_violations(pod: &Value, restricted: bool) -> Vec<String> {
    let spec = &pod["spec"];
    let psc = &spec["securityContext"];
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| spec[*l].as_array().into_iter().flatten())
        .collect();
    let cname = |c: &Value| c["name"].as_str().unwrap_or("").to_string();
    let which = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        containers.iter().filter(|c| pred(c)).map(|c| cname(c)).collect()
    };
    let mut out = Vec::new();

    // Baseline.
    let host_ns: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| spec[**k] == true)
        .map(|k| format!("{k}=true"))
        .collect();
    if !host_ns.is_empty() {
        out.push(format!("host namespaces ({})", host_ns.join(", ")));
    }
    let privileged = which(&|c| c["securityContext"]["privileged"] == true);
    if !privileged.is_empty() {
        out.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            containers_phrase(&privileged)
        ));
    }
    let mut bad_caps = Vec::new();
    let mut bad_cap_containers = Vec::new();
    for c in &containers {
        let added: Vec<String> = c["securityContext"]["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|cap| !BASELINE_CAPS.contains(cap))
            .map(String::from)
            .collect();
        if !added.is_empty() {
            bad_cap_containers.push(cname(c));
            bad_caps.extend(added);
        }
    }
    if !bad_caps.is_empty() {
        out.push(format!(
            "non-default capabilities ({} must not include {} in securityContext.capabilities.add)",
            containers_phrase(&bad_cap_containers),
            quoted(&bad_caps)
        ));
    }
    let volumes: Vec<&Value> = spec["volumes"].as_array().into_iter().flatten().collect();
    let host_path: Vec<String> = volumes
        .iter()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| v["name"].as_str().unwrap_or("").to_string())
        .collect();
    if !host_path.is_empty() {
        let noun = if host_path.len() == 1 { "volume" } else { "volumes" };
        out.push(format!("hostPath volumes ({noun} {})", quoted(&host_path)));
    }
    let host_ports: Vec<String> = containers
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["hostPort"].as_i64().filter(|p| *p != 0))
        .map(|p| p.to_string())
        .collect();
    if !host_ports.is_empty() {
        out.push(format!(
            "hostPort ({} {})",
            if host_ports.len() == 1 { "hostPort" } else { "hostPorts" },
            host_ports.join(", ")
        ));
    }
    for (field, check) in [
        ("appArmorProfile", "appArmorProfile"),
        ("seccompProfile", "seccompProfile"),
    ] {
        let unconfined = |sc: &Value| sc[field]["type"] == "Unconfined";
        let mut forbidden = Vec::new();
        if unconfined(psc) {
            forbidden.push(format!(
                "pod must not set securityContext.{field}.type to \"Unconfined\""
            ));
        }
        let cs = which(&|c| unconfined(&c["securityContext"]));
        if !cs.is_empty() {
            forbidden.push(format!(
                "{} must not set securityContext.{field}.type to \"Unconfined\"",
                containers_phrase(&cs)
            ));
        }
        if !forbidden.is_empty() && (field == "appArmorProfile" || !restricted) {
            out.push(format!("{check} ({})", forbidden.join("; ")));
        }
    }
    let sysctls: Vec<String> = psc["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .map(String::from)
        .collect();
    if !sysctls.is_empty() {
        out.push(format!("forbidden sysctls ({})", sysctls.join(", ")));
    }
    if !restricted {
        return out;
    }

    // Restricted.
    let mut bad_volumes = Vec::new();
    for v in &volumes {
        let name = v["name"].as_str().unwrap_or("");
        let kind = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .find(|k| *k != "name");
        if let Some(kind) = kind.filter(|k| !RESTRICTED_VOLUMES.contains(k)) {
            bad_volumes.push(format!("volume {name:?} uses restricted volume type {kind:?}"));
        }
    }
    if !bad_volumes.is_empty() {
        out.push(format!("restricted volume types ({})", bad_volumes.join(", ")));
    }
    let ape = which(&|c| c["securityContext"]["allowPrivilegeEscalation"] != false);
    if !ape.is_empty() {
        out.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            containers_phrase(&ape)
        ));
    }
    let no_drop = which(&|c| {
        !c["securityContext"]["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"))
    });
    let bad_add = which(&|c| {
        c["securityContext"]["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x != "NET_BIND_SERVICE"))
    });
    if !no_drop.is_empty() || !bad_add.is_empty() {
        let mut parts = Vec::new();
        if !no_drop.is_empty() {
            parts.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                containers_phrase(&no_drop)
            ));
        }
        if !bad_add.is_empty() {
            parts.push(format!(
                "{} must not include capabilities other than \"NET_BIND_SERVICE\" in securityContext.capabilities.add",
                containers_phrase(&bad_add)
            ));
        }
        out.push(format!("unrestricted capabilities ({})", parts.join("; ")));
    }
    let pod_nonroot = psc["runAsNonRoot"].as_bool();
    let explicit_false =
        pod_nonroot == Some(false) || containers.iter().any(|c| c["securityContext"]["runAsNonRoot"] == false);
    let unset = which(&|c| c["securityContext"]["runAsNonRoot"].is_null() && pod_nonroot != Some(true));
    if explicit_false {
        out.push("runAsNonRoot != true (pod or containers must not set securityContext.runAsNonRoot=false)".into());
    } else if !unset.is_empty() {
        out.push(format!(
            "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
            containers_phrase(&unset)
        ));
    }
    let root_pod = psc["runAsUser"] == 0;
    let root_containers = which(&|c| c["securityContext"]["runAsUser"] == 0);
    if root_pod || !root_containers.is_empty() {
        let mut parts = Vec::new();
        if root_pod {
            parts.push("pod must not set runAsUser=0".to_string());
        }
        if !root_containers.is_empty() {
            parts.push(format!(
                "{} must not set runAsUser=0",
                containers_phrase(&root_containers)
            ));
        }
        out.push(format!("runAsUser=0 ({})", parts.join("; ")));
    }
    let ok_profile = |sc: &Value| {
        matches!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let pod_profile = psc["seccompProfile"]["type"].as_str();
    let unconfined_pod = pod_profile == Some("Unconfined");
    let unconfined: Vec<String> = which(&|c| c["securityContext"]["seccompProfile"]["type"] == "Unconfined");
    let missing = which(&|c| c["securityContext"]["seccompProfile"]["type"].is_null() && !ok_profile(psc));
    if unconfined_pod || !unconfined.is_empty() {
        let mut parts = Vec::new();
        if unconfined_pod {
            parts.push("pod must not set securityContext.seccompProfile.type to \"Unconfined\"".to_string());
        }
        if !unconfined.is_empty() {
            parts.push(format!(
                "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
                containers_phrase(&unconfined)
            ));
        }
        out.push(format!("seccompProfile ({})", parts.join("; ")));
    } else if !missing.is_empty() {
        out.push(format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            containers_phrase(&missing)
        ));
    }
    out
}

#[cfg(test)]
mod pss_tests {
    use super::*;

    fn ns(level: &str) -> Value {
        json!({"metadata": {"name": "ci", "labels": {PSS_ENFORCE_LABEL: level}}})
    }

    fn plain() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "alpine"}],
            "volumes": [{"name": "ws", "persistentVolumeClaim": {"claimName": "x"}}]}})
    }

    fn restricted_ok() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "alpine", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
    }

    #[test]
    fn a_plain_pod_passes_baseline_not_restricted() {
        pod_security(Some(&ns("baseline")), &plain()).unwrap();
        pod_security(None, &plain()).unwrap();
        pod_security(Some(&ns("privileged")), &plain()).unwrap();
        let e = pod_security(Some(&ns("restricted")), &plain()).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\": \
             allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        pod_security(Some(&ns("restricted")), &restricted_ok()).unwrap();
    }

    #[test]
    fn baseline_refuses_privileged_host_and_unconfined() {
        let mut p = plain();
        p["spec"]["containers"][0]["securityContext"] =
            json!({"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}});
        p["spec"]["hostNetwork"] = json!(true);
        p["spec"]["securityContext"] = json!({"seccompProfile": {"type": "Unconfined"}});
        p["spec"]["volumes"] = json!([{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]);
        let found = pss_violations(&p, false);
        assert_eq!(
            found,
            [
                "host namespaces (hostNetwork=true)",
                "privileged (container \"c\" must not set securityContext.privileged=true)",
                "non-default capabilities (container \"c\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)",
                "hostPath volumes (volume \"docker\")",
                "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")",
            ]
        );
        let e = pod_security(Some(&ns("baseline")), &p).unwrap_err();
        assert!(e.message.contains("\"baseline:latest\""), "{}", e.message);
    }

    #[test]
    fn restricted_refuses_root_and_unconfined_seccomp() {
        let mut p = restricted_ok();
        p["spec"]["securityContext"]["runAsUser"] = json!(0);
        p["spec"]["containers"][0]["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"});
        let found = pss_violations(&p, true);
        assert_eq!(
            found,
            [
                "runAsUser=0 (pod must not set runAsUser=0)",
                "seccompProfile (container \"c\" must not set securityContext.seccompProfile.type to \"Unconfined\")",
            ]
        );
    }
}
