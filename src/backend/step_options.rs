//! Per-step `backend_options.kubernetes`, decoded leniently as Woodpecker does (mapstructure
//! weak decoding: numbers and bools where strings are expected, strings where numbers or bools
//! are, a single value for a one-element list, case-insensitive keys). Nothing is dropped
//! silently: unknown keys, undecodable values and options an agent gate forbids each produce a
//! warning, which the lifecycle writes into the step log. Knows nothing of pods.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::options::Options;
pub use super::weak::weak_string_map;
use super::weak::{Dec, bool_field, get, int_field, map_field, string_field, weak_list, weak_string};

/// The decoded options of one step. `None`/empty means "not set".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepOptions {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
    pub runtime_class_name: Option<String>,
    pub service_account_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Option<Value>,
    pub security_context: Option<SecurityContext>,
    pub secrets: Vec<NativeSecret>,
    pub workspace_volume: Option<bool>,
    pub host_users: Option<bool>,
    /// Ours: the step's own time limit in seconds (capped by `MAX_STEP_TIMEOUT`).
    pub timeout: Option<i64>,
    /// Ours: the step's platform (`linux/arm64`), which picks the node arch.
    pub platform: Option<String>,
    /// Ours: admin-declared caches to mount, name to mount path.
    pub caches: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Toleration {
    pub key: String,
    pub operator: String,
    pub value: String,
    pub effect: String,
    pub toleration_seconds: Option<i64>,
}

impl Toleration {
    /// The Kubernetes JSON form; empty strings are omitted.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("key", &self.key),
            ("operator", &self.operator),
            ("value", &self.value),
            ("effect", &self.effect),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), Value::String(v.clone()));
            }
        }
        if let Some(s) = self.toleration_seconds {
            m.insert("tolerationSeconds".into(), s.into());
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityContext {
    pub privileged: Option<bool>,
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub fs_group: Option<i64>,
    pub fs_group_change_policy: Option<String>,
    pub seccomp_profile: Option<Profile>,
    pub apparmor_profile: Option<Profile>,
    pub allow_privilege_escalation: Option<bool>,
    pub capabilities_drop: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub type_: String,
    pub localhost_profile: String,
}

/// An existing Kubernetes Secret exposed to the step (`ALLOW_NATIVE_SECRETS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeSecret {
    pub name: String,
    pub key: String,
    pub target_env: String,
    pub target_file: String,
}

const TOP_KEYS: &[&str] = &[
    "resources",
    "runtimeClassName",
    "serviceAccountName",
    "labels",
    "annotations",
    "nodeSelector",
    "tolerations",
    "affinity",
    "securityContext",
    "secrets",
    "workspaceVolume",
    "hostUsers",
    "timeout",
    "platform",
    "caches",
];

/// Tolerations: a list of `{key, operator, value, effect, tolerationSeconds}`.
pub fn decode_tolerations(v: &Value, path: &str, warnings: &mut Vec<String>) -> Vec<Toleration> {
    let mut d = Dec { warnings };
    let mut out = Vec::new();
    for (i, item) in weak_list(v).into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = d.object(item, &p, &["key", "operator", "value", "effect", "tolerationSeconds"]) else {
            continue;
        };
        let t = Toleration {
            key: string_field(&mut d, m, "key", &p).unwrap_or_default(),
            operator: string_field(&mut d, m, "operator", &p).unwrap_or_default(),
            value: string_field(&mut d, m, "value", &p).unwrap_or_default(),
            effect: string_field(&mut d, m, "effect", &p).unwrap_or_default(),
            toleration_seconds: int_field(&mut d, m, "tolerationSeconds", &p),
        };
        if let Some(problem) = toleration_problem(&t) {
            d.warn(&p, format!("{problem}, ignored"));
            continue;
        }
        out.push(t);
    }
    out
}

