//! The simulated cluster driven by the real kubectl (1.32) through the kubeconfig it writes.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sim::ScriptRule;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{kubectl, kubectl_command, start_sim, wait_pod};

#[tokio::test]
async fn version_and_namespaces() {
    let sim = start_sim().await;
    let (code, out, err) = kubectl(&sim, &["version"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Server Version: v1.32.0-sim"), "{out}");
    let (code, out, err) = kubectl(&sim, &["get", "ns"]).await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "STATUS", "AGE"]);
    assert_eq!((rows[1][0], rows[1][1]), ("default", "Active"));
    assert_eq!(rows[2][0], "woodpecker");
    let (code, out, err) = kubectl(&sim, &["get", "nodes"]).await;
    assert_eq!(code, 0, "{err}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[4]),
        ("sim-node-1", "Ready", "v1.32.0-sim"),
        "{out}"
    );
    // -o wide: the apiserver's columns, addresses by type (`<none>` without one), the kernel.
    let (code, out, err) = kubectl(&sim, &["get", "nodes", "-o", "wide"]).await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows[0],
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ],
        "{out}"
    );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(
        rows[1][5..],
        ["10.0.0.10", "<none>", "simulated", kernel.trim(), "sim://1.0"],
        "{out}"
    );
    sim.shutdown().await;
}

