//! The host runner: commands as local processes in a private mount namespace, volumes, signals.

use std::time::Duration;

use serde_json::json;
use sim::{RunnerKind, SimConfig};

use super::{NS, phase, pods_path};
use crate::common::{Raw, fast_config, start_sim_with, wait_for, wait_pod};

async fn host_sim() -> sim::Sim {
    start_sim_with(SimConfig {
        runner: RunnerKind::Host,
        ..fast_config()
    })
    .await
}

#[tokio::test]
async fn host_runner_runs_the_command_with_the_pvc_mounted_at_its_path() {
    let sim = host_sim().await;
    let raw = Raw::new(&sim);
    let pvc = json!({"metadata": {"name": "ws"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    assert_eq!(
        raw.post(&format!("/api/v1/namespaces/{NS}/persistentvolumeclaims"), &pvc)
            .await
            .status,
        201
    );
    let pod = json!({"metadata": {"name": "step"}, "spec": {"restartPolicy": "Never",
        "volumes": [{"name": "ws", "persistentVolumeClaim": {"claimName": "ws"}}],
        "containers": [{"name": "step", "image": "alpine:3", "workingDir": "/woodpecker/src",
            "command": ["/bin/sh", "-c"], "args": ["cd /woodpecker/src && pwd && echo hi > f && echo \"$GREETING\" && echo err >&2"],
            "env": [{"name": "GREETING", "value": "hello from env"}],
            "volumeMounts": [{"name": "ws", "mountPath": "/woodpecker"}]}]}});
    assert_eq!(raw.post(&pods_path(), &pod).await.status, 201);
    let p = wait_pod(&sim, NS, "step", "finished", |p| {
        matches!(phase(p), "Succeeded" | "Failed")
    })
    .await;
    let log = raw.get(&format!("{}/step/log", pods_path())).await.text();
    assert_eq!(phase(&p), "Succeeded", "log: {log}");
    assert_eq!(log, "/woodpecker/src\nhello from env\nerr\n");
    let f = sim.claim_dir(NS, "ws").join("src").join("f");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "hi\n");
    assert!(
        !std::path::Path::new("/woodpecker").exists(),
        "the host's root was not touched"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn host_runner_exit_codes_entrypoints_and_kill_on_delete() {
    let sim = host_sim().await;
    let raw = Raw::new(&sim);
    let mk = |name: &str, command: serde_json::Value, labels: serde_json::Value| {
        let mut c = json!({"name": "main", "image": "postgres:16"});
        if !command.is_null() {
            c["command"] = command;
        }
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"restartPolicy": "Never", "containers": [c]}})
    };
    raw.post(&pods_path(), &mk("fail", json!(["/bin/sh", "-c", "exit 7"]), json!({})))
        .await;
    raw.post(&pods_path(), &mk("plugin", serde_json::Value::Null, json!({})))
        .await;
    raw.post(
        &pods_path(),
        &mk("db", serde_json::Value::Null, json!({"service": "db"})),
    )
    .await;
    raw.post(
        &pods_path(),
        &mk(
            "sleeper",
            json!(["/bin/sh", "-c", "echo started; exec sleep 30"]),
            json!({}),
        ),
    )
    .await;
    let p = wait_pod(&sim, NS, "fail", "Failed", |p| phase(p) == "Failed").await;
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        7
    );
    wait_pod(&sim, NS, "plugin", "Succeeded", |p| phase(p) == "Succeeded").await;
    assert!(sim.log_lines(NS, "plugin", "main")[0].contains("entrypoint of image postgres:16 was not run"));
    wait_pod(&sim, NS, "db", "Running", |p| phase(p) == "Running").await;
    wait_for("sleeper output", 10, || {
        let l = sim.log_lines(NS, "sleeper", "main");
        async move { (l == ["started"]).then_some(()) }
    })
    .await;
    let t = std::time::Instant::now();
    raw.delete(
        &format!("{}/sleeper", pods_path()),
        Some(&json!({"gracePeriodSeconds": 10})),
    )
    .await;
    wait_for("sleeper gone", 10, || {
        let present = sim.object("pods", NS, "sleeper").is_some();
        async move { (!present).then_some(()) }
    })
    .await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "SIGTERM ended sleep well before the grace period"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn host_runner_mounts_secret_volumes_as_files() {
    let sim = host_sim().await;
    let raw = Raw::new(&sim);
    raw.post(
        &format!("/api/v1/namespaces/{NS}/secrets"),
        &json!({"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}),
    )
    .await;
    let pod = json!({"metadata": {"name": "reader"}, "spec": {"restartPolicy": "Never",
        "volumes": [{"name": "creds", "secret": {"secretName": "creds", "items": [{"key": "token", "path": "auth/token"}]}}],
        "containers": [{"name": "main", "image": "alpine", "command": ["/bin/sh", "-c", "cat /run/wp-sim-creds/auth/token"],
            "volumeMounts": [{"name": "creds", "mountPath": "/run/wp-sim-creds"}]}]}});
    assert_eq!(raw.post(&pods_path(), &pod).await.status, 201);
    wait_pod(&sim, NS, "reader", "Succeeded", |p| phase(p) == "Succeeded").await;
    assert_eq!(sim.log_lines(NS, "reader", "main"), ["s3cret"]);
    // The mount point it needed under the host's /run is gone again.
    assert!(!std::path::Path::new("/run/wp-sim-creds").exists());
    sim.shutdown().await;
}
