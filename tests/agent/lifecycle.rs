//! The agent's own life, with the shipped binary on the simulated cluster: kill -9 mid-workflow
//! (another agent reaps every object of the dead one within the grace, nothing of the live one),
//! two processes with one identity (exactly one runs work, the other says why and takes over
//! with the agent id the Lease kept), scale-down after a crash (the survivor reaps), and a soak
//! with random kill -9 and restarts. Lease timings are shortened (3 s Lease, 2 s grace, reaping
//! every 300 ms); the bound below is what they allow plus slack for a loaded machine.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use sim::{ScriptRule, Sim};

use super::e2e::{BACKEND_ENV, leftovers};
use super::*;

const NS: &str = "woodpecker";
const AGENT_LABEL: &str = "woodpecker-k8s-agent/agent";
const LEASE_ENV: [(&str, &str); 4] = [
    ("WOODPECKER_BACKEND_K8S_LEASE_DURATION", "3s"),
    ("WOODPECKER_BACKEND_K8S_REAP_GRACE", "2s"),
    ("WOODPECKER_BACKEND_K8S_REAP_INTERVAL", "300ms"),
    ("WOODPECKER_DRAIN_TIMEOUT", "2s"),
];
/// Lease (3 s) + grace (2 s) + one reaping interval, plus slack for a loaded 2-core machine.
const REAP_BOUND: Duration = Duration::from_millis(3000 + 2000 + 300 + 2500);

fn pod(wf: &str, step: &str) -> String {
    format!("wp-{}", uuid(wf, step).to_lowercase())
}

/// One agent process.
struct Proc {
    host: String,
    child: tokio::process::Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(server: &Server, sim: &Sim, dir: &std::path::Path, host: &str, extra: &[(&str, &str)]) -> Proc {
        let (addr, kubeconfig) = (server.addr.to_string(), sim.kubeconfig_path().display().to_string());
        let conf = dir.join(format!("{host}.conf")).display().to_string();
        let mut env = vec![
            ("WOODPECKER_SERVER", addr.as_str()),
            ("WOODPECKER_AGENT_SECRET", server.state.secret.as_str()),
            ("WOODPECKER_AGENT_CONFIG_FILE", conf.as_str()),
            ("WOODPECKER_HEALTHCHECK_ADDR", "127.0.0.1:0"),
            ("WOODPECKER_HOSTNAME", host),
            ("KUBECONFIG", kubeconfig.as_str()),
        ];
        env.extend(BACKEND_ENV);
        env.extend(LEASE_ENV);
        env.extend(extra);
        let mut child = tokio::process::Command::from(super::startup::agent_command(&env))
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (sink, pipe) = (log.clone(), child.stderr.take().unwrap());
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            host: host.to_string(),
            child,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the process's log contains `text`; returns the log.
    async fn wait_log(&self, text: &str, secs: u64) -> String {
        let what = format!("{} to log {text:?}", self.host);
        crate::common::wait_for(&what, secs, || {
            let log = self.log();
            async move { log.contains(text).then_some(log) }
        })
        .await
    }

    /// The holder identity it logged when it took its Lease.
    async fn identity(&self) -> String {
        let log = self.wait_log("holding lease", 30).await;
        let line = log.lines().find(|l| l.contains("holding lease")).unwrap();
        let v: Value = serde_json::from_str(line).unwrap();
        v["message"]
            .as_str()
            .unwrap()
            .rsplit(" as ")
            .next()
            .unwrap()
            .to_string()
    }

    async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, and the exit code.
    async fn stop(mut self) -> (Option<i32>, String) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the agent stops within 30s")
            .unwrap();
        (status.code(), self.log())
    }
}

/// Every object of ours in the namespace labelled with agent `host`: `plural/name`.
fn objects_of(sim: &Sim, host: &str) -> Vec<String> {
    ["pods", "secrets", "services", "persistentvolumeclaims"]
        .iter()
        .flat_map(|k| {
            sim.objects(k, Some(NS)).into_iter().filter_map(move |o| {
                (o["metadata"]["labels"][AGENT_LABEL] == host)
                    .then(|| format!("{k}/{}", o["metadata"]["name"].as_str().unwrap_or("?")))
            })
        })
        .collect()
}