/// Why the apiserver would reject a toleration, if it would.
fn toleration_problem(t: &Toleration) -> Option<String> {
    if !matches!(t.operator.as_str(), "" | "Exists" | "Equal") {
        return Some(format!("operator {:?} is not Exists or Equal", t.operator));
    }
    if !matches!(t.effect.as_str(), "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Some(format!(
            "effect {:?} is not NoSchedule, PreferNoSchedule or NoExecute",
            t.effect
        ));
    }
    if t.operator == "Exists" && !t.value.is_empty() {
        return Some("a value needs operator Equal".into());
    }
    if t.key.is_empty() && t.operator != "Exists" {
        return Some("an empty key needs operator Exists".into());
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        return Some("tolerationSeconds needs effect NoExecute".into());
    }
    None
}

/// An `Affinity` object, copied verbatim; only its top-level keys are checked.
pub fn decode_affinity(v: &Value, path: &str, warnings: &mut Vec<String>) -> Option<Value> {
    let mut d = Dec { warnings };
    let m = d.object(v, path, &["nodeAffinity", "podAffinity", "podAntiAffinity"])?;
    (!m.is_empty()).then(|| v.clone())
}

fn decode_profile(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> Option<Profile> {
    let v = get(m, key)?;
    let p = format!("{path}.{key}");
    let pm = d.object(v, &p, &["type", "localhostProfile"])?;
    let profile = Profile {
        type_: string_field(d, pm, "type", &p).unwrap_or_default(),
        localhost_profile: string_field(d, pm, "localhostProfile", &p).unwrap_or_default(),
    };
    let path_type = format!("{p}.type");
    match profile.type_.as_str() {
        "" => return None,
        "RuntimeDefault" | "Unconfined" if !profile.localhost_profile.is_empty() => {
            d.warn(
                &format!("{p}.localhostProfile"),
                "only allowed with type Localhost, ignored",
            );
            return Some(Profile {
                localhost_profile: String::new(),
                ..profile
            });
        }
        "RuntimeDefault" | "Unconfined" => {}
        "Localhost" if profile.localhost_profile.is_empty() => {
            d.warn(&p, "type Localhost needs a localhostProfile, ignored");
            return None;
        }
        "Localhost" => {}
        other => {
            d.warn(
                &path_type,
                format!("{other:?} is not RuntimeDefault, Localhost or Unconfined, ignored"),
            );
            return None;
        }
    }
    Some(profile)
}

fn decode_security_context(d: &mut Dec, v: &Value, path: &str) -> Option<SecurityContext> {
    let known = [
        "privileged",
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "fsGroupChangePolicy",
        "seccompProfile",
        "apparmorProfile",
        "allowPrivilegeEscalation",
        "capabilities",
    ];
    let m = d.object(v, path, &known)?;
    let mut drop = Vec::new();
    if let Some(caps) = get(m, "capabilities") {
        let p = format!("{path}.capabilities");
        if let Some(cm) = d.object(caps, &p, &["drop", "add"]) {
            if get(cm, "add").is_some() {
                d.warn(&format!("{p}.add"), "capabilities can only be dropped, ignored");
            }
            for item in get(cm, "drop").map(weak_list).unwrap_or_default() {
                match weak_string(item) {
                    Some(s) if !s.is_empty() => drop.push(s),
                    _ => d.warn(&format!("{p}.drop"), format!("expected a capability name, got {item}")),
                }
            }
        }
    }
    let sc = SecurityContext {
        privileged: bool_field(d, m, "privileged", path),
        run_as_non_root: bool_field(d, m, "runAsNonRoot", path),
        run_as_user: int_field(d, m, "runAsUser", path),
        run_as_group: int_field(d, m, "runAsGroup", path),
        fs_group: int_field(d, m, "fsGroup", path),
        fs_group_change_policy: string_field(d, m, "fsGroupChangePolicy", path).filter(|s| !s.is_empty()),
        seccomp_profile: decode_profile(d, m, "seccompProfile", path),
        apparmor_profile: decode_profile(d, m, "apparmorProfile", path),
        allow_privilege_escalation: bool_field(d, m, "allowPrivilegeEscalation", path),
        capabilities_drop: drop,
    };
    let mut sc = sc;
    if let Some(p) = &sc.fs_group_change_policy
        && !matches!(p.as_str(), "OnRootMismatch" | "Always")
    {
        d.warn(
            &format!("{path}.fsGroupChangePolicy"),
            format!("{p:?} is not OnRootMismatch or Always, ignored"),
        );
        sc.fs_group_change_policy = None;
    }
    Some(sc)
}

fn decode_secrets(d: &mut Dec, v: &Value, path: &str) -> Vec<NativeSecret> {
    let mut out = Vec::new();
    for (i, item) in weak_list(v).into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = d.object(item, &p, &["name", "key", "target"]) else {
            continue;
        };
        let mut s = NativeSecret {
            name: string_field(d, m, "name", &p).unwrap_or_default(),
            key: string_field(d, m, "key", &p).unwrap_or_default(),
            ..Default::default()
        };
        if let Some(t) = get(m, "target") {
            let tp = format!("{p}.target");
            if let Some(tm) = d.object(t, &tp, &["env", "file"]) {
                s.target_env = string_field(d, tm, "env", &tp).unwrap_or_default();
                s.target_file = string_field(d, tm, "file", &tp).unwrap_or_default();
            }
        }
        if s.name.is_empty() {
            d.warn(
                &format!("{p}.name"),
                "a native secret needs the name of an existing Secret, ignored",
            );
            continue;
        }
        out.push(s);
    }
    out
}

