//! Server-side Tables (`Accept: ...;as=Table;g=meta.k8s.io`): the columns and already-formatted
//! cells `kubectl get` prints for each kind, with the object as PartialObjectMetadata. Pure.

use serde_json::{Value, json};

use super::time;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn columns(plural: &str) -> Vec<(&'static str, &'static str, u8)> {
    match plural {
        "pods" => vec![
            ("Name", "name", 0),
            ("Ready", "", 0),
            ("Status", "", 0),
            ("Restarts", "", 0),
            ("Age", "", 0),
            ("IP", "", 1),
            ("Node", "", 1),
            ("Nominated Node", "", 1),
            ("Readiness Gates", "", 1),
        ],
        "persistentvolumeclaims" => vec![
            ("Name", "name", 0),
            ("Status", "", 0),
            ("Volume", "", 0),
            ("Capacity", "", 0),
            ("Access Modes", "", 0),
            ("StorageClass", "", 0),
            ("VolumeAttributesClass", "", 0),
            ("Age", "", 0),
            ("VolumeMode", "", 1),
        ],
        "events" => vec![
            ("Last Seen", "", 0),
            ("Type", "", 0),
            ("Reason", "", 0),
            ("Object", "", 0),
            ("Subobject", "", 1),
            ("Source", "", 1),
            ("Message", "", 0),
            ("First Seen", "", 1),
            ("Count", "", 1),
            ("Name", "name", 1),
        ],
        "namespaces" => vec![("Name", "name", 0), ("Status", "", 0), ("Age", "", 0)],
        "services" => vec![
            ("Name", "name", 0),
            ("Type", "", 0),
            ("Cluster-IP", "", 0),
            ("External-IP", "", 0),
            ("Port(s)", "", 0),
            ("Age", "", 0),
            ("Selector", "", 1),
        ],
        "secrets" => vec![("Name", "name", 0), ("Type", "", 0), ("Data", "", 0), ("Age", "", 0)],
        "configmaps" => vec![("Name", "name", 0), ("Data", "", 0), ("Age", "", 0)],
        "leases" => vec![("Name", "name", 0), ("Holder", "", 0), ("Age", "", 0)],
        "nodes" => vec![
            ("Name", "name", 0),
            ("Status", "", 0),
            ("Roles", "", 0),
            ("Age", "", 0),
            ("Version", "", 0),
            ("Internal-IP", "", 1),
            ("External-IP", "", 1),
            ("OS-Image", "", 1),
            ("Kernel-Version", "", 1),
            ("Container-Runtime", "", 1),
        ],
        "storageclasses" => vec![
            ("Name", "name", 0),
            ("Provisioner", "", 0),
            ("ReclaimPolicy", "", 0),
            ("VolumeBindingMode", "", 0),
            ("AllowVolumeExpansion", "", 0),
            ("Age", "", 0),
        ],
        _ => vec![("Name", "name", 0), ("Age", "", 0)],
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn age_of(v: &Value, now: i128) -> String {
    v.as_str()
        .and_then(time::parse_rfc3339)
        .map(|t| time::age(t, now))
        .unwrap_or_else(|| "<unknown>".into())
}

/// The STATUS column of `kubectl get pods`, computed as kubectl's printer does.
pub fn pod_status(pod: &Value) -> String {
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return "Terminating".into();
    }
    let st = &pod["status"];
    let mut reason = st["reason"]
        .as_str()
        .or(st["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    for (i, c) in st["initContainerStatuses"].as_array().into_iter().flatten().enumerate() {
        let t = &c["state"]["terminated"];
        if t.is_object() && t["exitCode"].as_i64() == Some(0) {
            continue;
        }
        let total = st["initContainerStatuses"].as_array().map_or(0, Vec::len);
        reason = if t.is_object() {
            format!("Init:{}", t["reason"].as_str().unwrap_or("Error"))
        } else if let Some(w) = c["state"]["waiting"]["reason"]
            .as_str()
            .filter(|w| *w != "PodInitializing")
        {
            format!("Init:{w}")
        } else {
            format!("Init:{i}/{total}")
        };
        return reason;
    }
    for c in st["containerStatuses"].as_array().into_iter().flatten().rev() {
        if let Some(w) = c["state"]["waiting"]["reason"].as_str() {
            reason = w.to_string();
        } else if let Some(t) = c["state"]["terminated"].as_object() {
            reason = t
                .get("reason")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("ExitCode:{}", t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)));
        }
    }
    if st["phase"] == "Succeeded" && reason == "Succeeded" {
        reason = "Completed".into();
    }
    reason
}

