//! What cluster admins ask for (issue 17), on the simulated cluster: Pod Security enforced by
//! the namespace label (as the admission plugin does) and by the agent, the per-step timeout,
//! failed pods kept for a while, admin pod patches, caches, pending while a node is added, and
//! the arch pin.

use std::time::Duration;

use kube::Client;
use kube::types::Event;
use serde_json::{Value, json};
use sim::ScriptRule;
use woodpecker_k8s_agent::backend::Backend;

use super::harness::*;
use crate::common::{kubectl, wait_for};

async fn label_namespace(h: &H, level: &str) {
    let label = format!("pod-security.kubernetes.io/enforce={level}");
    let (code, _, err) = kubectl(&h.sim, &["label", "namespace", NS, &label]).await;
    assert_eq!(code, 0, "{err}");
}

fn other_arch() -> &'static str {
    if std::env::consts::ARCH == "aarch64" {
        "amd64"
    } else {
        "arm64"
    }
}

fn with_k8s(mut s: woodpecker_k8s_agent::backend::Step, opts: Value) -> woodpecker_k8s_agent::backend::Step {
    s.backend_options.insert("kubernetes".into(), opts);
    s
}

/// The namespace says `restricted`: Woodpecker's default pod is refused by the cluster with the
/// plugin's message, and the same step passes with the agent-wide ids and the restricted
/// defaults, with no per-step setup.
#[tokio::test]
async fn a_restricted_namespace_refuses_default_pods_and_admits_the_agent_wide_defaults() {
    let h = harness().await;
    label_namespace(&h, "restricted").await;
    h.sim.script(ScriptRule::image("t/ok").logs(["ran"]));
    let s = step("build", "t/ok", "171");
    let conf = workflow("171", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "171").await.unwrap();
    let err = h.backend.start_step(&s, "171").await.unwrap_err();
    let chain = woodpecker_k8s_agent::error_chain::one_line(&err);
    assert!(chain.contains("create pod"), "{chain}");
    assert!(
        chain.contains("violates PodSecurity \"restricted:latest\"")
            && chain.contains("runAsNonRoot != true")
            && chain.contains("allowPrivilegeEscalation != false"),
        "{chain}"
    );
    assert!(h.sim.object("pods", NS, &pod_name(&s)).is_none());
    h.backend.destroy_workflow(&conf, "171").await.unwrap();

    let restricted = backend_on(
        &h.sim,
        &[
            ("STORAGE_RWX", "false"),
            ("RUN_AS_USER", "1000"),
            ("RUN_AS_GROUP", "1000"),
            ("POD_SECURITY_RESTRICTED", "true"),
            ("SECCTX_NONROOT", "true"),
        ],
    );
    let s = step("build", "t/ok", "172");
    let conf = workflow("172", std::slice::from_ref(&s));
    restricted.setup_workflow(&conf, "172").await.unwrap();
    let (lines, state) = run_step(&restricted, &s, "172").await;
    assert_eq!(state.exit_code, 0, "{state:?} {lines:?}");
    assert!(lines.contains(&"ran".to_string()), "{lines:?}");
    restricted.destroy_workflow(&conf, "172").await.unwrap();
    assert_clean(&h.sim, "172").await;
}

/// `baseline` admits root but not a privileged step.
#[tokio::test]
async fn a_baseline_namespace_refuses_privileged_steps_only() {
    let h = harness().await;
    label_namespace(&h, "baseline").await;
    let plain = step("plain", "t/ok", "173");
    let mut privileged = step("docker", "t/ok", "173");
    privileged.privileged = true;
    let conf = workflow("173", &[plain.clone(), privileged.clone()]);
    h.backend.setup_workflow(&conf, "173").await.unwrap();
    let (_, state) = run_step(&h.backend, &plain, "173").await;
    assert_eq!(state.exit_code, 0);
    let err = woodpecker_k8s_agent::error_chain::one_line(&h.backend.start_step(&privileged, "173").await.unwrap_err());
    assert!(
        err.contains("violates PodSecurity \"baseline:latest\": privileged (container"),
        "{err}"
    );
    h.backend.destroy_workflow(&conf, "173").await.unwrap();
    assert_clean(&h.sim, "173").await;
}

