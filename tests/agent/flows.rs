//! One workflow at a time and many at once: the full flow in order with exact logs, cancel from
//! the server, token expiry, a server restart, capacity, secret masking, drain on shutdown.

use super::*;
use prost::Message;
#[tokio::test]
async fn full_workflow_in_order_with_exact_logs() {
    let server = Server::start(16).await;
    let wf = workflow(
        "11",
        &[
            ("build", &["echo hello", "echo  world  ", "exit 0"]),
            ("test", &["echo ok", "exit 3"]),
        ],
        &[],
    );
    // A repository without secrets: Go's server sends `"secrets":null` (issue 10).
    assert!(String::from_utf8_lossy(&wf.payload).contains(r#""secrets":null"#));
    server.state.push(wf);
    let runner = fake::runner();
    let agent = start(
        &server,
        "full",
        &[("WOODPECKER_AGENT_LABELS", "zone=eu")],
        runner.clone(),
    )
    .await;
    server.state.until(10, "Done", |c| done(c, "11")).await;
    let calls = server.state.calls();
    assert_eq!(
        flow(&calls, "11"),
        [
            "init",
            "start build",
            "log build 0 hello",
            "log build 1  world  ",
            "end build 0",
            "start test",
            "log test 0 ok",
            "end test 3",
            "done canceled=false error=\"\"",
        ]
    );
    // Startup: Auth (unknown id), Version, RegisterAgent with our info, then polling with labels.
    assert_eq!(calls[0], Call::Auth { agent_id: -1 });
    assert_eq!(calls[1], Call::Version);
    let Call::Register(info) = &calls[2] else {
        panic!("{:?}", calls[2])
    };
    assert_eq!((info.backend.as_str(), info.capacity), ("kubernetes", 1));
    assert!(info.platform.starts_with("linux/"));
    assert_eq!(info.custom_labels.get("zone").map(String::as_str), Some("eu"));
    let Some(Call::Next(filter)) = calls.iter().find(|c| matches!(c, Call::Next(_))) else {
        panic!()
    };
    assert_eq!(filter.labels.get("hostname").map(String::as_str), Some("test-host"));
    assert_eq!(filter.labels.get("backend").map(String::as_str), Some("kubernetes"));
    assert_eq!(filter.labels.get("repo").map(String::as_str), Some("*"));
    assert_eq!(filter.labels.get("zone").map(String::as_str), Some("eu"));
    // The agent adds CI_MACHINE and CI_SYSTEM_PLATFORM to every step.
    for step in ["build", "test"] {
        let envs = runner.backend.envs.lock().unwrap();
        let env = &envs[&uuid("11", step)];
        assert_eq!(env.get("CI_MACHINE").map(String::as_str), Some("test-host"));
        assert_eq!(env.get("CI_SYSTEM_PLATFORM"), Some(&info.platform));
        assert_eq!(env.get("CI_REPO").map(String::as_str), Some("octo/hello"));
    }
    // Init and Done carry real times; Wait ran for the workflow.
    let Some(Call::Init(_, init)) = calls.iter().find(|c| matches!(c, Call::Init(..))) else {
        panic!()
    };
    assert!(init.started > 1_700_000_000 && !init.canceled);
    assert!(calls.contains(&Call::Wait("11".into())));
    // The agent id from Auth/Register was persisted.
    let conf = std::fs::read_to_string(agent.dir.join("agent.conf")).unwrap();
    assert_eq!(conf.trim(), "{\"agent_id\":101}");
    agent.stop().await;
    // A stateful agent does not unregister.
    assert!(!server.state.calls().contains(&Call::Unregister));
}

#[tokio::test]
async fn payloads_with_every_nilable_field_null_or_every_optional_field_absent_run() {
    let server = Server::start(16).await;
    let (nulled, _, absent) = crate::payload::variants();
    for (id, mut payload) in [("41", nulled), ("42", absent)] {
        let step = &mut payload["pipeline"][0]["steps"][0];
        step["commands"] = serde_json::json!(["echo ok"]);
        step["detach"] = serde_json::json!(false);
        step["uuid"] = uuid(id, "build").into();
        // Without either, Woodpecker's runtime skips the step (as it did here: `skip build`).
        step["on_success"] = true.into();
        server.state.push(proto::WorkflowMessage {
            id: id.into(),
            timeout: 0,
            payload: Bytes::from(payload.to_string()),
        });
    }
    let agent = start(
        &server,
        "go-nulls",
        &[("WOODPECKER_MAX_WORKFLOWS", "2")],
        fake::runner(),
    )
    .await;
    for id in ["41", "42"] {
        server.state.until(10, "Done", |c| done(c, id)).await;
        let lines = flow(&server.state.calls(), id);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("done canceled=false error=\"\""),
            "{id}: {lines:?}"
        );
        assert!(lines.contains(&"log build 0 ok".to_string()), "{id}: {lines:?}");
    }
    agent.stop().await;
}

#[tokio::test]
async fn cancel_from_the_server_cancels_the_workflow() {
    let server = Server::start(16).await;
    server.state.push(workflow(
        "21",
        &[("long", &["echo started", "sleep 30000"]), ("after", &["echo never"])],
        &[],
    ));
    let runner = fake::runner();
    let agent = start(&server, "cancel", &[], runner.clone()).await;
    server
        .state
        .until(10, "the step's first line", |c| {
            flow(c, "21").iter().any(|l| l.starts_with("log long 0"))
        })
        .await;
    // The lease is extended while the workflow runs (every 100 ms in the test settings).
    server
        .state
        .until(5, "two Extends", |c| {
            c.iter().filter(|c| **c == Call::Extend("21".into())).count() >= 2
        })
        .await;
    server.state.cancel("21");
    server.state.until(10, "Done", |c| done(c, "21")).await;
    assert_eq!(
        flow(&server.state.calls(), "21"),
        [
            "init",
            "start long",
            "log long 0 started",
            "cancel long",
            "done canceled=true error=\"\""
        ]
    );
    assert!(
        runner.backend.objects().is_empty(),
        "left behind: {:?}",
        runner.backend.objects()
    );
    agent.stop().await;
}

#[tokio::test]
async fn expired_token_is_refreshed_and_the_call_repeated() {
    let server = Server::start(16).await;
    server
        .state
        .push(workflow("31", &[("a", &["echo one", "sleep 400", "echo two"])], &[]));
    let agent = start(&server, "token", &[], fake::runner()).await;
    server
        .state
        .until(10, "line one", |c| flow(c, "31").iter().any(|l| l == "log a 0 one"))
        .await;
    server.state.expire_tokens();
    server.state.until(10, "Done", |c| done(c, "31")).await;
    let calls = server.state.calls();
    let auths: Vec<_> = calls.iter().filter(|c| matches!(c, Call::Auth { .. })).collect();
    assert!(auths.len() >= 2, "expected a re-auth, got {auths:?}");
    // The re-auth kept the agent id the server gave.
    assert_eq!(auths[1], &Call::Auth { agent_id: 101 });
    assert_eq!(
        flow(&calls, "31"),
        [
            "init",
            "start a",
            "log a 0 one",
            "log a 1 two",
            "end a 0",
            "done canceled=false error=\"\""
        ]
    );
    agent.stop().await;
}

#[tokio::test]
async fn server_restart_mid_workflow_loses_nothing() {
    let mut server = Server::start(16).await;
    server.state.push(workflow(
        "41",
        &[(
            "a",
            &["echo before", "sleep 1200", "echo during", "sleep 300", "echo after"],
        )],
        &[],
    ));
    let agent = start(&server, "restart", &[], fake::runner()).await;
    server
        .state
        .until(10, "the first line", |c| {
            flow(c, "41").iter().any(|l| l == "log a 0 before")
        })
        .await;
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    server.restart().await;
    server.state.until(20, "Done", |c| done(c, "41")).await;
    let mut lines = flow(&server.state.calls(), "41");
    lines.dedup(); // a batch whose answer was lost may arrive twice
    assert_eq!(
        lines,
        [
            "init",
            "start a",
            "log a 0 before",
            "log a 1 during",
            "log a 2 after",
            "end a 0",
            "done canceled=false error=\"\""
        ]
    );
    agent.stop().await;
}

#[tokio::test]
async fn capacity_two_never_runs_more_than_two() {
    let server = Server::start(16).await;
    let ids: Vec<String> = (51..56).map(|n| n.to_string()).collect();
    for id in &ids {
        server
            .state
            .push(workflow(id, &[("a", &["echo hi", "sleep 300"])], &[]));
    }
    let runner = fake::runner();
    let agent = start(
        &server,
        "capacity",
        &[("WOODPECKER_MAX_WORKFLOWS", "2")],
        runner.clone(),
    )
    .await;
    server
        .state
        .until(20, "all five done", |c| ids.iter().all(|id| done(c, id)))
        .await;
    assert_eq!(server.state.max_running(), 2, "server-side Init..Done overlap");
    assert_eq!(runner.backend.max_running.load(SeqCst), 2);
    // A permit is taken before Next: never more polls than free slots.
    assert!(
        server.state.max_polling() <= 2,
        "polls at once: {}",
        server.state.max_polling()
    );
    let Call::Register(info) = &server.state.calls()[2] else {
        panic!()
    };
    assert_eq!(info.capacity, 2);
    agent.stop().await;
}

#[tokio::test]
async fn secrets_are_masked_in_every_line() {
    let server = Server::start(16).await;
    let key = "-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----";
    server.state.push(workflow(
        "61",
        &[(
            "a",
            &[
                "echo token=hunter2-secret!",
                "echo MIIEvQIBADANBg",
                "echo abc is short",
                "echo plain",
            ],
        )],
        &["hunter2-secret", key, "abc"],
    ));
    let agent = start(&server, "mask", &[], fake::runner()).await;
    server.state.until(10, "Done", |c| done(c, "61")).await;
    let lines: Vec<String> = flow(&server.state.calls(), "61")
        .into_iter()
        .filter(|l| l.starts_with("log"))
        .collect();
    assert_eq!(
        lines,
        [
            "log a 0 token=********!",
            "log a 1 ********",
            "log a 2 abc is short",
            "log a 3 plain"
        ]
    );
    agent.stop().await;
}

#[tokio::test]
async fn shutdown_drains_running_workflows_then_stops() {
    let server = Server::start(16).await;
    server.state.push(workflow(
        "71",
        &[("a", &["echo go", "sleep 800", "echo finished"])],
        &[],
    ));
    let runner = fake::runner();
    let dir = temp_dir("drain");
    // An unwritable config file makes the agent stateless: it unregisters on exit.
    let conf_dir = dir.join("ro");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let mut s = settings(&server, &dir, &[]);
    s.config_file = Some(conf_dir.clone()); // a directory: writing it fails
    let agent = Agent::start(s, runner.clone()).await.unwrap();
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(agent.run(shutdown));
    server
        .state
        .until(10, "the first line", |c| {
            flow(c, "71").iter().any(|l| l == "log a 0 go")
        })
        .await;
    trigger.fire();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let calls = server.state.calls();
    // The running workflow finished normally (drained, not canceled), and nothing is left.
    assert_eq!(
        flow(&calls, "71"),
        [
            "init",
            "start a",
            "log a 0 go",
            "log a 1 finished",
            "end a 0",
            "done canceled=false error=\"\""
        ]
    );
    assert!(
        runner.backend.objects().is_empty(),
        "left behind: {:?}",
        runner.backend.objects()
    );
    assert_eq!(calls.last(), Some(&Call::Unregister));
    // No new work was asked for after the signal: the only Next is the one that got 71.
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::Next(_))).count(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn drain_timeout_cancels_and_cleans_up() {
    let server = Server::start(16).await;
    server
        .state
        .push(workflow("81", &[("a", &["echo go", "sleep 60000"])], &[]));
    let runner = fake::runner();
    let agent = start(
        &server,
        "drain-timeout",
        &[("WOODPECKER_DRAIN_TIMEOUT", "300ms")],
        runner.clone(),
    )
    .await;
    server
        .state
        .until(10, "the first line", |c| {
            flow(c, "81").iter().any(|l| l == "log a 0 go")
        })
        .await;
    agent.stop().await;
    assert_eq!(
        flow(&server.state.calls(), "81"),
        [
            "init",
            "start a",
            "log a 0 go",
            "cancel a",
            "done canceled=true error=\"\""
        ]
    );
    assert!(
        runner.backend.objects().is_empty(),
        "left behind: {:?}",
        runner.backend.objects()
    );
}

/// The lines of `id` in each Log call, in order (one inner Vec per call).
fn log_calls(calls: &[Call], id: &str) -> Vec<Vec<proto::LogEntry>> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Log(entries) => Some(
                entries
                    .iter()
                    .filter(|e| e.step_uuid.starts_with(&uuid(id, "")))
                    .cloned()
                    .collect(),
            ),
            _ => None,
        })
        .filter(|v: &Vec<proto::LogEntry>| !v.is_empty())
        .collect()
}

