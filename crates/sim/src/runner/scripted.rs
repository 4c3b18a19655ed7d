//! The scripted runner: per-pod behaviour from [`ScriptRule`]s (exit code, log lines and their
//! pace, start delay, and failure modes: image pull errors, invalid image names, unschedulable,
//! OOMKilled, eviction, CreateContainerConfigError, run-until-deleted). Nothing is executed.
//!
//! Without a matching rule a container exits 0 with no output: the `CI_SCRIPT` of a Woodpecker
//! step is not interpreted (its `echo` lines are not faked). A pod labelled `service` (a
//! Woodpecker service) runs until deleted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{ContainerRun, Exit, Kill, killed};

/// Which pods (or containers) a rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    Any,
    /// The pod name, exactly.
    Name(String),
    /// The start of the pod name.
    NamePrefix(String),
    /// A container image, exactly (the rule then applies to that container only).
    Image(String),
}

/// A failure mode.
#[derive(Debug, Clone, PartialEq)]
pub enum PodFault {
    /// ErrImagePull, then ImagePullBackOff forever.
    ImagePull,
    /// InvalidImageName.
    InvalidImageName,
    /// PodScheduled=False/Unschedulable and a FailedScheduling event; never runs.
    Unschedulable,
    /// Terminated with reason OOMKilled, exit 137, after the log lines.
    OomKilled,
    /// Phase Failed, reason Evicted, after the log lines.
    Evicted,
    /// Waiting with CreateContainerConfigError and this message (e.g. a missing secret).
    ConfigError(String),
    /// Keeps running until the pod is deleted (services).
    RunUntilDeleted,
}

/// Behaviour for matching pods. Later rules win over earlier ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptRule {
    pub matcher: Matcher,
    pub exit_code: i32,
    pub logs: Vec<String>,
    /// The pause before each log line.
    pub line_interval: Duration,
    /// Extra time spent in ContainerCreating.
    pub start_delay: Duration,
    pub fault: Option<PodFault>,
}

impl ScriptRule {
    fn new(matcher: Matcher) -> Self {
        ScriptRule {
            matcher,
            exit_code: 0,
            logs: Vec::new(),
            line_interval: Duration::ZERO,
            start_delay: Duration::ZERO,
            fault: None,
        }
    }
    pub fn any() -> Self {
        Self::new(Matcher::Any)
    }
    pub fn name(name: &str) -> Self {
        Self::new(Matcher::Name(name.into()))
    }
    pub fn prefix(prefix: &str) -> Self {
        Self::new(Matcher::NamePrefix(prefix.into()))
    }
    pub fn image(image: &str) -> Self {
        Self::new(Matcher::Image(image.into()))
    }
    pub fn exit(mut self, code: i32) -> Self {
        self.exit_code = code;
        self
    }
    pub fn logs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.logs = lines.into_iter().map(Into::into).collect();
        self
    }
    pub fn every(mut self, interval: Duration) -> Self {
        self.line_interval = interval;
        self
    }
    pub fn lines_per_second(self, rate: f64) -> Self {
        self.every(Duration::from_secs_f64(1.0 / rate.max(0.001)))
    }
    pub fn start_delay(mut self, d: Duration) -> Self {
        self.start_delay = d;
        self
    }
    pub fn fault(mut self, f: PodFault) -> Self {
        self.fault = Some(f);
        self
    }
    pub fn image_pull_failure(self) -> Self {
        self.fault(PodFault::ImagePull)
    }
    pub fn invalid_image(self) -> Self {
        self.fault(PodFault::InvalidImageName)
    }
    pub fn unschedulable(self) -> Self {
        self.fault(PodFault::Unschedulable)
    }
    pub fn oom_killed(self) -> Self {
        self.fault(PodFault::OomKilled)
    }
    pub fn evicted(self) -> Self {
        self.fault(PodFault::Evicted)
    }
    pub fn config_error(self, message: &str) -> Self {
        self.fault(PodFault::ConfigError(message.into()))
    }
    pub fn run_until_deleted(self) -> Self {
        self.fault(PodFault::RunUntilDeleted)
    }

    fn matches_pod(&self, pod: &Value) -> bool {
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        match &self.matcher {
            Matcher::Any => true,
            Matcher::Name(n) => n == name,
            Matcher::NamePrefix(p) => name.starts_with(p.as_str()),
            Matcher::Image(i) => all_containers(pod).any(|c| c["image"].as_str() == Some(i)),
        }
    }

    fn matches_container(&self, pod: &Value, c: &Value) -> bool {
        match &self.matcher {
            Matcher::Image(i) => c["image"].as_str() == Some(i),
            _ => self.matches_pod(pod),
        }
    }
}

fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    let s = &pod["spec"];
    s["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(s["containers"].as_array().into_iter().flatten())
}

/// The behaviour chosen for one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlan {
    pub rule: Option<Arc<ScriptRule>>,
    /// The pod carries [`crate::SimConfig::run_until_deleted_label`]: with nothing else to do,
    /// its containers run until the pod is deleted.
    pub until_deleted: bool,
}

impl ContainerPlan {
    pub fn fault(&self) -> Option<&PodFault> {
        self.rule.as_ref().and_then(|r| r.fault.as_ref())
    }
    pub fn start_delay(&self) -> Duration {
        self.rule.as_ref().map_or(Duration::ZERO, |r| r.start_delay)
    }
}

/// The last rule matching `c` in `pod`; `until_deleted_label`: see [`ContainerPlan`].
pub fn plan(rules: &[Arc<ScriptRule>], until_deleted_label: Option<&str>, pod: &Value, c: &Value) -> ContainerPlan {
    let rule = rules.iter().rev().find(|r| r.matches_container(pod, c)).cloned();
    let until_deleted = until_deleted_label.is_some_and(|l| pod["metadata"]["labels"][l].is_string());
    ContainerPlan { rule, until_deleted }
}

/// A pod-level fault (Unschedulable) from the last rule matching the pod.
pub fn pod_fault(rules: &[Arc<ScriptRule>], pod: &Value) -> Option<PodFault> {
    rules
        .iter()
        .rev()
        .find(|r| r.matches_pod(pod))
        .and_then(|r| r.fault.clone())
}

/// Plays the rule: log lines at their pace, then the exit (or run until killed).
pub(crate) async fn run(mut run: ContainerRun<'_>) -> Exit {
    let plan = run.plan;
    let play = async {
        if let Some(r) = &plan.rule {
            if r.line_interval.is_zero() {
                run.log.push_all(&r.logs);
            } else {
                for line in &r.logs {
                    tokio::time::sleep(r.line_interval).await;
                    run.log.push(line.clone());
                }
            }
        }
        match plan.fault() {
            Some(PodFault::RunUntilDeleted) => std::future::pending::<Exit>().await,
            None if plan.rule.is_none() && plan.until_deleted => std::future::pending::<Exit>().await,
            Some(PodFault::Evicted) => Exit::signal(9),
            Some(PodFault::OomKilled) => Exit {
                code: 137,
                reason: "OOMKilled".into(),
                message: None,
                signal: None,
            },
            _ => Exit::code(plan.rule.as_ref().map_or(0, |r| r.exit_code)),
        }
    };
    tokio::select! {
        exit = play => exit,
        k = killed(&mut run.kill) => match k {
            // A scripted process honours SIGTERM at once.
            Kill::Deleted { .. } | Kill::Evicted => Exit::signal(15),
            Kill::Deadline => Exit::signal(9),
        },
    }
}
