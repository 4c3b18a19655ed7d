//! Container limits on the host runner: a cgroup per container (v2, or v1 as on the build
//! machines), an OOM kill reported as `OOMKilled` with exit 137, CPU quotas, nothing left behind;
//! and `exec --embedded` failing a step that outgrows its 32Mi limit.

use std::path::Path;

use serde_json::json;
use sim::runner::cgroup;
use sim::{RunnerKind, SimConfig};

use super::{NS, phase, pods_path};
use crate::common::{Raw, exec_embedded, fast_config, start_sim_with, wait_for, wait_pod};

/// Allocates 500 MB for real: `tail` keeps a newline-free input whole (no python needed).
const HOG: &str = "head -c 500M /dev/zero | tail > /dev/null";

/// These machines can enforce limits; a machine that cannot fails here with the reason (the
/// sim then runs containers without limits and says so at start).
fn require_limits() {
    if let Some(why) = cgroup::support().unavailable() {
        panic!("container limits cannot be enforced on this machine: {why}");
    }
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

#[tokio::test]
async fn memory_and_cpu_limits_get_a_cgroup_and_an_oom_kill_is_oomkilled() {
    require_limits();
    let sim = start_sim_with(SimConfig {
        runner: RunnerKind::Host,
        ..fast_config()
    })
    .await;
    let raw = Raw::new(&sim);
    let pod = |name: &str, script: &str, limits: serde_json::Value| {
        json!({"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "alpine", "command": ["/bin/sh", "-c", script],
            "resources": {"limits": limits}}]}})
    };
    // A limited container that waits: its cgroup carries the limits while it runs.
    let waiter = pod(
        "waiter",
        "echo ready; exec sleep 30",
        json!({"memory": "64Mi", "cpu": "250m"}),
    );
    assert_eq!(raw.post(&pods_path(), &waiter).await.status, 201);
    wait_for("the limited container to run", 20, || {
        let l = sim.log_lines(NS, "waiter", "main");
        async move { (l == ["ready"]).then_some(()) }
    })
    .await;
    let dirs = cgroup::support().container_cgroups();
    let memory = dirs
        .iter()
        .find_map(|d| read(d, "memory.limit_in_bytes").or_else(|| read(d, "memory.max")));
    assert_eq!(memory.as_deref(), Some("67108864"), "{dirs:?}");
    let cpu = dirs
        .iter()
        .find_map(|d| read(d, "cpu.cfs_quota_us").or_else(|| read(d, "cpu.max")));
    if let Some(cpu) = cpu {
        assert!(cpu == "25000" || cpu == "25000 100000", "{cpu}");
    }
    raw.delete(
        &format!("{}/waiter", pods_path()),
        Some(&json!({"gracePeriodSeconds": 0})),
    )
    .await;

    let hog = pod("hog", HOG, json!({"memory": "32Mi"}));
    assert_eq!(raw.post(&pods_path(), &hog).await.status, 201);
    let p = wait_pod(&sim, NS, "hog", "Failed", |p| {
        matches!(phase(p), "Failed" | "Succeeded")
    })
    .await;
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (phase(&p), t["exitCode"].as_i64(), t["reason"].as_str()),
        ("Failed", Some(137), Some("OOMKilled")),
        "{p}"
    );

    // Without a limit the same command is not a container limit's business.
    let free = pod("free", "head -c 50M /dev/zero | tail > /dev/null", json!({}));
    assert_eq!(raw.post(&pods_path(), &free).await.status, 201);
    let p = wait_pod(&sim, NS, "free", "done", |p| matches!(phase(p), "Failed" | "Succeeded")).await;
    assert_eq!(phase(&p), "Succeeded", "{p}");

    wait_for("the waiter to be gone", 20, || {
        let gone = sim.object("pods", NS, "waiter").is_none();
        async move { gone.then_some(()) }
    })
    .await;
    assert_eq!(
        cgroup::support().container_cgroups(),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left behind"
    );
    sim.shutdown().await;
}

/// The case: `exec --embedded` on a step limited to 32Mi that allocates 500 MB.
#[test]
fn exec_embedded_fails_a_step_over_its_memory_limit_with_oomkilled() {
    require_limits();
    let dir = std::env::temp_dir().join(format!("wp-sim-oom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = format!(
        "steps:\n  hog:\n    image: alpine\n    commands: [\"{HOG}\"]\n    backend_options:\n      kubernetes:\n        resources:\n          limits:\n            memory: 32Mi\n  after:\n    image: alpine\n    commands: [echo never]\n"
    );
    std::fs::write(dir.join(".woodpecker.yaml"), yaml).unwrap();
    let (code, text) = exec_embedded(&[], &dir);
    assert_eq!(code, Some(1), "{text}");
    // The summary: `hog  failure  137  <duration>`, then the backend's reason for OOMKilled.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("hog "))
        .unwrap_or_else(|| panic!("no summary row for hog:\n{text}"));
    let cols: Vec<&str> = lines[at].split_whitespace().collect();
    assert_eq!(&cols[1..3], ["failure", "137"], "{text}");
    assert_eq!(lines.get(at + 1).map(|l| l.trim()), Some("error: OOM killed"), "{text}");
    assert!(!text.contains("cannot enforce container limits"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
