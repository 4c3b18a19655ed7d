//! `run_workflow` on the real Kubernetes backend against the simulated cluster (scripted
//! runner), with workflows compiled from YAML: stage order and parallel steps, the parallelism
//! bound, `failure: ignore` and `when: status`, services, cancel and timeout, and after each
//! run nothing left in the cluster.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use sim::{ScriptRule, Sim};
use woodpecker_k8s_agent::backend::Options as BackendOptions;
use woodpecker_k8s_agent::backend::{KubeBackend, KubeIo, LifecycleSettings};
use woodpecker_k8s_agent::backend::{Step, WorkflowConfig};
use woodpecker_k8s_agent::pipeline::compile::{self, CompileOptions};
use woodpecker_k8s_agent::pipeline::{LogLine, StepState, Tracer};
use woodpecker_k8s_agent::pipeline::{RuntimeOptions, WorkflowOutcome, run_workflow, yaml};
use woodpecker_k8s_agent::shutdown::{self, Shutdown};

use crate::common::{start_sim, wait_for};

/// Every report with its time.
#[derive(Default)]
struct Timeline {
    events: Mutex<Vec<(Instant, String, StepState)>>,
    lines: Mutex<Vec<(String, LogLine)>>,
}

impl Tracer for Timeline {
    fn step_state(&self, step: &Step, state: &StepState) {
        self.events
            .lock()
            .unwrap()
            .push((Instant::now(), step.name.clone(), state.clone()));
    }
    fn log_line(&self, step: &Step, line: LogLine) {
        self.lines.lock().unwrap().push((step.name.clone(), line));
    }
}

impl Timeline {
    fn started(&self, name: &str) -> Instant {
        let ev = self.events.lock().unwrap();
        ev.iter()
            .find(|(_, n, s)| n == name && s.finished == 0 && !s.skipped)
            .map(|e| e.0)
            .expect("started")
    }
    fn finished(&self, name: &str) -> Instant {
        let ev = self.events.lock().unwrap();
        ev.iter()
            .rev()
            .find(|(_, n, s)| n == name && (s.finished != 0 || s.canceled))
            .map(|e| e.0)
            .expect("finished")
    }
    fn last(&self, name: &str) -> StepState {
        let ev = self.events.lock().unwrap();
        ev.iter()
            .rev()
            .find(|(_, n, _)| n == name)
            .map(|e| e.2.clone())
            .expect("a state")
    }
    /// The most steps running at once.
    fn max_running(&self) -> usize {
        let (mut now, mut max) = (0i32, 0i32);
        for (_, _, s) in self.events.lock().unwrap().iter() {
            if s.skipped {
                continue;
            }
            now += if s.finished == 0 && !s.canceled { 1 } else { -1 };
            max = max.max(now);
        }
        max as usize
    }
    fn texts(&self, name: &str) -> Vec<String> {
        let l = self.lines.lock().unwrap();
        l.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| String::from_utf8_lossy(&l.data).into_owned())
            .collect()
    }
}

fn backend(sim: &Sim) -> Arc<KubeBackend> {
    let client = Client::new(sim.kube_config()).expect("client");
    let mut opts = BackendOptions::from_lookup(|_| None).expect("options");
    opts.storage_rwx = false;
    let settings = LifecycleSettings {
        agent: "pipeline-tests".into(),
        ..Default::default()
    };
    Arc::new(KubeBackend::new(KubeIo::new(client), opts, settings, Shutdown::never()))
}

fn compile(text: &str) -> WorkflowConfig {
    let wf = &yaml::load("t.yaml", "t", text, &|_| None).expect("load").workflows[0];
    compile::compile(wf, &CompileOptions::default())
        .expect("compile")
        .expect("included")
        .config
}

/// Scripts the pod of step `name`: `lines` lines `every` apart, then `exit`.
fn script(sim: &Sim, conf: &WorkflowConfig, name: &str, lines: usize, every: Duration, exit: i32) {
    let step = conf
        .stages
        .iter()
        .flat_map(|s| &s.steps)
        .find(|s| s.name == name)
        .expect("step");
    let pod = format!("wp-{}", step.uuid.to_lowercase());
    let logs: Vec<String> = (1..=lines).map(|i| format!("{name}-{i}")).collect();
    sim.script(ScriptRule::name(&pod).logs(logs).every(every).exit(exit));
}

async fn run(
    sim: &Sim,
    conf: WorkflowConfig,
    opts: RuntimeOptions,
    cancel: Shutdown,
) -> (WorkflowOutcome, Arc<Timeline>) {
    let tl = Arc::new(Timeline::default());
    let out = run_workflow(backend(sim), conf, "7".into(), opts, tl.clone(), cancel).await;
    (out, tl)
}

/// Waits until the workflow's pods, services and claims are gone.
async fn nothing_left(sim: &Sim) {
    wait_for("every object of the workflow to go", 15, || {
        let left: usize = ["pods", "services", "persistentvolumeclaims", "secrets"]
            .iter()
            .map(|k| sim.objects(k, Some("woodpecker")).len())
            .sum();
        async move { (left == 0).then_some(()) }
    })
    .await;
}

const MS: Duration = Duration::from_millis(100);

