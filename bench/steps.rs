//! The in-process part of `bench/run`: the backend on a simulated cluster in this process, run
//! step after step the way Woodpecker's runtime runs them. Measures API requests per step and
//! watches per namespace (from the sim's request log), the latency from a pod's termination to
//! `wait_step` returning, and log throughput against `curl` on the same log stream.
//!
//! The termination latency runs [`REPEATS`] workflows of [`STEPS`] steps, each with a backend
//! of its own (a new connection pool and a new shared watch), so that every repetition's first
//! step is a first step; each latency goes to stderr, the median and the maximum over all of
//! them to stdout. A pod's end is the moment the sim's kubelet made its phase final
//! ([`Sim::pod_ended_at`], read just before that write), so the latency is exact to the clock
//! read, not to a polling interval.
//!
//! The throughput run reads through a backend of its own on a single-threaded runtime in a
//! thread of its own, as the agent and `exec` run it (apart from the apiserver); until
//! 2026-12-03 it shared the sim's two-worker pool, which read 0.41-0.46 of curl where this
//! reads 0.65-0.79 on the same build (README, "Round of 2026-12-03, sixth session").
//!
//! Prints `key=value` lines for `bench/run`. Build and run: `cargo run --release --example
//! bench-steps`. Knows the backend only through its public API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::params::LogParams;
use sim::{RecordedRequest, ScriptRule, Sim, SimConfig};
use woodpecker_k8s_agent::Shutdown;
use woodpecker_k8s_agent::backend::{Backend, Options, Stage, Step, WorkflowConfig};
use woodpecker_k8s_agent::backend::{KubeBackend, KubeIo, LifecycleSettings};

const NS: &str = "woodpecker";
const STEPS: usize = 20;
/// Workflows of [`STEPS`] steps for the termination latency, each on a fresh backend.
const REPEATS: usize = 3;
/// Lines of about 100 bytes for the throughput run (about 20 MB).
const BIG_LINES: usize = 200_000;

fn step(n: usize, image: &str, task: &str) -> Step {
    Step {
        name: format!("s{n}"),
        uuid: format!("01JBENCH{task}{n:016}"),
        type_: "commands".into(),
        image: image.into(),
        commands: vec!["echo hi".into()],
        volumes: vec![format!("{}:/woodpecker", volume(task))],
        ..Step::default()
    }
}

fn volume(task: &str) -> String {
    format!("wp_01jbenchvolume_{task}_default")
}

fn workflow(task: &str, steps: &[Step]) -> WorkflowConfig {
    WorkflowConfig {
        stages: steps.iter().map(|s| Stage { steps: vec![s.clone()] }).collect(),
        volume: volume(task),
        ..WorkflowConfig::default()
    }
}

fn pod_name(step: &Step) -> String {
    format!("wp-{}", step.uuid.to_lowercase())
}

fn backend(sim: &Sim) -> KubeBackend {
    // The sim's storage is k3s-like: local-path, ReadWriteOnce only.
    let opts =
        Options::from_lookup(|k| (k == "WOODPECKER_BACKEND_K8S_STORAGE_RWX").then(|| "false".into())).expect("options");
    let client = Client::new(sim.kube_config()).expect("client");
    let settings = LifecycleSettings {
        agent: "bench".into(),
        ..LifecycleSettings::default()
    };
    KubeBackend::new(KubeIo::new(client), opts, settings, Shutdown::never())
}

