//! Tests of the step pod builder, field by field against spec §6.

use serde_json::json;

use super::*;
use crate::backend::types::{Auth, HostAlias, Port};

fn ctx() -> PodContext {
    PodContext {
        namespace: "ci".into(),
        task: "11301".into(),
        ..Default::default()
    }
}

fn commands_step() -> Step {
    Step {
        name: "build".into(),
        uuid: "01HE8BEBCTABR3KGK0QJ36D2ME".into(),
        type_: "commands".into(),
        image: "alpine:3".into(),
        working_dir: "/woodpecker/src/repo".into(),
        workspace_base: "/woodpecker".into(),
        commands: vec!["echo hi".into()],
        environment: [("CI_SYSTEM_PLATFORM".to_string(), "linux/arm64".to_string())].into(),
        volumes: vec!["wp_01he_11301_default:/woodpecker".into()],
        ..Default::default()
    }
}

fn build(step: &Step, opts: &Options) -> (Value, Vec<String>) {
    let (pod, w) = step_pod(step, opts, &ctx()).unwrap();
    (serde_json::to_value(pod).unwrap(), w)
}

#[test]
fn commands_step_skeleton() {
    let (p, w) = build(&commands_step(), &Options::default());
    assert!(w.is_empty(), "{w:?}");
    let script = script::ci_script("/woodpecker/src/repo", &["echo hi".into()]);
    let expected = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "wp-01he8bebctabr3kgk0qj36d2me", "namespace": "ci", "labels": {
            "step": "build", "woodpecker-ci.org/step": "build", "woodpecker-ci.org/task-uuid": "11301"}},
        "spec": {
            "containers": [{
                "name": "wp-01he8bebctabr3kgk0qj36d2me", "image": "alpine:3",
                "command": ["/bin/sh", "-c", "echo $CI_SCRIPT | base64 -d | /bin/sh -e"],
                "workingDir": "/woodpecker",
                "env": [{"name": "CI_SCRIPT", "value": script}, {"name": "CI_SYSTEM_PLATFORM", "value": "linux/arm64"},
                        {"name": "SHELL", "value": "/bin/sh"}],
                "resources": {},
                "volumeMounts": [{"name": "wp-01he-11301-default", "mountPath": "/woodpecker"}]
            }],
            "volumes": [{"name": "wp-01he-11301-default", "persistentVolumeClaim": {"claimName": "wp-01he-11301-default"}}],
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/arch": "arm64"},
            "securityContext": {"fsGroup": 1000},
            "hostname": "build", "subdomain": "wp-hsvc-11301",
            "dnsConfig": {"searches": ["wp-hsvc-11301.ci.svc.cluster.local"]},
            "activeDeadlineSeconds": 14400
        }
    });
    assert_eq!(p, expected);
}

#[test]
fn plugin_entrypoint_pull_ports_hosts_and_cluster_domain() {
    let mut s = commands_step();
    s.commands.clear();
    s.entrypoint = vec!["/bin/plugin".into(), "--run".into()];
    s.pull = true;
    s.ports = vec![
        Port {
            number: 8080,
            protocol: "tcp".into(),
        },
        Port {
            number: 53,
            protocol: String::new(),
        },
    ];
    s.extra_hosts = vec![HostAlias {
        name: "git".into(),
        ip: "10.0.0.1".into(),
    }];
    s.environment.insert("EMPTY".into(), String::new());
    let opts = Options {
        cluster_domain: "k8s.local".into(),
        priority_class: "low".into(),
        ..Default::default()
    };
    let (p, _) = build(&s, &opts);
    let c = &p["spec"]["containers"][0];
    assert_eq!(c["command"], json!(["/bin/plugin", "--run"]));
    assert_eq!(
        c["workingDir"], "/woodpecker/src/repo",
        "plugins keep their working dir"
    );
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 53}])
    );
    assert!(
        c["env"].as_array().unwrap().contains(&json!({"name": "EMPTY"})),
        "empty value is just the name"
    );
    assert_eq!(
        p["spec"]["hostAliases"],
        json!([{"ip": "10.0.0.1", "hostnames": ["git"]}])
    );
    assert_eq!(p["spec"]["dnsConfig"]["searches"][0], "wp-hsvc-11301.ci.svc.k8s.local");
    assert_eq!(p["spec"]["priorityClassName"], "low");
    // The entrypoint replaces the command, but a commands step keeps the script env.
    s.commands = vec!["x".into()];
    let (p, _) = build(&s, &opts);
    assert_eq!(p["spec"]["containers"][0]["command"], json!(["/bin/plugin", "--run"]));
    assert!(
        p["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "CI_SCRIPT")
    );
}

