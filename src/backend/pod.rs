//! Builds a step's Pod (Woodpecker's `mkPod`, spec §6), field by field, from the step, the
//! agent options and what the lifecycle decided at run time ([`PodContext`]). No I/O.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::affinity::{self, Colocation};
use super::labels;
use super::names::{self, InvalidName};
use super::options::Options;
use super::quantity::{self, QuantityError};
use super::resources;
use super::script;
use super::security;
use super::step_options::StepOptions;
use super::types::Step;
use kube::types::{
    Container, ContainerPort, EnvVar, LocalObjectReference, ObjectMeta, OwnerReference, Pod, PodSpec,
    ResourceRequirements, VolumeMount,
};

/// What the lifecycle decides at run time and every object of a workflow shares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodContext {
    /// The namespace of the workflow's objects.
    pub namespace: String,
    /// The task id (Woodpecker's taskUUID: the workflow id).
    pub task: String,
    /// The ownerReference to the workflow's anchor (the headless Service), once it exists.
    pub anchor: Option<OwnerReference>,
    /// Keeping the workflow on one node (RWO workspaces).
    pub colocation: Colocation,
    /// The agent label value (agent id or hostname); empty for none.
    pub agent: String,
    /// The workflow timeout, for the `activeDeadlineSeconds` backstop.
    pub workflow_timeout_secs: Option<i64>,
    /// `WORKSPACE_EMPTYDIR`: the node directory of the workspace holder's `emptyDir`.
    pub workspace_dir: Option<String>,
}

impl PodContext {
    /// The context for a workflow of organisation `org_id`: namespace from the options,
    /// co-location on a task pod affinity when the workspace is ReadWriteOnce.
    pub fn new(opts: &Options, task: &str, org_id: i64, agent: &str) -> PodContext {
        PodContext {
            namespace: opts.namespace_for(org_id),
            task: task.to_string(),
            anchor: None,
            colocation: if opts.storage_rwx {
                Colocation::None
            } else {
                Colocation::SameNodeAsTask
            },
            agent: agent.to_string(),
            workflow_timeout_secs: None,
            workspace_dir: None,
        }
    }

    /// Metadata shared by every object of the workflow: name, namespace, task and agent labels
    /// and the anchor ownerReference.
    pub fn meta(&self, name: String) -> ObjectMeta {
        ObjectMeta {
            name,
            namespace: self.namespace.clone(),
            labels: labels::ownership_labels(&self.task, &self.agent),
            owner_references: self.anchor.iter().cloned().collect(),
            ..Default::default()
        }
    }
}

/// Why an object cannot be built. Display names the step; the cause is the source.
#[derive(Debug)]
pub enum BuildError {
    Name {
        step: String,
        source: InvalidName,
    },
    Quantity {
        step: String,
        kind: &'static str,
        key: String,
        source: QuantityError,
    },
    Volume {
        step: String,
        entry: String,
        source: InvalidName,
    },
    Workflow {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Name { step, .. } => write!(f, "step {step:?}: cannot name its pod"),
            BuildError::Quantity { step, kind, key, .. } => write!(f, "step {step:?}: resource {kind} {key:?}"),
            BuildError::Volume { step, entry, .. } => write!(f, "step {step:?}: volume {entry:?}"),
            BuildError::Workflow { what, .. } => write!(f, "workflow {what}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Name { source, .. } | BuildError::Volume { source, .. } => Some(source),
            BuildError::Quantity { source, .. } => Some(source),
            BuildError::Workflow { source, .. } => Some(source.as_ref()),
        }
    }
}

/// Decodes and gates the step's `backend_options.kubernetes`; the warnings go to the step log.
pub fn step_options(step: &Step, opts: &Options) -> (StepOptions, Vec<String>) {
    let (mut so, mut warnings) = StepOptions::decode(step.backend_options.get("kubernetes"));
    warnings.extend(so.gate(opts));
    (so, warnings)
}

fn quantities(
    step: &Step,
    kind: &'static str,
    m: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, BuildError> {
    // Inserted one by one: `m` is already in key order, and `collect` would sort it again with
    // a copy of the sort code of its own.
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let q = quantity::canonical(v).map_err(|source| BuildError::Quantity {
            step: step.name.clone(),
            kind,
            key: k.clone(),
            source,
        })?;
        out.insert(k.clone(), q);
    }
    Ok(out)
}