/// When the sim's pod reached a final phase, polled every millisecond.
async fn terminated_at(sim: &Sim, pod: &str) -> Instant {
    loop {
        let phase = sim.object("pods", NS, pod).map(|p| p["status"]["phase"].clone());
        if phase.as_ref().is_some_and(|p| p == "Succeeded" || p == "Failed") {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `steps` one after another (start, tail to the end, wait, destroy); returns, per step,
/// the time from the pod's final phase (as the sim recorded it) to `wait_step` returning.
async fn run_steps(sim: &Sim, b: &KubeBackend, steps: &[Step], task: &str) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for s in steps {
        b.start_step(s, task).await.expect("start_step");
        let pod = pod_name(s);
        let mut logs = b.tail_step(s, task).await.expect("tail_step");
        while logs.recv().await.is_some() {}
        let state = b.wait_step(s, task).await.expect("wait_step");
        let done = Instant::now();
        assert_eq!(state.exit_code, 0, "step {} failed", s.name);
        let ended = sim.pod_ended_at(NS, &pod).expect("the sim recorded the pod's end");
        let latency = done
            .checked_duration_since(ended)
            .unwrap_or_else(|| panic!("step {} was done before its pod {pod} ended", s.name));
        latencies.push(latency);
        b.destroy_step(s, task).await.expect("destroy_step");
    }
    latencies
}

/// One more workflow of [`STEPS`] steps on a backend of its own, for its latencies.
async fn latency_only(sim: &Sim, task: &str) -> Vec<Duration> {
    let b = backend(sim);
    let steps: Vec<Step> = (0..STEPS).map(|n| step(n, "bench/short", task)).collect();
    let conf = workflow(task, &steps);
    b.setup_workflow(&conf, task).await.expect("setup_workflow");
    let latencies = run_steps(sim, &b, &steps, task).await;
    b.destroy_workflow(&conf, task).await.expect("destroy_workflow");
    latencies
}

fn is_secret(r: &RecordedRequest) -> bool {
    r.path.contains("/secrets")
}

/// The request counts of one workflow; returns its termination latencies.
async fn requests(sim: &Sim) -> Vec<Duration> {
    // Each step logs 3 lines over ~60 ms, so the backend is waiting when the pod ends.
    sim.script(
        ScriptRule::image("bench/short")
            .logs(["one", "two", "three"])
            .every(Duration::from_millis(20)),
    );
    let b = backend(sim);
    let task = "req";
    let steps: Vec<Step> = (0..STEPS).map(|n| step(n, "bench/short", task)).collect();
    let conf = workflow(task, &steps);
    sim.clear_requests();
    b.setup_workflow(&conf, task).await.expect("setup_workflow");
    let setup = sim.requests().len();
    let latencies = run_steps(sim, &b, &steps, task).await;
    let during: Vec<RecordedRequest> = sim.requests()[setup..].to_vec();
    b.destroy_workflow(&conf, task).await.expect("destroy_workflow");
    let all = sim.requests();

    let per_step = during.iter().filter(|r| !is_secret(r) && !r.watch).count() as f64 / STEPS as f64;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for r in during.iter().filter(|r| !r.watch) {
        let last = r.path.rsplit('/').next().unwrap_or_default();
        let what = if last == "log" || last == "pods" {
            last.to_string()
        } else {
            "pods/<name>".into()
        };
        *kinds.entry(format!("{} {what} → {}", r.method, r.status)).or_default() += 1;
    }
    let breakdown: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    let watches = all.iter().filter(|r| r.watch).count();
    println!("requests_per_step={per_step:.2}");
    println!("requests_breakdown={} for {STEPS} steps", breakdown.join(", "));
    println!("watches={watches}");
    println!("setup_requests={setup}");
    println!("workflow_requests={}", all.len());
    latencies
}

/// The termination latency over [`REPEATS`] workflows, each on a backend of its own (the
/// first one's also counts requests). One backend at a time: another one's shared watch would
/// decode every pod event too.
async fn requests_and_latency(sim: &Sim) {
    let mut runs = vec![requests(sim).await];
    for r in 1..REPEATS {
        runs.push(latency_only(sim, &format!("lat{r}")).await);
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    for (r, run) in runs.iter().enumerate() {
        let each: Vec<String> = run.iter().map(|d| format!("{:.2}", ms(d))).collect();
        eprintln!(
            "termination latency (ms), workflow {} of {REPEATS}, steps in order: {}",
            r + 1,
            each.join(" ")
        );
    }
    let mut all: Vec<f64> = runs.iter().flatten().map(ms).collect();
    all.sort_by(f64::total_cmp);
    let first = runs.iter().map(|r| ms(&r[0])).fold(0f64, f64::max);
    println!("termination_latency_steps={}", all.len());
    println!("termination_latency_ms_median={:.1}", all[all.len() / 2]);
    println!("termination_latency_ms_max={:.1}", all[all.len() - 1]);
    println!("termination_latency_ms_first_step_max={first:.1}");
}

/// Ours and curl's MiB/s on one finished step's log.
async fn one_log(sim: &Sim, b: &KubeBackend, s: &Step, task: &str, ca: &std::path::Path) -> (f64, f64) {
    b.start_step(s, task).await.expect("start_step");
    let pod = pod_name(s);
    terminated_at(sim, &pod).await;

    // Ours: the step's log as the agent reads it, from the first line to the end.
    let started = Instant::now();
    let mut logs = b.tail_step(s, task).await.expect("tail_step");
    let (mut n, mut got) = (0usize, 0usize);
    while let Some(l) = logs.recv().await {
        n += 1;
        got += l.len() + 1;
    }
    let ours = started.elapsed().as_secs_f64();
    assert_eq!(n, BIG_LINES, "lines lost");

    // curl: the same stream (the URL our follower asks for), same server, same TLS.
    let container = sim.object("pods", NS, &pod).expect("pod")["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let params = LogParams {
        container: Some(container),
        follow: true,
        timestamps: true,
        ..LogParams::default()
    };
    let url = format!(
        "{}/api/v1/namespaces/{NS}/pods/{pod}/log{}",
        sim.url(),
        params.query().as_str()
    );
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
            "--cacert",
        ])
        .arg(ca)
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", sim.token()))
        .arg(&url)
        .output()
        .await
        .expect("run curl (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut parts = text.split_whitespace();
    let curl_bytes: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let curl_secs: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    // Every line on the wire carries the sim's fixed-width stamp and a space.
    let stamp = "2026-11-28T00:00:00.000000000Z ".len();
    assert_eq!(curl_bytes as usize, got + n * stamp, "curl and we read different logs");
    b.wait_step(s, task).await.expect("wait_step");
    b.destroy_step(s, task).await.expect("destroy_step");
    // Both rates are of the same log text: curl's time moved the same lines.
    let mib = |s: f64| got as f64 / s / (1024.0 * 1024.0);
    (mib(ours), mib(curl_secs))
}

/// Best of three for each side: the build machine is shared, so single runs are noisy.
async fn throughput(sim: &Sim) {
    let line = "the quick brown fox jumps over the lazy dog 0123456789 the quick brown fox jumps over";
    let lines: Vec<String> = (0..BIG_LINES).map(|i| format!("{i:08} {line}")).collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    sim.script(ScriptRule::image("bench/big").logs(lines));
    let ca = sim.dir().join("bench-ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap_or_default()).expect("write the CA");
    let b = backend(sim);
    let task = "tput";
    let steps: Vec<Step> = (0..3).map(|n| step(n, "bench/big", task)).collect();
    let conf = workflow(task, &steps);
    b.setup_workflow(&conf, task).await.expect("setup_workflow");
    let (mut ours, mut curl) = (0f64, 0f64);
    for s in &steps {
        let (o, c) = one_log(sim, &b, s, task, &ca).await;
        ours = ours.max(o);
        curl = curl.max(c);
    }
    println!("log_bytes={bytes}");
    println!("log_mibps_ours={ours:.1}");
    println!("log_mibps_curl={curl:.1}");
    println!("log_ratio={:.2}", ours / curl);
    b.destroy_workflow(&conf, task).await.expect("destroy_workflow");
}

/// The last line of the throughput log (`time-log` stops its clock at it).
const END_OF_LOG: &str = "END-OF-LOG";

/// The lines of the throughput log: about 100 bytes each, numbered, then an end marker.
fn big_log(n: usize) -> Vec<String> {
    let line = "the quick brown fox jumps over the lazy dog 0123456789 the quick brown fox jumps over";
    let mut lines: Vec<String> = (0..n).map(|i| format!("{i:08} {line}")).collect();
    lines.push(END_OF_LOG.into());
    lines
}

/// `bench-steps serve-log LINES`: the simulated cluster alone, in this process, for
/// `bench/logtput.sh`: a pod of image `bench/big` has a log of LINES lines (the end marker
/// last) the moment it starts, and runs until deleted. Prints the kubeconfig path and serves
/// until killed.
async fn serve_log(lines: usize) {
    let sim = Sim::start(SimConfig {
        tick: Duration::from_millis(5),
        ..SimConfig::default()
    })
    .await
    .expect("start the simulated cluster");
    sim.script(ScriptRule::image("bench/big").logs(big_log(lines)).run_until_deleted());
    println!("{}", sim.kubeconfig_path().display());
    std::future::pending::<()>().await;
}

/// `bench-steps time-log [drain]`: the reader `bench/logtput.sh` times each log reader with.
/// Reads stdin and prints the seconds from the read that brought the log's first line to the
/// one that brought the end marker; with `drain` it then reads on to the end of its input (a
/// broken pipe would make `exec` cancel its step). Compiled rather than a script: on a box of
/// two cores the reader shares the CPU with the program it times, and a Python reader took
/// about 0.3 s of CPU per million lines itself. Exits 1 if the input ends before the marker.
fn time_log(drain: bool) {
    use std::io::Read;
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; 1 << 20];
    // The end of the previous read, so that a marker cut between two reads is found.
    let mut tail: Vec<u8> = Vec::new();
    let mut first: Option<Instant> = None;
    loop {
        let n = match input.read(&mut buf[16..]) {
            Ok(0) | Err(_) => {
                println!("nan");
                std::process::exit(1);
            }
            Ok(n) => n,
        };
        let start = 16 - tail.len();
        buf[start..16].copy_from_slice(&tail);
        let seen = &buf[start..16 + n];
        if first.is_none() && memchr::memmem::find(seen, b"00000000 ").is_some() {
            first = Some(Instant::now());
        }
        if memchr::memmem::find(seen, END_OF_LOG.as_bytes()).is_some() {
            let secs = first.map_or(f64::NAN, |t| t.elapsed().as_secs_f64());
            println!("{secs:.4}");
            while drain && matches!(input.read(&mut buf), Ok(n) if n > 0) {}
            return;
        }
        tail = seen[seen.len().saturating_sub(16)..].to_vec();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("time-log") {
        return time_log(args.get(2).map(String::as_str) == Some("drain"));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(run(args));
}

async fn run(args: Vec<String>) {
    if args.get(1).map(String::as_str) == Some("serve-log") {
        let lines = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(BIG_LINES);
        return serve_log(lines).await;
    }
    let sim = Arc::new(
        Sim::start(SimConfig {
            tick: Duration::from_millis(5),
            run_until_deleted_label: Some(woodpecker_k8s_agent::backend::SERVICE_LABEL.into()),
            ..SimConfig::default()
        })
        .await
        .expect("start the simulated cluster"),
    );
    requests_and_latency(&sim).await;
    // The agent and `exec` run the backend on a single-threaded runtime, in a process apart
    // from the apiserver: so does this reader, on a thread of its own, not on the sim's pool.
    let s = sim.clone();
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(throughput(&s))
    })
    .await
    .expect("the throughput run");
}