/// The agent enforces the level itself: the step fails with the reason in its log, and no pod
/// is sent to the cluster.
#[tokio::test]
async fn enforcing_mode_refuses_a_step_asking_for_less_with_a_log_line() {
    let h = harness_with(&[("STORAGE_RWX", "false"), ("POD_SECURITY_ENFORCE", "restricted")]).await;
    let root = with_k8s(
        step("root", "t/ok", "174"),
        json!({"securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"}}}),
    );
    let conf = workflow("174", std::slice::from_ref(&root));
    h.backend.setup_workflow(&conf, "174").await.unwrap();
    h.sim.clear_requests();
    let (lines, state) = run_step(&h.backend, &root, "174").await;
    assert_eq!(state.exit_code, 1);
    let error = state.error.expect("a reason");
    assert!(error.contains("enforces Pod Security \"restricted\""), "{error}");
    let line = lines.last().expect("a log line");
    assert!(
        line.starts_with("[kubernetes] refused:")
            && line.contains("securityContext.seccompProfile.type: Unconfined")
            && line.contains("securityContext.runAsUser: 0 (root)"),
        "{lines:#?}"
    );
    let reqs = h.sim.requests();
    assert_eq!(count(&about(&reqs, &pod_name(&root)), "POST", "/pods"), 0);
    assert!(
        !reqs.iter().any(|r| r.method == "POST" && r.path.ends_with("/pods")),
        "no pod was created"
    );
    h.backend.destroy_workflow(&conf, "174").await.unwrap();
    assert_clean(&h.sim, "174").await;
}

/// A step's own timeout (capped by the agent's maximum) fails it with a clear reason well before
/// the step would end, and its pod goes.
#[tokio::test]
async fn a_step_timeout_fails_the_step_and_its_pod_is_deleted() {
    let h = harness_with(&[("STORAGE_RWX", "false"), ("MAX_STEP_TIMEOUT", "2s")]).await;
    h.sim.script(
        ScriptRule::image("t/slow")
            .logs((0..60).map(|i| format!("line {i}")))
            .every(Duration::from_millis(500)),
    );
    let s = with_k8s(step("slow", "t/slow", "175"), json!({"timeout": "1h"}));
    let conf = workflow("175", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "175").await.unwrap();
    let t0 = std::time::Instant::now();
    let (lines, state) = run_step(&h.backend, &s, "175").await;
    let took = t0.elapsed();
    let error = state.error.clone().expect("a reason");
    assert!(
        error.starts_with("StepTimeout: the step ran past its timeout of 2s"),
        "{error}"
    );
    assert_ne!(state.exit_code, 0);
    assert!(
        took < Duration::from_secs(15),
        "{took:?}: the step runs 30 s without its timeout"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("lowered to 2s (WOODPECKER_BACKEND_K8S_MAX_STEP_TIMEOUT)")),
        "{lines:#?}"
    );
    assert!(
        h.sim
            .object("pods", NS, &pod_name(&s))
            .is_none_or(|p| p["metadata"]["deletionTimestamp"].is_string())
    );
    h.backend.destroy_workflow(&conf, "175").await.unwrap();
    assert_clean(&h.sim, "175").await;
}

