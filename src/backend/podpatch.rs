//! The admin pod patch (`POD_PATCH`, `SERVICE_PATCH`): a JSON merge patch (RFC 7386) applied to
//! every step pod (and a second one to the pods of services) for the fields no option covers.
//! [`check`] runs at start-up against the pod shape: unknown fields, wrong kinds and fields the
//! agent owns (the containers and their command, the volumes with the workspace, the labels it
//! finds its pods by) are refused, naming the field. Pure.

use serde_json::{Map, Value};

use super::labels::SERVICE;
use super::names::{AGENT_LABEL, TASK_LABEL};
use kube::types::Pod;

/// What a field of the pod shape holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    Int,
    Object,
    /// A map of strings (node selector, overhead).
    Strings,
    /// A list of objects with these keys.
    List(&'static [&'static str]),
    /// Owned by the agent: why.
    Owned(&'static str),
}

use Kind::*;

const TOLERATION: &[&str] = &["key", "operator", "value", "effect", "tolerationSeconds"];
const SPREAD: &[&str] = &[
    "maxSkew",
    "topologyKey",
    "whenUnsatisfiable",
    "labelSelector",
    "minDomains",
    "nodeAffinityPolicy",
    "nodeTaintsPolicy",
    "matchLabelKeys",
];

/// The PodSpec fields of Kubernetes 1.32, and what each holds.
const SPEC: &[(&str, Kind)] = &[
    ("activeDeadlineSeconds", Int),
    ("affinity", Object),
    ("automountServiceAccountToken", Bool),
    (
        "containers",
        Owned("the step container (its command, image, env and workspace mount)"),
    ),
    ("dnsConfig", Object),
    ("dnsPolicy", Str),
    ("enableServiceLinks", Bool),
    (
        "ephemeralContainers",
        Owned("ephemeral containers cannot be set when a pod is created"),
    ),
    ("hostAliases", List(&["ip", "hostnames"])),
    ("hostIPC", Bool),
    ("hostNetwork", Bool),
    ("hostPID", Bool),
    ("hostUsers", Bool),
    (
        "hostname",
        Owned("the step's DNS name on the workflow's headless service"),
    ),
    ("imagePullSecrets", List(&["name"])),
    (
        "initContainers",
        Owned("the permission init container (a merge patch replaces the whole list)"),
    ),
    ("nodeName", Str),
    ("nodeSelector", Strings),
    ("os", Object),
    ("overhead", Strings),
    ("preemptionPolicy", Str),
    ("priority", Int),
    ("priorityClassName", Str),
    ("readinessGates", List(&["conditionType"])),
    (
        "resourceClaims",
        List(&["name", "resourceClaimName", "resourceClaimTemplateName"]),
    ),
    (
        "restartPolicy",
        Owned("a step runs once (Never); the lifecycle relies on it"),
    ),
    ("runtimeClassName", Str),
    ("schedulerName", Str),
    ("schedulingGates", List(&["name"])),
    ("securityContext", Object),
    ("serviceAccount", Str),
    ("serviceAccountName", Str),
    ("setHostnameAsFQDN", Bool),
    ("shareProcessNamespace", Bool),
    (
        "subdomain",
        Owned("the workflow's headless service, which makes services reachable by name"),
    ),
    ("terminationGracePeriodSeconds", Int),
    ("tolerations", List(TOLERATION)),
    ("topologySpreadConstraints", List(SPREAD)),
    (
        "volumes",
        Owned("the workspace and secret volumes (a merge patch replaces the whole list)"),
    ),
];

/// Keys of the objects the shape checks one level down.
const OBJECT_KEYS: &[(&str, &[&str])] = &[
    (
        "securityContext",
        &[
            "appArmorProfile",
            "fsGroup",
            "fsGroupChangePolicy",
            "runAsGroup",
            "runAsNonRoot",
            "runAsUser",
            "seLinuxChangePolicy",
            "seLinuxOptions",
            "seccompProfile",
            "supplementalGroups",
            "supplementalGroupsPolicy",
            "sysctls",
            "windowsOptions",
        ],
    ),
    ("dnsConfig", &["nameservers", "options", "searches"]),
    ("affinity", &["nodeAffinity", "podAffinity", "podAntiAffinity"]),
    ("os", &["name"]),
];