#[tokio::test]
async fn steady_output_is_flushed_on_a_fixed_tick() {
    let server = Server::start(16).await;
    // A line every 20 ms for ~600 ms: a timer restarted by every line (Go) would never fire
    // before the step ends; the fixed 50 ms tick of the test settings sends several batches.
    let mut script: Vec<String> = Vec::new();
    for i in 0..30 {
        script.push(format!("echo line {i}"));
        script.push("sleep 20".into());
    }
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    server.state.push(workflow("101", &[("steady", &script)], &[]));
    let agent = start(&server, "tick", &[], fake::runner()).await;
    server.state.until(10, "Done", |c| done(c, "101")).await;
    let batches = log_calls(&server.state.calls(), "101");
    assert!(
        batches.len() >= 5,
        "expected the lines spread over many Log calls, got {}",
        batches.len()
    );
    let lines: Vec<i32> = batches.iter().flatten().map(|e| e.line).collect();
    assert_eq!(lines, (0..30).collect::<Vec<_>>());
    agent.stop().await;
}

#[tokio::test]
async fn big_output_is_split_into_batches_of_at_most_one_mib() {
    let server = Server::start(16).await;
    let line = format!("echo {}", "x".repeat(100 * 1024));
    let script: Vec<&str> = std::iter::repeat_n(line.as_str(), 25).collect();
    server.state.push(workflow("111", &[("big", &script)], &[]));
    let agent = start(&server, "big", &[], fake::runner()).await;
    server.state.until(20, "Done", |c| done(c, "111")).await;
    let batches = log_calls(&server.state.calls(), "111");
    let total: usize = batches.iter().flatten().map(|e| e.data.len()).sum();
    assert_eq!(total, 25 * 100 * 1024);
    for b in &batches {
        let size = proto::LogRequest { log_entries: b.clone() }.encoded_len();
        assert!(size <= 1 << 20, "a Log call of {size} bytes");
    }
    assert!(batches.len() >= 3, "2.5 MB in {} calls", batches.len());
    agent.stop().await;
}

