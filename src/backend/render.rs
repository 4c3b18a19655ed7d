//! Everything the backend would create for one workflow, in creation order, without a cluster:
//! the per-org Namespace (if any), the anchor headless Service, the workspace PVC (or, with
//! `WORKSPACE_EMPTYDIR`, its holder pod), then per step its registry Secret, step Secret and Pod.
//! Used by `render` and by tests; the lifecycle creates the same objects one by one with the same
//! builders. Secret values are redacted on request.

use serde_json::Value;

use super::namespace::org_namespace;
use super::options::Options;
use super::pod::{self, BuildError, PodContext};
use super::secrets;
use super::service;
use super::types::{Step, WorkflowConfig};
use super::volume;
use kube::types::{Pod, Secret};

/// The anchor uid in rendered output: the apiserver assigns the real one when the headless
/// Service is created, and a fixed value keeps the output deterministic.
pub const ANCHOR_UID_PLACEHOLDER: &str = "00000000-0000-0000-0000-000000000000";
/// The workspace holder's uid in rendered output (`WORKSPACE_EMPTYDIR`).
pub const HOLDER_UID_PLACEHOLDER: &str = "11111111-1111-1111-1111-111111111111";
/// What secret values become in redacted output.
pub const REDACTED: &str = "[REDACTED]";

/// The rendered workflow: objects in creation order, and per-step warnings (`step: message`).
#[derive(Debug, Default)]
pub struct Rendered {
    pub objects: Vec<Value>,
    pub warnings: Vec<String>,
}

/// A copy of the step whose secret values (secret env and registry password) are redacted.
fn redact(step: &Step) -> Step {
    let mut s = step.clone();
    for v in s.secret_mapping.values_mut() {
        *v = REDACTED.into();
    }
    // Values of secret-mapped env vars also live in the environment; they never reach the pod
    // (it references the step Secret), but keep the copy clean too.
    for (k, v) in s.environment.iter_mut() {
        if step.secret_mapping.contains_key(k) {
            *v = REDACTED.into();
        }
    }
    if !s.auth_config.password.is_empty() {
        s.auth_config.password = REDACTED.into();
    }
    s
}

fn to_value<T: serde::Serialize>(obj: &T) -> Value {
    // Through JSON text, not `serde_json::to_value`: the same `Value`, with the objects' text
    // encoders (in the binary anyway, they are sent) instead of encoders into `Value` for them.
    let text = serde_json::to_vec(obj).expect("our object types always serialise");
    serde_json::from_slice(&text).expect("serde_json reads what it wrote")
}

/// Renders every object of `conf` for task `task`. `agent` is the agent label value.
pub fn workflow(
    conf: &WorkflowConfig,
    task: &str,
    opts: &Options,
    agent: &str,
    redact_secrets: bool,
) -> Result<Rendered, BuildError> {
    let org_id = conf
        .stages
        .first()
        .and_then(|s| s.steps.first())
        .map_or(0, |s| s.org_id);
    let mut ctx = PodContext::new(opts, task, org_id, agent);
    let mut out = Rendered::default();
    if let Some(ns) = org_namespace(opts, org_id, agent) {
        out.objects.push(to_value(&ns));
    }
    let mut anchor = service::headless_service(&ctx)?;
    out.objects.push(to_value(&anchor));
    anchor.metadata.uid = ANCHOR_UID_PLACEHOLDER.into();
    ctx.anchor = Some(service::owner_ref(&anchor));
    if let Some(pvc) = volume::workflow_pvc(conf, opts, &ctx)? {
        out.objects.push(to_value(&pvc));
    }
    if let Some(holder) = volume::workspace_holder(conf, opts, &ctx)? {
        out.objects.push(to_value(&holder));
        // The apiserver assigns its uid; the steps then run on its node.
        ctx.workspace_dir = volume::holder_dir(opts, HOLDER_UID_PLACEHOLDER);
    }
    for step in conf.stages.iter().flat_map(|s| s.steps.iter()) {
        let step = if redact_secrets { redact(step) } else { step.clone() };
        let objs = step_objects(&step, opts, &ctx)?;
        out.warnings
            .extend(objs.warnings.into_iter().map(|w| format!("step {:?}: {w}", step.name)));
        // A refused step creates nothing.
        if !objs.refused.is_empty() {
            out.warnings
                .push(format!("step {:?}: {}", step.name, refusal_line(opts, &objs.refused)));
            continue;
        }
        out.objects.extend(objs.registry_secret.iter().map(to_value));
        out.objects.extend(objs.step_secret.iter().map(to_value));
        out.objects.push(to_value(&objs.pod));
    }
    Ok(out)
}

