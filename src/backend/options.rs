//! Agent-level backend options: Woodpecker's `WOODPECKER_BACKEND_K8S_*` variables and
//! `--backend-k8s-*` flags with Woodpecker's names and defaults, plus a few of ours. Parsed from an
//! env lookup closure (pure, testable); flags override the environment. A malformed value is a
//! start-up error naming the variable. Knows nothing of steps or the cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::step_options::{self, Toleration};
use super::{quantity, resources};

/// Every option: (env var suffix after `WOODPECKER_BACKEND_K8S_`, flag after `--backend-k8s-`,
/// whether it is a bool flag).
pub const VARS: &[(&str, &str, bool)] = &[
    ("NAMESPACE", "namespace", false),
    ("NAMESPACE_PER_ORGANIZATION", "namespace-per-org", true),
    ("CLUSTER_DOMAIN", "cluster-domain", false),
    ("VOLUME_SIZE", "volume-size", false),
    ("STORAGE_CLASS", "storage-class", false),
    ("STORAGE_RWX", "storage-rwx", true),
    ("POD_LABELS", "pod-labels", false),
    ("POD_LABELS_ALLOW_FROM_STEP", "pod-labels-allow-from-step", true),
    ("POD_ANNOTATIONS", "pod-annotations", false),
    (
        "POD_ANNOTATIONS_ALLOW_FROM_STEP",
        "pod-annotations-allow-from-step",
        true,
    ),
    ("POD_NODE_SELECTOR", "pod-node-selector", false),
    (
        "POD_NODE_SELECTOR_ALLOW_FROM_STEP",
        "pod-node-selector-allow-from-step",
        true,
    ),
    ("POD_TOLERATIONS", "pod-tolerations", false),
    (
        "POD_TOLERATIONS_ALLOW_FROM_STEP",
        "pod-tolerations-allow-from-step",
        true,
    ),
    ("POD_AFFINITY", "pod-affinity", false),
    ("POD_AFFINITY_ALLOW_FROM_STEP", "pod-affinity-allow-from-step", true),
    ("RUNTIME_CLASS_ALLOW_FROM_STEP", "runtime-class-allow-from-step", true),
    ("SECCTX_NONROOT", "secctx-nonroot", true),
    ("PULL_SECRET_NAMES", "pod-image-pull-secret-names", false),
    ("ALLOW_NATIVE_SECRETS", "allow-native-secrets", true),
    (
        "SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP",
        "service-account-name-allow-from-step",
        true,
    ),
    ("PRIORITY_CLASS", "priority-class", false),
    ("STOP_TIMEOUT", "stop-timeout", false),
    ("PERMISSION_INIT_IMAGE", "permission-init-image", false),
    // Ours (not in Woodpecker):
    ("POD_ACTIVE_DEADLINE", "pod-active-deadline", false),
    ("POD_SECURITY_RESTRICTED", "pod-security-restricted", true),
    ("DEFAULT_RESOURCES", "default-resources", false),
    ("MAX_RESOURCES", "max-resources", false),
    ("INFRA_RETRIES", "infra-retries", false),
    // Ours, for cluster admins (issue 17):
    ("START_TIMEOUT", "start-timeout", false),
    ("START_GRACE", "start-grace", false),
    ("MAX_STEP_TIMEOUT", "max-step-timeout", false),
    ("KEEP_FAILED_PODS", "keep-failed-pods", false),
    ("DEFAULT_ARCH", "default-arch", false),
    ("RUN_AS_USER", "run-as-user", false),
    ("RUN_AS_GROUP", "run-as-group", false),
    ("FS_GROUP", "fs-group", false),
    ("POD_SECURITY_ENFORCE", "pod-security-enforce", false),
    ("POD_PATCH", "pod-patch", false),
    ("SERVICE_PATCH", "service-patch", false),
    ("CACHES", "caches", false),
    ("WORKSPACE_EMPTYDIR", "workspace-emptydir", false),
];

pub const ENV_PREFIX: &str = "WOODPECKER_BACKEND_K8S_";
pub const FLAG_PREFIX: &str = "backend-k8s-";