#[tokio::test]
async fn shutdown_with_the_server_gone_still_cleans_up_and_exits() {
    let mut server = Server::start(16).await;
    server
        .state
        .push(workflow("121", &[("a", &["echo go", "sleep 60000"])], &[]));
    let runner = fake::runner();
    let agent = start(
        &server,
        "gone",
        &[("WOODPECKER_DRAIN_TIMEOUT", "200ms")],
        runner.clone(),
    )
    .await;
    server
        .state
        .until(10, "the first line", |c| {
            flow(c, "121").iter().any(|l| l == "log a 0 go")
        })
        .await;
    server.stop().await;
    // Reports would retry for the 2 min retry timeout; the agent gives up on them instead.
    let started = std::time::Instant::now();
    agent.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        runner.backend.objects().is_empty(),
        "left behind: {:?}",
        runner.backend.objects()
    );
}

#[tokio::test]
async fn outage_longer_than_the_retry_timeout_does_not_cancel() {
    let mut server = Server::start(16).await;
    server.state.push(workflow(
        "131",
        &[("a", &["echo before", "sleep 1500", "echo after"])],
        &[],
    ));
    let agent = start(
        &server,
        "outage",
        &[("WOODPECKER_RETRY_TIMEOUT", "300ms")],
        fake::runner(),
    )
    .await;
    server
        .state
        .until(10, "the first line", |c| {
            flow(c, "131").iter().any(|l| l == "log a 0 before")
        })
        .await;
    server.stop().await;
    // Wait gives up retrying after 300 ms; the workflow must keep running anyway.
    tokio::time::sleep(Duration::from_millis(900)).await;
    server.restart().await;
    server.state.until(20, "Done", |c| done(c, "131")).await;
    let lines = flow(&server.state.calls(), "131");
    assert!(lines.contains(&"log a 1 after".to_string()), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("done canceled=false error=\"\""));
    agent.stop().await;
}
