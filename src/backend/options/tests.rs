//! Tests of the agent options: every variable's default, parsing and error.

use super::*;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn parse(pairs: &[(&str, &str)]) -> Result<Options, OptionsError> {
    Options::from_lookup(lookup(pairs))
}

#[test]
fn defaults_match_woodpecker() {
    let o = parse(&[]).unwrap();
    assert_eq!(o, Options::default());
    assert_eq!(o.namespace, "woodpecker");
    assert_eq!(o.volume_size, "10G");
    assert!(o.storage_rwx);
    assert!(o.pod_tolerations_allow_from_step, "tolerations are allowed by default");
    assert!(!o.pod_labels_allow_from_step && !o.allow_native_secrets && !o.secctx_nonroot);
    assert!(!o.pod_security_restricted);
    assert_eq!(o.stop_timeout, 20);
    assert_eq!(o.permission_init_image, "busybox:stable-musl");
    assert_eq!(o.cluster_domain, "cluster.local");
    assert_eq!(o.fs_group, Some(1000));
    assert!(o.pull_secret_names.is_empty());
    // Empty values take the defaults too.
    assert_eq!(
        parse(&[("CLUSTER_DOMAIN", ""), ("NAMESPACE", " ")]).unwrap(),
        Options::default()
    );
}

#[test]
fn every_variable_parses() {
    let o = parse(&[
        ("NAMESPACE", "ci"),
        ("NAMESPACE_PER_ORGANIZATION", "true"),
        ("CLUSTER_DOMAIN", "k8s.example"),
        ("VOLUME_SIZE", "1.5Gi"),
        ("STORAGE_CLASS", "fast"),
        ("STORAGE_RWX", "false"),
        ("POD_LABELS", "{\"example.com/a\": \"b\"}"),
        ("POD_LABELS_ALLOW_FROM_STEP", "1"),
        ("POD_ANNOTATIONS", "x: y\nn: 5"),
        ("POD_ANNOTATIONS_ALLOW_FROM_STEP", "T"),
        ("POD_NODE_SELECTOR", "pool: ci"),
        ("POD_NODE_SELECTOR_ALLOW_FROM_STEP", "TRUE"),
        (
            "POD_TOLERATIONS",
            "- key: ci\n  operator: Exists\n  effect: NoExecute\n  tolerationSeconds: 30",
        ),
        ("POD_TOLERATIONS_ALLOW_FROM_STEP", "false"),
        (
            "POD_AFFINITY",
            "nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: []}",
        ),
        ("POD_AFFINITY_ALLOW_FROM_STEP", "true"),
        ("RUNTIME_CLASS_ALLOW_FROM_STEP", "true"),
        ("SECCTX_NONROOT", "true"),
        ("PULL_SECRET_NAMES", " regcred , other ,,"),
        ("ALLOW_NATIVE_SECRETS", "true"),
        ("SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP", "true"),
        ("PRIORITY_CLASS", "ci-low"),
        ("STOP_TIMEOUT", "5"),
        ("PERMISSION_INIT_IMAGE", "busybox:1"),
        ("POD_ACTIVE_DEADLINE", "2h"),
        ("POD_SECURITY_RESTRICTED", "true"),
        ("INFRA_RETRIES", "2"),
        ("DEFAULT_RESOURCES", "{requests: {cpu: 100m}}"),
        ("MAX_RESOURCES", "{limits: {memory: 2Gi}}"),
    ])
    .unwrap();
    assert_eq!(o.infra_retries, 2);
    assert_eq!(o.default_resources.requests["cpu"], "100m");
    assert_eq!(o.max_resources.limits["memory"], "2Gi");
    assert_eq!(o.namespace_for(42), "ci-42");
    assert!(o.namespace_per_org);
    assert_eq!(o.cluster_domain, "k8s.example");
    assert_eq!(o.volume_size, "1536Mi");
    assert_eq!(o.storage_class, "fast");
    assert!(!o.storage_rwx);
    assert_eq!(o.pod_labels["example.com/a"], "b");
    assert!(o.pod_labels_allow_from_step && o.pod_annotations_allow_from_step);
    assert_eq!(o.pod_annotations["n"], "5");
    assert_eq!(o.pod_node_selector["pool"], "ci");
    assert!(o.pod_node_selector_allow_from_step);
    assert_eq!(o.pod_tolerations.len(), 1);
    assert_eq!(o.pod_tolerations[0].toleration_seconds, Some(30));
    assert_eq!(
        o.pod_tolerations[0].to_value(),
        serde_json::json!({"key": "ci", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30})
    );
    assert!(!o.pod_tolerations_allow_from_step);
    assert!(o.pod_affinity.as_ref().unwrap()["nodeAffinity"].is_object());
    assert!(o.pod_affinity_allow_from_step && o.runtime_class_allow_from_step && o.secctx_nonroot);
    assert_eq!(o.pull_secret_names, ["regcred", "other"]);
    assert!(o.allow_native_secrets && o.service_account_name_allow_from_step);
    assert_eq!(o.priority_class, "ci-low");
    assert_eq!(o.stop_timeout, 5);
    let d = o.delete_options();
    assert_eq!(
        (d.grace_period_seconds, d.propagation_policy.as_deref()),
        (Some(5), Some("Background"))
    );
    assert_eq!(o.permission_init_image, "busybox:1");
    assert_eq!(o.active_deadline(Some(60)), Some(7200));
    assert!(o.pod_security_restricted);
}