/// Default `activeDeadlineSeconds` backstop when the workflow timeout is unknown: 4 h, above
/// Woodpecker's default maximum repo timeout (2 h).
pub const DEFAULT_ACTIVE_DEADLINE: i64 = 4 * 3600;
/// Margin added to the workflow timeout for the pod deadline, so the agent's own timeout and
/// cleanup always come first.
pub const ACTIVE_DEADLINE_MARGIN: i64 = 600;

/// The resolved agent options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub namespace: String,
    pub namespace_per_org: bool,
    pub cluster_domain: String,
    /// Canonical quantity.
    pub volume_size: String,
    pub storage_class: String,
    pub storage_rwx: bool,
    pub pod_labels: BTreeMap<String, String>,
    pub pod_labels_allow_from_step: bool,
    pub pod_annotations: BTreeMap<String, String>,
    pub pod_annotations_allow_from_step: bool,
    pub pod_node_selector: BTreeMap<String, String>,
    pub pod_node_selector_allow_from_step: bool,
    pub pod_tolerations: Vec<Toleration>,
    pub pod_tolerations_allow_from_step: bool,
    pub pod_affinity: Option<Value>,
    pub pod_affinity_allow_from_step: bool,
    pub runtime_class_allow_from_step: bool,
    pub secctx_nonroot: bool,
    pub pull_secret_names: Vec<String>,
    pub allow_native_secrets: bool,
    pub service_account_name_allow_from_step: bool,
    pub priority_class: String,
    /// `gracePeriodSeconds` of every delete.
    pub stop_timeout: i64,
    pub permission_init_image: String,
    /// Pod `fsGroup` unless the step sets one; Woodpecker always uses 1000 (no flag).
    pub fs_group: Option<i64>,
    /// `activeDeadlineSeconds` of every pod: `Some(0)` disables it; `None` derives it from the
    /// workflow timeout (see [`Options::active_deadline`]).
    pub pod_active_deadline: Option<i64>,
    /// Ours: Pod Security "restricted" defaults for every unprivileged pod (no privilege
    /// escalation, all capabilities dropped, RuntimeDefault seccomp, no service-account token
    /// unless the step names an account). Off by default, as in Woodpecker.
    pub pod_security_restricted: bool,
    /// Ours: requests/limits for step containers that do not set them.
    pub default_resources: resources::Bounds,
    /// Ours: the most a step container may request or be limited to.
    pub max_resources: resources::Bounds,
    /// Ours: new pods for a step whose pod the cluster took away before the command started.
    pub infra_retries: u32,
    /// How long a step's pod may take to start (`START_TIMEOUT`).
    pub start_timeout: Duration,
    /// How long retryable start errors (image pulls, a missing secret) get (`START_GRACE`).
    pub start_grace: Duration,
    /// The most a step's own `timeout` (`backend_options.kubernetes.timeout`) may be, in
    /// seconds; `None`: no cap.
    pub max_step_timeout: Option<i64>,
    /// Keep a failed step's pod this many seconds (labelled, reaped by the agent); `None`: off.
    pub keep_failed_pods: Option<i64>,
    /// The arch pin of a step without a `platform` of its own.
    pub default_arch: DefaultArch,
    /// Pod `runAsUser`/`runAsGroup` unless the step sets them.
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    /// Refuse steps that ask for less than this Pod Security level, before the cluster does.
    pub pod_security_enforce: Option<PssLevel>,
    /// A JSON merge patch applied to every step pod (checked at start, see [`super::podpatch`]).
    pub pod_patch: Option<Value>,
    /// A JSON merge patch applied after `pod_patch` to the pods of services.
    pub service_patch: Option<Value>,
    /// Admin-declared cache volumes, by the name steps use.
    pub caches: BTreeMap<String, Cache>,
    /// The workspace in an `emptyDir` of a per-workflow holder pod instead of a PVC.
    pub workspace_emptydir: Option<EmptyDirWorkspace>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: "woodpecker".into(),
            namespace_per_org: false,
            cluster_domain: "cluster.local".into(),
            volume_size: "10G".into(),
            storage_class: String::new(),
            storage_rwx: true,
            pod_labels: BTreeMap::new(),
            pod_labels_allow_from_step: false,
            pod_annotations: BTreeMap::new(),
            pod_annotations_allow_from_step: false,
            pod_node_selector: BTreeMap::new(),
            pod_node_selector_allow_from_step: false,
            pod_tolerations: Vec::new(),
            pod_tolerations_allow_from_step: true,
            pod_affinity: None,
            pod_affinity_allow_from_step: false,
            runtime_class_allow_from_step: false,
            secctx_nonroot: false,
            pull_secret_names: Vec::new(),
            allow_native_secrets: false,
            service_account_name_allow_from_step: false,
            priority_class: String::new(),
            stop_timeout: 20,
            permission_init_image: "busybox:stable-musl".into(),
            fs_group: Some(1000),
            pod_active_deadline: None,
            pod_security_restricted: false,
            default_resources: resources::Bounds::default(),
            max_resources: resources::Bounds::default(),
            infra_retries: 0,
            start_timeout: Duration::from_secs(300),
            start_grace: Duration::from_secs(60),
            max_step_timeout: None,
            keep_failed_pods: None,
            default_arch: DefaultArch::Agent,
            run_as_user: None,
            run_as_group: None,
            pod_security_enforce: None,
            pod_patch: None,
            service_patch: None,
            caches: BTreeMap::new(),
            workspace_emptydir: None,
        }
    }
}

