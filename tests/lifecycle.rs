//! The backend's step lifecycle on the simulated cluster: results, pending explained, logs,
//! watch recovery, deletion, cancel, RWO co-location, parallelism, cleanup and request counts.

mod admin;
mod ends;
pub(crate) mod harness;
mod logs;
mod pending;

use std::time::Duration;

use sim::{FaultReply, RequestMatch, ScriptRule, Times};
use woodpecker_k8s_agent::backend::{Backend, Stage, WorkflowConfig};

use harness::*;

#[tokio::test]
async fn a_passing_step_reports_exit_0_and_its_log() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/pass").logs(["hello", "world"]));
    let s = step("build", "t/pass", "11");
    let conf = workflow("11", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "11").await.unwrap();
    // A retried setup adopts what the first one made.
    h.backend.setup_workflow(&conf, "11").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "11").await;
    assert_eq!(lines, ["hello", "world"]);
    assert_eq!(
        (state.exit_code, state.exited, state.oom_killed, state.error),
        (0, true, false, None)
    );
    h.backend.destroy_workflow(&conf, "11").await.unwrap();
    assert_clean(&h.sim, "11").await;
}

#[tokio::test]
async fn a_failing_step_reports_its_exit_code() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/fail").logs(["oops"]).exit(3));
    let s = step("test", "t/fail", "12");
    let conf = workflow("12", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "12").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "12").await;
    assert_eq!(lines, ["oops"]);
    assert_eq!((state.exit_code, state.exited, state.error), (3, true, None));
    h.backend.destroy_workflow(&conf, "12").await.unwrap();
    assert_clean(&h.sim, "12").await;
}

#[tokio::test]
async fn a_dropped_log_stream_loses_and_repeats_nothing() {
    let h = harness().await;
    // Every stream is cut after 1000 bytes. A resume restarts at the whole second (the
    // apiserver's sinceTime precision), so a second's output must fit in one stream for a
    // resume to make progress (the same holds on a real cluster): 10 lines (~400 bytes) a second.
    let want: Vec<String> = (0..30).map(|i| format!("line {i:03}")).collect();
    h.sim.script(
        ScriptRule::image("t/chatty")
            .logs(want.clone())
            .every(Duration::from_millis(100)),
    );
    h.sim.faults().cut_logs_after(1000, true);
    let s = step("chatty", "t/chatty", "17");
    let conf = workflow("17", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "17").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "17").await;
    assert_eq!(lines, want);
    assert_eq!(state.exit_code, 0);
    let reqs = h.sim.requests();
    assert!(
        count(&about(&reqs, &pod_name(&s)), "GET", "/log") > 1,
        "the stream was cut and resumed"
    );
    h.backend.destroy_workflow(&conf, "17").await.unwrap();
    assert_clean(&h.sim, "17").await;
}

#[tokio::test]
async fn a_watch_reset_mid_step_misses_no_termination() {
    let h = harness().await;
    h.sim.script(
        ScriptRule::image("t/slow")
            .logs(["a", "b", "c"])
            .every(Duration::from_millis(150))
            .exit(4),
    );
    let s = step("slow", "t/slow", "18");
    let conf = workflow("18", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "18").await.unwrap();
    h.backend.start_step(&s, "18").await.unwrap();
    // Once the shared watch is open, it ends with a 410 ERROR event and the next two watches
    // are refused with 410: the watcher relists.
    let watching = || {
        let open = h.sim.requests().iter().any(|r| r.watch && r.path.ends_with("/pods"));
        async move { open.then_some(()) }
    };
    crate::common::wait_for("the shared watch to open", 10, watching).await;
    h.sim
        .faults()
        .fail(RequestMatch::path("/pods").watch(true), FaultReply::Gone, Times::N(2));
    h.sim.faults().expire_open_watches();
    let lines = drain(&h.backend, &s, "18").await;
    let state = h.backend.wait_step(&s, "18").await.unwrap();
    h.backend.destroy_step(&s, "18").await.unwrap();
    assert_eq!(lines, ["a", "b", "c"]);
    assert_eq!(state.exit_code, 4);
    let relisted = || {
        let reqs = h.sim.requests();
        let lists = reqs
            .iter()
            .filter(|r| !r.watch && r.method == "GET" && r.path.ends_with("/pods"))
            .count();
        async move { (lists >= 2).then_some(()) }
    };
    crate::common::wait_for("the watcher to relist after the 410", 10, relisted).await;
    h.backend.destroy_workflow(&conf, "18").await.unwrap();
    assert_clean(&h.sim, "18").await;
}

