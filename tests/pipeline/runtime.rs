//! `run_workflow` against the fake backend: Woodpecker's call order, parallelism, `when:
//! status`, `failure: ignore`, detached steps and services, cancel, timeout, setup and start
//! failures, log numbering and masking. Time is tokio's paused clock, so durations are exact.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use woodpecker_k8s_agent::backend::SecretValue;
use woodpecker_k8s_agent::backend::WorkflowConfig;
use woodpecker_k8s_agent::pipeline::LogKind;
use woodpecker_k8s_agent::pipeline::{RuntimeOptions, WorkflowOutcome, run_workflow};
use woodpecker_k8s_agent::shutdown::{self, Shutdown};

use super::fake::{Fake, Recorder, Script, config, script, service, step};

async fn run(fake: &Arc<Fake>, conf: WorkflowConfig, opts: RuntimeOptions) -> (WorkflowOutcome, Arc<Recorder>) {
    run_with_cancel(fake, conf, opts, Shutdown::never()).await
}

async fn run_with_cancel(
    fake: &Arc<Fake>,
    conf: WorkflowConfig,
    opts: RuntimeOptions,
    cancel: Shutdown,
) -> (WorkflowOutcome, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let out = run_workflow(fake.clone(), conf, "42".into(), opts, rec.clone(), cancel).await;
    (out, rec)
}

fn names(out: &WorkflowOutcome) -> Vec<(String, i32, bool, bool)> {
    out.steps
        .iter()
        .map(|(s, st)| (s.name.clone(), st.exit_code, st.skipped, st.canceled))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn calls_follow_woodpeckers_order() {
    let fake = Arc::new(Fake::new(vec![
        ("clone", script(&["cloning"], 0, 1)),
        ("a", script(&["a1", "a2"], 0, 2)),
        ("b", script(&["b1"], 0, 3)),
        ("c", script(&[], 0, 1)),
    ]));
    let conf = config(vec![vec![step("clone")], vec![step("a"), step("b")], vec![step("c")]]);
    let (out, rec) = run(&fake, conf, RuntimeOptions::default()).await;
    assert!(out.success, "{out:?}");
    assert_eq!((out.canceled, out.error.as_deref()), (false, None));
    let ev = fake.events();
    assert_eq!(ev[0], "setup");
    assert_eq!(&ev[1..5], ["start:clone", "tail:clone", "wait:clone", "destroy:clone"]);
    assert_eq!(ev.last().unwrap(), "destroy_workflow");
    // a and b start together, after clone is gone; c starts after both are destroyed.
    assert_eq!(fake.at("start:a"), 1000);
    assert_eq!(fake.at("start:b"), 1000);
    assert!(fake.index("start:c") > fake.index("destroy:a").max(fake.index("destroy:b")));
    assert_eq!(fake.at("start:c"), 4000);
    // Each step reports "started" (uuid only) and then its final state.
    let a = rec.states_of("a");
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].started, a[0].finished, a[0].exited), (0, 0, false));
    assert!(a[1].exited && a[1].finished > 0 && a[1].error.is_empty());
    let lines = rec.lines_of("a");
    assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(rec.texts_of("a"), ["a1", "a2"]);
    assert_eq!(
        names(&out).iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
        ["clone", "a", "b", "c"]
    );
    assert_eq!(fake.leftovers(), 0);
}

#[tokio::test(start_paused = true)]
async fn parallelism_bounds_running_steps() {
    let steps: Vec<_> = (0..10).map(|i| step(&format!("s{i}"))).collect();
    let fake = Arc::new(Fake::new(vec![]));
    let started = tokio::time::Instant::now();
    let opts = RuntimeOptions {
        parallelism: 3,
        ..Default::default()
    };
    let (out, _) = run(&fake, config(vec![steps]), opts).await;
    assert!(out.success);
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 3);
    // Ten 1 s steps, three at a time: four rounds.
    assert_eq!(started.elapsed().as_secs(), 4);
}