#[test]
fn bad_values_name_the_variable() {
    for (k, v, needle) in [
        ("VOLUME_SIZE", "ten gigs", "invalid quantity"),
        ("INFRA_RETRIES", "11", "not a number from 0 to 10"),
        ("INFRA_RETRIES", "-1", "not a number from 0 to 10"),
        (
            "DEFAULT_RESOURCES",
            "{requests: {cpu: fast}}",
            "`requests.cpu`: invalid quantity",
        ),
        ("STORAGE_RWX", "yes", "not a boolean"),
        ("POD_LABELS", "[a, b]", "expected a map"),
        ("POD_LABELS", "a: [1]", "expected a string"),
        ("POD_ANNOTATIONS", "{unclosed", "not valid YAML"),
        ("POD_LABELS", "team: Platform Team", "not a valid label value"),
        ("POD_NODE_SELECTOR", "bad key: x", "not a valid key"),
        ("POD_ANNOTATIONS", "\"a/b/c\": x", "not a valid key"),
        ("POD_TOLERATIONS", "- operator: Sometimes", "not Exists or Equal"),
        (
            "POD_TOLERATIONS",
            "- {key: a, effect: NoSchedule, tolerationSeconds: 9}",
            "needs effect NoExecute",
        ),
        ("POD_TOLERATIONS", "- keys: x", "unknown option"),
        ("POD_AFFINITY", "[]", "expected a map"),
        ("POD_AFFINITY", "nodeAffinty: {}", "unknown option"),
        ("STOP_TIMEOUT", "-1", "not a number of seconds"),
        ("STOP_TIMEOUT", "soon", "not a number of seconds"),
        ("STOP_TIMEOUT", "1.5s", "not a whole number of seconds"),
        ("POD_ACTIVE_DEADLINE", "90 s", "unknown unit"),
        ("NAMESPACE", "Not_Valid", "valid namespace name"),
    ] {
        let e = parse(&[(k, v)]).unwrap_err();
        assert_eq!(e.var, format!("{ENV_PREFIX}{k}"), "{k}={v}");
        let text = e.to_string();
        assert!(text.contains(needle) && text.contains(k), "{k}={v}: {text}");
    }
    // The per-org suffix is lowercased, so an upper-case prefix is fine there.
    assert_eq!(
        parse(&[("NAMESPACE", "CI"), ("NAMESPACE_PER_ORGANIZATION", "true")])
            .unwrap()
            .namespace_for(3),
        "ci-3"
    );
}

#[test]
fn an_empty_bool_is_false_as_in_the_go_agent() {
    let o = parse(&[
        ("STORAGE_RWX", ""),
        ("POD_TOLERATIONS_ALLOW_FROM_STEP", ""),
        ("NAMESPACE", ""),
    ])
    .unwrap();
    assert!(!o.storage_rwx && !o.pod_tolerations_allow_from_step);
    assert_eq!(o.namespace, "woodpecker");
}

