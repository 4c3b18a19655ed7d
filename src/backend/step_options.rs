//! Per-step `backend_options.kubernetes`, decoded leniently as Woodpecker does (mapstructure
//! weak decoding: numbers and bools where strings are expected, strings where numbers or bools
//! are, a single value for a one-element list, case-insensitive keys). Nothing is dropped
//! silently: unknown keys, undecodable values and options an agent gate forbids each produce a
//! warning, which the lifecycle writes into the step log. Knows nothing of pods.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::options::{Options, parse_go_bool};

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
];

/// A decoding context: a path prefix for messages and the warnings collected so far.
struct Dec<'a> {
    warnings: &'a mut Vec<String>,
}

impl Dec<'_> {
    fn warn(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.warnings.push(format!("{path}: {msg}"));
    }

    /// The object at `v`, warning about keys outside `known`; `None` (with a warning) if `v` is
    /// not an object. Null counts as an empty object.
    fn object<'v>(&mut self, v: &'v Value, path: &str, known: &[&str]) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => {
                for k in m.keys() {
                    if !known.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                        self.warn(&format!("{path}.{k}"), "unknown option, ignored");
                    }
                }
                Some(m)
            }
            Value::Null => None,
            other => {
                self.warn(path, format!("expected a map, got {}", kind(other)));
                None
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// mapstructure's key lookup: an exact match, else a case-insensitive one.
fn get<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key)
        .or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Weak string: bools become `1`/`0`, numbers their shortest decimal form.
pub fn weak_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        }),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Weak bool: strings via Go's `ParseBool`, numbers are true when non-zero.
pub fn weak_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.is_empty() => Some(false),
        Value::String(s) => parse_go_bool(s),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

/// Weak int: strings with base auto-detection (`0x`, `0o`, `0b`, leading `0` = octal).
pub fn weak_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) if s.is_empty() => Some(0),
        Value::String(s) => parse_go_int(s),
        _ => None,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let body = body.replace('_', "");
    let lower = body.to_ascii_lowercase();
    let n = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        lower.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

/// A map of strings with weak values. Warns and returns `None` when `v` is not a map.
pub fn weak_string_map(v: &Value, path: &str, warnings: &mut Vec<String>) -> Option<BTreeMap<String, String>> {
    let mut d = Dec { warnings };
    match v {
        Value::Null => Some(BTreeMap::new()),
        Value::Object(m) => {
            let mut out = BTreeMap::new();
            for (k, val) in m {
                match weak_string(val) {
                    Some(s) => {
                        out.insert(k.clone(), s);
                    }
                    None => d.warn(&format!("{path}.{k}"), format!("expected a string, got {}", kind(val))),
                }
            }
            Some(out)
        }
        other => {
            d.warn(path, format!("expected a map, got {}", kind(other)));
            None
        }
    }
}

/// A list; a single non-list value is a one-element list (weak decoding), null is empty.
fn weak_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn string_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
    let v = get(m, key)?;
    let s = weak_string(v);
    if s.is_none() {
        d.warn(&format!("{path}.{key}"), format!("expected a string, got {}", kind(v)));
    }
    s
}

fn bool_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> Option<bool> {
    let v = get(m, key)?;
    let b = weak_bool(v);
    if b.is_none() {
        d.warn(&format!("{path}.{key}"), format!("expected a bool, got {v}"));
    }
    b
}

fn int_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> Option<i64> {
    let v = get(m, key)?;
    let i = weak_int(v);
    if i.is_none() {
        d.warn(&format!("{path}.{key}"), format!("expected an integer, got {v}"));
    }
    i
}

fn map_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> BTreeMap<String, String> {
    get(m, key)
        .and_then(|v| weak_string_map(v, &format!("{path}.{key}"), d.warnings))
        .unwrap_or_default()
}

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
        if !matches!(t.operator.as_str(), "" | "Exists" | "Equal") {
            d.warn(
                &format!("{p}.operator"),
                format!("{:?} is not Exists or Equal", t.operator),
            );
        }
        if !matches!(t.effect.as_str(), "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            d.warn(
                &format!("{p}.effect"),
                format!("{:?} is not NoSchedule, PreferNoSchedule or NoExecute", t.effect),
            );
        }
        out.push(t);
    }
    out
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
    if !matches!(
        profile.type_.as_str(),
        "" | "RuntimeDefault" | "Localhost" | "Unconfined"
    ) {
        d.warn(
            &format!("{p}.type"),
            format!("{:?} is not RuntimeDefault, Localhost or Unconfined", profile.type_),
        );
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
    if let Some(p) = &sc.fs_group_change_policy
        && !matches!(p.as_str(), "OnRootMismatch" | "Always")
    {
        d.warn(
            &format!("{path}.fsGroupChangePolicy"),
            format!("{p:?} is not OnRootMismatch or Always"),
        );
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
        o.labels = map_field(&mut d, m, "labels", path);
        o.annotations = map_field(&mut d, m, "annotations", path);
        o.node_selector = map_field(&mut d, m, "nodeSelector", path);
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
        w
    }
}

#[cfg(test)]
#[path = "step_options_tests.rs"]
mod tests;