#[tokio::test(start_paused = true)]
async fn unbounded_parallelism_runs_the_whole_stage_at_once() {
    let steps: Vec<_> = (0..10).map(|i| step(&format!("s{i}"))).collect();
    let fake = Arc::new(Fake::new(vec![]));
    let (out, _) = run(&fake, config(vec![steps]), RuntimeOptions::default()).await;
    assert!(out.success);
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn a_failure_skips_later_steps_except_on_failure_ones() {
    let fake = Arc::new(Fake::new(vec![
        ("test", script(&["boom"], 2, 1)),
        ("lint", script(&[], 0, 3)),
    ]));
    let notify = woodpecker_k8s_agent::backend::Step {
        on_success: false,
        on_failure: true,
        ..step("notify")
    };
    let always = woodpecker_k8s_agent::backend::Step {
        on_failure: true,
        ..step("always")
    };
    let conf = config(vec![
        vec![step("test"), step("lint")],
        vec![step("deploy")],
        vec![notify, always],
    ]);
    let (out, rec) = run(&fake, conf, RuntimeOptions::default()).await;
    assert!(!out.success);
    // A plain non-zero exit is a step failure, not a runtime error.
    assert_eq!((out.canceled, out.error.as_deref()), (false, None));
    assert_eq!(
        names(&out),
        [
            ("test".into(), 2, false, false),
            ("lint".into(), 0, false, false),
            ("deploy".into(), 0, true, false),
            ("notify".into(), 0, false, false),
            ("always".into(), 0, false, false),
        ]
    );
    // The sibling was not canceled by the failure: it ran its full 3 s.
    assert_eq!(fake.at("destroy:lint"), 3000);
    assert_eq!(rec.states_of("deploy").len(), 1, "a skipped step reports once");
    assert!(!fake.events().contains(&"start:deploy".to_string()));
    // The runtime tells later steps the workflow status.
    assert_eq!(fake.envs.lock().unwrap()["notify"]["CI_PIPELINE_STATUS"], "failure");
    assert_eq!(fake.envs.lock().unwrap()["test"]["CI_PIPELINE_STATUS"], "success");
}

#[tokio::test(start_paused = true)]
async fn ignored_failure_does_not_fail_the_workflow() {
    let fake = Arc::new(Fake::new(vec![("flaky", script(&[], 1, 1))]));
    let flaky = woodpecker_k8s_agent::backend::Step {
        failure: "ignore".into(),
        ..step("flaky")
    };
    let (out, rec) = run(
        &fake,
        config(vec![vec![flaky], vec![step("next")]]),
        RuntimeOptions::default(),
    )
    .await;
    assert!(out.success, "{out:?}");
    // The step still reports its real exit code.
    let last = rec.states_of("flaky").pop().unwrap();
    assert_eq!((last.exit_code, last.exited), (1, true));
    assert_eq!(names(&out)[1], ("next".into(), 0, false, false));
}

#[tokio::test(start_paused = true)]
async fn a_start_failure_fails_even_an_ignored_step() {
    let fake = Arc::new(Fake::new(vec![(
        "bad",
        Script {
            fail_start: true,
            ..script(&[], 0, 1)
        },
    )]));
    let bad = woodpecker_k8s_agent::backend::Step {
        failure: "ignore".into(),
        ..step("bad")
    };
    let (out, rec) = run(
        &fake,
        config(vec![vec![bad], vec![step("next")]]),
        RuntimeOptions::default(),
    )
    .await;
    assert!(!out.success);
    assert_eq!(out.error.as_deref(), Some("pod wp-UUID-BAD rejected"));
    let last = rec.states_of("bad").pop().unwrap();
    assert_eq!((last.exited, last.error.as_str()), (true, "pod wp-UUID-BAD rejected"));
    assert!(rec.states_of("next")[0].skipped);
    // Woodpecker calls neither wait nor destroy after a failed start; DestroyWorkflow cleans up.
    assert!(!fake.events().iter().any(|e| e == "wait:bad" || e == "destroy:bad"));
    assert_eq!(fake.events().last().unwrap(), "destroy_workflow");
}

/// A backend that says the work was stopped cancels the step and the workflow: nothing after
/// it starts, and it is no failure (the runtime matches the error's kind, not its text).
#[tokio::test(start_paused = true)]
async fn a_backend_that_stops_the_work_cancels_the_workflow() {
    let fake = Arc::new(Fake::new(vec![(
        "a",
        Script {
            stopped_start: true,
            ..script(&[], 0, 1)
        },
    )]));
    let (out, rec) = run(
        &fake,
        config(vec![vec![step("a")], vec![step("next")]]),
        RuntimeOptions {
            workflow_timeout: Some(Duration::from_secs(3600)),
            ..RuntimeOptions::default()
        },
    )
    .await;
    assert!(out.canceled && !out.success && !out.timed_out, "{out:?}");
    assert_eq!(out.error, None, "{out:?}");
    let last = rec.states_of("a").pop().unwrap();
    assert!(last.canceled, "{last:?}");
    assert_eq!(last.error, "Canceled");
    assert!(!fake.events().iter().any(|e| e == "start:next"), "{:?}", fake.events());
    assert_eq!(fake.events().last().unwrap(), "destroy_workflow");
}

#[tokio::test(start_paused = true)]
async fn a_wait_error_is_a_runtime_error_unless_ignored() {
    let broken = Script {
        fail_wait: true,
        ..script(&[], 0, 1)
    };
    let fake = Arc::new(Fake::new(vec![("x", broken.clone()), ("y", broken)]));
    let y = woodpecker_k8s_agent::backend::Step {
        failure: "ignore".into(),
        ..step("y")
    };
    let (out, rec) = run(&fake, config(vec![vec![y], vec![step("x")]]), RuntimeOptions::default()).await;
    assert_eq!(out.error.as_deref(), Some("the pod vanished from the watch"));
    assert_eq!(
        rec.states_of("y").pop().unwrap().error,
        "the pod vanished from the watch"
    );
    assert!(!out.success);
}

#[tokio::test(start_paused = true)]
async fn services_and_detached_steps_run_until_the_workflow_ends() {
    let fake = Arc::new(Fake::new(vec![
        (
            "postgres",
            Script {
                run_for: None,
                lines: vec!["ready".into()],
                ..Default::default()
            },
        ),
        (
            "watcher",
            Script {
                run_for: None,
                ..Default::default()
            },
        ),
        ("test", script(&["ok"], 0, 5)),
    ]));
    let watcher = woodpecker_k8s_agent::backend::Step {
        detached: true,
        ..step("watcher")
    };
    let conf = config(vec![vec![service("postgres")], vec![watcher], vec![step("test")]]);
    let (out, rec) = run(&fake, conf, RuntimeOptions::default()).await;
    assert!(out.success, "{out:?}");
    // Detached steps return to the stage once started: the next stage starts at once.
    assert_eq!(fake.at("start:watcher"), 0);
    assert_eq!(fake.at("start:test"), 0);
    // They are stopped by DestroyWorkflow, then wait/destroy and report (exit 0 when deleted).
    let dw = fake.index("destroy_workflow");
    assert!(fake.index("destroy:postgres") > dw && fake.index("destroy:watcher") > dw);
    let pg = rec.states_of("postgres").pop().unwrap();
    assert!(
        pg.exited && pg.finished > 0 && pg.exit_code == 0 && pg.error.is_empty(),
        "{pg:?}"
    );
    assert_eq!(rec.texts_of("postgres"), ["ready"]);
    assert_eq!(names(&out).len(), 3);
    assert_eq!(fake.leftovers(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_running_steps_and_cleans_up() {
    let fake = Arc::new(Fake::new(vec![
        (
            "db",
            Script {
                run_for: None,
                ..Default::default()
            },
        ),
        ("long", script(&["working"], 0, 100)),
        ("quick", script(&[], 0, 1)),
    ]));
    let conf = config(vec![
        vec![service("db")],
        vec![step("long"), step("quick")],
        vec![step("after")],
    ]);
    let (trigger, cancel) = shutdown::channel();
    let started = tokio::time::Instant::now();
    let fire = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        trigger.fire();
    };
    let ((out, rec), ()) = tokio::join!(run_with_cancel(&fake, conf, RuntimeOptions::default(), cancel), fire);
    assert!(out.canceled && !out.success && !out.timed_out);
    assert_eq!(out.error, None, "a cancel is not an error");
    assert_eq!(started.elapsed().as_secs(), 10);
    let long = rec.states_of("long").pop().unwrap();
    assert!(long.canceled && long.error == "Canceled", "{long:?}");
    // The quick sibling had finished normally; the next stage never ran.
    assert!(!rec.states_of("quick").pop().unwrap().canceled);
    assert!(rec.states_of("after").is_empty());
    assert!(fake.events().contains(&"destroy:long".to_string()));
    assert!(fake.events().contains(&"destroy_workflow".to_string()));
    assert_eq!(fake.leftovers(), 0, "nothing left behind");
}

/// A cleanup that fails after a cancel is not an error of the workflow (it was canceled), but
/// the outcome says so, for exec's summary and the agent's log.
#[tokio::test(start_paused = true)]
async fn a_cleanup_that_fails_after_a_cancel_is_reported_apart() {
    let mut fake = Fake::new(vec![("long", script(&["working"], 0, 100))]);
    fake.fail_destroy = true;
    let fake = Arc::new(fake);
    let conf = config(vec![vec![step("long")]]);
    let (trigger, cancel) = shutdown::channel();
    let fire = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        trigger.fire();
    };
    let ((out, _), ()) = tokio::join!(run_with_cancel(&fake, conf, RuntimeOptions::default(), cancel), fire);
    assert!(out.canceled && !out.success);
    assert_eq!(out.error, None, "a cancel is not an error");
    let e = out.cleanup_error.expect("the failed cleanup is reported");
    assert!(e.contains("connection refused"), "{e}");

    // Without a cancel the same failure is the workflow's error too.
    let mut fake = Fake::new(vec![("quick", script(&[], 0, 1))]);
    fake.fail_destroy = true;
    let fake = Arc::new(fake);
    let (out, _) = run(&fake, config(vec![vec![step("quick")]]), RuntimeOptions::default()).await;
    assert!(!out.success);
    assert!(
        out.error.as_deref().is_some_and(|e| e.starts_with("destroy workflow:")),
        "{out:?}"
    );
    assert!(out.cleanup_error.is_some());
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_workflow() {
    let fake = Arc::new(Fake::new(vec![("long", script(&[], 0, 3600))]));
    let opts = RuntimeOptions {
        workflow_timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let started = tokio::time::Instant::now();
    let (out, rec) = run(&fake, config(vec![vec![step("long")], vec![step("next")]]), opts).await;
    assert!(out.canceled && out.timed_out && !out.success);
    assert_eq!(started.elapsed().as_secs(), 5);
    assert!(rec.states_of("long").pop().unwrap().canceled);
    assert!(rec.states_of("next").is_empty());
    assert_eq!(fake.leftovers(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_setup_still_destroys_the_workflow() {
    let fake = Arc::new(Fake::failing_setup());
    let (out, rec) = run(&fake, config(vec![vec![step("a")]]), RuntimeOptions::default()).await;
    assert_eq!(out.error.as_deref(), Some("setup workflow: the PVC quota is exhausted"));
    assert!(!out.success && !out.canceled);
    assert_eq!(fake.events(), ["setup", "destroy_workflow"]);
    assert!(rec.states.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn logs_are_masked_and_closed_with_an_exit_code_on_request() {
    let fake = Arc::new(Fake::new(vec![("a", script(&["token=s3cr3t-value", "pw=abc"], 3, 1))]));
    let mut conf = config(vec![vec![step("a")]]);
    conf.secrets = vec![
        SecretValue {
            name: "token".into(),
            value: "s3cr3t-value".into(),
        },
        SecretValue {
            name: "short".into(),
            value: "abc".into(),
        },
    ];
    let opts = RuntimeOptions {
        exit_code_entry: true,
        ..Default::default()
    };
    let (out, rec) = run(&fake, conf, opts).await;
    assert!(!out.success);
    assert_eq!(rec.texts_of("a"), ["token=********", "pw=abc", "3"]);
    let kinds: Vec<_> = rec.lines_of("a").iter().map(|l| (l.line, l.kind)).collect();
    assert_eq!(
        kinds,
        [(0, LogKind::Stdout), (1, LogKind::Stdout), (2, LogKind::ExitCode)]
    );
    let env = fake.envs.lock().unwrap()["a"].clone();
    assert_eq!(
        (env["CI_STEP_NAME"].as_str(), env["CI_STEP_TYPE"].as_str()),
        ("a", "commands")
    );
}

/// A tracer that is full (a slow terminal) until opened: every batch that reaches it while full
/// is counted, because a step must wait for room *before* it hands a batch over. Handing over
/// first and waiting after let every waiting step add a batch each time room came, so the
/// buffer grew by a batch per running step.
#[derive(Default)]
struct Gate {
    rec: Recorder,
    full: std::sync::atomic::AtomicBool,
    room: tokio::sync::Notify,
    while_full: std::sync::atomic::AtomicUsize,
}

impl woodpecker_k8s_agent::pipeline::Tracer for Gate {
    fn step_state(
        &self,
        step: &woodpecker_k8s_agent::backend::Step,
        state: &woodpecker_k8s_agent::pipeline::StepState,
    ) {
        self.rec.step_state(step, state);
    }

    fn log_line(&self, step: &woodpecker_k8s_agent::backend::Step, line: woodpecker_k8s_agent::pipeline::LogLine) {
        if self.full.load(Ordering::SeqCst) {
            self.while_full.fetch_add(1, Ordering::SeqCst);
        }
        self.rec.log_line(step, line);
    }

    fn backlog(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        if !self.full.load(Ordering::SeqCst) {
            return None;
        }
        Some(Box::pin(async move {
            loop {
                let room = self.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                if !self.full.load(Ordering::SeqCst) {
                    return;
                }
                room.await;
            }
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_tracer_gets_no_batch_until_it_has_room() {
    let fake = Arc::new(Fake::new(vec![
        ("a", script(&["a1", "a2", "a3"], 0, 1)),
        ("b", script(&["b1", "b2"], 0, 1)),
    ]));
    let gate = Arc::new(Gate::default());
    gate.full.store(true, Ordering::SeqCst);
    let opener = gate.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        opener.full.store(false, Ordering::SeqCst);
        opener.room.notify_waiters();
    });
    let conf = config(vec![vec![step("a"), step("b")]]);
    let out = run_workflow(
        fake.clone(),
        conf,
        "42".into(),
        RuntimeOptions::default(),
        gate.clone(),
        Shutdown::never(),
    )
    .await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(
        gate.while_full.load(Ordering::SeqCst),
        0,
        "lines handed over while the tracer was full"
    );
    let texts: Vec<String> = gate
        .rec
        .lines
        .lock()
        .unwrap()
        .iter()
        .map(|(s, l)| format!("{s}:{}", String::from_utf8_lossy(&l.data)))
        .collect();
    for want in ["a:a1", "a:a2", "a:a3", "b:b1", "b:b2"] {
        assert!(texts.iter().any(|t| t == want), "{want} missing from {texts:?}");
    }
}