/// `KEEP_FAILED_PODS`: the failed step's pod outlives its workflow (not its Secret), labelled
/// for kubectl and without the anchor's ownerReference, and the agent deletes it after the TTL;
/// a passing step's pod goes as usual.
#[tokio::test]
async fn a_failed_pod_is_kept_for_the_ttl_then_reaped() {
    let h = harness_with(&[("STORAGE_RWX", "false"), ("KEEP_FAILED_PODS", "2s")]).await;
    h.sim.script(ScriptRule::image("t/fail").logs(["boom"]).exit(3));
    let mut failing = step("fails", "t/fail", "176");
    failing.environment.insert("TOKEN".into(), "secret-value".into());
    failing.secret_mapping.insert("TOKEN".into(), "secret-value".into());
    let passing = step("passes", "t/ok", "176");
    let conf = workflow("176", &[passing.clone(), failing.clone()]);
    h.backend.setup_workflow(&conf, "176").await.unwrap();
    let (_, ok) = run_step(&h.backend, &passing, "176").await;
    assert_eq!(ok.exit_code, 0);
    let (_, bad) = run_step(&h.backend, &failing, "176").await;
    assert_eq!(bad.exit_code, 3);
    h.backend.destroy_workflow(&conf, "176").await.unwrap();
    let name = pod_name(&failing);
    let kept = h.sim.object("pods", NS, &name).expect("the failed pod is kept");
    assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");
    assert!(kept["metadata"]["labels"]["woodpecker-k8s-agent/kept-until"].is_string());
    assert!(
        kept["metadata"]
            .get("ownerReferences")
            .is_none_or(|o| o.as_array().is_some_and(Vec::is_empty))
    );
    // kubectl finds it by its label; its Secret and the rest of the workflow are gone.
    let (code, out, err) = kubectl(
        &h.sim,
        &[
            "get",
            "pods",
            "-n",
            NS,
            "-l",
            "woodpecker-k8s-agent/kept-until",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!((code, out.trim()), (0, format!("pod/{name}").as_str()), "{err}");
    assert!(h.sim.objects("secrets", Some(NS)).is_empty());
    assert!(
        h.sim
            .object("pods", NS, &pod_name(&passing))
            .is_none_or(|p| p["metadata"]["deletionTimestamp"].is_string())
    );
    // The reaper deletes it once the TTL is over.
    let t0 = std::time::Instant::now();
    wait_for("the kept pod to be reaped", 10, || async {
        h.sim.object("pods", NS, &name).is_none().then_some(())
    })
    .await;
    assert!(t0.elapsed() <= Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_clean(&h.sim, "176").await;
}

/// The admin's pod patch reaches the created pod, and the step still runs and is followed.
#[tokio::test]
async fn the_admin_pod_patch_is_on_the_created_pod() {
    let h = harness_with(&[
        ("STORAGE_RWX", "false"),
        (
            "POD_PATCH",
            "{metadata: {labels: {team: ci}}, spec: {enableServiceLinks: false, dnsConfig: {options: [{name: ndots, value: '2'}]}}}",
        ),
    ])
    .await;
    h.sim.script(ScriptRule::image("t/ok").run_until_deleted());
    let s = step("patched", "t/ok", "177");
    let conf = workflow("177", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "177").await.unwrap();
    h.backend.start_step(&s, "177").await.unwrap();
    let pod = h.sim.object("pods", NS, &pod_name(&s)).expect("created");
    assert_eq!(pod["metadata"]["labels"]["team"], "ci");
    assert_eq!(pod["spec"]["enableServiceLinks"], false);
    assert_eq!(pod["spec"]["dnsConfig"]["options"][0]["name"], "ndots");
    assert!(
        pod["spec"]["dnsConfig"]["searches"].is_array(),
        "the agent's DNS search stays"
    );
    h.backend.destroy_workflow(&conf, "177").await.unwrap();
    assert_clean(&h.sim, "177").await;
}

/// A declared cache is mounted from its claim; an undeclared one is refused with a warning.
#[tokio::test]
async fn a_step_mounts_declared_caches_only() {
    let h = harness_with(&[("STORAGE_RWX", "false"), ("CACHES", "{go: go-cache}")]).await;
    let (code, _, err) = kubectl(&h.sim, &["create", "-f", &cache_claim(&h, "go-cache")]).await;
    assert_eq!(code, 0, "{err}");
    let s = with_k8s(
        step("build", "t/ok", "178"),
        json!({"caches": {"go": "/go/pkg/mod", "docker": "/var/lib/docker"}}),
    );
    let conf = workflow("178", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "178").await.unwrap();
    h.sim.script(ScriptRule::image("t/ok").run_until_deleted());
    h.backend.start_step(&s, "178").await.unwrap();
    let pod = h.sim.object("pods", NS, &pod_name(&s)).expect("created");
    let vols = pod["spec"]["volumes"].as_array().unwrap();
    assert!(
        vols.iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == "go-cache"),
        "{vols:?}"
    );
    assert!(!vols.iter().any(|v| v.to_string().contains("docker")), "{vols:?}");
    let logs = drain_some(&h, &s, "178").await;
    assert!(
        logs.iter()
            .any(|l| l.contains("caches.docker: not a cache the agent declares")),
        "{logs:#?}"
    );
    h.backend.destroy_workflow(&conf, "178").await.unwrap();
    assert_clean(&h.sim, "178").await;
    assert!(
        h.sim.object("persistentvolumeclaims", NS, "go-cache").is_some(),
        "the cache outlives workflows"
    );
}

fn cache_claim(h: &H, name: &str) -> String {
    let path = h.sim.dir().join(format!("{name}.json"));
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    std::fs::write(&path, claim.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

/// The first lines of a running step's log (the builders' warnings come first).
async fn drain_some(h: &H, s: &woodpecker_k8s_agent::backend::Step, task: &str) -> Vec<String> {
    let mut logs = h.backend.tail_step(s, task).await.unwrap();
    let mut out = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(500), logs.recv()).await {
        out.push(String::from_utf8_lossy(&line).into_owned());
    }
    out
}

/// A pod waiting for a node the cluster autoscaler is adding: the wait does not count against
/// the start timeout (3 s here), and the log says what it waits for. Without the scale-up event
/// the same pod fails at the start timeout.
#[tokio::test]
async fn pending_while_a_node_is_added_does_not_count_against_the_start_timeout() {
    let h = harness_with(&[("STORAGE_RWX", "false"), ("POD_NODE_SELECTOR", "pool: big")]).await;
    let s = step("big", "t/ok", "179");
    let conf = workflow("179", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "179").await.unwrap();
    let t0 = std::time::Instant::now();
    h.backend.start_step(&s, "179").await.unwrap();
    // What the cluster autoscaler records for the pod when it starts adding a node.
    let client = Client::new(h.sim.kube_config()).unwrap();
    let mut event = Event::default();
    event.metadata.name = format!("{}.scaleup", pod_name(&s));
    event.involved_object.kind = "Pod".into();
    event.involved_object.name = pod_name(&s);
    event.involved_object.namespace = NS.into();
    event.reason = "TriggeredScaleUp".into();
    event.message = "pod triggered scale-up: [{big-pool 0->1 (max: 3)}]".into();
    event.type_ = "Normal".into();
    kube::Api::<Event>::namespaced(client, NS).create(&event).await.unwrap();
    // The node arrives after twice the start timeout.
    let sim = &h.sim;
    let node_ready = async {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let (code, _, err) = kubectl(sim, &["label", "node", sim::NODE, "pool=big"]).await;
        assert_eq!(code, 0, "{err}");
    };
    let (lines, ()) = tokio::join!(drain(&h.backend, &s, "179"), node_ready);
    let state = h.backend.wait_step(&s, "179").await.unwrap();
    h.backend.destroy_step(&s, "179").await.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(6));
    assert_eq!(state.exit_code, 0, "{state:?} {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("is waiting for a new node (pod triggered scale-up: [{big-pool 0->1 (max: 3)}]); the time this takes does not count against the start timeout")),
        "{lines:#?}"
    );
    h.backend.destroy_workflow(&conf, "179").await.unwrap();
    assert_clean(&h.sim, "179").await;
}

/// A step's `platform` picks the node arch: another arch than the node's cannot schedule, and
/// with `DEFAULT_ARCH=none` the agent's platform no longer pins the step.
#[tokio::test]
async fn the_step_platform_picks_the_arch_and_default_arch_none_drops_the_agents() {
    let h = harness().await;
    let foreign = format!("linux/{}", other_arch());
    let s = with_k8s(step("arm", "t/ok", "180"), json!({"platform": foreign}));
    let conf = workflow("180", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "180").await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, "180").await;
    assert!(
        state.error.as_deref().is_some_and(|e| e.contains("Unschedulable")),
        "{state:?} {lines:#?}"
    );
    h.backend.destroy_workflow(&conf, "180").await.unwrap();

    let any = backend_on(&h.sim, &[("STORAGE_RWX", "false"), ("DEFAULT_ARCH", "none")]);
    let mut s = step("any", "t/ok", "181");
    s.environment.insert("CI_SYSTEM_PLATFORM".into(), foreign.clone());
    let conf = workflow("181", std::slice::from_ref(&s));
    any.setup_workflow(&conf, "181").await.unwrap();
    let (_, state) = run_step(&any, &s, "181").await;
    assert_eq!(state.exit_code, 0, "{state:?}");
    any.destroy_workflow(&conf, "181").await.unwrap();
    assert_clean(&h.sim, "181").await;
}

/// `WORKSPACE_EMPTYDIR`: no claim; a holder pod owns the `emptyDir` (in memory, with a size
/// limit), every step runs on its node and mounts that directory, and the holder goes with the
/// workflow.
#[tokio::test]
async fn an_emptydir_workspace_lives_in_a_holder_pod_on_one_node() {
    let h = harness_with(&[("WORKSPACE_EMPTYDIR", "{medium: Memory, sizeLimit: 1Gi}")]).await;
    h.sim.script(ScriptRule::prefix("wp-ws-").run_until_deleted());
    let a = step("a", "t/ok", "182");
    let b = step("b", "t/ok", "182");
    let conf = workflow("182", &[a.clone(), b.clone()]);
    h.backend.setup_workflow(&conf, "182").await.unwrap();
    assert!(h.sim.objects("persistentvolumeclaims", Some(NS)).is_empty(), "no claim");
    let holder = h.sim.object("pods", NS, "wp-ws-182").expect("the holder");
    assert_eq!(
        holder["spec"]["volumes"][0]["emptyDir"],
        json!({"medium": "Memory", "sizeLimit": "1Gi"})
    );
    assert_eq!(holder["status"]["phase"], "Running", "setup waits until it runs");
    let uid = holder["metadata"]["uid"].as_str().unwrap().to_string();
    for s in [&a, &b] {
        h.sim.script(ScriptRule::name(&pod_name(s)).run_until_deleted());
        h.backend.start_step(s, "182").await.unwrap();
        let pod = h.sim.object("pods", NS, &pod_name(s)).unwrap();
        assert_eq!(
            pod["spec"]["volumes"][0]["hostPath"]["path"],
            format!("/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~empty-dir/workspace")
        );
        let term = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0];
        assert_eq!(term["matchExpressions"][0]["values"][0], sim::NODE, "{pod}");
        h.backend.destroy_step(s, "182").await.unwrap();
    }
    h.backend.destroy_workflow(&conf, "182").await.unwrap();
    assert_clean(&h.sim, "182").await;
}

