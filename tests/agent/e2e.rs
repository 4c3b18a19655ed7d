//! The agent end to end on the simulated cluster: the real runtime and the Kubernetes backend
//! (`KubeBackend`) in process, and the shipped binary (`agent` with the sim's kubeconfig) under
//! SIGTERM. The sim's scripted kubelet plays the steps (log lines and exit codes per pod).

use std::collections::HashMap;
use std::time::Duration;

use kube::Client;
use sim::{ScriptRule, Sim};
use woodpecker_k8s_agent::Shutdown;
use woodpecker_k8s_agent::backend::Options;
use woodpecker_k8s_agent::backend::{KubeBackend, KubeIo, LifecycleSettings};

use super::*;

/// The sim's storage is RWO only (k3s-like); the backend's default is RWX.
pub(super) const BACKEND_ENV: [(&str, &str); 2] = [
    ("WOODPECKER_BACKEND_K8S_STORAGE_RWX", "false"),
    ("WOODPECKER_BACKEND_K8S_STOP_TIMEOUT", "2"),
];

fn pod(wf: &str, step: &str) -> String {
    format!("wp-{}", uuid(wf, step).to_lowercase())
}

fn kube_runner(sim: &Sim) -> Arc<PipelineRunner<KubeBackend>> {
    kube_runner_on(Client::new(sim.kube_config()).unwrap())
}

fn kube_runner_on(client: Client) -> Arc<PipelineRunner<KubeBackend>> {
    let vars: HashMap<&str, &str> = BACKEND_ENV.into_iter().collect();
    let opts = Options::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
    let settings = LifecycleSettings::from_lookup("e2e-agent", |_| None).unwrap();
    let backend = KubeBackend::new(KubeIo::new(client), opts, settings, Shutdown::never());
    Arc::new(PipelineRunner::new(Arc::new(backend)))
}