/// Labels the agent finds and tells its pods apart by.
const OWNED_LABELS: &[&str] = &[TASK_LABEL, AGENT_LABEL, "step", "woodpecker-ci.org/step", SERVICE];

fn kind_name(k: Kind) -> &'static str {
    match k {
        Str => "a string",
        Bool => "a boolean",
        Int => "an integer",
        Object => "an object",
        Strings => "a map of strings",
        List(_) => "a list of objects",
        Owned(_) => "",
    }
}

fn fits(k: Kind, v: &Value) -> bool {
    match k {
        Str => v.is_string(),
        Bool => v.is_boolean(),
        Int => v.is_i64() || v.is_u64(),
        Object => v.is_object(),
        Strings => v
            .as_object()
            .is_some_and(|m| m.values().all(|x| x.is_string() || x.is_null())),
        List(_) => v.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
        Owned(_) => true,
    }
}

/// Checks a patch against the pod shape; the error names the field. `null` (no patch) is fine.
pub fn check(patch: &Value) -> Result<(), String> {
    let top = match patch {
        Value::Null => return Ok(()),
        Value::Object(m) => m,
        _ => return Err("expected a JSON merge patch of a Pod: a map with metadata and/or spec".into()),
    };
    for (k, v) in top {
        match k.as_str() {
            "metadata" => check_metadata(v)?,
            "spec" => check_spec(v)?,
            "apiVersion" | "kind" | "status" => return Err(format!("`{k}`: owned by the agent")),
            other => return Err(format!("`{other}`: not a field of a Pod (metadata, spec)")),
        }
    }
    Ok(())
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("`{field}`: expected an object"))
}

fn check_metadata(v: &Value) -> Result<(), String> {
    for (k, v) in object(v, "metadata")? {
        match k.as_str() {
            "labels" | "annotations" => {
                let field = format!("metadata.{k}");
                for (key, value) in object(v, &field)? {
                    if k == "labels" && OWNED_LABELS.contains(&key.as_str()) {
                        return Err(format!("`{field}.{key}`: owned by the agent (it finds its pods by it)"));
                    }
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Null => continue,
                        _ => return Err(format!("`{field}.{key}`: expected a string")),
                    };
                    let one = std::collections::BTreeMap::from([(key.clone(), text)]);
                    if let Some(why) = super::names::check_keys_values(&one, k == "labels") {
                        return Err(format!("`{field}`: {why}"));
                    }
                }
            }
            other => {
                return Err(format!(
                    "`metadata.{other}`: owned by the agent (only labels and annotations may be patched)"
                ));
            }
        }
    }
    Ok(())
}