/// A kept pod outlives the agent that kept it: the next run of the same agent leaves it alone
/// at its start-up sweep while its time is not up, and its reaper deletes it after.
#[tokio::test]
async fn a_restarted_agent_reaps_the_pods_an_earlier_run_kept() {
    let h = harness_with(&[("STORAGE_RWX", "false"), ("KEEP_FAILED_PODS", "3s")]).await;
    h.sim.script(ScriptRule::image("t/fail").exit(1));
    let s = step("fails", "t/fail", "183");
    let conf = workflow("183", std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, "183").await.unwrap();
    let (_, state) = run_step(&h.backend, &s, "183").await;
    assert_eq!(state.exit_code, 1);
    h.backend.destroy_workflow(&conf, "183").await.unwrap();
    drop(h.backend);
    let name = pod_name(&s);
    assert!(h.sim.object("pods", NS, &name).is_some());
    let restarted = backend_on(&h.sim, &[("STORAGE_RWX", "false"), ("KEEP_FAILED_PODS", "3s")]);
    restarted.sweep().await.unwrap();
    assert!(
        h.sim
            .object("pods", NS, &name)
            .is_some_and(|p| p["metadata"]["deletionTimestamp"].is_null()),
        "not due yet: the sweep leaves it"
    );
    wait_for("the restarted agent to reap the kept pod", 10, || async {
        h.sim.object("pods", NS, &name).is_none().then_some(())
    })
    .await;
    assert_clean(&h.sim, "183").await;
}

/// Preflight says which declared cache claims are missing.
#[tokio::test]
async fn preflight_names_missing_cache_claims() {
    use woodpecker_k8s_agent::backend::preflight::{self, CheckOutcome};
    let h = harness().await;
    let (code, _, err) = kubectl(&h.sim, &["create", "-f", &cache_claim(&h, "go-cache")]).await;
    assert_eq!(code, 0, "{err}");
    let opts = woodpecker_k8s_agent::backend::Options {
        caches: [("go", "go-cache"), ("npm", "npm-cache")]
            .into_iter()
            .map(|(n, c)| {
                (
                    n.to_string(),
                    woodpecker_k8s_agent::backend::Cache {
                        claim: c.into(),
                        read_only: false,
                    },
                )
            })
            .collect(),
        ..Default::default()
    };
    let client = Client::new(h.sim.kube_config()).unwrap();
    let report = preflight::preflight(&client, &preflight::PreflightOptions::from_backend(&opts)).await;
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "caches")
        .expect("a caches check");
    match &check.outcome {
        CheckOutcome::Fail(m) => assert!(
            m.contains("`npm-cache` (cache `npm`)") && !m.contains("go-cache"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}