/// Everything one step needs, in creation order (StartStep): its registry pull Secret, its
/// step Secret, its Pod, and the warnings for its log.
#[derive(Debug)]
pub struct StepObjects {
    pub registry_secret: Option<Secret>,
    pub step_secret: Option<Secret>,
    pub pod: Pod,
    pub warnings: Vec<String>,
    /// Why the agent refuses to run the step (`POD_SECURITY_ENFORCE`); empty when it may run.
    pub refused: Vec<String>,
}

/// The step-log line of a step refused by `POD_SECURITY_ENFORCE`.
pub fn refusal_line(opts: &Options, refused: &[String]) -> String {
    let level = opts.pod_security_enforce.map_or("", |l| l.name());
    format!(
        "refused: the agent enforces Pod Security {level:?} (WOODPECKER_BACKEND_K8S_POD_SECURITY_ENFORCE) and the step asks for {}",
        refused.join(", ")
    )
}

/// Builds a step's objects; nothing is created.
pub fn step_objects(step: &Step, opts: &Options, ctx: &PodContext) -> Result<StepObjects, BuildError> {
    let registry_secret = secrets::registry_secret(step, opts, ctx)?;
    let step_secret = secrets::step_secret(step, ctx)?;
    let (pod, warnings) = pod::step_pod(step, opts, ctx)?;
    let refused = match opts.pod_security_enforce {
        Some(level) => {
            let (so, _) = pod::step_options(step, opts);
            super::security::enforce_refusals(level, step.privileged, so.security_context.as_ref())
        }
        None => Vec::new(),
    };
    Ok(StepObjects {
        registry_secret,
        step_secret,
        pod,
        warnings,
        refused,
    })
}

/// The task id used when none is given: Woodpecker's taskUUID is the workflow id, which is the
/// number in the volume name `wp_<ulid>_<id>_default`.
pub fn default_task(conf: &WorkflowConfig) -> String {
    let parts: Vec<&str> = conf.volume.split(':').next().unwrap_or_default().split('_').collect();
    match parts.as_slice() {
        [.., id, "default"] if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => id.to_string(),
        _ => "1".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::names;
    use crate::backend::types::{Auth, Stage};

    /// The names of the objects a workflow's pods reference, for checks: (kind, name).
    fn object_names(rendered: &Rendered) -> Vec<(String, String)> {
        rendered
            .objects
            .iter()
            .map(|o| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (s(&o["kind"]), s(&o["metadata"]["name"]))
            })
            .collect()
    }

    fn conf() -> WorkflowConfig {
        let step = Step {
            name: "build".into(),
            uuid: "01ABC".into(),
            image: "alpine".into(),
            commands: vec!["true".into()],
            secret_mapping: [("TOKEN".to_string(), "s3cr3t-value".to_string())].into(),
            environment: [("TOKEN".to_string(), "s3cr3t-value".to_string())].into(),
            auth_config: Auth {
                username: "u".into(),
                password: "hunter2-pw".into(),
            },
            volumes: vec!["wp_01abc_42_default:/woodpecker".into()],
            workspace_base: "/woodpecker".into(),
            ..Default::default()
        };
        WorkflowConfig {
            stages: vec![Stage { steps: vec![step] }],
            volume: "wp_01abc_42_default".into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_task_from_the_volume_name() {
        let c = |v: &str| WorkflowConfig {
            volume: v.into(),
            ..Default::default()
        };
        assert_eq!(default_task(&c("wp_01hz_11301_default")), "11301");
        assert_eq!(default_task(&c("wp_01hz_11301_default:/woodpecker")), "11301");
        assert_eq!(default_task(&c("custom")), "1");
        assert_eq!(default_task(&c("wp_01hz_x1_default")), "1");
        assert_eq!(default_task(&WorkflowConfig::default()), "1");
    }

    #[test]
    fn order_anchor_and_redaction() {
        let conf = conf();
        assert_eq!(default_task(&conf), "42");
        let r = workflow(&conf, "42", &Options::default(), "a1", true).unwrap();
        let kinds: Vec<_> = object_names(&r).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["Service", "PersistentVolumeClaim", "Secret", "Secret", "Pod"]);
        for o in &r.objects[1..] {
            assert_eq!(o["metadata"]["ownerReferences"][0]["name"], "wp-hsvc-42", "{o}");
            assert_eq!(o["metadata"]["labels"][names::TASK_LABEL], "42");
        }
        let text = serde_json::to_string(&r.objects).unwrap();
        assert!(
            !text.contains("s3cr3t-value") && !text.contains("hunter2"),
            "secrets leaked: {text}"
        );
        let raw = workflow(&conf, "42", &Options::default(), "a1", false).unwrap();
        assert!(serde_json::to_string(&raw.objects).unwrap().contains("s3cr3t-value"));
    }
}