fn check_spec(v: &Value) -> Result<(), String> {
    for (k, v) in object(v, "spec")? {
        let field = format!("spec.{k}");
        let Some(&(_, kind)) = SPEC.iter().find(|(name, _)| name == k) else {
            return Err(format!("`{field}`: not a field of a PodSpec"));
        };
        if let Owned(why) = kind {
            return Err(format!("`{field}`: owned by the agent ({why})"));
        }
        if v.is_null() {
            continue; // removes the field
        }
        if !fits(kind, v) {
            return Err(format!("`{field}`: expected {}", kind_name(kind)));
        }
        if let List(keys) = kind {
            for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                if let Some(bad) = item
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .find(|k| !keys.contains(&k.as_str()))
                {
                    return Err(format!("`{field}[{i}].{bad}`: not a field of this list's items"));
                }
            }
        }
        if let Some((_, keys)) = OBJECT_KEYS.iter().find(|(name, _)| name == k) {
            for key in v.as_object().into_iter().flatten().map(|(k, _)| k) {
                if !keys.contains(&key.as_str()) {
                    return Err(format!("`{field}.{key}`: not a field of {k}"));
                }
            }
        }
    }
    Ok(())
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The pod with `patch` applied. The patch passed [`check`], so the result is still a pod the
/// agent can follow.
pub fn apply(pod: Pod, patch: &Value) -> Result<Pod, serde_json::Error> {
    // Through JSON text rather than `to_value`/`from_value`: the pod's encoder and decoder for
    // text are in the binary anyway (it is sent and read), the ones for `Value` only for this.
    let mut v: Value = serde_json::from_slice(&serde_json::to_vec(&pod)?)?;
    merge(&mut v, patch);
    serde_json::from_slice(&serde_json::to_vec(&v)?).map_err(|e| {
        // As `from_value` reported it: a position in this buffer means nothing to the reader.
        let text = e.to_string();
        let at = format!(" at line {} column {}", e.line(), e.column());
        serde::de::Error::custom(text.strip_suffix(&at).unwrap_or(&text))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fields_no_option_covers_pass() {
        let ok = json!({
            "metadata": {"labels": {"team": "ci"}, "annotations": {"x/y": "z"}},
            "spec": {
                "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
                "securityContext": {"fsGroupChangePolicy": "OnRootMismatch", "fsGroup": null},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}],
                "imagePullSecrets": [{"name": "regcred"}],
                "enableServiceLinks": false,
            }
        });
        check(&ok).unwrap();
        check(&Value::Null).unwrap();
    }

    #[test]
    fn owned_unknown_and_misshaped_fields_are_named() {
        for (patch, needle) in [
            (
                json!({"spec": {"containers": []}}),
                "`spec.containers`: owned by the agent (the step container",
            ),
            (
                json!({"spec": {"volumes": []}}),
                "`spec.volumes`: owned by the agent (the workspace",
            ),
            (
                json!({"metadata": {"labels": {"woodpecker-ci.org/task-uuid": "x"}}}),
                "`metadata.labels.woodpecker-ci.org/task-uuid`: owned",
            ),
            (
                json!({"metadata": {"labels": {"step": "x"}}}),
                "`metadata.labels.step`: owned",
            ),
            (json!({"metadata": {"name": "x"}}), "`metadata.name`: owned"),
            (
                json!({"spec": {"topologySpreadConstraint": []}}),
                "`spec.topologySpreadConstraint`: not a field of a PodSpec",
            ),
            (json!({"spec": {"dnsPolicy": 1}}), "`spec.dnsPolicy`: expected a string"),
            (
                json!({"spec": {"securityContext": {"runAsUsr": 1}}}),
                "`spec.securityContext.runAsUsr`: not a field",
            ),
            (
                json!({"spec": {"tolerations": [{"key": "a", "efect": "x"}]}}),
                "`spec.tolerations[0].efect`",
            ),
            (json!({"spek": {}}), "`spek`: not a field of a Pod"),
            (json!([1]), "expected a JSON merge patch"),
            (
                json!({"metadata": {"labels": {"a": "not valid!"}}}),
                "`metadata.labels`:",
            ),
        ] {
            let e = check(&patch).unwrap_err();
            assert!(e.contains(needle), "{patch}: {e}");
        }
    }

    #[test]
    fn merge_follows_rfc_7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn apply_keeps_fields_the_pod_type_does_not_name() {
        let pod = Pod::default();
        let patched = apply(pod, &json!({"spec": {"topologySpreadConstraints": [{"maxSkew": 1}]}})).unwrap();
        let v = serde_json::to_value(&patched).unwrap();
        assert_eq!(v["spec"]["topologySpreadConstraints"][0]["maxSkew"], 1);
    }

    #[test]
    fn a_patch_the_pod_type_refuses_is_reported_without_a_buffer_position() {
        let e = apply(Pod::default(), &json!({"spec": {"restartPolicy": 5}})).unwrap_err();
        assert_eq!(e.to_string(), "invalid type: integer `5`, expected a string");
    }
}