#[tokio::test]
async fn cancel_mid_step_destroys_everything_and_detached_steps_end_with_0() {
    let h = harness().await;
    h.sim
        .script(ScriptRule::image("t/forever").logs(["up"]).run_until_deleted());
    let mut service = step("database", "t/forever", "20");
    service.type_ = "service".into();
    let mut detached = step("detached", "t/forever", "20");
    detached.detached = true;
    let running = step("long", "t/forever", "20");
    let conf = workflow("20", &[service.clone(), detached.clone(), running.clone()]);
    let b = &h.backend;
    b.setup_workflow(&conf, "20").await.unwrap();
    let mut waits = tokio::task::JoinSet::new();
    for s in [&service, &detached, &running] {
        b.start_step(s, "20").await.unwrap();
        let mut logs = b.tail_step(s, "20").await.unwrap();
        // Running, and its log is being read.
        assert_eq!(&logs.recv().await.expect("a first line")[..], b"up");
        let (b, s) = (h.backend.clone(), s.clone());
        waits.spawn(async move {
            let mut more = Vec::new();
            while let Some(line) = logs.recv().await {
                more.push(String::from_utf8_lossy(&line).into_owned());
            }
            (s.name.clone(), more, b.wait_step(&s, "20").await.unwrap())
        });
    }
    // Cancel: the runtime goes straight to DestroyWorkflow.
    tokio::time::timeout(Duration::from_secs(15), b.destroy_workflow(&conf, "20"))
        .await
        .unwrap()
        .unwrap();
    while let Some(r) = waits.join_next().await {
        let (name, more, state) = r.unwrap();
        assert!(more.is_empty(), "{name}: {more:?}");
        assert_eq!(
            (state.exit_code, state.error),
            (0, None),
            "{name} ends with 0 when we delete it"
        );
    }
    assert_clean(&h.sim, "20").await;
}

#[tokio::test]
async fn rwo_workspaces_keep_the_workflow_on_the_first_pods_node() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/pass").logs(["ok"]));
    let (a, b) = (step("one", "t/pass", "21"), step("two", "t/pass", "21"));
    let conf = workflow("21", &[a.clone(), b.clone()]);
    h.backend.setup_workflow(&conf, "21").await.unwrap();
    let pvc = h
        .sim
        .objects("persistentvolumeclaims", Some(NS))
        .pop()
        .expect("the workspace");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteOnce");
    h.backend.start_step(&a, "21").await.unwrap();
    let first = crate::common::wait_pod(&h.sim, NS, &pod_name(&a), "placed", |p| {
        p["spec"]["nodeName"].is_string()
    })
    .await;
    // Owned by the workflow's anchor, as is the workspace: one delete cascades.
    let anchor = h.sim.object("services", NS, "wp-hsvc-21").expect("the anchor");
    for owned in [&first, &pvc] {
        let owner = &owned["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["uid"]),
            (&"Service".into(), &anchor["metadata"]["uid"]),
            "{owned}"
        );
    }
    let affinity = &first["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        affinity["labelSelector"]["matchLabels"]["woodpecker-ci.org/task-uuid"],
        "21"
    );
    drain(&h.backend, &a, "21").await;
    h.backend.wait_step(&a, "21").await.unwrap();
    h.backend.destroy_step(&a, "21").await.unwrap();
    // The first pod is gone: the next one is pinned to its node by name.
    h.backend.start_step(&b, "21").await.unwrap();
    let second = h.sim.object("pods", NS, &pod_name(&b)).expect("second pod");
    let terms = &second["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    let node = first["spec"]["nodeName"].as_str().unwrap();
    assert!(terms.to_string().contains(node), "pinned to {node}: {terms}");
    drain(&h.backend, &b, "21").await;
    assert_eq!(h.backend.wait_step(&b, "21").await.unwrap().exit_code, 0);
    h.backend.destroy_step(&b, "21").await.unwrap();
    h.backend.destroy_workflow(&conf, "21").await.unwrap();
    assert_clean(&h.sim, "21").await;
}

#[tokio::test]
async fn many_parallel_steps_share_one_watch() {
    let h = harness().await;
    for code in 0..5 {
        h.sim.script(
            ScriptRule::image(&format!("t/exit{code}"))
                .logs([format!("exit {code}")])
                .exit(code),
        );
    }
    let mut workflows = tokio::task::JoinSet::new();
    for w in 0..4 {
        let b = h.backend.clone();
        workflows.spawn(async move {
            let task = format!("3{w}");
            let steps: Vec<_> = (0..5)
                .map(|i| step(&format!("s{i}"), &format!("t/exit{i}"), &task))
                .collect();
            let conf = WorkflowConfig {
                stages: vec![Stage { steps: steps.clone() }],
                volume: volume(&task),
                ..WorkflowConfig::default()
            };
            b.setup_workflow(&conf, &task).await.unwrap();
            let mut parallel = tokio::task::JoinSet::new();
            for (i, s) in steps.iter().enumerate() {
                let (b, s, task) = (b.clone(), s.clone(), task.clone());
                parallel.spawn(async move { (i, run_step(&b, &s, &task).await) });
            }
            while let Some(r) = parallel.join_next().await {
                let (i, (lines, state)) = r.unwrap();
                assert_eq!(lines, [format!("exit {i}")]);
                assert_eq!(state.exit_code, i as i32);
            }
            b.destroy_workflow(&conf, &task).await.unwrap();
            task
        });
    }
    while let Some(task) = workflows.join_next().await {
        assert_clean(&h.sim, &task.unwrap()).await;
    }
    assert_eq!(h.backend.watches(), 1);
    let reqs = h.sim.requests();
    assert_eq!(pod_watches(&reqs).len(), 1, "one watch for 20 steps in 4 workflows");
    let gets = reqs
        .iter()
        .filter(|r| r.method == "GET" && !r.watch && !r.path.ends_with("/log"))
        .count();
    let follows = reqs
        .iter()
        .filter(|r| r.path.ends_with("/log") && r.param("follow").is_some());
    assert_eq!(follows.count(), 20, "one log stream per step");
    let confirms = reqs
        .iter()
        .filter(|r| r.path.ends_with("/log") && r.param("follow").is_none());
    assert_eq!(confirms.count(), 20, "one confirming read per step");
    eprintln!(
        "lifecycle parallel: 20 steps in 4 workflows: {} requests, {gets} GET/LIST, 1 watch",
        reqs.len()
    );
}