/// The step's Pod and the warnings about options it ignored.
pub fn step_pod(step: &Step, opts: &Options, ctx: &PodContext) -> Result<(Pod, Vec<String>), BuildError> {
    let (so, mut warnings) = step_options(step, opts);
    let pod_name = names::pod_name(step).map_err(|source| name_error(step, source))?;

    let (env, command) = environment_and_command(step, &pod_name);
    let (volumes, mounts, env_from, env) = volumes_and_mounts(step, opts, &so, ctx, env, &mut warnings)?;
    let mut container = Container {
        name: names::container_name(&pod_name),
        image: step.image.clone(),
        image_pull_policy: if step.pull { "Always".into() } else { String::new() },
        command,
        working_dir: if step.commands.is_empty() {
            step.working_dir.clone()
        } else {
            step.workspace_base.clone()
        },
        env,
        env_from,
        ports: step
            .ports
            .iter()
            .map(|p| ContainerPort {
                container_port: p.number,
                protocol: p.protocol.to_uppercase(),
            })
            .collect(),
        volume_mounts: mounts,
        resources: Some(container_resources(step, opts, &so, &mut warnings)?),
        security_context: security::container_security_context(
            step.privileged,
            so.security_context.as_ref(),
            &mut warnings,
        ),
        ..Default::default()
    };

    let allow_root = step.privileged || so.host_users == Some(false);
    let mut pod_sc = security::pod_security_context(opts, so.security_context.as_ref(), allow_root, &mut warnings);
    if opts.pod_security_restricted {
        let (c, p) = security::restricted_defaults(container.security_context.take(), pod_sc);
        (container.security_context, pod_sc) = (c, p);
    }
    let init = permission_init(&pod_sc, &container, opts);
    let (affinity, node_selector, tolerations) = scheduling(step, opts, &so, ctx, &mut warnings);
    let (subdomain, dns_config) = dns(step, opts, ctx);
    let (metadata, active_deadline) = pod_metadata(step, opts, &so, ctx, &pod_name, &mut warnings);

    let spec = PodSpec {
        init_containers: init.into_iter().collect(),
        containers: vec![container],
        volumes,
        restart_policy: "Never".into(),
        node_selector,
        tolerations,
        affinity,
        service_account_name: so.service_account_name.clone().unwrap_or_default(),
        automount_service_account_token: (opts.pod_security_restricted && so.service_account_name.is_none())
            .then_some(false),
        image_pull_secrets: pull_secrets(step, opts)?,
        hostname: names::hostname(&step.name),
        subdomain: subdomain.unwrap_or_default(),
        dns_config,
        host_aliases: step
            .extra_hosts
            .iter()
            .map(|h| json!({"ip": h.ip, "hostnames": [h.name]}))
            .collect(),
        security_context: pod_sc,
        runtime_class_name: so.runtime_class_name.clone(),
        priority_class_name: opts.priority_class.clone(),
        active_deadline_seconds: active_deadline,
        host_users: so.host_users,
        ..Default::default()
    };
    let pod = Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata,
        spec,
        status: None,
    };
    Ok((apply_admin_patches(pod, step, opts)?, warnings))
}

fn name_error(step: &Step, source: InvalidName) -> BuildError {
    BuildError::Name {
        step: step.name.clone(),
        source,
    }
}

/// The container's environment (plain values, then references to the step's Secret for
/// secret-mapped variables) and its command (the script runner, or the entrypoint).
fn environment_and_command(step: &Step, pod_name: &str) -> (Vec<EnvVar>, Vec<String>) {
    let mut environment = step.environment.clone();
    let mut command = Vec::new();
    if !step.commands.is_empty() {
        environment.insert("CI_SCRIPT".into(), script::ci_script(&step.working_dir, &step.commands));
        environment.insert("SHELL".into(), script::SHELL.into());
        command = script::COMMAND.iter().map(|s| s.to_string()).collect();
    }
    if !step.entrypoint.is_empty() {
        command = step.entrypoint.clone();
    }
    let step_secret = names::step_secret_name(pod_name);
    let mut env: Vec<EnvVar> = environment
        .iter()
        .filter(|(k, _)| !step.secret_mapping.contains_key(*k))
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: (!v.is_empty()).then(|| v.clone()),
            value_from: None,
        })
        .collect();
    env.extend(
        environment
            .keys()
            .filter(|k| step.secret_mapping.contains_key(*k))
            .map(|k| EnvVar {
                name: k.clone(),
                value: None,
                value_from: Some(json!({"secretKeyRef": {"name": step_secret, "key": k}})),
            }),
    );
    (env, command)
}

type Volumes = (Vec<kube::types::Volume>, Vec<VolumeMount>, Vec<Value>, Vec<EnvVar>);