/// A bad option value. Names the variable; never echoes values of secret-like options (none of
/// ours are secret, but YAML can be long, so only the parse error is shown).
#[derive(Debug)]
pub struct OptionsError {
    pub var: String,
    pub reason: String,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.var, self.reason)
    }
}
impl std::error::Error for OptionsError {}

/// Parses a YAML (or JSON) map of strings; scalars are accepted as their text.
fn parse_map(var: &str, text: &str) -> Result<BTreeMap<String, String>, OptionsError> {
    let value = parse_yaml(var, text)?;
    let mut warnings = Vec::new();
    let map = step_options::weak_string_map(&value, var, &mut warnings);
    match (map, warnings.first()) {
        (Some(m), None) => Ok(m),
        (_, Some(w)) => Err(err(var, w.clone())),
        (None, None) => Err(err(var, "expected a YAML map of strings".into())),
    }
}

/// A map of labels (or annotations) whose keys and values the apiserver would accept: a bad one
/// fails at start-up here instead of failing every pod later.
fn parse_labels(var: &str, text: &str, values_are_labels: bool) -> Result<BTreeMap<String, String>, OptionsError> {
    let map = parse_map(var, text)?;
    match super::names::check_keys_values(&map, values_are_labels) {
        Some(why) => Err(err(var, why)),
        None => Ok(map),
    }
}

fn parse_yaml(var: &str, text: &str) -> Result<Value, OptionsError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_yaml::from_str::<Value>(text).map_err(|e| err(var, format!("not valid YAML: {e}")))
}

fn err(var: &str, reason: String) -> OptionsError {
    OptionsError {
        var: var.to_string(),
        reason,
    }
}

