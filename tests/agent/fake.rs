//! A fake workflow runner for the protocol tests, until the agent runs on the real runtime:
//! runs steps one after another, reading their `commands` as a tiny script (`echo TEXT` writes
//! a line, `sleep MS` sleeps, `exit N` ends with that code), traces states and lines like the
//! runtime, honours cancel, and keeps a fake "cluster" of objects it creates and removes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use woodpecker_k8s_agent::Shutdown;
use woodpecker_k8s_agent::agent::{Outcome, WorkflowRunner};
use woodpecker_k8s_agent::backend::Config;
use woodpecker_k8s_agent::pipeline::trace::{LogKind, LogLine, StepState, Tracer};

#[derive(Default)]
pub struct FakeRunner {
    pub objects: Mutex<BTreeSet<String>>,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl FakeRunner {
    pub fn objects(&self) -> BTreeSet<String> {
        self.objects.lock().unwrap().clone()
    }
}

impl WorkflowRunner for FakeRunner {
    async fn run(&self, conf: Config, task: String, tracer: Arc<dyn Tracer>, mut cancel: Shutdown) -> Outcome {
        let n = self.running.fetch_add(1, SeqCst) + 1;
        self.max_running.fetch_max(n, SeqCst);
        self.objects.lock().unwrap().insert(format!("pvc/{task}"));
        let mut canceled = false;
        'stages: for stage in &conf.stages {
            for step in &stage.steps {
                let uuid = step.uuid.clone();
                tracer.step_state(
                    step,
                    &StepState {
                        step_uuid: uuid.clone(),
                        ..Default::default()
                    },
                );
                let started = now();
                self.objects.lock().unwrap().insert(format!("pod/{uuid}"));
                let mut line = 0;
                let mut exit_code = 0;
                for cmd in &step.commands {
                    let (verb, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
                    match verb {
                        "echo" => {
                            let data = Bytes::copy_from_slice(arg.as_bytes());
                            tracer.log_line(
                                step,
                                LogLine {
                                    step_uuid: uuid.clone(),
                                    line,
                                    time: 0,
                                    kind: LogKind::Stdout,
                                    data,
                                },
                            );
                            line += 1;
                        }
                        "sleep" => {
                            let ms = arg.parse().unwrap();
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                                _ = cancel.wait() => {}
                            }
                        }
                        "exit" => exit_code = arg.parse().unwrap(),
                        other => panic!("fake runner: unknown command {other}"),
                    }
                    if cancel.is_fired() {
                        break;
                    }
                }
                self.objects.lock().unwrap().remove(&format!("pod/{uuid}"));
                if cancel.is_fired() {
                    let state = StepState {
                        step_uuid: uuid,
                        started,
                        finished: now(),
                        error: "Canceled".into(),
                        canceled: true,
                        ..Default::default()
                    };
                    tracer.step_state(step, &state);
                    canceled = true;
                    break 'stages;
                }
                let state = StepState {
                    step_uuid: uuid,
                    started,
                    finished: now(),
                    exited: true,
                    exit_code,
                    ..Default::default()
                };
                tracer.step_state(step, &state);
            }
        }
        self.objects.lock().unwrap().remove(&format!("pvc/{task}"));
        self.running.fetch_sub(1, SeqCst);
        Outcome { canceled, error: None }
    }
}
