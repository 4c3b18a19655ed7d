//! Agent-mode benchmark driver (`bench/agent/run.sh` runs it; not a test).
//!
//! `agent-bench server WORKFLOWS STEPS LINES SLEEP_MS IDLE_MS`: the in-test Woodpecker server
//! (tests/agent/server.rs) on 127.0.0.1:0, and a simulated cluster whose scripted kubelet plays
//! every step pod as LINES lines over SLEEP_MS. Prints `addr <ip:port>` and `kubeconfig <path>`,
//! waits IDLE_MS (the idle window), queues the workflows, prints `queued`, and exits once every
//! workflow is Done, printing `done <ms> max_running <n>` (the most workflows between Init and
//! Done at once). The agent under test is either the shipped binary (`agent`, with the sim's
//! kubeconfig: the real Kubernetes backend) or `agent-bench agent` below.
//!
//! `agent-bench agent`: a real `Agent` configured from the environment like the shipped one,
//! but running workflows on the fake backend of tests/agent/fake.rs (no cluster), so what is
//! measured is the agent itself: gRPC, runtime, reporter, logs.

#[path = "../../tests/agent/fake.rs"]
#[allow(dead_code)]
mod fake;
#[path = "../../tests/agent/server.rs"]
#[allow(dead_code)]
mod server;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sim::{ScriptRule, Sim, SimConfig};
use woodpecker_k8s_agent::agent::AgentConfig;
use woodpecker_k8s_agent::agent::{Agent, proto};

fn workflow(id: usize, steps: usize, lines: usize, sleep_ms: u64) -> proto::WorkflowMessage {
    let stages: Vec<_> = (0..steps)
        .map(|s| {
            // The fake backend echoes each command; the sim plays its own LINES lines. A log
            // of thousands of lines (an agent's CPU per line) needs no payload that long.
            let mut cmds: Vec<String> = (0..lines.min(1000))
                .map(|l| format!("echo workflow {id} step {s} line {l} of output"))
                .collect();
            cmds.push(format!("sleep {sleep_ms}"));
            serde_json::json!({"steps": [{
                "name": format!("s{s}"), "uuid": format!("01JBENCH{id:06}S{s:03}"), "type": "commands",
                "image": "alpine:3", "commands": cmds, "on_success": true, "failure": "fail", "auth_config": {},
                "environment": {"CI_REPO": "bench/repo", "CI_PIPELINE_NUMBER": id.to_string()},
            }]})
        })
        .collect();
    let payload = serde_json::json!({"pipeline": stages, "volume": format!("wp_bench_{id}_default"),
        "secrets": [{"name": "token", "value": "bench-secret-value"}]});
    proto::WorkflowMessage {
        id: id.to_string(),
        timeout: 0,
        payload: Bytes::from(payload.to_string()),
    }
}

fn arg(args: &[String], i: usize) -> u64 {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or not a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.first().map(String::as_str) {
        Some("server") => rt.block_on(async {
            let (n, steps, lines, sleep_ms, idle_ms) = (
                arg(&args, 1) as usize,
                arg(&args, 2) as usize,
                arg(&args, 3) as usize,
                arg(&args, 4),
                arg(&args, 5),
            );
            let server = server::Server::start(16).await;
            let sim = Sim::start(SimConfig {
                run_until_deleted_label: Some(woodpecker_k8s_agent::backend::SERVICE_LABEL.into()),
                ..SimConfig::default()
            })
            .await
            .expect("start the simulated cluster");
            let every = Duration::from_millis(sleep_ms / lines.max(1) as u64);
            let logs: Vec<String> = (0..lines).map(|l| format!("simulated step output line {l}")).collect();
            sim.script(ScriptRule::any().logs(logs).every(every));
            println!("addr {}", server.addr);
            println!("kubeconfig {}", sim.kubeconfig_path().display());
            tokio::time::sleep(Duration::from_millis(idle_ms)).await;
            let start = Instant::now();
            for id in 0..n {
                server.state.push(workflow(id + 1, steps, lines, sleep_ms));
            }
            println!("queued");
            while server.state.done_count() < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            println!(
                "done {} max_running {}",
                start.elapsed().as_millis(),
                server.state.max_running()
            );
            sim.shutdown().await;
        }),
        Some("agent") => rt.block_on(async {
            let settings = AgentConfig::from_env(|k| std::env::var(k).ok(), "bench").expect("settings");
            let agent = Agent::start(settings, fake::runner()).await.expect("agent starts");
            let (trigger, shutdown) = woodpecker_k8s_agent::shutdown::channel();
            tokio::spawn(async move {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
                term.recv().await;
                trigger.fire();
            });
            agent.run(shutdown).await;
        }),
        _ => {
            eprintln!("usage: agent-bench server WORKFLOWS STEPS LINES SLEEP_MS IDLE_MS | agent-bench agent");
            std::process::exit(2);
        }
    }
}