#[test]
fn secrets_are_references_and_pull_secrets_ordered() {
    let mut s = commands_step();
    s.environment.insert("TOKEN".into(), "v".into());
    s.secret_mapping.insert("TOKEN".into(), "v".into());
    s.auth_config = Auth {
        username: "u".into(),
        password: "p".into(),
    };
    let opts = Options {
        pull_secret_names: vec!["regcred".into()],
        ..Default::default()
    };
    let (p, _) = build(&s, &opts);
    let env = p["spec"]["containers"][0]["env"].as_array().unwrap().clone();
    assert_eq!(
        env.last().unwrap(),
        &json!({"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "wp-01he8bebctabr3kgk0qj36d2me-step-secret", "key": "TOKEN"}}})
    );
    assert!(
        !serde_json::to_string(&p).unwrap().contains("\"v\""),
        "secret value in pod spec"
    );
    assert_eq!(
        p["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}, {"name": "wp-01he8bebctabr3kgk0qj36d2me"}])
    );
}

#[test]
fn service_pod_name_label_and_workspace_filter() {
    let mut s = commands_step();
    s.type_ = "service".into();
    s.name = "db.primary".into();
    s.commands.clear();
    s.volumes.push("cache:/cache".into());
    s.backend_options
        .insert("kubernetes".into(), json!({"workspaceVolume": false}));
    let (p, _) = build(&s, &Options::default());
    assert_eq!(p["metadata"]["name"], "wp-svc-01he8bebctabr3kgk0qj36d2me-db.primary");
    assert_eq!(
        p["metadata"]["labels"]["service"],
        "wp-svc-01he8bebctabr3kgk0qj36d2me-db.primary"
    );
    assert_eq!(
        p["spec"]["containers"][0]["name"], "wp-svc-01he8bebctabr3kgk0qj36d2me-db-primary",
        "valid label"
    );
    assert_eq!(p["spec"]["hostname"], "db-primary");
    assert_eq!(
        p["spec"]["volumes"],
        json!([{"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}])
    );
    assert_eq!(
        p["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "cache", "mountPath": "/cache"}])
    );
    // A long service name still gives a valid container name.
    s.name = "a-very-long-service-name-that-goes-on-and-on".into();
    let (p, _) = build(&s, &Options::default());
    let name = p["spec"]["containers"][0]["name"].as_str().unwrap().to_string();
    assert!(names::is_dns_label(&name), "{name}");
}

#[test]
fn volumes_are_deduplicated_by_claim_and_never_collide() {
    let mut s = commands_step();
    s.volumes = vec!["a.b:/one".into(), "a.b:/two".into(), "a-b:/three".into()];
    let (p, _) = build(&s, &Options::default());
    let vols = p["spec"]["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 2, "{vols:?}");
    assert_eq!(
        vols[0],
        json!({"name": "a-b", "persistentVolumeClaim": {"claimName": "a.b"}})
    );
    assert_eq!(vols[1]["persistentVolumeClaim"]["claimName"], "a-b");
    let other = vols[1]["name"].as_str().unwrap();
    assert_ne!(other, "a-b");
    let mounts = &p["spec"]["containers"][0]["volumeMounts"];
    assert_eq!(
        (mounts[0]["name"].as_str(), mounts[1]["name"].as_str()),
        (Some("a-b"), Some("a-b"))
    );
    assert_eq!(mounts[2]["name"], other);

    // A native Secret named like a PVC volume gets its own volume name.
    s.volumes = vec!["workspace:/w".into()];
    s.backend_options.insert(
        "kubernetes".into(),
        json!({"secrets": [{"name": "workspace", "key": "k", "target": {"file": "/f"}}]}),
    );
    let (p, _) = build(
        &s,
        &Options {
            allow_native_secrets: true,
            ..Default::default()
        },
    );
    let vols = p["spec"]["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 2);
    assert_ne!(vols[0]["name"], vols[1]["name"]);
    assert_eq!(vols[1]["secret"]["secretName"], "workspace");
    assert_eq!(p["spec"]["containers"][0]["volumeMounts"][1]["name"], vols[1]["name"]);

    // Two mounts at one path: the first wins, the second is reported.
    s.backend_options.clear();
    s.volumes = vec!["a:/x".into(), "b:/x".into()];
    let (p, w) = build(&s, &Options::default());
    assert_eq!(
        p["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "a", "mountPath": "/x"}])
    );
    assert_eq!(w, ["volume \"b\" at \"/x\": the path is already mounted, ignored"]);
}

#[test]
fn permission_init_container_only_below_a_mount() {
    let mut s = commands_step();
    s.commands.clear();
    s.backend_options
        .insert("kubernetes".into(), json!({"securityContext": {"runAsUser": 1000}}));
    let (p, _) = build(&s, &Options::default());
    let init = &p["spec"]["initContainers"][0];
    assert_eq!(init["name"], "init-wp-01he8bebctabr3kgk0qj36d2me");
    assert_eq!(init["image"], "busybox:stable-musl");
    assert_eq!(init["imagePullPolicy"], "Always");
    assert_eq!(init["args"], json!(["mkdir", "-p", "/woodpecker/src/repo"]));
    assert_eq!(init["resources"]["limits"], json!({"cpu": "5m", "memory": "12Mi"}));
    assert_eq!(
        init["securityContext"],
        json!({"capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": false})
    );
    assert_eq!(
        init["volumeMounts"],
        json!([{"name": "wp-01he-11301-default", "mountPath": "/woodpecker"}])
    );
    // Commands steps run in the mount path itself: no init container.
    let mut c = commands_step();
    c.backend_options = s.backend_options.clone();
    assert!(build(&c, &Options::default()).0["spec"].get("initContainers").is_none());
}

#[test]
fn resources_are_canonical_and_bad_ones_fail() {
    let mut s = commands_step();
    s.backend_options.insert(
        "kubernetes".into(),
        json!({"resources": {"requests": {"cpu": "1000m", "memory": 128}, "limits": {"memory": "1.5Gi"}}}),
    );
    let (p, _) = build(&s, &Options::default());
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "1", "memory": "128"}, "limits": {"memory": "1536Mi"}})
    );
    s.backend_options.insert(
        "kubernetes".into(),
        json!({"resources": {"limits": {"memory": "lots"}}}),
    );
    let e = step_pod(&s, &Options::default(), &ctx()).unwrap_err();
    assert_eq!(e.to_string(), "step \"build\": resource limit \"memory\"");
    assert!(std::error::Error::source(&e).unwrap().to_string().contains("\"lots\""));
}

#[test]
fn agent_resource_defaults_and_maximums_reach_the_container_with_warnings() {
    let opts = Options::from_lookup(|k| match k {
        "WOODPECKER_BACKEND_K8S_DEFAULT_RESOURCES" => {
            Some("{requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 1Gi}}".into())
        }
        "WOODPECKER_BACKEND_K8S_MAX_RESOURCES" => Some("{limits: {cpu: '4', memory: 4Gi}}".into()),
        _ => None,
    })
    .unwrap();
    let (p, warnings) = build(&commands_step(), &opts);
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}})
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut s = commands_step();
    s.backend_options.insert(
        "kubernetes".into(),
        json!({"resources": {"limits": {"cpu": 16, "memory": "2Gi"}}}),
    );
    let (p, warnings) = build(&s, &opts);
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "4", "memory": "2Gi"}})
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("resources.limits.cpu 16 is above the agent's maximum 4")),
        "{warnings:?}"
    );
    let bad = Options::from_lookup(|k| (k == "WOODPECKER_BACKEND_K8S_MAX_RESOURCES").then(|| "{limit: {}}".into()));
    assert_eq!(
        bad.unwrap_err().to_string(),
        "invalid WOODPECKER_BACKEND_K8S_MAX_RESOURCES: `limit` is not `requests` or `limits`"
    );
}

