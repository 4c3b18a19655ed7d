//! The lifecycle tests' harness: a simulated cluster, a `KubeBackend` on it, step and workflow
//! factories, running one step the way Woodpecker's runtime does, and the leftovers check.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kube::Client;
use serde_json::Value;
use sim::{RecordedRequest, Sim};
use woodpecker_k8s_agent::Shutdown;
use woodpecker_k8s_agent::backend::{Backend, Options, Stage, State, Step, WorkflowConfig};
use woodpecker_k8s_agent::backend::{KubeBackend, KubeIo, LifecycleSettings, Limits};

use crate::common;

pub const NS: &str = "woodpecker";
pub const AGENT: &str = "agent-1";

pub struct H {
    pub sim: Sim,
    pub backend: Arc<KubeBackend>,
}

/// Limits short enough for tests: 3 s to start, 1 s of grace for pull errors.
pub fn limits() -> Limits {
    Limits {
        start_timeout: Duration::from_secs(3),
        grace: Duration::from_secs(1),
    }
}

/// The sim's storage is k3s-like (local-path, RWO only), so the workspace is RWO by default.
pub async fn harness() -> H {
    harness_with(&[("STORAGE_RWX", "false")]).await
}

pub async fn harness_with(env: &[(&str, &str)]) -> H {
    let sim = common::start_sim().await;
    let backend = Arc::new(backend_on(&sim, env));
    H { sim, backend }
}

/// As [`harness`], with `log_idle` as the backend's idle limit for logs of ended pods.
pub async fn harness_log_idle(log_idle: Duration) -> H {
    let sim = common::start_sim().await;
    let backend = Arc::new(backend_with(&sim, &[("STORAGE_RWX", "false")], |s| {
        s.log_idle = log_idle
    }));
    H { sim, backend }
}

/// Another backend (another agent process) on the same cluster.
pub fn backend_on(sim: &Sim, env: &[(&str, &str)]) -> KubeBackend {
    backend_with(sim, env, |_| {})
}

/// As [`backend_on`], the settings changed by `tune`.
pub fn backend_with(sim: &Sim, env: &[(&str, &str)], tune: impl FnOnce(&mut LifecycleSettings)) -> KubeBackend {
    let vars: HashMap<String, String> = [("STOP_TIMEOUT", "2")]
        .iter()
        .chain(env)
        .map(|(k, v)| (format!("WOODPECKER_BACKEND_K8S_{k}"), v.to_string()))
        .collect();
    let opts = Options::from_lookup(|k| vars.get(k).cloned()).expect("options");
    let client = Client::new(sim.kube_config()).expect("client");
    let mut settings = LifecycleSettings {
        agent: AGENT.into(),
        limits: limits(),
        ..LifecycleSettings::default()
    };
    tune(&mut settings);
    KubeBackend::new(KubeIo::new(client), opts, settings, Shutdown::never())
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A commands step running `image` (the sim's scripted runner matches rules on it).
pub fn step(name: &str, image: &str, task: &str) -> Step {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    Step {
        name: name.into(),
        uuid: format!("01JTEST{n:019}"),
        type_: "commands".into(),
        image: image.into(),
        commands: vec!["echo hi".into()],
        volumes: vec![format!("{}:/woodpecker", volume(task))],
        ..Step::default()
    }
}

pub fn volume(task: &str) -> String {
    format!("wp_01jtestvolume_{task}_default")
}

/// One stage per step, in order.
pub fn workflow(task: &str, steps: &[Step]) -> WorkflowConfig {
    WorkflowConfig {
        stages: steps.iter().map(|s| Stage { steps: vec![s.clone()] }).collect(),
        volume: volume(task),
        ..WorkflowConfig::default()
    }
}

/// A step as Woodpecker's runtime runs it: start, tail to the end, wait, destroy.
pub async fn run_step(b: &KubeBackend, step: &Step, task: &str) -> (Vec<String>, State) {
    b.start_step(step, task).await.expect("start_step");
    let lines = drain(b, step, task).await;
    let state = b.wait_step(step, task).await.expect("wait_step");
    b.destroy_step(step, task).await.expect("destroy_step");
    (lines, state)
}

pub async fn drain(b: &KubeBackend, step: &Step, task: &str) -> Vec<String> {
    let mut logs = b.tail_step(step, task).await.expect("tail_step");
    let mut lines = Vec::new();
    let read = async {
        while let Some(line) = logs.recv().await {
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the log ends with the container");
    lines
}

/// The step's pod name (`wp-<uuid lowercased>`).
pub fn pod_name(step: &Step) -> String {
    format!("wp-{}", step.uuid.to_lowercase())
}

fn has_task(obj: &Value, task: &str) -> bool {
    obj["metadata"]["labels"]["woodpecker-ci.org/task-uuid"] == task
}

/// Asserts that no object of the workflow is left (waits a little for graceful deletes).
pub async fn assert_clean(sim: &Sim, task: &str) {
    let kinds = ["pods", "secrets", "services", "persistentvolumeclaims"];
    let left = || {
        kinds
            .iter()
            .flat_map(|k| {
                sim.objects(k, Some(NS))
                    .into_iter()
                    .filter(|o| has_task(o, task))
                    .map(move |o| format!("{k}/{}", o["metadata"]["name"].as_str().unwrap_or("?")))
            })
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let l = left();
        if l.is_empty() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("objects of workflow {task} left behind: {l:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests about one pod (its own path, or a create in its namespace carrying no name).
pub fn about<'a>(reqs: &'a [RecordedRequest], pod: &str) -> Vec<&'a RecordedRequest> {
    let prefix = format!("/api/v1/namespaces/{NS}/pods/{pod}");
    reqs.iter()
        .filter(|r| r.path == prefix || r.path.starts_with(&format!("{prefix}/")))
        .collect()
}

pub fn count(reqs: &[&RecordedRequest], method: &str, suffix: &str) -> usize {
    reqs.iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

/// Watch requests on pods (the shared watch and its reconnects).
pub fn pod_watches(reqs: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    reqs.iter().filter(|r| r.watch && r.path.ends_with("/pods")).collect()
}