/// Volumes and mounts: the step's PVCs (services may drop the workspace), native secrets
/// (as variables, `envFrom` or files), the admin's caches the step asked for; one mount per
/// path. Returns them with the `envFrom` list and `env` grown by the native secrets.
fn volumes_and_mounts(
    step: &Step,
    opts: &Options,
    so: &StepOptions,
    ctx: &PodContext,
    mut env: Vec<EnvVar>,
    warnings: &mut Vec<String>,
) -> Result<Volumes, BuildError> {
    let drop_workspace = step.is_service() && so.workspace_volume == Some(false);
    let (mut volumes, mut mounts) = super::volume::step_volumes(step, drop_workspace, ctx.workspace_dir.as_deref())?;
    let mut native = super::secrets::native_secrets(&so.secrets, warnings);
    env.extend(native.env);
    // A Secret volume must not take the name of a PVC volume (`workspace` as both).
    for v in &mut native.volumes {
        if volumes.iter().any(|p| p.name == v.name) {
            let renamed = names::hashed_label(&format!("secret-{}", v.name));
            for m in native.mounts.iter_mut().filter(|m| m.name == v.name) {
                m.name = renamed.clone();
            }
            v.name = renamed;
        }
    }
    volumes.extend(native.volumes);
    mounts.extend(native.mounts);
    // Admin-declared caches the step asked for (already allow-listed by the gate).
    for (name, path) in &so.caches {
        let Some(cache) = opts.caches.get(name) else { continue };
        let vol = names::to_dns_label(&format!("cache-{name}"));
        if volumes.iter().any(|v| v.name == vol) {
            continue;
        }
        volumes.push(kube::types::Volume {
            name: vol.clone(),
            persistent_volume_claim: Some(kube::types::PvcVolumeSource {
                claim_name: cache.claim.clone(),
                read_only: cache.read_only,
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: vol,
            mount_path: path.clone(),
            read_only: cache.read_only,
            ..Default::default()
        });
    }
    // The apiserver refuses two mounts at one path; keep the first.
    let mut seen = std::collections::BTreeSet::new();
    mounts.retain(|m| {
        let first = seen.insert(m.mount_path.clone());
        if !first {
            warnings.push(format!(
                "volume {:?} at {:?}: the path is already mounted, ignored",
                m.name, m.mount_path
            ));
        }
        first
    });
    Ok((volumes, mounts, native.env_from, env))
}

/// Requests and limits: the step's, within the agent's defaults and maxima.
fn container_resources(
    step: &Step,
    opts: &Options,
    so: &StepOptions,
    warnings: &mut Vec<String>,
) -> Result<ResourceRequirements, BuildError> {
    let (mut requests, mut limits) = (
        quantities(step, "request", &so.requests)?,
        quantities(step, "limit", &so.limits)?,
    );
    resources::apply(
        &opts.default_resources,
        &opts.max_resources,
        &mut requests,
        &mut limits,
        warnings,
    );
    Ok(ResourceRequirements { requests, limits })
}

/// Where the pod may run: affinity (with the workflow's colocation), node selector (the
/// step's platform picks the arch; else the agent's, unless DEFAULT_ARCH=none), tolerations.
fn scheduling(
    step: &Step,
    opts: &Options,
    so: &StepOptions,
    ctx: &PodContext,
    warnings: &mut Vec<String>,
) -> (Option<Value>, BTreeMap<String, String>, Vec<Value>) {
    let task_label = names::task_label_value(&ctx.task);
    let base_affinity = so.affinity.clone().or_else(|| opts.pod_affinity.clone());
    let affinity = affinity::with_colocation(base_affinity, &ctx.colocation, &task_label);
    let platform = match (&so.platform, opts.default_arch) {
        (Some(p), _) => Some(p.as_str()),
        (None, super::options::DefaultArch::Agent) => step.environment.get("CI_SYSTEM_PLATFORM").map(String::as_str),
        (None, super::options::DefaultArch::None) => None,
    };
    let node_selector = affinity::node_selector(platform, &opts.pod_node_selector, &so.node_selector, warnings);
    let tolerations = if so.tolerations.is_empty() {
        &opts.pod_tolerations
    } else {
        &so.tolerations
    };
    (
        affinity,
        node_selector,
        tolerations.iter().map(|t| t.to_value()).collect(),
    )
}

/// The agent's pull secrets, plus the step's registry credentials.
fn pull_secrets(step: &Step, opts: &Options) -> Result<Vec<LocalObjectReference>, BuildError> {
    let mut pull_secrets: Vec<LocalObjectReference> = opts
        .pull_secret_names
        .iter()
        .map(|n| LocalObjectReference { name: n.clone() })
        .collect();
    if super::secrets::has_registry_auth(step) {
        let name = names::registry_secret_name(step).map_err(|source| name_error(step, source))?;
        pull_secrets.push(LocalObjectReference { name });
    }
    Ok(pull_secrets)
}

/// The pod's subdomain (the workflow's headless Service) and its DNS config: the step's
/// nameservers, its searches, then the Service's domain.
fn dns(step: &Step, opts: &Options, ctx: &PodContext) -> (Option<String>, Option<Value>) {
    let subdomain = names::headless_service_name(&ctx.task).ok();
    let mut searches: Vec<String> = step.dns_search.clone();
    if let Some(sub) = &subdomain {
        let domain = if opts.cluster_domain.is_empty() {
            "cluster.local"
        } else {
            &opts.cluster_domain
        };
        searches.push(format!("{sub}.{}.svc.{domain}", ctx.namespace));
    }
    let mut dns = serde_json::Map::new();
    if !step.dns.is_empty() {
        dns.insert("nameservers".into(), json!(step.dns));
    }
    if !searches.is_empty() {
        dns.insert("searches".into(), json!(searches));
    }
    (subdomain, (!dns.is_empty()).then_some(Value::Object(dns)))
}

/// Name, labels (cache labels included) and annotations, and the pod's deadline: a step
/// timeout is the pod's deadline (counted from when the node takes the pod).
fn pod_metadata(
    step: &Step,
    opts: &Options,
    so: &StepOptions,
    ctx: &PodContext,
    pod_name: &str,
    warnings: &mut Vec<String>,
) -> (ObjectMeta, Option<i64>) {
    let mut metadata = ctx.meta(pod_name.to_owned());
    metadata.labels = labels::pod_labels(step, pod_name, opts, so, &ctx.task, &ctx.agent);
    warnings.extend(labels::skipped_workflow_labels(step, opts));
    metadata.annotations = labels::pod_annotations(opts, so);
    for name in so.caches.keys() {
        let key = format!("{}{name}", labels::CACHE_LABEL_PREFIX);
        if names::is_qualified_name(&key) {
            metadata.labels.insert(key, "true".into());
        }
    }
    let mut active_deadline = opts.active_deadline(ctx.workflow_timeout_secs);
    if let Some(t) = so.timeout {
        active_deadline = Some(active_deadline.map_or(t, |d| d.min(t)));
        metadata
            .annotations
            .insert(labels::STEP_TIMEOUT_ANNOTATION.into(), format!("{t}s"));
    }
    (metadata, active_deadline)
}

/// The admin's patches last: they were checked at start not to touch what the agent owns.
fn apply_admin_patches(mut pod: Pod, step: &Step, opts: &Options) -> Result<Pod, BuildError> {
    let service_patch = opts.service_patch.as_ref().filter(|_| step.is_service());
    for (var, patch) in [("POD_PATCH", opts.pod_patch.as_ref()), ("SERVICE_PATCH", service_patch)] {
        if let Some(patch) = patch {
            pod = super::podpatch::apply(pod, patch).map_err(|e| BuildError::Workflow {
                what: if var == "POD_PATCH" {
                    "pod patch (WOODPECKER_BACKEND_K8S_POD_PATCH)"
                } else {
                    "service patch (WOODPECKER_BACKEND_K8S_SERVICE_PATCH)"
                },
                source: Box::new(e),
            })?;
        }
    }
    Ok(pod)
}

/// The permission init container (Woodpecker v3.14+): when the pod runs as a non-root user and
/// the working dir lies strictly below a mount, create it first so the user can enter it.
fn permission_init(pod_sc: &Option<Value>, container: &Container, opts: &Options) -> Option<Container> {
    let uid = pod_sc.as_ref()?.get("runAsUser")?.as_i64()?;
    if uid == 0 || container.working_dir.is_empty() {
        return None;
    }
    let mounts: Vec<VolumeMount> = container
        .volume_mounts
        .iter()
        .filter(|m| container.working_dir.starts_with(&format!("{}/", m.mount_path)))
        .cloned()
        .collect();
    if mounts.is_empty() {
        return None;
    }
    let limits = BTreeMap::from([
        ("cpu".to_string(), "5m".to_string()),
        ("memory".to_string(), "12Mi".to_string()),
    ]);
    Some(Container {
        name: names::init_container_name(&container.name),
        image: opts.permission_init_image.clone(),
        image_pull_policy: "Always".into(),
        args: vec!["mkdir".into(), "-p".into(), container.working_dir.clone()],
        resources: Some(ResourceRequirements {
            requests: limits.clone(),
            limits,
        }),
        security_context: Some(json!({"capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": false})),
        volume_mounts: mounts,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fixture_tests;