#[test]
fn placement_tolerations_affinity_and_colocation() {
    let mut s = commands_step();
    s.backend_options.insert(
        "kubernetes".into(),
        json!({"tolerations": [{"key": "step"}], "affinity": {"podAntiAffinity": {}}, "nodeSelector": {"kubernetes.io/arch": "amd64"}}),
    );
    let opts = Options {
        pod_tolerations: vec![crate::backend::step_options::Toleration {
            key: "agent".into(),
            ..Default::default()
        }],
        pod_affinity: Some(json!({"nodeAffinity": {}})),
        ..Default::default()
    };
    let (p, w) = build(&s, &opts);
    assert_eq!(
        p["spec"]["tolerations"],
        json!([{"key": "step"}]),
        "step tolerations replace the agent's"
    );
    assert_eq!(
        p["spec"]["affinity"],
        json!({"nodeAffinity": {}}),
        "step affinity gated"
    );
    assert_eq!(
        p["spec"]["nodeSelector"],
        json!({"kubernetes.io/arch": "arm64"}),
        "step selector gated"
    );
    assert_eq!(w.len(), 2, "{w:?}");
    let open = Options {
        pod_affinity_allow_from_step: true,
        pod_node_selector_allow_from_step: true,
        ..opts
    };
    let (mut pod, _) = step_pod(&s, &open, &ctx()).unwrap();
    assert_eq!(pod.spec.affinity, Some(json!({"podAntiAffinity": {}})));
    assert_eq!(pod.spec.node_selector["kubernetes.io/arch"], "amd64");
    let rwo = PodContext {
        colocation: Colocation::SameNodeAsTask,
        ..ctx()
    };
    (pod, _) = step_pod(&s, &open, &rwo).unwrap();
    let a = pod.spec.affinity.unwrap();
    assert_eq!(a["podAntiAffinity"], json!({}));
    assert_eq!(
        a["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
}

#[test]
fn gated_fields_and_privileged_root() {
    let mut s = commands_step();
    s.privileged = true;
    s.backend_options.insert(
        "kubernetes".into(),
        json!({"serviceAccountName": "sa", "runtimeClassName": "kata", "hostUsers": false,
               "labels": {"x": "y"}, "annotations": {"a": "b"},
               "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false}}),
    );
    let (p, w) = build(&s, &Options::default());
    assert!(p["spec"].get("serviceAccountName").is_none() && p["spec"].get("runtimeClassName").is_none());
    assert_eq!(p["spec"]["hostUsers"], false);
    assert_eq!(p["spec"]["securityContext"], json!({"runAsUser": 0, "fsGroup": 1000}));
    assert_eq!(
        p["spec"]["containers"][0]["securityContext"],
        json!({"privileged": true})
    );
    assert_eq!(w.len(), 5, "{w:?}");
    let open = Options {
        service_account_name_allow_from_step: true,
        runtime_class_allow_from_step: true,
        pod_labels_allow_from_step: true,
        pod_annotations_allow_from_step: true,
        ..Default::default()
    };
    let (p, _) = build(&s, &open);
    assert_eq!(
        (
            p["spec"]["serviceAccountName"].as_str(),
            p["spec"]["runtimeClassName"].as_str()
        ),
        (Some("sa"), Some("kata"))
    );
    assert_eq!(p["metadata"]["labels"]["x"], "y");
    assert_eq!(p["metadata"]["annotations"], json!({"a": "b"}));
}

#[test]
fn dns_keeps_the_headless_search_and_anchor_and_agent_apply() {
    let mut s = commands_step();
    s.dns = vec!["1.1.1.1".into()];
    s.dns_search = vec!["corp.example".into()];
    let anchor = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: "wp-hsvc-11301".into(),
        uid: "u".into(),
        ..Default::default()
    };
    let c = PodContext {
        anchor: Some(anchor.clone()),
        agent: "Agent 1".into(),
        workflow_timeout_secs: Some(3600),
        ..ctx()
    };
    let (pod, _) = step_pod(&s, &Options::default(), &c).unwrap();
    assert_eq!(
        pod.spec.dns_config,
        Some(json!({"nameservers": ["1.1.1.1"], "searches": ["corp.example", "wp-hsvc-11301.ci.svc.cluster.local"]}))
    );
    assert_eq!(pod.metadata.owner_references, [anchor]);
    assert_eq!(pod.metadata.labels[names::AGENT_LABEL], "agent-1");
    assert_eq!(pod.spec.active_deadline_seconds, Some(4200));
}

#[test]
fn restricted_mode() {
    let opts = Options {
        pod_security_restricted: true,
        ..Default::default()
    };
    let (p, _) = build(&commands_step(), &opts);
    assert_eq!(p["spec"]["automountServiceAccountToken"], false);
    assert_eq!(
        p["spec"]["securityContext"],
        json!({"fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        p["spec"]["containers"][0]["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );
    // A step with its own (allowed) service account keeps the token; privileged steps stay privileged.
    let mut s = commands_step();
    s.privileged = true;
    s.backend_options
        .insert("kubernetes".into(), json!({"serviceAccountName": "deployer"}));
    let open = Options {
        service_account_name_allow_from_step: true,
        ..opts
    };
    let (p, _) = build(&s, &open);
    assert!(p["spec"].get("automountServiceAccountToken").is_none());
    assert_eq!(
        p["spec"]["containers"][0]["securityContext"],
        json!({"privileged": true})
    );
    // Off (the default): nothing of it.
    let (p, _) = build(&commands_step(), &Options::default());
    assert!(p["spec"].get("automountServiceAccountToken").is_none());
    assert!(p["spec"]["containers"][0].get("securityContext").is_none());
}

fn with_k8s(mut step: Step, opts: Value) -> Step {
    step.backend_options.insert("kubernetes".into(), opts);
    step
}

fn admin_opts(pairs: &[(&str, &str)]) -> Options {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (format!("WOODPECKER_BACKEND_K8S_{k}"), v.to_string()))
        .collect();
    Options::from_lookup(|k| map.get(k).cloned()).unwrap()
}

#[test]
fn platform_picks_the_arch_and_default_arch_none_drops_the_pin() {
    let (p, _) = build(&commands_step(), &Options::default());
    assert_eq!(
        p["spec"]["nodeSelector"],
        json!({"kubernetes.io/arch": "arm64"}),
        "the agent's, as today"
    );
    let none = admin_opts(&[("DEFAULT_ARCH", "none")]);
    let (p, _) = build(&commands_step(), &none);
    assert!(p["spec"].get("nodeSelector").is_none(), "{p}");
    let step = with_k8s(commands_step(), json!({"platform": "linux/amd64"}));
    for opts in [Options::default(), none] {
        let (p, w) = build(&step, &opts);
        assert_eq!(p["spec"]["nodeSelector"], json!({"kubernetes.io/arch": "amd64"}));
        assert!(w.is_empty(), "{w:?}");
    }
    let (_, w) = build(
        &with_k8s(commands_step(), json!({"platform": "amd64"})),
        &Options::default(),
    );
    assert!(w[0].contains("platform: \"amd64\" is not os/arch"), "{w:?}");
}

#[test]
fn step_timeout_is_the_pod_deadline_capped_by_the_agent() {
    let step = with_k8s(commands_step(), json!({"timeout": "90s"}));
    let (p, w) = build(&step, &Options::default());
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(p["spec"]["activeDeadlineSeconds"], 90);
    assert_eq!(p["metadata"]["annotations"]["woodpecker-k8s-agent/step-timeout"], "90s");
    let capped = admin_opts(&[("MAX_STEP_TIMEOUT", "60")]);
    let (p, w) = build(&step, &capped);
    assert_eq!(p["spec"]["activeDeadlineSeconds"], 60);
    assert!(
        w[0].contains("90s is above the agent's maximum, lowered to 60s"),
        "{w:?}"
    );
    let (_, w) = build(
        &with_k8s(commands_step(), json!({"timeout": "soon"})),
        &Options::default(),
    );
    assert!(w[0].contains("timeout: \"soon\" is not a duration"), "{w:?}");
}

#[test]
fn caches_mount_only_what_the_admin_declares() {
    let opts = admin_opts(&[("CACHES", "{go: go-cache, npm: {claim: npm-cache, readOnly: true}}")]);
    let step = with_k8s(
        commands_step(),
        json!({"caches": {"go": "/go/pkg/mod", "npm": "/root/.npm", "other": "/x"}}),
    );
    let (p, w) = build(&step, &opts);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("caches.other: not a cache the agent declares"), "{w:?}");
    let vols = p["spec"]["volumes"].as_array().unwrap();
    assert!(vols.contains(&json!({"name": "cache-go", "persistentVolumeClaim": {"claimName": "go-cache"}})));
    assert!(vols.contains(
        &json!({"name": "cache-npm", "persistentVolumeClaim": {"claimName": "npm-cache", "readOnly": true}})
    ));
    assert_eq!(vols.len(), 3, "workspace + two caches: {vols:?}");
    let mounts = p["spec"]["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(mounts.contains(&json!({"name": "cache-go", "mountPath": "/go/pkg/mod"})));
    assert!(mounts.contains(&json!({"name": "cache-npm", "mountPath": "/root/.npm", "readOnly": true})));
    assert_eq!(p["metadata"]["labels"]["woodpecker-k8s-agent/cache-go"], "true");
    // Without CACHES nothing is mounted.
    let (p, w) = build(&step, &Options::default());
    assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(w.len(), 3, "{w:?}");
}

#[test]
fn admin_patches_apply_last_and_the_service_patch_only_to_services() {
    let opts = admin_opts(&[
        (
            "POD_PATCH",
            "{metadata: {labels: {team: ci}}, spec: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: ScheduleAnyway}], securityContext: {fsGroupChangePolicy: OnRootMismatch}}}",
        ),
        ("SERVICE_PATCH", "{spec: {priorityClassName: services}}"),
    ]);
    let (p, _) = build(&commands_step(), &opts);
    assert_eq!(p["metadata"]["labels"]["team"], "ci");
    assert_eq!(p["metadata"]["labels"]["step"], "build", "the agent's labels stay");
    assert_eq!(p["spec"]["topologySpreadConstraints"][0]["topologyKey"], "zone");
    assert_eq!(
        p["spec"]["securityContext"],
        json!({"fsGroup": 1000, "fsGroupChangePolicy": "OnRootMismatch"})
    );
    assert!(p["spec"].get("priorityClassName").is_none());
    let mut svc = commands_step();
    svc.type_ = "service".into();
    let (p, _) = build(&svc, &opts);
    assert_eq!(p["spec"]["priorityClassName"], "services");
    assert_eq!(p["metadata"]["labels"]["team"], "ci");
}

#[test]
fn agent_wide_user_and_group_unless_the_step_sets_them_or_is_privileged() {
    let opts = admin_opts(&[("RUN_AS_USER", "1001"), ("RUN_AS_GROUP", "1002"), ("FS_GROUP", "1003")]);
    let (p, _) = build(&commands_step(), &opts);
    assert_eq!(
        p["spec"]["securityContext"],
        json!({"runAsUser": 1001, "runAsGroup": 1002, "fsGroup": 1003})
    );
    let own = with_k8s(commands_step(), json!({"securityContext": {"runAsUser": 5}}));
    assert_eq!(build(&own, &opts).0["spec"]["securityContext"]["runAsUser"], 5);
    let mut privileged = commands_step();
    privileged.privileged = true;
    assert_eq!(
        build(&privileged, &opts).0["spec"]["securityContext"],
        json!({"fsGroup": 1003})
    );
}