/// Every object of ours (`wp-...`) still in the namespace, waiting a little for deletes.
pub(super) async fn leftovers(sim: &Sim) -> Vec<String> {
    let kinds = ["pods", "secrets", "services", "persistentvolumeclaims"];
    let left = || -> Vec<String> {
        kinds
            .iter()
            .flat_map(|k| {
                sim.objects(k, Some("woodpecker")).into_iter().filter_map(move |o| {
                    let name = o["metadata"]["name"].as_str().unwrap_or("?").to_owned();
                    name.starts_with("wp").then(|| format!("{k}/{name}"))
                })
            })
            .collect()
    };
    for _ in 0..100 {
        if left().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    left()
}

#[tokio::test]
async fn full_workflow_on_the_simulated_cluster() {
    let sim = crate::common::start_sim().await;
    sim.script(ScriptRule::name(&pod("201", "build")).logs(["hello", "world"]));
    sim.script(ScriptRule::name(&pod("201", "test")).logs(["ok"]).exit(3));
    let server = Server::start(16).await;
    server
        .state
        .push(workflow("201", &[("build", &["make"]), ("test", &["make test"])], &[]));
    let client = Client::new(sim.kube_config()).unwrap();
    let agent = start(&server, "e2e", &[], kube_runner_on(client.clone())).await;
    server.state.until(30, "Done", |c| done(c, "201")).await;
    // The Kubernetes client counts its requests for /metrics (PVC, Service, pods, logs, deletes).
    assert!(client.stats().requests >= 5, "{:?}", client.stats());
    assert_eq!(
        flow(&server.state.calls(), "201"),
        [
            "init",
            "start build",
            "log build 0 hello",
            "log build 1 world",
            "end build 0",
            "start test",
            "log test 0 ok",
            "end test 3",
            "done canceled=false error=\"\"",
        ]
    );
    agent.stop().await;
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    sim.shutdown().await;
}

/// The entries of step `step` of workflow `wf`, in order, as the server received them.
fn entries(calls: &[Call], wf: &str, step: &str) -> Vec<proto::LogEntry> {
    let uuid = uuid(wf, step);
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Log(entries) => Some(entries.iter().filter(|e| e.step_uuid == uuid).cloned()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test]
async fn long_lines_reach_the_server_as_the_go_agent_sends_them() {
    // Woodpecker's line copier: a line of up to 1 MiB is one entry; a longer one is cut at
    // exactly 1 MiB (bytes, even inside a UTF-8 sequence). The bytes arrive unchanged.
    const MIB: usize = 1 << 20;
    let long: String = (0..100_000)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789 -_/"[i * 7 % 40] as char)
        .collect();
    let huge = format!("{}\u{e9}{}", "x".repeat(MIB - 1), "yz\u{1F600}".repeat(100_000));
    assert!(huge.len() > MIB * 3 / 2);
    let sim = crate::common::start_sim().await;
    sim.script(ScriptRule::name(&pod("241", "print")).logs([
        "before".to_owned(),
        long.clone(),
        huge.clone(),
        "after".to_owned(),
    ]));
    let server = Server::start(16).await;
    server.state.push(workflow("241", &[("print", &["print"])], &[]));
    let agent = start(&server, "e2e-long", &[], kube_runner(&sim)).await;
    server.state.until(60, "Done", |c| done(c, "241")).await;
    let got = entries(&server.state.calls(), "241", "print");
    let lens: Vec<usize> = got.iter().map(|e| e.data.len()).collect();
    assert_eq!(lens, [6, 100_000, MIB, huge.len() - MIB, 5]);
    assert_eq!(
        got[1].data,
        long.as_bytes(),
        "the 100,000-byte line, one entry, bytes unchanged"
    );
    // The cut falls between the two bytes of `é`, as Go's copier cuts.
    assert_eq!(&got[2].data[MIB - 2..], b"x\xc3");
    assert_eq!(got[3].data[0], 0xa9);
    assert_eq!([&got[2].data[..], &got[3].data[..]].concat(), huge.as_bytes());
    assert_eq!(got.iter().map(|e| e.line).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    agent.stop().await;
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    sim.shutdown().await;
}

#[tokio::test]
async fn cancel_on_the_simulated_cluster_removes_the_pod() {
    let sim = crate::common::start_sim().await;
    sim.script(
        ScriptRule::name(&pod("211", "long"))
            .logs(["started"])
            .run_until_deleted(),
    );
    let server = Server::start(16).await;
    server
        .state
        .push(workflow("211", &[("long", &["sleep 600"]), ("after", &["true"])], &[]));
    let agent = start(&server, "e2e-cancel", &[], kube_runner(&sim)).await;
    server
        .state
        .until(30, "the first line", |c| {
            flow(c, "211").iter().any(|l| l == "log long 0 started")
        })
        .await;
    server.state.cancel("211");
    server.state.until(30, "Done", |c| done(c, "211")).await;
    let lines = flow(&server.state.calls(), "211");
    assert_eq!(lines.first().map(String::as_str), Some("init"));
    assert!(lines.contains(&"cancel long".to_string()), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("done canceled=true error=\"\""));
    assert!(!lines.iter().any(|l| l.contains("after")), "{lines:?}");
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    agent.stop().await;
    sim.shutdown().await;
}

/// The shipped binary in agent mode, on `server` and the sim's cluster.
fn spawn_binary(server: &Server, sim: &Sim, dir: &std::path::Path, extra: &[(&str, &str)]) -> tokio::process::Child {
    let (addr, conf, kubeconfig) = (
        server.addr.to_string(),
        dir.join("agent.conf").display().to_string(),
        sim.kubeconfig_path().display().to_string(),
    );
    let mut env = vec![
        ("WOODPECKER_SERVER", addr.as_str()),
        ("WOODPECKER_AGENT_SECRET", server.state.secret.as_str()),
        ("WOODPECKER_AGENT_CONFIG_FILE", conf.as_str()),
        ("WOODPECKER_HEALTHCHECK_ADDR", "127.0.0.1:0"),
        ("KUBECONFIG", kubeconfig.as_str()),
    ];
    env.extend(BACKEND_ENV);
    env.extend(extra);
    tokio::process::Command::from(super::startup::agent_command(&env))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Everything the child writes to `pipe`, as it arrives.
fn collect(pipe: tokio::process::ChildStderr) -> Arc<std::sync::Mutex<String>> {
    use tokio::io::AsyncReadExt;
    let text = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let mut pipe = pipe;
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf).await {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

pub(super) fn sigterm(child: &tokio::process::Child) {
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
}

#[tokio::test]
async fn binary_drains_on_sigterm_and_leaves_nothing_in_the_cluster() {
    let sim = crate::common::start_sim().await;
    // Five lines 200 ms apart: still running when SIGTERM comes, done within the drain time.
    sim.script(
        ScriptRule::name(&pod("221", "slow"))
            .logs(["1", "2", "3", "4", "5"])
            .every(Duration::from_millis(200)),
    );
    let server = Server::start(16).await;
    server.state.push(workflow("221", &[("slow", &["make"])], &[]));
    let dir = temp_dir("binary");
    let child = spawn_binary(&server, &sim, &dir, &[("WOODPECKER_DRAIN_TIMEOUT", "30s")]);
    server
        .state
        .until(30, "the first line", |c| {
            flow(c, "221").iter().any(|l| l == "log slow 0 1")
        })
        .await;
    sigterm(&child);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let calls = server.state.calls();
    assert!(
        matches!(
            calls[..3],
            [Call::Auth { agent_id: -1 }, Call::Version, Call::Register(_)]
        ),
        "{calls:?}"
    );
    assert_eq!(
        flow(&calls, "221"),
        [
            "init",
            "start slow",
            "log slow 0 1",
            "log slow 1 2",
            "log slow 2 3",
            "log slow 3 4",
            "log slow 4 5",
            "end slow 0",
            "done canceled=false error=\"\""
        ],
        "{stderr}"
    );
    // Stateful (the id file was written): no UnregisterAgent; one poll only (no work after SIGTERM).
    assert!(!calls.contains(&Call::Unregister));
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::Next(_))).count(), 1);
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}

#[tokio::test]
async fn binary_second_sigterm_cancels_at_once() {
    let sim = crate::common::start_sim().await;
    sim.script(
        ScriptRule::name(&pod("231", "forever"))
            .logs(["up"])
            .run_until_deleted(),
    );
    let server = Server::start(16).await;
    server.state.push(workflow("231", &[("forever", &["serve"])], &[]));
    let dir = temp_dir("binary-twice");
    let mut child = spawn_binary(&server, &sim, &dir, &[("WOODPECKER_DRAIN_TIMEOUT", "10m")]);
    let stderr = collect(child.stderr.take().unwrap());
    server
        .state
        .until(30, "the first line", |c| {
            flow(c, "231").iter().any(|l| l == "log forever 0 up")
        })
        .await;
    sigterm(&child);
    let draining = || {
        let seen = stderr.lock().unwrap().contains("shutting down: no new work");
        async move { seen.then_some(()) }
    };
    crate::common::wait_for("the agent to say it drains", 30, draining).await;
    assert!(!done(&server.state.calls(), "231"), "the first signal only drains");
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    let stderr = stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let lines = flow(&server.state.calls(), "231");
    assert!(lines.contains(&"cancel forever".to_string()), "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("done canceled=true error=\"\""),
        "{stderr}"
    );
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}