#[test]
fn seconds_options_take_plain_seconds_and_go_durations() {
    // One duration parser for every variable: `1m30s` works here as for the agent's variables.
    for (text, secs) in [("20", 20), ("1m30s", 90), ("2h", 7200), ("0", 0), ("90s", 90)] {
        assert_eq!(parse(&[("STOP_TIMEOUT", text)]).unwrap().stop_timeout, secs, "{text}");
        let deadline = parse(&[("POD_ACTIVE_DEADLINE", text)]).unwrap().pod_active_deadline;
        assert_eq!(deadline, Some(secs), "{text}");
    }
}

#[test]
fn active_deadline_backstop() {
    let o = Options::default();
    assert_eq!(o.active_deadline(None), Some(DEFAULT_ACTIVE_DEADLINE));
    assert_eq!(o.active_deadline(Some(3600)), Some(3600 + ACTIVE_DEADLINE_MARGIN));
    assert_eq!(
        parse(&[("POD_ACTIVE_DEADLINE", "0")])
            .unwrap()
            .active_deadline(Some(3600)),
        None
    );
    assert_eq!(
        parse(&[("POD_ACTIVE_DEADLINE", "90")])
            .unwrap()
            .active_deadline(Some(3600)),
        Some(90)
    );
}

#[test]
fn flags_override_env() {
    let mut flags = Flags::default();
    let mut p = lexopt::Parser::from_args([
        "--backend-k8s-namespace",
        "from-flag",
        "--backend-k8s-storage-rwx=false",
        "--backend-k8s-secctx-nonroot",
        "--other",
    ]);
    let mut unknown = Vec::new();
    while let Some(arg) = p.next().unwrap() {
        match arg {
            lexopt::Arg::Long(l) => {
                let l = l.to_string();
                if !flags.take(&l, &mut p).unwrap() {
                    unknown.push(l);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(unknown, ["other"]);
    let env = lookup(&[("NAMESPACE", "from-env"), ("VOLUME_SIZE", "1Gi")]);
    let o = Options::from_lookup(flags.over(env)).unwrap();
    assert_eq!(o.namespace, "from-flag");
    assert_eq!(o.volume_size, "1Gi");
    assert!(!o.storage_rwx);
    assert!(o.secctx_nonroot);
    assert!(flags.set("pod-image-pull-secret-names", "a,b"));
    assert!(!flags.set("no-such-flag", "x"));
    assert!(usage().contains("--backend-k8s-namespace-per-org"));
}

#[test]
fn admin_options_parse() {
    let d = parse(&[]).unwrap();
    assert_eq!(
        (d.start_timeout, d.start_grace),
        (Duration::from_secs(300), Duration::from_secs(60))
    );
    assert_eq!(d.default_arch, DefaultArch::Agent);
    assert!(d.max_step_timeout.is_none() && d.keep_failed_pods.is_none() && d.pod_security_enforce.is_none());
    let o = parse(&[
        ("START_TIMEOUT", "10m"),
        ("START_GRACE", "45"),
        ("MAX_STEP_TIMEOUT", "1h"),
        ("KEEP_FAILED_PODS", "30m"),
        ("DEFAULT_ARCH", "none"),
        ("RUN_AS_USER", "1000"),
        ("RUN_AS_GROUP", "1000"),
        ("FS_GROUP", "2000"),
        ("POD_SECURITY_ENFORCE", "restricted"),
        ("POD_PATCH", "spec: {dnsConfig: {options: [{name: ndots, value: '2'}]}}"),
        ("SERVICE_PATCH", "{\"metadata\": {\"annotations\": {\"a\": \"b\"}}}"),
        ("CACHES", "{go: go-cache, npm: {claim: npm-cache, readOnly: true}}"),
    ])
    .unwrap();
    assert_eq!(o.start_timeout, Duration::from_secs(600));
    assert_eq!(o.start_grace, Duration::from_secs(45));
    assert_eq!((o.max_step_timeout, o.keep_failed_pods), (Some(3600), Some(1800)));
    assert_eq!(o.default_arch, DefaultArch::None);
    assert_eq!(
        (o.run_as_user, o.run_as_group, o.fs_group),
        (Some(1000), Some(1000), Some(2000))
    );
    assert_eq!(o.pod_security_enforce, Some(PssLevel::Restricted));
    assert_eq!(
        o.pod_patch.as_ref().unwrap()["spec"]["dnsConfig"]["options"][0]["value"],
        "2"
    );
    assert_eq!(o.service_patch.as_ref().unwrap()["metadata"]["annotations"]["a"], "b");
    assert_eq!(
        o.caches["go"],
        Cache {
            claim: "go-cache".into(),
            read_only: false
        }
    );
    assert!(o.caches["npm"].read_only);
    assert_eq!(parse(&[("FS_GROUP", "none")]).unwrap().fs_group, None);
    assert_eq!(parse(&[("KEEP_FAILED_PODS", "0")]).unwrap().keep_failed_pods, None);
    assert_eq!(
        parse(&[("POD_SECURITY_ENFORCE", "off")]).unwrap().pod_security_enforce,
        None
    );
    // The limits alone, for the lifecycle's settings: the same table and parser.
    let limits = Options::start_limits(lookup(&[("START_TIMEOUT", "2m")])).unwrap();
    assert_eq!(limits, (Duration::from_secs(120), Duration::from_secs(60)));
    for flag in [
        "start-timeout",
        "start-grace",
        "max-step-timeout",
        "keep-failed-pods",
        "default-arch",
        "run-as-user",
        "run-as-group",
        "fs-group",
        "pod-security-enforce",
        "pod-patch",
        "service-patch",
        "caches",
    ] {
        assert!(usage().contains(&format!("--backend-k8s-{flag} ")), "{flag}");
    }
}

#[test]
fn bad_admin_options_name_the_variable_and_field() {
    for (k, v, needle) in [
        ("START_TIMEOUT", "soon", "not a number of seconds"),
        ("DEFAULT_ARCH", "amd64", "not agent or none"),
        ("RUN_AS_USER", "-1", "not a user or group id"),
        ("FS_GROUP", "x", "not a user or group id"),
        ("POD_SECURITY_ENFORCE", "strict", "not baseline, restricted or off"),
        (
            "POD_PATCH",
            "spec: {containers: []}",
            "`spec.containers`: owned by the agent",
        ),
        (
            "SERVICE_PATCH",
            "metadata: {labels: {service: x}}",
            "`metadata.labels.service`: owned",
        ),
        (
            "POD_PATCH",
            "spec: {topologySpread: []}",
            "`spec.topologySpread`: not a field of a PodSpec",
        ),
        ("CACHES", "[a]", "expected a map"),
        ("CACHES", "{Go: x}", "not a DNS label"),
        ("CACHES", "{go: {claim: x, size: 1}}", "unknown key \"size\""),
        ("CACHES", "{go: Not_A_Claim}", "not a valid claim name"),
    ] {
        let e = parse(&[(k, v)]).unwrap_err();
        assert_eq!(e.var, format!("{ENV_PREFIX}{k}"), "{k}={v}");
        let text = e.to_string();
        assert!(text.contains(needle), "{k}={v}: {text}");
    }
}

#[test]
fn workspace_emptydir_parses() {
    assert_eq!(parse(&[]).unwrap().workspace_emptydir, None);
    assert_eq!(
        parse(&[("WORKSPACE_EMPTYDIR", "false")]).unwrap().workspace_emptydir,
        None
    );
    let on = parse(&[("WORKSPACE_EMPTYDIR", "true")])
        .unwrap()
        .workspace_emptydir
        .unwrap();
    assert_eq!(on, EmptyDirWorkspace::default());
    assert_eq!(on.kubelet_dir, "/var/lib/kubelet");
    let w = parse(&[(
        "WORKSPACE_EMPTYDIR",
        "{medium: Memory, sizeLimit: 1.5Gi, kubeletDir: /data/kubelet/}",
    )])
    .unwrap()
    .workspace_emptydir
    .unwrap();
    assert_eq!(w.medium.as_deref(), Some("Memory"));
    assert_eq!(w.size_limit.as_deref(), Some("1536Mi"));
    assert_eq!(w.kubelet_dir, "/data/kubelet");
    for (v, needle) in [
        ("{medium: Disk}", "medium \"Disk\" is not Memory"),
        ("{sizeLimit: lots}", "sizeLimit:"),
        ("{kubeletDir: var}", "not an absolute path"),
        ("{size: 1Gi}", "unknown key \"size\""),
        ("[1]", "expected true, false or"),
    ] {
        let e = parse(&[("WORKSPACE_EMPTYDIR", v)]).unwrap_err().to_string();
        assert!(e.contains("WORKSPACE_EMPTYDIR") && e.contains(needle), "{v}: {e}");
    }
}
