//! A fake `Backend` for runtime tests: each step is a script (log lines, exit code, how long it
//! runs, whether start or wait fails); records every call with its (paused-clock) time, counts
//! steps running at once, and tracks which pods still exist so tests can assert nothing is left.
//! Also a recording `Tracer`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use woodpecker_k8s_agent::backend::{
    Backend, BackendError as Error, LogLines, Stage, State, Step, WorkflowConfig, log_channel,
};
use woodpecker_k8s_agent::pipeline::{LogLine, StepState, Tracer};

#[derive(Debug, Clone, Default)]
pub struct Script {
    pub lines: Vec<String>,
    pub exit: i32,
    /// How long the container runs; `None` runs until destroyed (a service).
    pub run_for: Option<Duration>,
    pub fail_start: bool,
    pub fail_wait: bool,
    /// `start_step` says the work was stopped (as a backend does when its agent shuts down).
    pub stopped_start: bool,
}

pub fn script(lines: &[&str], exit: i32, secs: u64) -> Script {
    Script {
        lines: lines.iter().map(|s| s.to_string()).collect(),
        exit,
        run_for: Some(Duration::from_secs(secs)),
        ..Default::default()
    }
}

struct Pod {
    started: Instant,
    kill: watch::Sender<bool>,
}

#[derive(Default)]
pub struct Fake {
    pub scripts: HashMap<String, Script>,
    pub fail_setup: bool,
    /// DestroyWorkflow fails (an apiserver gone away), after stopping the pods.
    pub fail_destroy: bool,
    t0: Mutex<Option<Instant>>,
    events: Mutex<Vec<(u64, String)>>,
    pods: Mutex<HashMap<String, Pod>>,
    pub envs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    running: Arc<AtomicUsize>,
    pub max_running: AtomicUsize,
    workflow_live: Mutex<HashSet<String>>,
}

impl Fake {
    pub fn new(scripts: Vec<(&str, Script)>) -> Self {
        Fake {
            scripts: scripts.into_iter().map(|(n, s)| (n.to_string(), s)).collect(),
            ..Default::default()
        }
    }

    pub fn failing_setup() -> Self {
        Fake {
            fail_setup: true,
            ..Default::default()
        }
    }

    fn record(&self, what: String) {
        let now = Instant::now();
        let t0 = *self.t0.lock().unwrap().get_or_insert(now);
        self.events.lock().unwrap().push(((now - t0).as_millis() as u64, what));
    }

    /// Every call, in order.
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }

    /// Milliseconds since setup of the first occurrence of `event`.
    pub fn at(&self, event: &str) -> u64 {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .find(|(_, e)| e == event)
            .unwrap_or_else(|| panic!("no event {event} in {events:?}"))
            .0
    }

    pub fn index(&self, event: &str) -> usize {
        let events = self.events();
        events
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("no event {event} in {events:?}"))
    }

    /// Pods and workflow objects that still exist.
    pub fn leftovers(&self) -> usize {
        self.pods.lock().unwrap().len() + self.workflow_live.lock().unwrap().len()
    }

    fn script(&self, step: &Step) -> Script {
        self.scripts
            .get(&step.name)
            .cloned()
            .unwrap_or_else(|| script(&[], 0, 1))
    }
}

impl Backend for Fake {
    async fn setup_workflow(&self, _conf: &WorkflowConfig, task: &str) -> Result<(), Error> {
        self.record("setup".into());
        if self.fail_setup {
            return Err(failed("the PVC quota is exhausted"));
        }
        self.workflow_live.lock().unwrap().insert(task.to_string());
        Ok(())
    }

    async fn start_step(&self, step: &Step, _task: &str) -> Result<(), Error> {
        self.record(format!("start:{}", step.name));
        self.envs.lock().unwrap().insert(
            step.name.clone(),
            step.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        );
        if self.script(step).stopped_start {
            return Err(Error::Canceled("the agent is shutting down".into()));
        }
        if self.script(step).fail_start {
            return Err(failed(format!("pod wp-{} rejected", step.uuid)));
        }
        let (kill, _) = watch::channel(false);
        self.pods.lock().unwrap().insert(
            step.uuid.clone(),
            Pod {
                started: Instant::now(),
                kill,
            },
        );
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        Ok(())
    }

