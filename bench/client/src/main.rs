//! Client throughput benchmark against the simulated cluster (the `sim` crate).
//! `serve N DIR` starts a TLS `Sim` on 127.0.0.1, creates N pods in namespace `bench` (waits
//! until the kubelet has run them all to `Succeeded`, so nothing changes during the reads), runs
//! a scripted pod `woodpecker/log` that writes N log lines at once, and arms the sim to end every
//! watch after N events (so a watch with `resourceVersion=0`, N synthetic ADDED events of the
//! stored pods, is a finite stream curl can time). It then writes `DIR/ready` (the kubeconfig
//! path), `DIR/ca.pem` and `DIR/auth` (the bearer header for curl) and serves until killed.
//! `watch DIR N` and `logs DIR N` read those streams through our client and print the rate.
//!
//! `decode FILE` times decoding the watch events saved in FILE, from memory (no transport).
//! `startup N` times the start-up alone (N pods created and run to `Succeeded`); `serve` writes
//! its own start-up time to `DIR/startup`.
//!
//! Usage: client-bench serve N DIR | watch DIR N | logs DIR N | decode FILE | startup N

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::config::{Config, Overrides};
use kube::logs::FollowOptions;
use kube::types::Pod;
use kube::{Api, Client, WatchParams};
use sim::{ScriptRule, Sim, SimConfig};

/// A step pod as the agent would create it (emptyDir instead of the workflow's PVC).
fn pod_json(i: usize) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("wp-01h{i:08}"), "namespace": "bench",
            "labels": {"step": "build", "woodpecker-ci.org/step": "build", "woodpecker-ci.org/task-uuid": "01HXYZ"},
            "annotations": {"woodpecker-ci.org/step": "build"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "step", "image": "alpine:3.20",
            "command": ["/bin/sh", "-c", "echo $CI_SCRIPT | base64 -d | /bin/sh -e"], "workingDir": "/woodpecker/src",
            "env": [{"name": "CI", "value": "woodpecker"}, {"name": "CI_PIPELINE_NUMBER", "value": "42"}],
            "volumeMounts": [{"name": "workspace", "mountPath": "/woodpecker"}]}],
            "volumes": [{"name": "workspace", "emptyDir": {}}]}
    })
}

fn log_line(i: usize) -> String {
    format!("line {i}: compiling crate number {i} of the build, all fine")
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn succeeded(p: &serde_json::Value) -> bool {
    p["status"]["phase"] == "Succeeded"
}

/// Starts the sim, creates the log pod and N bench pods and waits until the kubelet has run them
/// all. Returns the sim and the seconds from the first create to the last pod's `Succeeded`.
async fn start(n: usize, dir: PathBuf) -> (Sim, f64) {
    let sim = Sim::start(SimConfig {
        namespaces: vec!["default".into(), "woodpecker".into(), "bench".into()],
        dir: Some(dir),
        tick: Duration::from_millis(5),
        ..SimConfig::default()
    })
    .await
    .expect("start the simulated cluster");
    sim.script(ScriptRule::name("log").logs((0..n).map(log_line)));
    let client = Client::new(sim.kube_config()).unwrap();
    let started = Instant::now();
    let logs: Api<Pod> = Api::namespaced(client.clone(), "woodpecker");
    let mut log_pod = pod_json(0);
    log_pod["metadata"]["name"] = "log".into();
    log_pod["metadata"]["namespace"] = "woodpecker".into();
    logs.create(&serde_json::from_value(log_pod).unwrap()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "bench");
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(16).max(1)) {
        let (pods, chunk) = (pods.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for i in chunk {
                pods.create(&serde_json::from_value(pod_json(i)).unwrap())
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // Counted in place: copying N pods at every poll would itself grow with N squared.
    wait_until("the bench pods to succeed", || {
        sim.count("pods", Some("bench"), succeeded) == n
    })
    .await;
    wait_until("the log pod to succeed", || {
        sim.object("pods", "woodpecker", "log").is_some_and(|p| succeeded(&p))
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    (sim, secs)
}

/// Start-up alone: N pods created and run to `Succeeded`; prints `N seconds pods/s`.
async fn startup(n: usize) {
    let dir = std::env::temp_dir().join(format!("client-bench-startup-{}", std::process::id()));
    let (sim, secs) = start(n, dir.clone()).await;
    println!("{n} {secs:.3} {:.0}", n as f64 / secs);
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn serve(n: usize, dir: PathBuf) {
    let (sim, secs) = start(n, dir.join("sim")).await;
    std::fs::write(dir.join("startup"), format!("{n} {secs:.3} {:.0}\n", n as f64 / secs)).unwrap();
    sim.faults().cut_watches_after(n, true);
    std::fs::write(dir.join("ca.pem"), sim.ca_pem().unwrap()).unwrap();
    std::fs::write(dir.join("auth"), format!("Authorization: Bearer {}\n", sim.token())).unwrap();
    let base = dir.join("base");
    std::fs::write(&base, sim.url()).unwrap();
    // Last: the script waits for this file.
    std::fs::write(dir.join("ready"), sim.kubeconfig_path().to_string_lossy().as_bytes()).unwrap();
    std::future::pending::<()>().await;
}

fn client(dir: &Path, ns: &str) -> Client {
    let kubeconfig = std::fs::read_to_string(dir.join("ready")).unwrap();
    let config = Config::infer(&Overrides {
        kubeconfig: Some(kubeconfig.into()),
        context: None,
        namespace: Some(ns.into()),
    })
    .unwrap();
    Client::new(config).unwrap()
}

async fn watch(dir: &Path, n: usize) {
    let pods: Api<Pod> = Api::default_namespaced(client(dir, "bench"));
    let start = Instant::now();
    let mut stream = pods.watch(&WatchParams::default(), "0").await.unwrap();
    let mut count = 0;
    while count < n {
        match stream.next().await {
            Some(ev) => ev.unwrap(),
            None => break,
        };
        count += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, n);
    println!("{count} {secs:.4} {:.0}", count as f64 / secs);
}

async fn logs(dir: &Path, n: usize) {
    let pods: Api<Pod> = Api::default_namespaced(client(dir, "woodpecker"));
    let start = Instant::now();
    let mut follower = pods.follow_log("log", "step", FollowOptions::default());
    let mut count = 0;
    while let Some(_line) = follower.next_line().await.unwrap() {
        count += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, n);
    println!("{count} {secs:.4} {:.0}", count as f64 / secs);
}

/// Decoding alone, from memory: separates parsing cost from the transport. The events are
/// the watch's own bytes, saved by the run script (`DIR/watch.json`).
fn decode(file: &Path) {
    let body = std::fs::read(file).unwrap();
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let start = Instant::now();
    for line in &lines {
        kube::watch::decode_event::<Pod>(line).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = lines.len();
    println!("{n} {secs:.4} {:.0}", n as f64 / secs);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("serve") => rt.block_on(serve(args[2].parse().unwrap(), args[3].clone().into())),
        Some("watch") => rt.block_on(watch(Path::new(&args[2]), args[3].parse().unwrap())),
        Some("logs") => rt.block_on(logs(Path::new(&args[2]), args[3].parse().unwrap())),
        Some("decode") => decode(Path::new(&args[2])),
        Some("startup") => rt.block_on(startup(args[2].parse().unwrap())),
        _ => eprintln!("usage: client-bench serve N DIR | watch DIR N | logs DIR N | decode FILE | startup N"),
    }
}