impl Options {
    /// Resolves the options from a lookup by full env var name (flags already folded in by the
    /// caller, see [`Flags`]). Unset values take the defaults; empty ones too, but for bools,
    /// which are false, as in the Go agent.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Options, OptionsError> {
        let mut o = Options::default();
        for &(suffix, _, is_bool) in VARS {
            let var = format!("{ENV_PREFIX}{suffix}");
            let Some(raw) = lookup(&var) else { continue };
            let text = raw.trim();
            if text.is_empty() {
                // As urfave/cli in the Go agent: a bool set to nothing is false; other empty
                // values keep their defaults (Go would take "", which no option can use).
                if is_bool {
                    o.set_bool(suffix, false);
                }
                continue;
            }
            if is_bool {
                let b = crate::go::strconv::parse_bool(text)
                    .ok_or_else(|| err(&var, format!("{text:?} is not a boolean")))?;
                o.set_bool(suffix, b);
                continue;
            }
            o.set_text(suffix, &var, text)?;
        }
        // Per organisation the name is lowercased and suffixed, so check a sample.
        let sample = o.namespace_for(1);
        if !super::names::is_dns_label(&sample) {
            let var = format!("{ENV_PREFIX}NAMESPACE");
            return Err(err(
                &var,
                format!(
                    "{:?} does not give a valid namespace name (DNS-1123 label)",
                    o.namespace
                ),
            ));
        }
        Ok(o)
    }

    fn set_bool(&mut self, suffix: &str, b: bool) {
        let field = match suffix {
            "NAMESPACE_PER_ORGANIZATION" => &mut self.namespace_per_org,
            "STORAGE_RWX" => &mut self.storage_rwx,
            "POD_LABELS_ALLOW_FROM_STEP" => &mut self.pod_labels_allow_from_step,
            "POD_ANNOTATIONS_ALLOW_FROM_STEP" => &mut self.pod_annotations_allow_from_step,
            "POD_NODE_SELECTOR_ALLOW_FROM_STEP" => &mut self.pod_node_selector_allow_from_step,
            "POD_TOLERATIONS_ALLOW_FROM_STEP" => &mut self.pod_tolerations_allow_from_step,
            "POD_AFFINITY_ALLOW_FROM_STEP" => &mut self.pod_affinity_allow_from_step,
            "RUNTIME_CLASS_ALLOW_FROM_STEP" => &mut self.runtime_class_allow_from_step,
            "SECCTX_NONROOT" => &mut self.secctx_nonroot,
            "ALLOW_NATIVE_SECRETS" => &mut self.allow_native_secrets,
            "SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP" => &mut self.service_account_name_allow_from_step,
            "POD_SECURITY_RESTRICTED" => &mut self.pod_security_restricted,
            other => unreachable!("{other} is listed as a bool in VARS"),
        };
        *field = b;
    }

    fn set_text(&mut self, suffix: &str, var: &str, text: &str) -> Result<(), OptionsError> {
        match suffix {
            "NAMESPACE" => self.namespace = text.to_string(),
            "CLUSTER_DOMAIN" => self.cluster_domain = text.to_string(),
            "VOLUME_SIZE" => {
                self.volume_size = quantity::canonical(text).map_err(|e| err(var, e.to_string()))?;
            }
            "STORAGE_CLASS" => self.storage_class = text.to_string(),
            "POD_LABELS" => self.pod_labels = parse_labels(var, text, true)?,
            "POD_ANNOTATIONS" => self.pod_annotations = parse_labels(var, text, false)?,
            "POD_NODE_SELECTOR" => self.pod_node_selector = parse_labels(var, text, true)?,
            "POD_TOLERATIONS" => {
                let value = parse_yaml(var, text)?;
                let mut warnings = Vec::new();
                self.pod_tolerations = step_options::decode_tolerations(&value, var, &mut warnings);
                if let Some(w) = warnings.into_iter().next() {
                    return Err(err(var, w.trim_end_matches(", ignored").to_string()));
                }
            }
            "POD_AFFINITY" => {
                let value = parse_yaml(var, text)?;
                let mut warnings = Vec::new();
                self.pod_affinity = step_options::decode_affinity(&value, var, &mut warnings);
                if let Some(w) = warnings.into_iter().next() {
                    return Err(err(var, w.trim_end_matches(", ignored").to_string()));
                }
            }
            "PULL_SECRET_NAMES" => {
                self.pull_secret_names = text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            "PRIORITY_CLASS" => self.priority_class = text.to_string(),
            "STOP_TIMEOUT" => self.stop_timeout = parse_seconds(var, text)?,
            "PERMISSION_INIT_IMAGE" => self.permission_init_image = text.to_string(),
            "POD_ACTIVE_DEADLINE" => self.pod_active_deadline = Some(parse_seconds(var, text)?),
            "INFRA_RETRIES" => {
                self.infra_retries = text
                    .parse()
                    .ok()
                    .filter(|n| *n <= 10)
                    .ok_or_else(|| err(var, format!("{text:?} is not a number from 0 to 10")))?;
            }
            "DEFAULT_RESOURCES" => {
                self.default_resources =
                    resources::Bounds::from_value(&parse_yaml(var, text)?).map_err(|e| err(var, e))?;
            }
            "MAX_RESOURCES" => {
                self.max_resources = resources::Bounds::from_value(&parse_yaml(var, text)?).map_err(|e| err(var, e))?;
            }
            "START_TIMEOUT" => self.start_timeout = parse_duration(var, text)?,
            "START_GRACE" => self.start_grace = parse_duration(var, text)?,
            "MAX_STEP_TIMEOUT" => self.max_step_timeout = Some(parse_seconds(var, text)?).filter(|s| *s > 0),
            "KEEP_FAILED_PODS" => self.keep_failed_pods = Some(parse_seconds(var, text)?).filter(|s| *s > 0),
            "DEFAULT_ARCH" => {
                self.default_arch = match text {
                    "agent" => DefaultArch::Agent,
                    "none" => DefaultArch::None,
                    other => return Err(err(var, format!("{other:?} is not agent or none"))),
                }
            }
            "RUN_AS_USER" => self.run_as_user = Some(parse_id(var, text)?),
            "RUN_AS_GROUP" => self.run_as_group = Some(parse_id(var, text)?),
            "FS_GROUP" => {
                self.fs_group = if text == "none" {
                    None
                } else {
                    Some(parse_id(var, text)?)
                }
            }
            "POD_SECURITY_ENFORCE" => {
                self.pod_security_enforce = match text {
                    "off" | "privileged" => None,
                    "baseline" => Some(PssLevel::Baseline),
                    "restricted" => Some(PssLevel::Restricted),
                    other => return Err(err(var, format!("{other:?} is not baseline, restricted or off"))),
                }
            }
            "POD_PATCH" | "SERVICE_PATCH" => {
                let patch = parse_yaml(var, text)?;
                super::podpatch::check(&patch).map_err(|e| err(var, e))?;
                let slot = if suffix == "POD_PATCH" {
                    &mut self.pod_patch
                } else {
                    &mut self.service_patch
                };
                *slot = Some(patch).filter(|p| !p.is_null());
            }
            "CACHES" => self.caches = parse_caches(var, text)?,
            "WORKSPACE_EMPTYDIR" => self.workspace_emptydir = parse_emptydir(var, text)?,
            other => unreachable!("{other} is listed as text in VARS"),
        }
        Ok(())
    }

    /// Only `START_TIMEOUT` and `START_GRACE` (through the same table and parser as
    /// [`Options::from_lookup`]), for callers that read the lifecycle's limits on their own.
    pub fn start_limits(lookup: impl Fn(&str) -> Option<String>) -> Result<(Duration, Duration), OptionsError> {
        let mut o = Options::default();
        for suffix in ["START_TIMEOUT", "START_GRACE"] {
            let var = format!("{ENV_PREFIX}{suffix}");
            if let Some(text) = lookup(&var).filter(|v| !v.trim().is_empty()) {
                o.set_text(suffix, &var, text.trim())?;
            }
        }
        Ok((o.start_timeout, o.start_grace))
    }

    /// The namespace of a step of organisation `org_id`.
    pub fn namespace_for(&self, org_id: i64) -> String {
        super::names::namespace(&self.namespace, self.namespace_per_org, org_id)
    }

    /// The options of every delete: `STOP_TIMEOUT` grace, background propagation.
    pub fn delete_options(&self) -> kube::types::DeleteOptions {
        kube::types::DeleteOptions {
            grace_period_seconds: Some(self.stop_timeout),
            propagation_policy: Some("Background".into()),
        }
    }

    /// The pod `activeDeadlineSeconds`: the configured value (0 = none), else the workflow
    /// timeout plus a margin, else [`DEFAULT_ACTIVE_DEADLINE`].
    pub fn active_deadline(&self, workflow_timeout_secs: Option<i64>) -> Option<i64> {
        match self.pod_active_deadline {
            Some(0) => None,
            Some(s) => Some(s),
            None => Some(workflow_timeout_secs.map_or(DEFAULT_ACTIVE_DEADLINE, |t| t + ACTIVE_DEADLINE_MARGIN)),
        }
    }
}

