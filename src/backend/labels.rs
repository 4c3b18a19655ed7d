//! Labels and annotations of the objects we create, in Woodpecker's merge order (§4.4 of the
//! backend spec: workflow labels, step labels, agent labels, `service`, `step`, task), plus our
//! agent label on everything. Pure map building; knows nothing of pods beyond the step.

use std::collections::BTreeMap;

use super::names::{self, AGENT_LABEL, TASK_LABEL};
use super::options::Options;
use super::step_options::StepOptions;
use super::types::Step;

/// Workflow labels with this prefix are always copied onto pods.
const INTERNAL_PREFIX: &str = "woodpecker-ci.org";

/// Rule 1: workflow labels (internal ones always, the others only if step labels are allowed),
/// values sanitised with `toLabelValue`, keys verbatim.
/// Keys the apiserver would refuse are skipped ([`skipped_workflow_labels`] names them).
fn workflow_labels(step: &Step, opts: &Options, out: &mut BTreeMap<String, String>) {
    for (k, v) in &step.workflow_labels {
        if (k.starts_with(INTERNAL_PREFIX) || opts.pod_labels_allow_from_step) && names::is_qualified_name(k) {
            out.insert(k.clone(), names::to_label_value(v));
        }
    }
}

/// Warnings for workflow labels that would be copied but have a key the apiserver refuses.
pub fn skipped_workflow_labels(step: &Step, opts: &Options) -> Vec<String> {
    step.workflow_labels
        .keys()
        .filter(|k| (k.starts_with(INTERNAL_PREFIX) || opts.pod_labels_allow_from_step) && !names::is_qualified_name(k))
        .map(|k| format!("workflow label {k:?}: not a valid label key, not copied to the pod"))
        .collect()
}

/// The annotation of a pod with a step timeout (its value: the timeout, `90s`): the pod's
/// `activeDeadlineSeconds` is that timeout, and a `DeadlineExceeded` means the step ran too long.
pub const STEP_TIMEOUT_ANNOTATION: &str = "woodpecker-k8s-agent/step-timeout";
/// The label of a failed step's pod kept for debugging (`KEEP_FAILED_PODS`); its value is the
/// Unix time after which the agent deletes it.
pub const KEPT_UNTIL_LABEL: &str = "woodpecker-k8s-agent/kept-until";
/// The label of every pod that mounts a cache: `woodpecker-k8s-agent/cache-<name>: "true"`.
pub const CACHE_LABEL_PREFIX: &str = "woodpecker-k8s-agent/cache-";

/// The label a service step's pod carries (its value is the pod name).
pub const SERVICE: &str = "service";

/// Rules 4 and 5: `service` for service steps, then `step` and `woodpecker-ci.org/step`.
fn step_identity(step: &Step, pod_name: &str, out: &mut BTreeMap<String, String>) {
    if step.is_service() {
        out.insert(SERVICE.into(), names::to_label_value(pod_name));
    }
    let step_label = names::to_label_value(&step.name);
    out.insert("step".into(), step_label.clone());
    out.insert("woodpecker-ci.org/step".into(), step_label);
}