/// Waits until pod `name` runs; returns the agent label on it.
async fn running_pod(sim: &Sim, name: &str) -> String {
    let p = crate::common::wait_pod(sim, NS, name, "the step's pod to run", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    p["metadata"]["labels"][AGENT_LABEL].as_str().unwrap().to_string()
}

#[tokio::test]
async fn kill_9_mid_workflow_another_agent_reaps_everything_of_the_dead_one_and_nothing_else() {
    let sim = crate::common::start_sim().await;
    sim.script(ScriptRule::name(&pod("301", "long")).logs(["up"]).run_until_deleted());
    sim.script(ScriptRule::name(&pod("302", "long")).logs(["up"]).run_until_deleted());
    let server = Server::start(16).await;
    let dir = temp_dir("lease-kill");
    let mut dead = Proc::spawn(&server, &sim, &dir, "agent-a", &[]);
    server.state.push(workflow("301", &[("long", &["serve"])], &[]));
    assert_eq!(running_pod(&sim, &pod("301", "long")).await, "agent-a");
    let live = Proc::spawn(&server, &sim, &dir, "agent-b", &[]);
    server.state.push(workflow("302", &[("long", &["serve"])], &[]));
    assert_eq!(running_pod(&sim, &pod("302", "long")).await, "agent-b");
    let before_b = objects_of(&sim, "agent-b");
    assert_eq!(objects_of(&sim, "agent-a").len(), 3, "pod, anchor, claim");

    dead.kill9().await;
    let killed = Instant::now();
    // A new agent under another name; agent-b reaps too (every live agent does).
    let newcomer = Proc::spawn(&server, &sim, &dir, "agent-c", &[]);
    crate::common::wait_for("agent-a's objects to be reaped", 30, || {
        let left = objects_of(&sim, "agent-a");
        async move { left.is_empty().then_some(()) }
    })
    .await;
    let took = killed.elapsed();
    println!("kill -9 to every object of the dead agent gone: {took:?} (bound {REAP_BOUND:?})");
    assert!(took <= REAP_BOUND, "reaping took {took:?}");
    // Its step's pod is gone, not just terminating: the step is stopped.
    assert!(sim.object("pods", NS, &pod("301", "long")).is_none());
    // Nothing of the live agent was touched: same objects, its pod running, not terminating.
    assert_eq!(objects_of(&sim, "agent-b"), before_b);
    let p = sim.object("pods", NS, &pod("302", "long")).unwrap();
    assert_eq!(p["status"]["phase"], "Running");
    assert!(p["metadata"]["deletionTimestamp"].is_null());
    // A log line per reaped workflow, from whoever reaped it (written once its last object went).
    crate::common::wait_for("a log line about the reaped workflow", 10, || {
        let logs = format!("{}{}", live.log(), newcomer.log());
        async move { logs.contains("reaped workflow 301 of agent agent-a").then_some(()) }
    })
    .await;

    // The live agent's workflow runs on and ends normally.
    server.state.cancel("302");
    server.state.until(30, "302 done", |c| done(c, "302")).await;
    for p in [live, newcomer] {
        let (code, log) = p.stop().await;
        assert_eq!(code, Some(0), "{log}");
    }
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}

#[tokio::test]
async fn two_processes_with_one_identity_exactly_one_runs_work_and_the_other_says_why() {
    let sim = crate::common::start_sim().await;
    sim.script(ScriptRule::prefix("wp-").logs(["ok"]));
    let server = Server::start(16).await;
    let dir = temp_dir("lease-twins");
    // The file cannot be written (its folder does not exist): the id can only live in the Lease.
    let nowhere = dir.join("missing/agent.conf").display().to_string();
    // A longer Lease: on a loaded machine a starved holder must not lose it mid-test.
    let extra = [
        ("WOODPECKER_AGENT_CONFIG_FILE", nowhere.as_str()),
        ("WOODPECKER_BACKEND_K8S_LEASE_DURATION", "6s"),
    ];
    let first = Proc::spawn(&server, &sim, &dir, "twin", &extra);
    let holder = first.identity().await;
    let second = Proc::spawn(&server, &sim, &dir, "twin", &extra);
    let log = second.wait_log("is held by", 30).await;
    let line = log.lines().find(|l| l.contains("is held by")).unwrap();
    let said: Value = serde_json::from_str(line).unwrap();
    assert_eq!(said["holder"], holder.as_str(), "{line}");
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains(&format!("held by {holder:?}")),
        "{line}"
    );
    assert!(log.contains("runs no work"), "{log}");

    for id in ["311", "312", "313"] {
        server.state.push(workflow(id, &[("step", &["true"])], &[]));
    }
    server
        .state
        .until(30, "three workflows done", |c| {
            ["311", "312", "313"].iter().all(|id| done(c, id))
        })
        .await;
    // Only the holder ever talked to the server (its token refreshes authenticate with its id).
    let calls = server.state.calls();
    let fresh = calls.iter().filter(|c| **c == Call::Auth { agent_id: -1 }).count();
    assert_eq!(fresh, 1, "{calls:#?}");
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::Register(_))).count(), 1);
    let log = second.log();
    assert!(
        !log.contains("holding lease") && !log.contains("registered as agent"),
        "{log}"
    );

    // The holder stops and releases the Lease: the waiting one takes over at once, with the
    // agent id the Lease kept (stateful although its file cannot be written).
    let (code, log) = first.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !server.state.calls().contains(&Call::Unregister),
        "stateful: no unregister"
    );
    second.wait_log("registered as agent 101", 30).await;
    let calls = server.state.calls();
    assert_eq!(
        calls.iter().rfind(|c| matches!(c, Call::Auth { .. })),
        Some(&Call::Auth { agent_id: 101 })
    );
    let (code, log) = second.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}