    async fn tail_step(&self, step: &Step, _task: &str) -> Result<LogLines, Error> {
        self.record(format!("tail:{}", step.name));
        let script = self.script(step);
        let (started, mut killed) = {
            let pods = self.pods.lock().unwrap();
            let pod = pods
                .get(&step.uuid)
                .ok_or_else(|| failed("tail of a pod that does not exist"))?;
            (pod.started, pod.kill.subscribe())
        };
        let (tx, rx) = log_channel(16);
        let running = self.running.clone();
        tokio::spawn(async move {
            for line in script.lines {
                if tx.send(Bytes::from(line)).await.is_err() {
                    break;
                }
            }
            let end = async {
                match script.run_for {
                    Some(d) => tokio::time::sleep_until(started + d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = end => {}
                _ = killed.wait_for(|k| *k) => {}
            }
            running.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(rx)
    }

    async fn wait_step(&self, step: &Step, task: &str) -> Result<State, Error> {
        self.record(format!("wait:{}", step.name));
        let script = self.script(step);
        let (started, mut killed) = {
            let pods = self.pods.lock().unwrap();
            match pods.get(&step.uuid) {
                Some(pod) => (pod.started, pod.kill.subscribe()),
                // Like the Kubernetes backend: a destroyed workflow's steps are forgotten.
                None if !self.workflow_live.lock().unwrap().contains(task) => {
                    return Err(failed(format!("unknown step {} of task {task}", step.name)));
                }
                // A pod that is already gone reads as exit 0, as on Kubernetes.
                None => {
                    return Ok(State {
                        exited: true,
                        ..Default::default()
                    });
                }
            }
        };
        let end = async {
            match script.run_for {
                Some(d) => tokio::time::sleep_until(started + d).await,
                None => std::future::pending().await,
            }
        };
        let was_killed = tokio::select! {
            _ = end => false,
            _ = killed.wait_for(|k| *k) => true,
        };
        if script.fail_wait {
            return Err(failed("the pod vanished from the watch"));
        }
        let exit_code = if was_killed { 0 } else { script.exit };
        Ok(State {
            exit_code,
            exited: true,
            ..Default::default()
        })
    }

    async fn destroy_step(&self, step: &Step, _task: &str) -> Result<(), Error> {
        self.record(format!("destroy:{}", step.name));
        if let Some(pod) = self.pods.lock().unwrap().remove(&step.uuid) {
            pod.kill.send_replace(true);
        }
        Ok(())
    }

    async fn destroy_workflow(&self, conf: &WorkflowConfig, task: &str) -> Result<(), Error> {
        self.record("destroy_workflow".into());
        let mut pods = self.pods.lock().unwrap();
        for step in conf.stages.iter().flat_map(|s| &s.steps) {
            if let Some(pod) = pods.remove(&step.uuid) {
                pod.kill.send_replace(true);
            }
        }
        self.workflow_live.lock().unwrap().remove(task);
        if self.fail_destroy {
            return Err(Error::Infrastructure(
                "delete service wp-hsvc-42: connection refused".into(),
            ));
        }
        Ok(())
    }
}

/// Records what the runtime reports.
#[derive(Default)]
pub struct Recorder {
    pub states: Mutex<Vec<(String, StepState)>>,
    pub lines: Mutex<Vec<(String, LogLine)>>,
}

impl Recorder {
    /// The states reported for one step, in order.
    pub fn states_of(&self, name: &str) -> Vec<StepState> {
        self.states
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .collect()
    }

    pub fn lines_of(&self, name: &str) -> Vec<LogLine> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn texts_of(&self, name: &str) -> Vec<String> {
        self.lines_of(name)
            .iter()
            .map(|l| String::from_utf8_lossy(&l.data).into_owned())
            .collect()
    }
}

impl Tracer for Recorder {
    fn step_state(&self, step: &Step, state: &StepState) {
        self.states.lock().unwrap().push((step.name.clone(), state.clone()));
    }

    fn log_line(&self, step: &Step, line: LogLine) {
        self.lines.lock().unwrap().push((step.name.clone(), line));
    }
}

/// A step as the compiler makes it: runs on success, fails the workflow on failure.
pub fn step(name: &str) -> Step {
    Step {
        name: name.into(),
        uuid: format!("UUID-{}", name.to_uppercase()),
        type_: "commands".into(),
        image: "alpine".into(),
        on_success: true,
        failure: "fail".into(),
        ..Default::default()
    }
}

pub fn service(name: &str) -> Step {
    Step {
        type_: "service".into(),
        detached: true,
        ..step(name)
    }
}

pub fn config(stages: Vec<Vec<Step>>) -> WorkflowConfig {
    WorkflowConfig {
        stages: stages.into_iter().map(|steps| Stage { steps }).collect(),
        ..Default::default()
    }
}

/// A fake's failure, as the cluster failing.
fn failed(why: impl Into<String>) -> Error {
    Error::Infrastructure(why.into().into())
}