#[tokio::test]
async fn a_step_costs_one_create_one_log_stream_and_one_delete() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/pass").logs(["ok"]));
    let mut steps: Vec<_> = (0..5).map(|i| step(&format!("s{i}"), "t/pass", "40")).collect();
    steps[4].secret_mapping.insert("TOKEN".into(), "s3cr3t".into());
    let conf = workflow("40", &steps);
    h.backend.setup_workflow(&conf, "40").await.unwrap();
    let setup = h.sim.requests().len();
    for s in &steps {
        let (_, state) = run_step(&h.backend, s, "40").await;
        assert_eq!(state.exit_code, 0);
    }
    let during = h.sim.requests()[setup..]
        .iter()
        .filter(|r| !(r.method == "GET" && r.path.ends_with("/pods")))
        .count();
    h.backend.destroy_workflow(&conf, "40").await.unwrap();
    let reqs = h.sim.requests();
    for s in &steps {
        let pod = pod_name(s);
        let mine = about(&reqs, &pod);
        assert_eq!(
            count(&mine, "GET", "/log"),
            2,
            "{pod}: one log stream and its confirming read"
        );
        assert_eq!(count(&mine, "DELETE", &pod), 1, "{pod}: one delete");
        assert_eq!(count(&mine, "GET", &pod), 0, "{pod}: no GET polling");
    }
    let posts = |suffix: &str| {
        reqs.iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(posts("/pods"), 5);
    assert_eq!(posts("/secrets"), 1, "a Secret only for the step with secrets");
    assert_eq!(
        reqs.iter().filter(|r| r.path.ends_with("/events")).count(),
        0,
        "no event listing for pods that start at once"
    );
    assert_eq!(pod_watches(&reqs).len(), 1, "one watch for the agent");
    // 4 per step (create, log, the log's confirming read, delete) + 2 for the one Secret
    // (create, delete); the shared watch's list and watch requests are not per step and are
    // counted above.
    assert_eq!(during, 5 * 4 + 2, "requests while the steps ran");
    eprintln!(
        "lifecycle requests: setup {setup} (incl. the shared watch), 5 steps {during}, total {}",
        reqs.len()
    );
    assert_clean(&h.sim, "40").await;
}

#[tokio::test]
async fn a_restarted_agent_sweeps_what_its_predecessor_left() {
    let h = harness().await;
    h.sim
        .script(ScriptRule::image("t/forever").logs(["up"]).run_until_deleted());
    let s = step("orphan", "t/forever", "50");
    let conf = workflow("50", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "50").await.unwrap();
    h.backend.start_step(&s, "50").await.unwrap();
    crate::common::wait_pod(&h.sim, NS, &pod_name(&s), "running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    // The agent dies without cleaning up; a new process of the same agent starts.
    let next = backend_on(&h.sim, &[("STORAGE_RWX", "false")]);
    let swept = next.sweep().await.unwrap();
    // The pod and the anchor at least; the volume may already be going with its owner.
    assert!((2..=3).contains(&swept), "{swept} objects swept");
    assert_clean(&h.sim, "50").await;
}

#[tokio::test]
async fn the_builders_warnings_are_the_first_lines_of_the_log() {
    let h = harness().await;
    h.sim.script(ScriptRule::image("t/pass").logs(["output"]));
    let mut s = step("warned", "t/pass", "26");
    s.backend_options
        .insert("kubernetes".into(), serde_json::json!({"nonsenseOption": true}));
    let conf = workflow("26", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "26").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "26").await;
    assert_eq!(state.exit_code, 0);
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines[0].contains("nonsenseOption"), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("output"));
    h.backend.destroy_workflow(&conf, "26").await.unwrap();
    assert_clean(&h.sim, "26").await;
}