#[tokio::test]
async fn scale_down_after_a_crash_the_survivor_reaps() {
    let sim = crate::common::start_sim().await;
    sim.script(ScriptRule::name(&pod("321", "long")).logs(["up"]).run_until_deleted());
    sim.script(ScriptRule::name(&pod("322", "after")).logs(["fine"]));
    let server = Server::start(16).await;
    let dir = temp_dir("lease-scale");
    // Three replicas of a StatefulSet: woodpecker-agent-0, -1, -2.
    let mut agents: Vec<Proc> = (0..3)
        .map(|i| Proc::spawn(&server, &sim, &dir, &format!("woodpecker-agent-{i}"), &[]))
        .collect();
    for a in &agents {
        a.wait_log("registered as agent", 30).await;
    }
    server.state.push(workflow("321", &[("long", &["serve"])], &[]));
    let owner = running_pod(&sim, &pod("321", "long")).await;
    // That agent crashes, and the StatefulSet is scaled down: it never comes back.
    let i = agents.iter().position(|a| a.host == owner).unwrap();
    let mut crashed = agents.remove(i);
    crashed.kill9().await;
    let killed = Instant::now();
    crate::common::wait_for("the crashed agent's objects to be reaped", 30, || {
        let left = objects_of(&sim, &owner);
        async move { left.is_empty().then_some(()) }
    })
    .await;
    let took = killed.elapsed();
    println!("scale-down after a crash: the survivors reaped {owner}'s objects in {took:?}");
    assert!(took <= REAP_BOUND, "reaping took {took:?}");
    crate::common::wait_for("a log line about the reaped workflow", 10, || {
        let logs: String = agents.iter().map(Proc::log).collect();
        async move { logs.contains("reaped workflow 321 of agent").then_some(()) }
    })
    .await;
    // Once nothing of it is left, its Lease costs the survivors one list of Leases per pass:
    // three more passes each, and not one list of its objects.
    let dead_selector = format!("woodpecker-k8s-agent%2Fagent%3D{owner}");
    let lists_of_dead = |sim: &Sim| {
        sim.requests()
            .iter()
            .filter(|r| r.method == "GET" && !r.path.ends_with("/leases") && r.query.contains(&dead_selector))
            .count()
    };
    let lease_lists = |sim: &Sim| {
        sim.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/leases"))
            .count()
    };
    // (A survivor marks it clean on its first pass that finds nothing, not even a terminating
    // claim: two passes each after the reaping.)
    let settled = lease_lists(&sim) + 4;
    crate::common::wait_for("two more passes of each survivor", 30, || {
        let n = lease_lists(&sim);
        async move { (n >= settled).then_some(()) }
    })
    .await;
    let (before, passes) = (lists_of_dead(&sim), lease_lists(&sim));
    crate::common::wait_for("three more passes of each survivor", 30, || {
        let n = lease_lists(&sim);
        async move { (n >= passes + 6).then_some(()) }
    })
    .await;
    assert_eq!(
        lists_of_dead(&sim),
        before,
        "a reaped agent's objects are not listed again"
    );
    // The survivors keep working.
    server.state.push(workflow("322", &[("after", &["true"])], &[]));
    server.state.until(30, "322 done", |c| done(c, "322")).await;
    for a in agents {
        let (code, log) = a.stop().await;
        assert_eq!(code, Some(0), "{log}");
    }
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}

