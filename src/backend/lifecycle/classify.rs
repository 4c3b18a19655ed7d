//! Decides what a step pod's latest state means for the step: keep waiting, started (its log
//! can be read), finished with an exact result, or failed to start with the Kubernetes reason.
//!
//! Pure: a [`Pod`] plus how long it has been pending in, a [`Verdict`] out. Knows nothing of
//! watches, clients or logs. Rules follow the pod status semantics in the raw-API spec §6:
//! deletion first, then terminal phases, then fatal waiting reasons (some after a grace), then
//! unschedulable past the start timeout.

use std::time::Duration;

use crate::backend::State;
use crate::backend::labels::STEP_TIMEOUT_ANNOTATION;
use kube::types::{ContainerState, ContainerStatus, Pod, PodStatus};

/// How long a pod may stay unstarted before the step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Any pod still not started after this fails, whatever the reason (unschedulable, an
    /// unbound PVC, a volume that does not mount, a slow pull).
    pub start_timeout: Duration,
    /// Retryable start errors (image pulls, a missing secret) fail after this much pending:
    /// they are often transient (a registry hiccup, a secret created a moment later).
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            start_timeout: Duration::from_secs(300),
            grace: Duration::from_secs(60),
        }
    }
}

/// Why a pod is not running: a Kubernetes reason and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub reason: String,
    pub message: String,
}

impl Why {
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Why {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.reason, self.message)
        }
    }
}

/// What the step should do about the pod's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not started yet; the reason, when Kubernetes gave one, is worth showing in the log.
    Waiting(Option<Why>),
    /// The step container is running: its log can be followed.
    Started,
    /// The step is over. `started` tells whether the container ever ran (its log exists).
    Finished { state: State, started: bool },
    /// The pod will not start (or not in time).
    FailedToStart(Why),
}

/// The pod as last seen, with what the caller knows beyond it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub pod: &'a Pod,
    /// The pod is gone (a watch DELETED event); `pod` is its last state.
    pub gone: bool,
    /// The agent itself deleted the pod (DestroyWorkflow stopping a detached step or service,
    /// or a cancel): that ends the step with exit 0, by Woodpecker's contract.
    pub deleted_by_us: bool,
    /// How long the step has waited for the pod to start.
    pub pending_for: Duration,
}

/// Waiting reasons that never fix themselves.
const FATAL_NOW: &[&str] = &["InvalidImageName", "ErrImageNeverPull"];
/// Waiting reasons the kubelet retries; fatal once the grace has passed.
const FATAL_AFTER_GRACE: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "RegistryUnavailable",
    "ImageInspectError",
    "SignatureValidationFailed",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
    "PostStartHookError",
    "PreCreateHookError",
    "CreatePodSandboxError",
];
/// Pod-level reasons that mean the pod was killed by the system, not by its command.
const SYSTEM_REASONS: &[&str] = &[
    "Evicted",
    "DeadlineExceeded",
    "NodeLost",
    "Shutdown",
    "Terminated",
    "UnexpectedAdmissionError",
    "NodeAffinity",
    "Preempting",
];

/// Reasons a pod can end before its command started that say nothing about the step: the node
/// or the cluster took it away (eviction, drain, preemption, a lost or shut-down node, kubelet
/// admission, a sandbox the runtime could not create). Worth a new pod when the agent is set to
/// retry (`WOODPECKER_BACKEND_K8S_INFRA_RETRIES`); image, configuration and scheduling problems
/// are not: they would fail again.
const INFRA_REASONS: &[&str] = &[
    "Evicted",
    "Preempting",
    "NodeLost",
    "Shutdown",
    "Terminated",
    "UnexpectedAdmissionError",
    "NodeAffinity",
    "CreatePodSandboxError",
    "EvictionByEvictionAPI",
    "PreemptionByScheduler",
    "DeletionByTaintManager",
    "DeletionByPodGC",
    "TerminationByKubelet",
];

