//! A fake `Backend` for the agent tests, driven by the real runtime (`PipelineRunner`): a step's
//! `commands` are a tiny script (`echo TEXT` writes a line, `sleep MS` sleeps, `exit N` ends
//! with that code); destroy kills a running script. It keeps a fake "cluster" of the objects it
//! creates and removes (a PVC per workflow, a pod per step), and counts workflows at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use woodpecker_k8s_agent::agent::PipelineRunner;
use woodpecker_k8s_agent::backend::{
    Backend, BackendError as Error, LogLines, LogSender, State, Step, WorkflowConfig, log_channel,
};

struct Pod {
    kill: watch::Sender<bool>,
    lines: Option<LogLines>,
    exit: watch::Receiver<Option<i32>>,
}

#[derive(Default)]
pub struct FakeBackend {
    objects: Mutex<BTreeSet<String>>,
    pods: Mutex<BTreeMap<String, Pod>>,
    running: AtomicUsize,
    pub max_running: AtomicUsize,
    /// Each step's environment as the backend got it, by step uuid.
    pub envs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

pub type FakeRunner = PipelineRunner<FakeBackend>;

pub fn runner() -> Arc<FakeRunner> {
    Arc::new(PipelineRunner::new(Arc::new(FakeBackend::default())))
}

impl FakeBackend {
    pub fn objects(&self) -> BTreeSet<String> {
        self.objects.lock().unwrap().clone()
    }
}

async fn run_script(commands: Vec<String>, lines: LogSender, mut kill: watch::Receiver<bool>) -> i32 {
    let mut code = 0;
    for cmd in commands {
        let (verb, arg) = cmd.split_once(' ').unwrap_or((&cmd, ""));
        match verb {
            "echo" => {
                let _ = lines.send(Bytes::copy_from_slice(arg.as_bytes())).await;
            }
            "sleep" => {
                let ms = arg.parse().unwrap();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    _ = kill.wait_for(|k| *k) => return 137,
                }
            }
            "exit" => code = arg.parse().unwrap(),
            other => panic!("fake backend: unknown command {other}"),
        }
        if *kill.borrow() {
            return 137;
        }
    }
    code
}

impl Backend for FakeBackend {
    async fn setup_workflow(&self, _conf: &WorkflowConfig, task: &str) -> Result<(), Error> {
        let n = self.running.fetch_add(1, SeqCst) + 1;
        self.max_running.fetch_max(n, SeqCst);
        self.objects.lock().unwrap().insert(format!("pvc/{task}"));
        Ok(())
    }

    async fn start_step(&self, step: &Step, _task: &str) -> Result<(), Error> {
        let (kill, kill_rx) = watch::channel(false);
        let (tx, rx) = log_channel(1024);
        let (exit_tx, exit) = watch::channel(None);
        let commands = step.commands.clone();
        tokio::spawn(async move {
            let code = run_script(commands, tx, kill_rx).await;
            let _ = exit_tx.send(Some(code));
        });
        self.objects.lock().unwrap().insert(format!("pod/{}", step.uuid));
        self.envs.lock().unwrap().insert(
            step.uuid.clone(),
            step.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        );
        self.pods.lock().unwrap().insert(
            step.uuid.clone(),
            Pod {
                kill,
                lines: Some(rx),
                exit,
            },
        );
        Ok(())
    }

    async fn tail_step(&self, step: &Step, _task: &str) -> Result<LogLines, Error> {
        let mut pods = self.pods.lock().unwrap();
        let pod = pods.get_mut(&step.uuid).ok_or_else(|| failed("tail: no such pod"))?;
        pod.lines.take().ok_or_else(|| failed("tail: already tailed"))
    }

    async fn wait_step(&self, step: &Step, _task: &str) -> Result<State, Error> {
        let mut exit = self
            .pods
            .lock()
            .unwrap()
            .get(&step.uuid)
            .ok_or_else(|| failed("wait: no such pod"))?
            .exit
            .clone();
        let code = exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| failed("wait: pod vanished"))?
            .unwrap();
        Ok(State {
            exit_code: code,
            exited: true,
            ..Default::default()
        })
    }

    async fn destroy_step(&self, step: &Step, _task: &str) -> Result<(), Error> {
        if let Some(pod) = self.pods.lock().unwrap().remove(&step.uuid) {
            pod.kill.send_replace(true);
        }
        self.objects.lock().unwrap().remove(&format!("pod/{}", step.uuid));
        Ok(())
    }

    async fn destroy_workflow(&self, conf: &WorkflowConfig, task: &str) -> Result<(), Error> {
        for step in conf.stages.iter().flat_map(|s| &s.steps) {
            self.destroy_step(step, task).await?;
        }
        if self.objects.lock().unwrap().remove(&format!("pvc/{task}")) {
            self.running.fetch_sub(1, SeqCst);
        }
        Ok(())
    }
}

/// A fake's failure, as the cluster failing.
fn failed(why: impl Into<String>) -> Error {
    Error::Infrastructure(why.into().into())
}
