//! The agent end to end on the simulated cluster: the real runtime and the Kubernetes backend
//! (`KubeBackend`) in process, and the shipped binary (`agent` with the sim's kubeconfig) under
//! SIGTERM. The sim's scripted kubelet plays the steps (log lines and exit codes per pod).

use std::collections::HashMap;
use std::time::Duration;

use kube::Client;
use sim::{ScriptRule, Sim};
use woodpecker_k8s_agent::Shutdown;
use woodpecker_k8s_agent::backend::Options;
use woodpecker_k8s_agent::backend::lifecycle::{self, Kube, KubeBackend};

use super::*;

/// The sim's storage is RWO only (k3s-like); the backend's default is RWX.
const BACKEND_ENV: [(&str, &str); 2] = [
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
    let settings = lifecycle::Settings::from_lookup("e2e-agent", |_| None).unwrap();
    let backend = KubeBackend::new(Kube::new(client), opts, settings, Shutdown::never());
    Arc::new(PipelineRunner::new(Arc::new(backend)))
}

/// Every object of ours (`wp-...`) still in the namespace, waiting a little for deletes.
async fn leftovers(sim: &Sim) -> Vec<String> {
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

fn sigterm(child: &tokio::process::Child) {
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