/// Drops (with a warning each) the entries the apiserver would reject, so one bad label does not
/// fail the whole pod. Label maps check values too; annotations only keys.
fn valid_entries(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str, labels: bool) -> BTreeMap<String, String> {
    // Inserted one by one (already in key order): `collect` would sort again with a copy of the
    // sort code of its own.
    let mut out = BTreeMap::new();
    for (k, v) in map_field(d, m, key, path) {
        let mut single = BTreeMap::new();
        single.insert(k.clone(), v.clone());
        match super::names::check_keys_values(&single, labels) {
            Some(why) => d.warn(&format!("{path}.{key}"), format!("{why}, ignored")),
            None => {
                out.insert(k, v);
            }
        }
    }
    out
}

impl StepOptions {
    /// Decodes `backend_options.kubernetes` (absent or null gives all-unset options).
    pub fn decode(raw: Option<&Value>) -> (StepOptions, Vec<String>) {
        let mut warnings = Vec::new();
        let mut o = StepOptions::default();
        let path = "backend_options.kubernetes";
        let Some(raw) = raw else { return (o, warnings) };
        let mut d = Dec {
            warnings: &mut warnings,
        };
        let Some(m) = d.object(raw, path, TOP_KEYS) else {
            return (o, warnings);
        };
        if let Some(r) = get(m, "resources") {
            let p = format!("{path}.resources");
            if let Some(rm) = d.object(r, &p, &["requests", "limits"]) {
                o.requests = map_field(&mut d, rm, "requests", &p);
                o.limits = map_field(&mut d, rm, "limits", &p);
            }
        }
        o.runtime_class_name = string_field(&mut d, m, "runtimeClassName", path).filter(|s| !s.is_empty());
        o.service_account_name = string_field(&mut d, m, "serviceAccountName", path).filter(|s| !s.is_empty());
        o.labels = valid_entries(&mut d, m, "labels", path, true);
        o.annotations = valid_entries(&mut d, m, "annotations", path, false);
        o.node_selector = valid_entries(&mut d, m, "nodeSelector", path, true);
        if let Some(t) = get(m, "tolerations") {
            o.tolerations = decode_tolerations(t, &format!("{path}.tolerations"), d.warnings);
        }
        if let Some(a) = get(m, "affinity") {
            o.affinity = decode_affinity(a, &format!("{path}.affinity"), d.warnings);
        }
        if let Some(sc) = get(m, "securityContext") {
            o.security_context = decode_security_context(&mut d, sc, &format!("{path}.securityContext"));
        }
        if let Some(s) = get(m, "secrets") {
            o.secrets = decode_secrets(&mut d, s, &format!("{path}.secrets"));
        }
        o.workspace_volume = bool_field(&mut d, m, "workspaceVolume", path);
        o.host_users = bool_field(&mut d, m, "hostUsers", path);
        if let Some(t) = get(m, "timeout") {
            let p = format!("{path}.timeout");
            let text = match t {
                Value::String(_) | Value::Number(_) => super::weak::weak_string(t),
                _ => None,
            };
            match text.map(|s| crate::go::duration::setting(s.trim(), true)) {
                Some(Ok(dur)) if dur.as_secs() > 0 => o.timeout = Some(dur.as_secs().max(1) as i64),
                _ => d.warn(&p, format!("{t} is not a duration such as 90s, 10m or 1h, ignored")),
            }
        }
        if let Some(pl) = string_field(&mut d, m, "platform", path).filter(|s| !s.is_empty()) {
            match pl.split_once('/') {
                Some((_, arch)) if super::names::is_label_value(arch) && !arch.is_empty() => o.platform = Some(pl),
                _ => d.warn(
                    &format!("{path}.platform"),
                    format!("{pl:?} is not os/arch such as linux/arm64, ignored"),
                ),
            }
        }
        let caches = map_field(&mut d, m, "caches", path);
        for (name, mount) in caches {
            if mount.starts_with('/') {
                o.caches.insert(name, mount);
            } else {
                d.warn(
                    &format!("{path}.caches.{name}"),
                    format!("{mount:?} is not an absolute path, ignored"),
                );
            }
        }
        (o, warnings)
    }