/// A duration: whole seconds or a Go duration (`START_TIMEOUT=10m`).
fn parse_duration(var: &str, text: &str) -> Result<Duration, OptionsError> {
    crate::go::duration::setting(text, true)
        .map_err(|e| err(var, format!("{text:?} is not a number of seconds or a duration: {e}")))
}

/// A user or group id: a whole number from 0 to 2^31-1.
fn parse_id(var: &str, text: &str) -> Result<i64, OptionsError> {
    text.parse::<i64>()
        .ok()
        .filter(|n| (0..=i64::from(i32::MAX)).contains(n))
        .ok_or_else(|| err(var, format!("{text:?} is not a user or group id (0 to 2147483647)")))
}

/// `CACHES`: a map from the name steps use to the claim, `{go: go-cache}` or
/// `{go: {claim: go-cache, readOnly: true}}`.
fn parse_caches(var: &str, text: &str) -> Result<BTreeMap<String, Cache>, OptionsError> {
    let value = parse_yaml(var, text)?;
    let Some(map) = value.as_object() else {
        return Err(err(var, "expected a map from cache name to claim name".into()));
    };
    let mut out = BTreeMap::new();
    for (name, v) in map {
        if !super::names::is_dns_label(name) {
            return Err(err(var, format!("cache name {name:?} is not a DNS label")));
        }
        let cache = match v {
            Value::String(claim) => Cache {
                claim: claim.clone(),
                read_only: false,
            },
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| !["claim", "readOnly"].contains(&k.as_str())) {
                    return Err(err(var, format!("cache {name:?}: unknown key {k:?} (claim, readOnly)")));
                }
                Cache {
                    claim: m.get("claim").and_then(Value::as_str).unwrap_or_default().to_string(),
                    read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                }
            }
            _ => {
                return Err(err(
                    var,
                    format!("cache {name:?}: expected a claim name or {{claim, readOnly}}"),
                ));
            }
        };
        if !super::names::is_dns_subdomain(&cache.claim) {
            return Err(err(
                var,
                format!("cache {name:?}: claim {:?} is not a valid claim name", cache.claim),
            ));
        }
        out.insert(name.clone(), cache);
    }
    Ok(out)
}

