//! The shipped binary against a Woodpecker server that is not ours (`upstream/server.rs`:
//! upstream's messages, golang-jwt tokens, upstream's refusals) on the simulated cluster, with
//! workflows marshalled by Go's rules (`common::gomarshal`) for a repository without secrets.
//! One run covers Auth with a signed token, Version, RegisterAgent, Next, Init, Update, Log,
//! Extend, Wait with a server cancel, Done, ReportHealth and UnregisterAgent, the agent's own
//! log as zerolog JSON lines, and requires that the server refused nothing.

mod jwt;
mod proto;
mod server;

use std::time::Duration;

use serde_json::json;
use server::{Call, Queued, Upstream};
use sim::ScriptRule;

use super::e2e::{BACKEND_ENV, leftovers, sigterm};
use super::startup::agent_command;

/// A step of a compiled workflow: name, UUID (a ULID, as the server makes them), its commands,
/// `on_success`, `on_failure`.
type Step<'a> = (&'a str, &'a str, &'a [&'a str], bool, bool);

/// The workflow as Woodpecker's compiler builds it (one step per stage), in Go's JSON.
fn compiled(pipeline: &str, steps: &[Step]) -> Vec<u8> {
    let volume = format!("wp_{pipeline}_default");
    let stages: Vec<_> = steps
        .iter()
        .map(|(name, uuid, commands, on_success, on_failure)| {
            json!({"steps": [{
                "name": name, "uuid": uuid, "type": "commands", "image": "docker.io/alpine:3.21",
                "working_dir": "/woodpecker/src/github.com/octo/hello", "workspace_base": "/woodpecker",
                "environment": {
                    "CI": "woodpecker", "CI_REPO": "octo/hello", "CI_REPO_NAME": "hello",
                    "CI_REPO_OWNER": "octo", "CI_PIPELINE_NUMBER": "12", "CI_PIPELINE_EVENT": "push",
                    "CI_COMMIT_SHA": "4f6a3c1e0d9b8a7c6b5a4f3e2d1c0b9a8f7e6d5c", "CI_COMMIT_BRANCH": "main",
                    "CI_WORKSPACE": "/woodpecker/src/github.com/octo/hello", "CI_SYSTEM_NAME": "woodpecker",
                    "CI_WORKFLOW_NAME": "ci", "CI_STEP_URL": "https://ci.example.com/repos/1/pipeline/12",
                    "HOME": "/root", "SHELL": "/bin/sh",
                },
                "commands": commands, "volumes": [format!("{volume}:/woodpecker")],
                "networks": [{"name": volume, "aliases": [name]}],
                "on_success": on_success, "on_failure": on_failure, "failure": "fail",
                "auth_config": {},
            }]})
        })
        .collect();
    // No `secrets`: the repository has none, so Go's server marshals a nil slice (`null`).
    let config = json!({"pipeline": stages, "network": volume, "volume": volume});
    crate::common::gomarshal::marshal_config(&config).into_bytes()
}

fn queued(id: &str, timeout_minutes: i64, steps: &[Step]) -> Queued {
    let payload = compiled(&format!("01JPIPELINE{id}"), steps);
    Queued {
        workflow: proto::Workflow {
            id: id.into(),
            timeout: timeout_minutes,
            payload,
        },
        steps: steps.iter().map(|s| s.1.to_owned()).collect(),
    }
}

fn pod(uuid: &str) -> String {
    format!("wp-{}", uuid.to_lowercase())
}

/// Workflow `id`'s calls in order, as short lines (`init`, `start s`, `log s 0 text`, `end s 3
/// error=""`, `skip s`, `cancel s`, `done ...`); `steps` names its steps by UUID.
fn flow(calls: &[Call], id: &str, steps: &[(&str, &'static str)]) -> Vec<String> {
    let name = |uuid: &str| steps.iter().find(|(u, _)| *u == uuid).map(|(_, n)| *n);
    let mut out = Vec::new();
    for call in calls {
        match call {
            Call::Init(w, _) if w == id => out.push("init".to_owned()),
            Call::Update(w, s) if w == id => {
                let step = name(&s.step_uuid).unwrap();
                out.push(if s.skipped {
                    format!("skip {step}")
                } else if s.canceled {
                    format!("cancel {step} error={:?}", s.error)
                } else if !s.exited {
                    format!("start {step}")
                } else {
                    format!("end {step} {} error={:?}", s.exit_code, s.error)
                });
            }
            Call::Log(uuid, entries) => {
                if let Some(step) = name(uuid) {
                    for e in entries {
                        out.push(format!("log {step} {} {}", e.line, String::from_utf8_lossy(&e.data)));
                    }
                }
            }
            Call::Done(w, s) if w == id => out.push(format!("done canceled={} error={:?}", s.canceled, s.error)),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn the_binary_works_with_a_server_that_is_not_ours() {
    const BUILD: &str = "01JUPSTREAMBUILD0000000001";
    const TEST: &str = "01JUPSTREAMTEST00000000002";
    const NOTIFY: &str = "01JUPSTREAMNOTIFY000000003";
    const DEPLOY: &str = "01JUPSTREAMDEPLOY000000004";
    const SERVE: &str = "01JUPSTREAMSERVE0000000005";
    let sim = crate::common::start_sim().await;
    sim.script(ScriptRule::name(&pod(BUILD)).logs(["hello", "wörld <&>"]));
    sim.script(ScriptRule::name(&pod(TEST)).logs(["FAIL: TestThing"]).exit(3));
    sim.script(ScriptRule::name(&pod(NOTIFY)).logs(["notified"]));
    sim.script(ScriptRule::name(&pod(SERVE)).logs(["up"]).run_until_deleted());
    let server = Upstream::start().await;
    server.state.push(queued(
        "1",
        60,
        &[
            ("build", BUILD, &["make"], true, false),
            ("test", TEST, &["make test"], true, false),
            ("notify", NOTIFY, &["./notify"], false, true),
            ("deploy", DEPLOY, &["make deploy"], true, false),
        ],
    ));
    server
        .state
        .push(queued("2", 60, &[("serve", SERVE, &["./serve"], true, false)]));

    let (addr, kubeconfig) = (server.addr.to_string(), sim.kubeconfig_path().display().to_string());
    let mut env = vec![
        ("WOODPECKER_SERVER", addr.as_str()),
        ("WOODPECKER_AGENT_SECRET", server.state.agent_secret.as_str()),
        // Empty, as in the Go agent: stateless, so it unregisters when it stops.
        ("WOODPECKER_AGENT_CONFIG_FILE", ""),
        ("WOODPECKER_HEALTHCHECK_ADDR", "127.0.0.1:0"),
        ("WOODPECKER_HOSTNAME", "upstream-e2e"),
        ("WOODPECKER_MAX_WORKFLOWS", "2"),
        ("WOODPECKER_LOG_LEVEL", "debug"),
        ("KUBECONFIG", kubeconfig.as_str()),
    ];
    env.extend(BACKEND_ENV);
    let child = tokio::process::Command::from(agent_command(&env))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Workflow 1 runs to its end; workflow 2 runs until the server cancels it, which it does
    // once the agent has extended its lease (every 20 s, as the Go agent).
    server
        .state
        .until(60, "workflow 1 done", |c| {
            c.iter().any(|c| matches!(c, Call::Done(w, _) if w == "1"))
        })
        .await;
    server
        .state
        .until(60, "an Extend of workflow 2", |c| c.contains(&Call::Extend("2".into())))
        .await;
    server.state.cancel("2");
    server
        .state
        .until(60, "workflow 2 done", |c| {
            c.iter().any(|c| matches!(c, Call::Done(w, _) if w == "2"))
        })
        .await;
    sigterm(&child);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the agent stops")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let calls = server.state.calls();

    // Nothing the agent sent was refused: tokens, proto version, ids, states, steps, logs.
    let refused: Vec<&Call> = calls.iter().filter(|c| matches!(c, Call::Refused { .. })).collect();
    assert!(refused.is_empty(), "{refused:#?}\n{stderr}");
    // Auth with the server's secret and no id, then everything with the signed token.
    let Call::Register(info) = &calls[2] else {
        panic!("{calls:#?}")
    };
    assert_eq!(calls[..2], [Call::Auth { agent_id: -1 }, Call::Version]);
    assert_eq!((info.backend.as_str(), info.capacity), ("kubernetes", 2));
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.platform.starts_with("linux/") && info.custom_labels.is_empty());
    let Some(Call::Next(filter)) = calls.iter().find(|c| matches!(c, Call::Next(_))) else {
        panic!("no Next")
    };
    let label = |k: &str| filter.labels.get(k).map(String::as_str);
    assert_eq!(
        (label("hostname"), label("backend"), label("repo")),
        (Some("upstream-e2e"), Some("kubernetes"), Some("*"))
    );
    assert_eq!(label("platform"), Some(info.platform.as_str()));
    assert!(calls.contains(&Call::Health));
    assert!(calls.contains(&Call::Wait("1".into())) && calls.contains(&Call::Wait("2".into())));
    // A failing step's Update carries its exit code and no error text, and the workflow's Done
    // no error: as the Go agent (3.17; a step failure is not a runtime error there).
    assert_eq!(
        flow(
            &calls,
            "1",
            &[(BUILD, "build"), (TEST, "test"), (NOTIFY, "notify"), (DEPLOY, "deploy")]
        ),
        [
            "init",
            "start build",
            "log build 0 hello",
            "log build 1 wörld <&>",
            "end build 0 error=\"\"",
            "start test",
            "log test 0 FAIL: TestThing",
            "end test 3 error=\"\"",
            "start notify",
            "log notify 0 notified",
            "end notify 0 error=\"\"",
            "skip deploy",
            "done canceled=false error=\"\"",
        ]
    );
    assert_eq!(
        flow(&calls, "2", &[(SERVE, "serve")]),
        [
            "init",
            "start serve",
            "log serve 0 up",
            "cancel serve error=\"Canceled\"",
            "done canceled=true error=\"\"",
        ]
    );
    // Stateless: it unregistered on the way out.
    assert!(calls.contains(&Call::Unregister { agent_id: 1 }), "{calls:#?}");
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());

    // Its own log: zerolog JSON lines (level, time as RFC 3339, message; caller when debugging).
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.len() > 5, "{stderr}");
    for line in &lines {
        let time = line["time"].as_str().unwrap_or_default();
        let stamp = time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z');
        assert!(
            stamp && line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    assert!(lines.iter().any(|l| l["level"] == "debug" && l["caller"].is_string()));
    assert_eq!(lines[0]["message"], "log level: debug");
    sim.shutdown().await;
}