#[tokio::test]
async fn stages_in_order_steps_in_parallel() {
    let sim = start_sim().await;
    let conf = compile(
        "skip_clone: true\nsteps:\n  a: {image: x, commands: [x]}\n  b: {image: x, commands: [x]}\n  c: {image: x, commands: [x], depends_on: [a, b]}\n  a2: {image: x, commands: [x], depends_on: []}\n",
    );
    for n in ["a", "b", "a2"] {
        script(&sim, &conf, n, 5, MS, 0);
    }
    script(&sim, &conf, "c", 2, MS, 0);
    let (out, tl) = run(&sim, conf, RuntimeOptions::default(), Shutdown::never()).await;
    assert!(out.success, "{out:?}");
    // a, b and a2 overlap; c starts after all three ended.
    assert!(tl.started("b") < tl.finished("a") && tl.started("a") < tl.finished("b"));
    assert!(tl.started("c") >= tl.finished("a").max(tl.finished("b")).max(tl.finished("a2")));
    assert_eq!(tl.texts("a"), ["a-1", "a-2", "a-3", "a-4", "a-5"]);
    assert_eq!(tl.last("c").exit_code, 0);
    nothing_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn parallelism_bounds_the_stage() {
    let sim = start_sim().await;
    let steps: String = (0..6)
        .map(|i| format!("  s{i}: {{image: x, commands: [x], depends_on: []}}\n"))
        .collect();
    let conf = compile(&format!("skip_clone: true\nsteps:\n{steps}"));
    for i in 0..6 {
        script(&sim, &conf, &format!("s{i}"), 3, MS, 0);
    }
    let (out, tl) = run(
        &sim,
        conf,
        RuntimeOptions {
            parallelism: 2,
            ..Default::default()
        },
        Shutdown::never(),
    )
    .await;
    assert!(out.success, "{out:?}");
    assert_eq!(tl.max_running(), 2);
    nothing_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn ignore_failure_and_status_rules() {
    let sim = start_sim().await;
    let conf = compile(
        "skip_clone: true\nsteps:\n  flaky: {image: x, commands: [x], failure: ignore}\n  test: {image: x, commands: [x]}\n  deploy: {image: x, commands: [x]}\n  notify: {image: x, commands: [x], when: {status: [failure]}}\n",
    );
    script(&sim, &conf, "flaky", 1, MS, 5);
    script(&sim, &conf, "test", 1, MS, 2);
    let (out, tl) = run(&sim, conf, RuntimeOptions::default(), Shutdown::never()).await;
    assert!(!out.success && !out.canceled && out.error.is_none(), "{out:?}");
    assert_eq!(tl.last("flaky").exit_code, 5);
    assert_eq!(tl.last("test").exit_code, 2);
    assert!(tl.last("deploy").skipped);
    assert!(tl.last("notify").exited && tl.last("notify").exit_code == 0);
    nothing_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn services_run_beside_the_steps_until_the_end() {
    let sim = start_sim().await;
    let conf =
        compile("skip_clone: true\nservices:\n  db: {image: postgres}\nsteps:\n  test: {image: x, commands: [x]}\n");
    script(&sim, &conf, "test", 3, MS, 0);
    let (out, tl) = run(&sim, conf, RuntimeOptions::default(), Shutdown::never()).await;
    assert!(out.success, "{out:?}");
    assert!(tl.started("db") < tl.started("test"));
    assert!(tl.finished("db") > tl.finished("test"));
    let db = tl.last("db");
    assert!(db.exited && db.exit_code == 0 && db.error.is_empty(), "{db:?}");
    nothing_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn cancel_stops_the_workflow_and_removes_everything() {
    let sim = start_sim().await;
    let conf = compile(
        "skip_clone: true\nservices:\n  db: {image: postgres}\nsteps:\n  long: {image: x, commands: [x]}\n  next: {image: x, commands: [x]}\n",
    );
    script(&sim, &conf, "long", 200, MS, 0);
    let (trigger, cancel) = shutdown::channel();
    let t0 = Instant::now();
    let fire = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        trigger.fire();
    };
    let ((out, tl), ()) = tokio::join!(run(&sim, conf, RuntimeOptions::default(), cancel), fire);
    assert!(out.canceled && !out.success && out.error.is_none(), "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "cancel took {:?}", t0.elapsed());
    assert!(tl.last("long").canceled);
    assert!(!tl.texts("long").is_empty(), "the step had started logging");
    assert!(tl.events.lock().unwrap().iter().all(|(_, n, _)| n != "next"));
    nothing_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn timeout_cancels_and_removes_everything() {
    let sim = start_sim().await;
    let conf = compile("skip_clone: true\nsteps:\n  long: {image: x, commands: [x]}\n");
    script(&sim, &conf, "long", 200, MS, 0);
    let opts = RuntimeOptions {
        workflow_timeout: Some(Duration::from_millis(700)),
        ..Default::default()
    };
    let (out, tl) = run(&sim, conf, opts, Shutdown::never()).await;
    assert!(out.canceled && out.timed_out, "{out:?}");
    assert!(tl.last("long").canceled);
    nothing_left(&sim).await;
    sim.shutdown().await;
}