/// The sim's impersonation agrees with kubectl's headers, so our client's test of the same
/// (tests/client.rs) is checked against a real client.
#[tokio::test]
async fn kubectl_as_acts_as_the_impersonated_user() {
    let sim = start_sim().await;
    let (code, _, err) = kubectl(
        &sim,
        &[
            "get",
            "pods",
            "--as=system:serviceaccount:woodpecker:agent",
            "--as-group=ci",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let users: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/pods"))
        .map(|r| r.user.clone())
        .collect();
    assert_eq!(
        users,
        ["system:serviceaccount:woodpecker:agent"],
        "{:?}",
        sim.requests()
    );
    let (code, _, err) = kubectl(&sim, &["get", "pods", "--as-group=ci"]).await;
    assert_ne!(code, 0, "groups without a user are refused");
    assert!(err.contains("without impersonating a user"), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn create_get_logs_events_and_delete() {
    let sim = start_sim().await;
    sim.script(
        ScriptRule::name("p1")
            .logs(["hello", "world"])
            .every(Duration::from_millis(300)),
    );
    let (code, _, err) = kubectl(&sim, &["get", "pods"]).await;
    assert_eq!(code, 0);
    assert!(err.contains("No resources found in woodpecker namespace."), "{err}");

    let file = sim.dir().join("pod.json");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "labels": {"app": "demo"}},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "alpine:3"}]}});
    std::fs::write(&file, pod.to_string()).unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = kubectl(&sim, &["create", "-f", path]).await;
    assert_eq!((code, out.trim()), (0, "pod/p1 created"), "{err}");
    let (code, _, err) = kubectl(&sim, &["create", "-f", path]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("Error from server (AlreadyExists)") && err.contains("pods \"p1\" already exists"),
        "{err}"
    );

    // logs -f streams until the container ends (on a loaded machine it may have ended already:
    // then it prints the whole log at once).
    wait_pod(&sim, "woodpecker", "p1", "Running", |p| {
        p["status"]["phase"] == "Running" || p["status"]["phase"] == "Succeeded"
    })
    .await;
    let (code, out, err) = kubectl(&sim, &["logs", "-f", "p1"]).await;
    assert_eq!((code, out.as_str()), (0, "hello\nworld\n"), "{err}");

    let (code, out, _) = kubectl(&sim, &["get", "pods", "-l", "app=demo"]).await;
    assert_eq!(code, 0);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["p1", "0/1", "Completed", "0"], "{out}");
    let (_, out, _) = kubectl(&sim, &["get", "pod", "p1", "-o", "jsonpath={.status.phase}"]).await;
    assert_eq!(out, "Succeeded");

    let (code, out, _) = kubectl(&sim, &["get", "events", "--field-selector", "involvedObject.name=p1"]).await;
    assert_eq!(code, 0);
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(out.contains(reason), "{reason} missing in {out}");
    }
    assert!(out.contains("pod/p1"));
    // -o wide: the apiserver's column order, the source as `component, host`, the count.
    let (code, out, err) = kubectl(
        &sim,
        &[
            "get",
            "events",
            "-o",
            "wide",
            "--field-selector",
            "involvedObject.name=p1,reason=Started",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "LAST",
            "SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST",
            "SEEN",
            "COUNT",
            "NAME"
        ],
        "{out}"
    );
    let row = out.lines().nth(1).unwrap();
    assert!(
        row.contains("pod/p1   spec.containers{main}   kubelet, sim-node-1   Started container main"),
        "{out}"
    );
    assert!(row.split_whitespace().rev().nth(1) == Some("1"), "count 1: {out}");

    let (code, out, err) = kubectl(&sim, &["delete", "pod", "p1"]).await;
    assert_eq!((code, out.trim()), (0, "pod \"p1\" deleted"), "{err}");
    let (code, _, err) = kubectl(&sim, &["get", "pod", "p1"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("Error from server (NotFound): pods \"p1\" not found"),
        "{err}"
    );

    let (code, _, err) = kubectl(&sim, &["run", "Bad_Name", "--image=x", "--restart=Never"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("The Pod \"Bad_Name\" is invalid"), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_waits_for_graceful_termination_of_a_running_pod() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("svc").run_until_deleted());
    let (code, _, err) = kubectl(&sim, &["run", "svc", "--image=redis", "--restart=Never"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = kubectl(&sim, &["wait", "--for=condition=Ready", "pod/svc", "--timeout=20s"]).await;
    assert_eq!((code, out.trim()), (0, "pod/svc condition met"), "{err}");
    let (code, out, err) = kubectl(&sim, &["delete", "pod", "svc"]).await;
    assert_eq!((code, out.trim()), (0, "pod \"svc\" deleted"), "{err}");
    assert!(sim.object("pods", "woodpecker", "svc").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn get_pods_watch_prints_rows_as_pods_change() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("w1").logs(["x"]).every(Duration::from_millis(200)));
    let mut child = kubectl_command(&sim, &["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Create after the watch is open; the first rows arrive as the pod moves.
    let raw = crate::common::Raw::new(&sim);
    crate::common::wait_for("kubectl's watch", 20, || {
        let open = sim.requests().iter().any(|r| r.watch);
        async move { open.then_some(()) }
    })
    .await;
    let pod = json!({"metadata": {"name": "w1"}, "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "alpine:3"}]}});
    assert_eq!(raw.post("/api/v1/namespaces/woodpecker/pods", &pod).await.status, 201);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("Completed")) {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a row in time")
            .unwrap();
        let Some(line) = line else {
            panic!("kubectl get -w ended early: {seen:?}")
        };
        seen.push(line);
    }
    assert!(seen[0].starts_with("NAME"), "{seen:?}");
    assert!(seen.iter().skip(1).all(|l| l.starts_with("w1 ")), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("Running")), "{seen:?}");
    child.kill().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_sim_command_serves_until_killed_over_plain_http_too() {
    let dir = std::env::temp_dir().join(format!("wp-sim-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"))
        .args(["sim", "--http", "--runner", "scripted", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let path = tokio::time::timeout(Duration::from_secs(20), out.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(std::path::Path::new(&path), dir.join("kubeconfig"));
    let kc = std::fs::read_to_string(&path).unwrap();
    assert!(kc.contains("server: http://127.0.0.1:"), "{kc}");
    let run = tokio::process::Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .args(["get", "ns", "-o", "name"])
        .env("KUBECONFIG", &path)
        .env("KUBECACHEDIR", dir.join("cache"))
        .output()
        .await
        .expect("kubectl is required: install kubectl 1.32 or set KUBECTL");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "namespace/default\nnamespace/woodpecker\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // SIGTERM stops it cleanly.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// ConfigMaps through `create -f` (JSON), get, replace (a stale resourceVersion is a Conflict),
/// an immutable one refusing new data, and delete.
#[tokio::test]
async fn config_maps_create_get_replace_conflict_and_delete() {
    let sim = start_sim().await;
    let write = |name: &str, v: serde_json::Value| {
        let f = sim.dir().join(name);
        std::fs::write(&f, v.to_string()).unwrap();
        f.to_str().unwrap().to_string()
    };
    let cm = write(
        "cm.json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "1", "b": "2"}}),
    );
    let (code, out, err) = kubectl(&sim, &["create", "-f", &cm]).await;
    assert_eq!((code, out.trim()), (0, "configmap/c1 created"), "{err}");
    let (code, _, err) = kubectl(&sim, &["create", "-f", &cm]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("Error from server (AlreadyExists)") && err.contains("configmaps \"c1\" already exists"),
        "{err}"
    );
    let (code, out, err) = kubectl(&sim, &["get", "cm"]).await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(&rows[1][..2], ["c1", "2"], "{out}");

    let (_, rv, _) = kubectl(
        &sim,
        &["get", "configmap", "c1", "-o", "jsonpath={.metadata.resourceVersion}"],
    )
    .await;
    let stale = write(
        "stale.json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "resourceVersion": "1"}, "data": {"a": "9"}}),
    );
    let (code, _, err) = kubectl(&sim, &["replace", "-f", &stale]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("Error from server (Conflict)")
            && err.contains("Operation cannot be fulfilled on configmaps \"c1\": the object has been modified"),
        "{err}"
    );
    let fresh = write(
        "fresh.json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "resourceVersion": rv}, "data": {"a": "3"}}),
    );
    let (code, out, err) = kubectl(&sim, &["replace", "-f", &fresh]).await;
    assert_eq!((code, out.trim()), (0, "configmap/c1 replaced"), "{err}");
    assert_eq!(
        sim.object("configmaps", "woodpecker", "c1").unwrap()["data"],
        json!({"a": "3"})
    );

    let bad = write(
        "bad.json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}, "data": {"not a key": "x"}}),
    );
    let (code, _, err) = kubectl(&sim, &["create", "-f", &bad]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("The ConfigMap \"c2\" is invalid") && err.contains("data[not a key]"),
        "{err}"
    );
    let frozen = write(
        "frozen.json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c3"}, "immutable": true, "data": {"a": "1"}}),
    );
    let (code, _, err) = kubectl(&sim, &["create", "-f", &frozen]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = kubectl(
        &sim,
        &["patch", "cm", "c3", "--type=merge", "-p", r#"{"data":{"a":"2"}}"#],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("field is immutable when `immutable` is set"), "{err}");

    for name in ["c1", "c3"] {
        let (code, out, err) = kubectl(&sim, &["delete", "cm", name]).await;
        assert_eq!(
            (code, out.trim()),
            (0, format!("configmap \"{name}\" deleted").as_str()),
            "{err}"
        );
    }
    let (code, _, err) = kubectl(&sim, &["get", "cm", "c1"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("configmaps \"c1\" not found"), "{err}");
    assert!(sim.objects("configmaps", None).is_empty());
    sim.shutdown().await;
}

/// `kubectl create namespace|configmap|secret` use kubectl's typed clients, which send protobuf
/// (`application/vnd.kubernetes.protobuf`): the sim decodes those bodies.
#[tokio::test]
async fn kubectl_create_namespace_configmap_and_secret_send_protobuf() {
    let sim = start_sim().await;
    let (code, out, err) = kubectl(&sim, &["create", "namespace", "foo", "-v=8"]).await;
    assert_eq!((code, out.trim()), (0, "namespace/foo created"), "{err}");
    assert!(
        err.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl sent protobuf: {err}"
    );
    let ns = sim.object("namespaces", "", "foo").expect("namespace foo");
    assert_eq!(ns["status"]["phase"], "Active");
    let (code, _, err) = kubectl(&sim, &["create", "namespace", "foo"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("Error from server (AlreadyExists)") && err.contains("namespaces \"foo\" already exists"),
        "{err}"
    );

    let file = sim.dir().join("blob.bin");
    std::fs::write(&file, [0u8, 159, 146, 150]).unwrap();
    let from_file = format!("--from-file=blob={}", file.display());
    let (code, out, err) = kubectl(
        &sim,
        &[
            "create",
            "configmap",
            "c1",
            "-n",
            "foo",
            "--from-literal=greeting=hello",
            &from_file,
        ],
    )
    .await;
    assert_eq!((code, out.trim()), (0, "configmap/c1 created"), "{err}");
    let cm = sim.object("configmaps", "foo", "c1").expect("configmap c1");
    assert_eq!(cm["data"], json!({"greeting": "hello"}));
    assert_eq!(cm["binaryData"], json!({"blob": "AJ+Slg=="}), "not UTF-8: binaryData");
    let (code, _, err) = kubectl(&sim, &["create", "configmap", "c1", "-n", "foo", "--from-literal=a=b"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("configmaps \"c1\" already exists"), "{err}");
    let (code, _, err) = kubectl(
        &sim,
        &["create", "configmap", "c2", "-n", "foo", "--from-literal=bad key=b"],
    )
    .await;
    assert_eq!(code, 1, "{err}");

    let (code, out, err) = kubectl(
        &sim,
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "-n",
            "foo",
            "--from-literal=token=t0k",
        ],
    )
    .await;
    assert_eq!((code, out.trim()), (0, "secret/s1 created"), "{err}");
    let s = sim.object("secrets", "foo", "s1").expect("secret s1");
    assert_eq!(
        (s["type"].as_str(), s["data"]["token"].as_str()),
        (Some("Opaque"), Some("dDBr"))
    );

    let (code, out, err) = kubectl(&sim, &["delete", "namespace", "foo"]).await;
    assert_eq!((code, out.trim()), (0, "namespace \"foo\" deleted"), "{err}");
    assert!(sim.object("namespaces", "", "foo").is_none());
    assert!(sim.objects("configmaps", Some("foo")).is_empty() && sim.objects("secrets", Some("foo")).is_empty());
    sim.shutdown().await;
}

/// A claim as `kubectl get pvc -o wide` shows it from a real apiserver: Pending with no volume
/// until a pod uses it (local-path binds on first consumer), then Bound with the volume, its
/// capacity and access modes; the volume mode defaulted, no attributes class.
#[tokio::test]
async fn kubectl_get_pvc_wide_before_and_after_binding() {
    let sim = start_sim().await;
    let file = sim.dir().join("claim.json");
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c1"},
                       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    std::fs::write(&file, claim.to_string()).unwrap();
    let (code, _, err) = kubectl(&sim, &["create", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    let rows = |out: &str| -> Vec<Vec<String>> {
        out.lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    };
    let (code, out, err) = kubectl(&sim, &["get", "pvc", "c1", "-o", "wide"]).await;
    assert_eq!(code, 0, "{err}");
    let r = rows(&out);
    assert_eq!(
        r[0],
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE",
            "VOLUMEMODE"
        ],
        "{out}"
    );
    // Empty cells (volume, capacity, modes) print as nothing.
    let r1 = &rows(&out)[1];
    assert_eq!(
        (r1.len(), &r1[..4], r1[5].as_str()),
        (
            6,
            &["c1", "Pending", "local-path", "<unset>"].map(String::from)[..],
            "Filesystem"
        ),
        "{out}"
    );
    // A pod that mounts it binds it.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "alpine:3",
                              "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
                              "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "c1"}}]}});
    std::fs::write(&file, pod.to_string()).unwrap();
    let (code, _, err) = kubectl(&sim, &["create", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    crate::common::wait_for("the claim to bind", 10, || async {
        (sim.object("persistentvolumeclaims", "woodpecker", "c1")?["status"]["phase"] == "Bound").then_some(())
    })
    .await;
    let (code, out, err) = kubectl(&sim, &["get", "pvc", "c1", "-o", "wide"]).await;
    assert_eq!(code, 0, "{err}");
    let r1 = &rows(&out)[1];
    let volume = sim.object("persistentvolumeclaims", "woodpecker", "c1").unwrap()["spec"]["volumeName"].clone();
    assert_eq!(r1.len(), 9, "{out}");
    assert_eq!(
        [&r1[..6], &r1[8..]].concat(),
        [
            "c1",
            "Bound",
            volume.as_str().unwrap(),
            "1Gi",
            "RWO",
            "local-path",
            "Filesystem"
        ],
        "{out}"
    );
    assert_eq!(r1[6], "<unset>", "{out}");
    sim.shutdown().await;
}