fn cells(plural: &str, o: &Value, now: i128) -> Vec<Value> {
    let m = &o["metadata"];
    let age = age_of(&m["creationTimestamp"], now);
    match plural {
        "pods" => {
            let cs = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = cs.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = cs.iter().filter_map(|c| c["restartCount"].as_i64()).sum();
            let ip = o["status"]["podIP"].as_str().unwrap_or("<none>");
            let node = o["spec"]["nodeName"].as_str().unwrap_or("<none>");
            vec![
                json!(s(&m["name"])),
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                json!(age),
                json!(ip),
                json!(node),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "persistentvolumeclaims" => {
            let modes: Vec<String> = o["status"]["accessModes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| match m.as_str() {
                    Some("ReadWriteOnce") => "RWO".to_string(),
                    Some("ReadWriteMany") => "RWX".to_string(),
                    Some("ReadOnlyMany") => "ROX".to_string(),
                    Some("ReadWriteOncePod") => "RWOP".to_string(),
                    other => other.unwrap_or("").to_string(),
                })
                .collect();
            // As the apiserver prints a claim: capacity and modes once it names its volume,
            // Terminating once deleted, `<unset>` for what is not set.
            let bound = !s(&o["spec"]["volumeName"]).is_empty();
            let phase = if m["deletionTimestamp"].is_string() {
                "Terminating".to_string()
            } else {
                s(&o["status"]["phase"])
            };
            let or_unset = |v: &Value| v.as_str().unwrap_or("<unset>").to_string();
            vec![
                json!(s(&m["name"])),
                json!(phase),
                json!(s(&o["spec"]["volumeName"])),
                json!(if bound {
                    s(&o["status"]["capacity"]["storage"])
                } else {
                    String::new()
                }),
                json!(if bound { modes.join(",") } else { String::new() }),
                json!(s(&o["spec"]["storageClassName"])),
                json!(or_unset(&o["spec"]["volumeAttributesClassName"])),
                json!(age),
                json!(or_unset(&o["spec"]["volumeMode"])),
            ]
        }
        "events" => {
            let io = &o["involvedObject"];
            let last = if o["lastTimestamp"].is_string() {
                &o["lastTimestamp"]
            } else {
                &o["metadata"]["creationTimestamp"]
            };
            vec![
                json!(age_of(last, now)),
                json!(s(&o["type"])),
                json!(s(&o["reason"])),
                json!(format!("{}/{}", s(&io["kind"]).to_lowercase(), s(&io["name"]))),
                json!(s(&io["fieldPath"])),
                json!(event_source(o)),
                json!(s(&o["message"]).trim()),
                json!(age_of(&o["firstTimestamp"], now)),
                json!(o["count"].as_i64().filter(|n| *n > 0).unwrap_or(1)),
                json!(s(&m["name"])),
            ]
        }
        "namespaces" => vec![json!(s(&m["name"])), json!(s(&o["status"]["phase"])), json!(age)],
        "nodes" => {
            // The apiserver's words: Ready, NotReady (the condition is False or Unknown), Unknown
            // (no Ready condition), and SchedulingDisabled after a cordon.
            let ready = o["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .map(|c| if c["status"] == "True" { "Ready" } else { "NotReady" })
                .unwrap_or("Unknown");
            let status = if o["spec"]["unschedulable"] == true {
                format!("{ready},SchedulingDisabled")
            } else {
                ready.to_string()
            };
            let address = |kind: &str| {
                o["status"]["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["type"] == kind)
                    .and_then(|a| a["address"].as_str())
                    .unwrap_or("<none>")
                    .to_string()
            };
            let roles: Vec<String> = m["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/").map(String::from))
                .collect();
            let roles = if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            };
            let info = &o["status"]["nodeInfo"];
            vec![
                json!(s(&m["name"])),
                json!(status),
                json!(roles),
                json!(age),
                json!(s(&info["kubeletVersion"])),
                json!(address("InternalIP")),
                json!(address("ExternalIP")),
                json!(s(&info["osImage"])),
                json!(s(&info["kernelVersion"])),
                json!(s(&info["containerRuntimeVersion"])),
            ]
        }
        "services" => {
            let ports: Vec<String> = o["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            let ports = if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            };
            vec![
                json!(s(&m["name"])),
                json!(s(&o["spec"]["type"])),
                json!(s(&o["spec"]["clusterIP"])),
                json!("<none>"),
                json!(ports),
                json!(age),
                json!(
                    o["spec"]["selector"]
                        .as_object()
                        .map(|sel| sel
                            .iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_else(|| "<none>".into())
                ),
            ]
        }
        "secrets" => vec![
            json!(s(&m["name"])),
            json!(s(&o["type"])),
            json!(o["data"].as_object().map_or(0, |d| d.len()).to_string()),
            json!(age),
        ],
        "configmaps" => {
            let n = |f: &str| o[f].as_object().map_or(0, |d| d.len());
            vec![
                json!(s(&m["name"])),
                json!((n("data") + n("binaryData")).to_string()),
                json!(age),
            ]
        }
        "leases" => vec![json!(s(&m["name"])), json!(s(&o["spec"]["holderIdentity"])), json!(age)],
        "storageclasses" => {
            let default = m["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true";
            let name = if default {
                format!("{} (default)", s(&m["name"]))
            } else {
                s(&m["name"])
            };
            vec![
                json!(name),
                json!(s(&o["provisioner"])),
                json!(s(&o["reclaimPolicy"])),
                json!(s(&o["volumeBindingMode"])),
                json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false).to_string()),
                json!(age),
            ]
        }
        _ => vec![json!(s(&m["name"])), json!(age)],
    }
}

fn row(plural: &str, o: &Value, now: i128) -> Value {
    let mut meta = o["metadata"].clone();
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
    }
    json!({"cells": cells(plural, o, now),
           "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
}

/// A Table of `items` with `resourceVersion` in its metadata.
pub fn table(plural: &str, items: &[Value], rv: &str, with_columns: bool) -> Value {
    let now = time::now_nanos();
    let cols: Vec<Value> = if with_columns {
        columns(plural)
            .into_iter()
            .map(|(name, format, prio)| json!({"name": name, "type": "string", "format": format, "description": "", "priority": prio}))
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = items.iter().map(|o| row(plural, o, now)).collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
           "columnDefinitions": cols, "rows": rows})
}

/// An event's SOURCE cell as the apiserver prints it: `component, host`, each falling back to
/// the reporting controller and instance.
fn event_source(o: &Value) -> String {
    let either = |a: &Value, b: &Value| {
        let a = a.as_str().unwrap_or("");
        if a.is_empty() {
            b.as_str().unwrap_or("").to_string()
        } else {
            a.to_string()
        }
    };
    let component = either(&o["source"]["component"], &o["reportingComponent"]);
    let host = either(&o["source"]["host"], &o["reportingInstance"]);
    if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    }
}