/// The labels of a step pod. `step_opts` must already be gated (labels cleared when not allowed).
pub fn pod_labels(
    step: &Step,
    pod_name: &str,
    opts: &Options,
    step_opts: &StepOptions,
    task: &str,
    agent: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    workflow_labels(step, opts, &mut out);
    if opts.pod_labels_allow_from_step {
        out.extend(step_opts.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out.extend(opts.pod_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    step_identity(step, pod_name, &mut out);
    out.extend(ownership_labels(task, agent));
    out
}

/// The labels of a step's registry pull Secret: rules 1, 4 and 5 (as Woodpecker), plus ours.
pub fn registry_secret_labels(
    step: &Step,
    pod_name: &str,
    opts: &Options,
    task: &str,
    agent: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    workflow_labels(step, opts, &mut out);
    step_identity(step, pod_name, &mut out);
    out.extend(ownership_labels(task, agent));
    out
}

/// What every object of a workflow carries (our addition; Woodpecker labels only pods): the task
/// label, and the agent label when the agent id is known, so a later run can sweep leftovers.
pub fn ownership_labels(task: &str, agent: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !task.is_empty() {
        out.insert(TASK_LABEL.to_string(), names::task_label_value(task));
    }
    let agent = names::to_label_value(agent);
    if !agent.is_empty() {
        out.insert(AGENT_LABEL.to_string(), agent);
    }
    out
}

/// The label selector for every object of a task (`woodpecker-ci.org/task-uuid=<task>`).
pub fn task_selector(task: &str) -> String {
    format!("{TASK_LABEL}={}", names::task_label_value(task))
}

/// The label selector for every object this agent created, or `None` without an agent id
/// (then objects carry no agent label and cannot be told apart from other agents').
pub fn agent_selector(agent: &str) -> Option<String> {
    let value = names::to_label_value(agent);
    (!value.is_empty()).then(|| format!("{AGENT_LABEL}={value}"))
}

/// Pod annotations: step annotations (if allowed), then the agent's, which win.
pub fn pod_annotations(opts: &Options, step_opts: &StepOptions) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if opts.pod_annotations_allow_from_step {
        out.extend(step_opts.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out.extend(opts.pod_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> Step {
        let mut s = Step {
            name: "Build & Test".into(),
            uuid: "01ABC".into(),
            ..Default::default()
        };
        s.workflow_labels
            .insert("woodpecker-ci.org/repo-full-name".into(), "Org/Repo".into());
        s.workflow_labels.insert("team".into(), "Platform Team".into());
        s.workflow_labels.insert("step".into(), "from-workflow".into());
        s
    }

    #[test]
    fn merge_order_later_wins() {
        let mut opts = Options::default();
        let mut so = StepOptions::default();
        so.labels.insert("team".into(), "from-step".into());
        so.labels.insert("only-step".into(), "x".into());
        opts.pod_labels.insert("only-step".into(), "agent-wins".into());
        opts.pod_labels
            .insert("woodpecker-ci.org/step".into(), "agent-loses".into());

        // Gate off: only internal workflow labels, no step labels.
        let l = pod_labels(&step(), "wp-01abc", &opts, &so, "42", "agent-1");
        assert_eq!(l["woodpecker-ci.org/repo-full-name"], "org-repo");
        assert!(!l.contains_key("team"));
        assert_eq!(l["only-step"], "agent-wins");
        assert_eq!(l["step"], "build-test");
        assert_eq!(l["woodpecker-ci.org/step"], "build-test", "rule 5 beats agent labels");
        assert_eq!(l[TASK_LABEL], "42");
        assert_eq!(l[AGENT_LABEL], "agent-1");
        assert!(!l.contains_key("service"));

        // Gate on: non-internal workflow labels (sanitised), then step labels verbatim.
        opts.pod_labels_allow_from_step = true;
        let l = pod_labels(&step(), "wp-01abc", &opts, &so, "42", "");
        assert_eq!(l["team"], "from-step");
        assert_eq!(l["only-step"], "agent-wins");
        assert_eq!(l["step"], "build-test", "rule 5 beats workflow labels");
        assert!(!l.contains_key(AGENT_LABEL));
    }

    #[test]
    fn invalid_workflow_label_keys_are_skipped_and_named() {
        let mut s = step();
        s.workflow_labels.insert("bad key".into(), "x".into());
        let mut opts = Options::default();
        assert!(
            skipped_workflow_labels(&s, &opts).is_empty(),
            "not copied anyway with the gate off"
        );
        opts.pod_labels_allow_from_step = true;
        let l = pod_labels(&s, "wp-01abc", &opts, &StepOptions::default(), "42", "");
        assert!(!l.contains_key("bad key"));
        assert_eq!(skipped_workflow_labels(&s, &opts).len(), 1);
    }

    #[test]
    fn service_label_and_registry_labels() {
        let mut s = step();
        s.type_ = "service".into();
        let opts = Options {
            pod_labels: [("a".to_string(), "b".to_string())].into(),
            ..Default::default()
        };
        let l = pod_labels(&s, "wp-svc-01abc-build-test", &opts, &StepOptions::default(), "", "");
        assert_eq!(l["service"], "wp-svc-01abc-build-test");
        assert!(!l.contains_key(TASK_LABEL), "no task label without a task");
        let r = registry_secret_labels(&s, "wp-svc-01abc-build-test", &opts, "7", "");
        assert!(!r.contains_key("a"), "no agent pod labels on registry secrets");
        assert_eq!(r["service"], "wp-svc-01abc-build-test");
        assert_eq!(r[TASK_LABEL], "7");
    }

    #[test]
    fn selectors_match_the_labels() {
        let l = ownership_labels("42", "Agent One");
        assert_eq!(task_selector("42"), format!("{TASK_LABEL}={}", l[TASK_LABEL]));
        assert_eq!(
            agent_selector("Agent One").unwrap(),
            format!("{AGENT_LABEL}={}", l[AGENT_LABEL])
        );
        assert_eq!(agent_selector("!!!"), None);
    }

    #[test]
    fn annotations_agent_wins() {
        let mut opts = Options::default();
        let mut so = StepOptions::default();
        so.annotations.insert("x".into(), "step".into());
        so.annotations.insert("y".into(), "step".into());
        opts.pod_annotations.insert("x".into(), "agent".into());
        assert_eq!(
            pod_annotations(&opts, &so),
            BTreeMap::from([("x".into(), "agent".into())])
        );
        opts.pod_annotations_allow_from_step = true;
        let a = pod_annotations(&opts, &so);
        assert_eq!((a["x"].as_str(), a["y"].as_str()), ("agent", "step"));
    }
}