/// `WORKSPACE_EMPTYDIR`: `true`/`false`, or `{medium: Memory, sizeLimit: 2Gi, kubeletDir: ...}`.
fn parse_emptydir(var: &str, text: &str) -> Result<Option<EmptyDirWorkspace>, OptionsError> {
    if let Some(b) = crate::go::strconv::parse_bool(text) {
        return Ok(b.then(EmptyDirWorkspace::default));
    }
    let value = parse_yaml(var, text)?;
    let Some(m) = value.as_object() else {
        return Err(err(
            var,
            "expected true, false or {medium, sizeLimit, kubeletDir}".into(),
        ));
    };
    let mut w = EmptyDirWorkspace::default();
    for (k, v) in m {
        let text = super::weak::weak_string(v).unwrap_or_default();
        match k.as_str() {
            "medium" => match text.as_str() {
                "" => {}
                "Memory" => w.medium = Some(text),
                other => return Err(err(var, format!("medium {other:?} is not Memory (or empty)"))),
            },
            "sizeLimit" => {
                w.size_limit = Some(quantity::canonical(&text).map_err(|e| err(var, format!("sizeLimit: {e}")))?);
            }
            "kubeletDir" if text.starts_with('/') => w.kubelet_dir = text.trim_end_matches('/').to_string(),
            "kubeletDir" => return Err(err(var, format!("kubeletDir {text:?} is not an absolute path"))),
            other => {
                return Err(err(
                    var,
                    format!("unknown key {other:?} (medium, sizeLimit, kubeletDir)"),
                ));
            }
        }
    }
    Ok(Some(w))
}

/// Whole seconds: a plain integer (Woodpecker's int-seconds options) or a Go duration (`90s`,
/// `1m30s`, `1h`), by the one duration parser; a fraction of a second is refused.
fn parse_seconds(var: &str, text: &str) -> Result<i64, OptionsError> {
    let d = crate::go::duration::setting(text, true)
        .map_err(|e| err(var, format!("{text:?} is not a number of seconds or a duration: {e}")))?;
    if d.subsec_nanos() != 0 {
        return Err(err(var, format!("{text:?} is not a whole number of seconds")));
    }
    i64::try_from(d.as_secs()).map_err(|_| err(var, format!("{text:?} is too large")))
}

mod admin;
mod flags;
pub use admin::{Cache, DefaultArch, EmptyDirWorkspace, PssLevel};
pub use flags::{Flags, usage};

#[cfg(test)]
mod tests;