/// xorshift64: reproducible randomness (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn created_secs(o: &Value) -> i64 {
    o["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(kube::time::parse_rfc3339)
        .map_or(0, |s| s.0)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// 20 workflows across 3 agents (one workflow at a time each), with random kill -9 of a busy
/// agent and a restart under the same name. Every workflow ends done or lost with its agent;
/// no step of a dead process runs longer than the reaping bound after the kill; nothing is left.
#[tokio::test]
async fn soak_random_kill_9_and_restarts_leave_nothing() {
    const WORKFLOWS: usize = 20;
    const KILLS: usize = 5;
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64)
        .max(1); // xorshift stays at 0 forever
    let mut rng = Rng(seed);
    let sim = crate::common::start_sim().await;
    // Each step: 6 lines 200 ms apart.
    sim.script(
        ScriptRule::prefix("wp-")
            .logs(["1", "2", "3", "4", "5", "6"])
            .every(Duration::from_millis(200)),
    );
    let server = Server::start(16).await;
    let dir = temp_dir("lease-soak");
    let hosts: Vec<String> = (0..3).map(|i| format!("soak-{i}")).collect();
    let mut agents: Vec<Option<Proc>> = hosts
        .iter()
        .map(|h| Some(Proc::spawn(&server, &sim, &dir, h, &[])))
        .collect();
    let ids: Vec<String> = (0..WORKFLOWS).map(|i| format!("4{i:02}")).collect();
    for id in &ids {
        server.state.push(workflow(id, &[("step", &["make"])], &[]));
    }

    // Watch the cluster: a pod of a killed process still running past the bound is a violation.
    let kills: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop_watch = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (kills, violations, stop) = (kills.clone(), violations.clone(), stop_watch.clone());
        let pods = {
            let cfg = sim.kube_config();
            kube::Api::<kube::types::Pod>::namespaced(kube::Client::new(cfg).unwrap(), NS)
        };
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                if let Ok(list) = pods.list(&Default::default()).await {
                    let now = unix_now();
                    for p in list.items {
                        let v = serde_json::to_value(&p).unwrap();
                        let agent = v["metadata"]["labels"][AGENT_LABEL].as_str().unwrap_or("").to_string();
                        let running = v["status"]["phase"] == "Running";
                        for (host, at) in kills.lock().unwrap().iter() {
                            let late = now - at > REAP_BOUND.as_secs_f64();
                            if *host == agent && running && late && (created_secs(&v) as f64) <= *at {
                                violations.lock().unwrap().push(format!(
                                    "{} of {host} runs {:.1}s after the kill",
                                    p.metadata.name,
                                    now - at
                                ));
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Kill a busy agent now and then; restart it under its name a moment later.
    let started = Instant::now();
    let mut lost: BTreeSet<String> = BTreeSet::new();
    let mut restarts = 0;
    let mut reaped = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(800 + rng.below(1200))).await;
        let busy: Vec<(String, String)> = sim
            .objects("pods", Some(NS))
            .iter()
            .filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                (
                    p["metadata"]["labels"][AGENT_LABEL].as_str().unwrap_or("").to_string(),
                    p["metadata"]["labels"]["woodpecker-ci.org/task-uuid"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .filter(|(a, _)| agents[hosts.iter().position(|h| h == a).unwrap()].is_some())
            .collect();
        if busy.is_empty() {
            continue;
        }
        let (host, task) = busy[rng.below(busy.len() as u64) as usize].clone();
        let i = hosts.iter().position(|h| *h == host).unwrap();
        let mut p = agents[i].take().unwrap();
        p.kill9().await;
        reaped += p.log().matches("reaped workflow").count();
        kills.lock().unwrap().push((host.clone(), unix_now()));
        lost.insert(task);
        // Back at once (it waits out its old Lease, then sweeps its own leftovers) or late,
        // after the others have reaped them (Lease 3 s + grace 2 s).
        let delay = match rng.below(2) {
            0 => rng.below(1000),
            _ => 6000 + rng.below(1000),
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        agents[i] = Some(Proc::spawn(&server, &sim, &dir, &host, &[]));
        restarts += 1;
    }
    let kills_done = kills.lock().unwrap().len();

    // Every workflow ends: done, or lost with the process that ran it (a server would hand it
    // out again after a minute; the reaper made sure nothing of it still runs by then).
    let lost_now = lost.clone();
    let ids_now = ids.clone();
    server
        .state
        .until(120, "every workflow done or lost", move |c| {
            ids_now.iter().all(|id| done(c, id) || lost_now.contains(id))
        })
        .await;
    let calls = server.state.calls();
    let finished = ids.iter().filter(|id| done(&calls, id)).count();
    let lost_count = ids.iter().filter(|id| !done(&calls, id)).count();
    // Wait out the reaping bound after the last kill, then stop every agent.
    let last_kill = kills.lock().unwrap().last().cloned();
    if let Some((_, at)) = last_kill {
        let wait = at + REAP_BOUND.as_secs_f64() - unix_now();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
    for p in agents.into_iter().flatten() {
        let (code, log) = p.stop().await;
        assert_eq!(code, Some(0), "{log}");
        reaped += log.matches("reaped workflow").count();
    }
    stop_watch.store(true, SeqCst);
    watcher.await.unwrap();
    let left = leftovers(&sim).await;
    println!(
        "soak (seed {seed:#x}): {WORKFLOWS} workflows, 3 agents, {kills_done} kill -9, {restarts} restarts: \
         {finished} done, {lost_count} lost with their agent, {reaped} reap lines from other agents (the rest reaped by \
         the restarted agent's own sweep), {} objects left, {} late steps, {:?}",
        left.len(),
        violations.lock().unwrap().len(),
        started.elapsed()
    );
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(*violations.lock().unwrap(), Vec::<String>::new());
    assert_eq!(finished + lost_count, WORKFLOWS);
    assert!(kills_done >= 1, "the soak killed nothing");
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}

/// A killed `exec` (a fresh identity per run) leaves its objects and its Lease; an agent reaps
/// both once the Lease has run out.
#[tokio::test]
async fn an_agent_reaps_what_a_killed_exec_left() {
    let sim = crate::common::start_sim().await;
    sim.script(ScriptRule::prefix("wp-").logs(["up"]).run_until_deleted());
    let dir = temp_dir("lease-exec");
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "steps:\n  long:\n    image: alpine\n    commands: [sleep 600]\n",
    )
    .unwrap();
    let mut exec = tokio::process::Command::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"))
        .args(["exec", "--kubeconfig"])
        .arg(sim.kubeconfig_path())
        .current_dir(&dir)
        .envs(LEASE_ENV)
        .envs(BACKEND_ENV)
        .env_remove("KUBECONFIG")
        .stdout(std::fs::File::create(dir.join("exec.out")).unwrap())
        .stderr(std::fs::File::create(dir.join("exec.err")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lease_of = |sim: &Sim| -> Option<String> {
        sim.objects("leases", Some(NS)).into_iter().find_map(|l| {
            (l["metadata"]["labels"]["woodpecker-k8s-agent/lease"] == "exec")
                .then(|| l["metadata"]["labels"][AGENT_LABEL].as_str().unwrap().to_string())
        })
    };
    let run = crate::common::wait_for("exec's step to run", 30, || {
        let running = sim
            .objects("pods", Some(NS))
            .iter()
            .any(|p| p["status"]["phase"] == "Running");
        let lease = lease_of(&sim);
        async move { lease.filter(|_| running) }
    })
    .await;
    assert!(run.starts_with("exec-"), "{run}");
    assert!(!objects_of(&sim, &run).is_empty());
    exec.start_kill().unwrap();
    exec.wait().await.unwrap();
    let killed = Instant::now();

    let server = Server::start(16).await;
    let agent = Proc::spawn(&server, &sim, &dir, "agent-x", &[]);
    crate::common::wait_for("the exec run's objects and Lease to go", 30, || {
        let gone = objects_of(&sim, &run).is_empty() && lease_of(&sim).is_none();
        async move { gone.then_some(()) }
    })
    .await;
    println!("kill -9 of exec to its objects and Lease gone: {:?}", killed.elapsed());
    assert!(killed.elapsed() <= REAP_BOUND + Duration::from_secs(2));
    agent.wait_log(&format!("of agent {run}"), 10).await;
    let (code, log) = agent.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}

/// A holder notices when its Lease was taken over (a partition healed, an operator's edit): it
/// fires `lost`, naming the new holder, and stops renewing; a clean release leaves no holder and
/// keeps the agent id.
#[tokio::test]
async fn a_holder_notices_a_takeover_and_a_release_keeps_the_agent_id() {
    use woodpecker_k8s_agent::agent::{LeaseOptions, acquire_lease};
    use woodpecker_k8s_agent::backend::Holder;
    let sim = crate::common::start_sim().await;
    let client = kube::Client::new(sim.kube_config()).unwrap();
    let opts = |identity: &str| LeaseOptions {
        namespace: NS.into(),
        agent: "agent-l".into(),
        holder: Holder::Agent,
        identity: identity.into(),
        duration: Duration::from_secs(1),
    };
    let never = woodpecker_k8s_agent::Shutdown::never;
    let first = acquire_lease(client.clone(), opts("one"), never())
        .await
        .unwrap()
        .unwrap();
    first.set_agent_id(7).await.unwrap();
    first.release().await;
    // Released: the next holder takes it at once and finds the id.
    let second = acquire_lease(client.clone(), opts("two"), never())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.agent_id().await, Some(7));
    let leases: kube::Api<kube::types::Lease> = kube::Api::namespaced(client, NS);
    let l = leases.get("wp-agent-agent-l").await.unwrap();
    assert_eq!(l.spec.holder_identity.as_deref(), Some("two"));
    assert_eq!(
        l.spec.lease_transitions,
        Some(1),
        "one, released, then two: one transition"
    );
    // Someone else writes it: the holder's next renewal finds out.
    let mut stolen = l.clone();
    stolen.spec.holder_identity = Some("intruder".into());
    leases.replace(&stolen).await.unwrap();
    let keep = tokio::spawn(second.clone().keep(never()));
    let mut lost = second.lost();
    tokio::time::timeout(Duration::from_secs(5), lost.wait())
        .await
        .expect("the takeover is noticed within a renewal");
    keep.await.unwrap();
    let why = second.why_lost().unwrap();
    assert!(why.contains("\"intruder\""), "{why}");
    sim.shutdown().await;
}

/// SIGTERM with a workflow that would run forever: at the drain timeout it is cancelled, its
/// objects deleted and the Lease released, well within the grace period the StatefulSet gives
/// over the drain (`terminationGracePeriodSeconds` minus `WOODPECKER_DRAIN_TIMEOUT`, checked in
/// `tests/deploy.rs`: 60 s).
#[tokio::test]
async fn sigterm_cancels_at_the_drain_timeout_cleans_up_and_releases_the_lease() {
    let sim = crate::common::start_sim().await;
    sim.script(
        ScriptRule::name(&pod("331", "forever"))
            .logs(["up"])
            .run_until_deleted(),
    );
    let server = Server::start(16).await;
    let dir = temp_dir("lease-term");
    let agent = Proc::spawn(&server, &sim, &dir, "agent-t", &[]);
    server.state.push(workflow("331", &[("forever", &["serve"])], &[]));
    running_pod(&sim, &pod("331", "forever")).await;
    let stopping = Instant::now();
    let (code, log) = agent.stop().await;
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "{log}");
    println!("SIGTERM to exit with a workflow cancelled at the 2 s drain timeout: {took:?}");
    assert!(took < Duration::from_secs(2 + 60), "{took:?}");
    let calls = server.state.calls();
    assert_eq!(
        flow(&calls, "331").last().map(String::as_str),
        Some("done canceled=true error=\"\""),
        "{log}"
    );
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let lease = sim.object("leases", NS, "wp-agent-agent-t").unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "released: {lease}");
    assert_eq!(lease["metadata"]["annotations"]["woodpecker-k8s-agent/agent-id"], "101");
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}