/// Whether `reason` is one of [`INFRA_REASONS`].
pub fn is_infra(reason: &str) -> bool {
    INFRA_REASONS.contains(&reason)
}

/// The infrastructure reason of an error (`Reason: message`), if it is one.
pub fn infra_reason(error: &str) -> Option<&str> {
    error.split(':').next().filter(|r| is_infra(r))
}

/// Classifies one observation of a step pod (rules in the module doc).
pub fn classify(obs: Observation<'_>, limits: &Limits) -> Verdict {
    let pod = obs.pod;
    let empty = PodStatus::default();
    let status = pod.status.as_ref().unwrap_or(&empty);
    let step = step_status(pod);
    let terminated = step.and_then(|s| s.state.terminated.as_ref());
    let ran = step.is_some_and(|s| s.state.running.is_some() || s.state.terminated.is_some());

    // 1. Deletion. Ours ends the step cleanly; anyone else's is an error, unless the step
    //    had already succeeded (a pod garbage collector racing our own delete).
    let deleting = obs.gone || pod.metadata.deletion_timestamp.is_some();
    if deleting {
        if obs.deleted_by_us {
            return finished(
                State {
                    exit_code: 0,
                    exited: true,
                    ..State::default()
                },
                ran,
            );
        }
        if status.phase == "Succeeded" && terminated.is_some_and(|t| t.exit_code == 0) {
            return finished(exited(0, false, None), true);
        }
        let why = system_why(pod, status)
            .or_else(|| disruption_why(status))
            .unwrap_or_else(|| Why::new("Deleted", "the pod was deleted by someone other than this agent"));
        return match terminated {
            Some(t) => finished(exited(t.exit_code, is_oom(t.reason.as_str()), Some(why)), true),
            None => finished(not_exited(why), ran),
        };
    }

    // 2. The node is gone or unreachable: whatever the container did is unknowable.
    if status.phase == "Unknown" || status.reason == "NodeLost" {
        let why = system_why(pod, status).unwrap_or_else(|| Why::new("NodeLost", "the pod's node stopped reporting"));
        return finished(not_exited(why), ran);
    }

    // 3. The step container ended: its exit code is the result, once the pod's phase is final
    //    too (the kubelet may publish the container's end first and the pod's reason, such as
    //    Evicted or DeadlineExceeded, in a later update). A system kill is an error even when
    //    the exit code looks harmless.
    if let Some(t) = terminated {
        if !matches!(status.phase.as_str(), "Succeeded" | "Failed") {
            return Verdict::Started;
        }
        let why = system_why(pod, status);
        return finished(exited(t.exit_code, is_oom(&t.reason), why), true);
    }

    // 4. An init container failed: the step never ran.
    for init in &status.init_container_statuses {
        if let Some(t) = init.state.terminated.as_ref().filter(|t| t.exit_code != 0) {
            let reason = if t.reason.is_empty() {
                "InitContainerFailed"
            } else {
                &t.reason
            };
            let message = format!("init container {} exited with code {}", init.name, t.exit_code);
            return Verdict::FailedToStart(Why::new(reason, message));
        }
    }

    // 5. The pod ended without a container result: a system failure (evicted before start,
    //    deadline exceeded while pulling, admission errors).
    if status.phase == "Failed" {
        let why = system_why(pod, status)
            .or_else(|| disruption_why(status))
            .unwrap_or_else(|| Why::new("Failed", "the pod failed without a container result"));
        return finished(not_exited(why), ran);
    }
    if status.phase == "Succeeded" {
        // The kubelet can report the phase before the container's terminated state; the next
        // update carries it (Woodpecker's "no terminated state" race).
        return Verdict::Waiting(None);
    }

    if step.is_some_and(|s| s.state.running.is_some()) {
        return Verdict::Started;
    }

    // 6. Still pending: fail fast on hopeless reasons, after the grace on retryable ones,
    //    after the start timeout on anything.
    let waiting = waiting_why(status);
    if let Some(why) = &waiting {
        if FATAL_NOW.contains(&why.reason.as_str()) {
            return Verdict::FailedToStart(why.clone());
        }
        if FATAL_AFTER_GRACE.contains(&why.reason.as_str()) && obs.pending_for >= limits.grace {
            return Verdict::FailedToStart(why.clone());
        }
    }
    let why = waiting.or_else(|| unscheduled_why(status));
    if obs.pending_for >= limits.start_timeout {
        let why = why.unwrap_or_else(|| Why::new("StartTimeout", "the pod did not start"));
        return Verdict::FailedToStart(Why::new(
            why.reason,
            format!(
                "{} (still not started after {}s)",
                why.message,
                limits.start_timeout.as_secs()
            ),
        ));
    }
    Verdict::Waiting(why)
}

