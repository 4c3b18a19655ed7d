//! `preflight` against the simulated cluster: every check, a denied verb, an expired token, a
//! missing namespace or storage class, and the command's report and exit code.

use std::process::Command;

use kube::Client;
use sim::Sim;
use woodpecker_k8s_agent::backend::preflight::{
    CheckOutcome, LEASES, NAMESPACED, PER_ORG, PreflightOptions, Report, preflight,
};

use crate::common::start_sim;

async fn run(sim: &Sim, opts: &PreflightOptions) -> Report {
    let client = Client::new(sim.kube_config()).expect("a client for the sim");
    preflight(&client, opts).await
}

fn outcome<'a>(report: &'a Report, name: &str) -> &'a CheckOutcome {
    &report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check `{name}` in\n{report}"))
        .outcome
}

#[tokio::test]
async fn a_ready_cluster_passes_and_local_path_rwx_warns() {
    let sim = start_sim().await;
    sim.clear_requests();
    let report = run(&sim, &PreflightOptions::default()).await;
    assert!(report.passed(), "{report}");
    assert!(
        matches!(outcome(&report, "cluster"), CheckOutcome::Ok(m) if m.contains("v1.")),
        "{report}"
    );
    assert!(
        matches!(outcome(&report, "authentication"), CheckOutcome::Ok(_)),
        "{report}"
    );
    assert!(matches!(outcome(&report, "namespace"), CheckOutcome::Ok(m) if m.contains("`woodpecker` exists")));
    for perm in NAMESPACED {
        let name = format!("rbac: {}", perm.describe());
        assert_eq!(outcome(&report, &name), &CheckOutcome::Ok("allowed".into()), "{report}");
    }
    // The sim is k3s-like: its default class is local-path, which cannot give ReadWriteMany.
    assert!(
        matches!(outcome(&report, "storage"), CheckOutcome::Warn(m) if m.contains("local-path") && m.contains("STORAGE_RWX=false")),
        "{report}"
    );
    // One SelfSubjectAccessReview per permission, each asking about the agent's namespace.
    let reviews: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/selfsubjectaccessreviews"))
        .collect();
    assert_eq!(reviews.len(), NAMESPACED.len() + LEASES.len());
    assert!(reviews.iter().all(|r| r.status == 201));

    let rwo = run(
        &sim,
        &PreflightOptions {
            storage_rwx: false,
            ..PreflightOptions::default()
        },
    )
    .await;
    assert!(
        matches!(outcome(&rwo, "storage"), CheckOutcome::Ok(m) if m.contains("ReadWriteOnce")),
        "{rwo}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_denied_verb_fails_and_names_each_permission() {
    let sim = start_sim().await;
    sim.faults().deny_verb("delete");
    let report = run(&sim, &PreflightOptions::default()).await;
    assert!(!report.passed());
    let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
    let expected: Vec<String> = NAMESPACED
        .iter()
        .filter(|p| p.verb == "delete")
        .map(|p| format!("rbac: {}", p.describe()))
        .collect();
    assert_eq!(failed, expected, "{report}");
    assert!(report.to_string().contains("FAIL  rbac: delete pods"), "{report}");
    // The agent runs without its Lease: a denied lease verb warns, it does not fail.
    let lease_warnings = report
        .checks
        .iter()
        .filter(|c| matches!(&c.outcome, CheckOutcome::Warn(m) if m.contains("without its Lease")))
        .count();
    assert_eq!(lease_warnings, 1, "{report}");
    sim.shutdown().await;
}

#[tokio::test]
async fn namespace_per_org_asks_cluster_wide_including_namespaces() {
    let sim = start_sim().await;
    sim.faults().deny_verb("create");
    let opts = PreflightOptions {
        namespace_per_org: true,
        ..PreflightOptions::default()
    };
    let report = run(&sim, &opts).await;
    assert!(matches!(outcome(&report, "namespace"), CheckOutcome::Ok(m) if m.contains("created on demand")));
    assert!(matches!(
        outcome(&report, "rbac: create namespaces (all namespaces)"),
        CheckOutcome::Fail(m) if m.starts_with("denied")
    ));
    let namespaced_reviews = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/selfsubjectaccessreviews"))
        .count();
    assert_eq!(namespaced_reviews, NAMESPACED.len() + PER_ORG.len() + LEASES.len());
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_stops_at_authentication() {
    let sim = start_sim().await;
    sim.faults().expire_token();
    let report = run(&sim, &PreflightOptions::default()).await;
    assert!(
        matches!(outcome(&report, "authentication"), CheckOutcome::Fail(m) if m.contains("rejected")),
        "{report}"
    );
    assert_eq!(
        report.checks.len(),
        2,
        "nothing after a failed authentication:\n{report}"
    );
    assert!(!report.to_string().contains(sim.token()), "the report shows the token");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_missing_namespace_or_storage_class_fails() {
    let sim = start_sim().await;
    let opts = PreflightOptions {
        namespace: "nowhere".into(),
        storage_class: "fast-nfs".into(),
        ..PreflightOptions::default()
    };
    let report = run(&sim, &opts).await;
    assert!(matches!(outcome(&report, "namespace"), CheckOutcome::Fail(m) if m.contains("`nowhere` does not exist")));
    assert!(
        matches!(outcome(&report, "storage"), CheckOutcome::Fail(m) if m.contains("`fast-nfs` does not exist")
        && m.contains("local-path"))
    );
    assert_eq!(report.failures().count(), 2, "{report}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_command_prints_one_line_per_check_and_exits_by_the_verdict() {
    let sim = start_sim().await;
    let kubeconfig = sim.kubeconfig_path().to_path_buf();
    let bin = env!("CARGO_BIN_EXE_woodpecker-k8s-agent");
    let (ok, missing) = tokio::task::spawn_blocking(move || {
        let cmd = |extra: &[&str]| {
            Command::new(bin)
                .arg("preflight")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(extra)
                .env_remove("WOODPECKER_BACKEND_K8S_NAMESPACE")
                .output()
                .unwrap()
        };
        (cmd(&["--storage-rwx", "false"]), cmd(&["--namespace", "nowhere"]))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let checks = 4 + NAMESPACED.len() + LEASES.len();
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok  ")).count(),
        checks,
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with(&format!("preflight passed ({checks} checks, 0 warnings)")),
        "{stdout}"
    );

    let stdout = String::from_utf8_lossy(&missing.stdout);
    assert_eq!(missing.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL  namespace") && l.contains("nowhere")),
        "{stdout}"
    );
    sim.shutdown().await;
}