    /// Removes what the agent does not allow steps to set, with one warning per removed option.
    pub fn gate(&mut self, opts: &Options) -> Vec<String> {
        let mut w = Vec::new();
        let mut deny = |set: bool, allowed: bool, key: &str, var: &str| {
            let denied = set && !allowed;
            if denied {
                w.push(format!(
                    "backend_options.kubernetes.{key}: ignored, the agent does not allow it \
                     (WOODPECKER_BACKEND_K8S_{var})"
                ));
            }
            denied
        };
        if deny(
            !self.labels.is_empty(),
            opts.pod_labels_allow_from_step,
            "labels",
            "POD_LABELS_ALLOW_FROM_STEP",
        ) {
            self.labels.clear();
        }
        if deny(
            !self.annotations.is_empty(),
            opts.pod_annotations_allow_from_step,
            "annotations",
            "POD_ANNOTATIONS_ALLOW_FROM_STEP",
        ) {
            self.annotations.clear();
        }
        if deny(
            !self.node_selector.is_empty(),
            opts.pod_node_selector_allow_from_step,
            "nodeSelector",
            "POD_NODE_SELECTOR_ALLOW_FROM_STEP",
        ) {
            self.node_selector.clear();
        }
        if deny(
            !self.tolerations.is_empty(),
            opts.pod_tolerations_allow_from_step,
            "tolerations",
            "POD_TOLERATIONS_ALLOW_FROM_STEP",
        ) {
            self.tolerations.clear();
        }
        if deny(
            self.affinity.is_some(),
            opts.pod_affinity_allow_from_step,
            "affinity",
            "POD_AFFINITY_ALLOW_FROM_STEP",
        ) {
            self.affinity = None;
        }
        if deny(
            self.runtime_class_name.is_some(),
            opts.runtime_class_allow_from_step,
            "runtimeClassName",
            "RUNTIME_CLASS_ALLOW_FROM_STEP",
        ) {
            self.runtime_class_name = None;
        }
        if deny(
            self.service_account_name.is_some(),
            opts.service_account_name_allow_from_step,
            "serviceAccountName",
            "SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP",
        ) {
            self.service_account_name = None;
        }
        if deny(
            !self.secrets.is_empty(),
            opts.allow_native_secrets,
            "secrets",
            "ALLOW_NATIVE_SECRETS",
        ) {
            self.secrets.clear();
        }
        if let (Some(t), Some(max)) = (self.timeout, opts.max_step_timeout)
            && t > max
        {
            w.push(format!(
                "backend_options.kubernetes.timeout: {t}s is above the agent's maximum, lowered to {max}s \
                 (WOODPECKER_BACKEND_K8S_MAX_STEP_TIMEOUT)"
            ));
            self.timeout = Some(max);
        }
        self.caches.retain(|name, _| {
            let declared = opts.caches.contains_key(name);
            if !declared {
                w.push(format!(
                    "backend_options.kubernetes.caches.{name}: not a cache the agent declares \
                     (WOODPECKER_BACKEND_K8S_CACHES), ignored"
                ));
            }
            declared
        });
        w
    }
}

#[cfg(test)]
mod tests;