/// The status of the step container: the pod's first container (the builders put the step's
/// container first; sidecars, if ever added, come after it).
pub fn step_status(pod: &Pod) -> Option<&ContainerStatus> {
    let statuses = &pod.status.as_ref()?.container_statuses;
    match pod.spec.containers.first() {
        Some(c) => statuses.iter().find(|s| s.name == c.name),
        None => statuses.first(),
    }
}

fn finished(state: State, started: bool) -> Verdict {
    Verdict::Finished { state, started }
}

fn exited(exit_code: i32, oom_killed: bool, why: Option<Why>) -> State {
    State {
        exit_code,
        exited: true,
        oom_killed,
        error: why.map(|w| w.to_string()),
        ..State::default()
    }
}

/// A step that ended without an exit code of its own. Exit code 1 so that a runtime which looks
/// only at the code still sees a failure; `error` says why.
fn not_exited(why: Why) -> State {
    State {
        exit_code: 1,
        exited: false,
        error: Some(why.to_string()),
        ..State::default()
    }
}

fn is_oom(reason: &str) -> bool {
    reason == "OOMKilled"
}

fn system_why(pod: &Pod, status: &PodStatus) -> Option<Why> {
    if !SYSTEM_REASONS.contains(&status.reason.as_str()) {
        return None;
    }
    // The step's own timeout is the pod's deadline: say so in the step's words.
    if status.reason == "DeadlineExceeded"
        && let Some(t) = pod.metadata.annotations.get(STEP_TIMEOUT_ANNOTATION)
    {
        return Some(Why::new(
            "StepTimeout",
            format!("the step ran past its timeout of {t} (backend_options.kubernetes.timeout) and was stopped"),
        ));
    }
    Some(Why::new(&status.reason, &status.message))
}

/// Who is taking the pod away and why, when they said so before deleting it (Kubernetes 1.26+:
/// an eviction through the API or `kubectl drain`, the taint manager for an unreachable node,
/// preemption, pod garbage collection, the kubelet's own termination).
fn disruption_why(status: &PodStatus) -> Option<Why> {
    condition_why(status, "DisruptionTarget", "True", "DisruptionTarget")
}

/// The reason and message of the pod condition `type_` when its status is `value`.
fn condition_why(status: &PodStatus, type_: &str, value: &str, default_reason: &str) -> Option<Why> {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == value)?;
    let reason = if c.reason.is_empty() { default_reason } else { &c.reason };
    Some(Why::new(reason, &c.message))
}

/// The first container (init containers first, as the kubelet starts them) waiting with a
/// reason other than the normal start-up ones.
fn waiting_why(status: &PodStatus) -> Option<Why> {
    let all = status.init_container_statuses.iter().chain(&status.container_statuses);
    all.filter_map(|s| match &s.state {
        ContainerState { waiting: Some(w), .. } => Some(w),
        _ => None,
    })
    .find(|w| !w.reason.is_empty() && w.reason != "ContainerCreating" && w.reason != "PodInitializing")
    .map(|w| Why::new(&w.reason, &w.message))
}

fn unscheduled_why(status: &PodStatus) -> Option<Why> {
    condition_why(status, "PodScheduled", "False", "Unschedulable")
}

#[cfg(test)]
mod tests;
