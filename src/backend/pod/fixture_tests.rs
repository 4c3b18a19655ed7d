//! Woodpecker's own expected pods (`pipeline/backend/kubernetes/pod_test.go` at HEAD: TinyPod,
//! ScratchPod, FullPod, Secrets, PodTolerations), rebuilt from the same inputs given as the
//! server would send them (options through `backend_options.kubernetes`). Woodpecker's config
//! in those tests has no fsGroup and we switch our deadline off, so only documented
//! differences remain: no `status: {}`, and FullPod's privileged + allowPrivilegeEscalation.

use serde_json::json;

use super::*;
use crate::backend::step_options;
use crate::backend::types::{Auth, HostAlias, Port};

const UUID: &str = "01he8bebctabr3kgk0qj36d2me-0";

fn opts() -> Options {
    Options {
        fs_group: None,
        pod_active_deadline: Some(0),
        ..Default::default()
    }
}

fn ctx() -> PodContext {
    PodContext {
        namespace: "woodpecker".into(),
        task: "11301".into(),
        ..Default::default()
    }
}

/// The pod as JSON. Our env order is already sorted for plain values, which is what the
/// `<<UNORDERED>>` fixtures are compared against.
fn pod_json(step: &Step, opts: &Options) -> (Value, Vec<String>) {
    let (pod, w) = step_pod(step, opts, &ctx()).unwrap();
    (serde_json::to_value(pod).unwrap(), w)
}

fn expected_meta(step_label: &str) -> Value {
    json!({"name": format!("wp-{UUID}"), "namespace": "woodpecker", "labels": {
        "step": step_label, "woodpecker-ci.org/step": step_label, "woodpecker-ci.org/task-uuid": "11301"}})
}

fn dns() -> Value {
    json!({"searches": ["wp-hsvc-11301.woodpecker.svc.cluster.local"]})
}

#[test]
fn tiny_pod() {
    let step = Step {
        name: "build-via-gradle".into(),
        image: "gradle:8.4.0-jdk21".into(),
        uuid: UUID.into(),
        working_dir: "/woodpecker/src".into(),
        commands: vec!["gradle build".into()],
        volumes: vec!["workspace:/woodpecker/src".into()],
        environment: [("CI".to_string(), "woodpecker".to_string())].into(),
        ..Default::default()
    };
    // Woodpecker's expected CI_SCRIPT, byte for byte.
    let script = "CmlmIFsgLW4gIiRDSV9ORVRSQ19NQUNISU5FIiBdOyB0aGVuCmNhdCA8PEVPRiA+ICRIT01FLy5uZXRyYwptYWNoaW5lICRDSV9ORVRSQ19NQUNISU5FCmxvZ2luICRDSV9ORVRSQ19VU0VSTkFNRQpwYXNzd29yZCAkQ0lfTkVUUkNfUEFTU1dPUkQKRU9GCmNobW9kIDA2MDAgJEhPTUUvLm5ldHJjCmZpCnVuc2V0IENJX05FVFJDX1VTRVJOQU1FCnVuc2V0IENJX05FVFJDX1BBU1NXT1JECnVuc2V0IENJX1NDUklQVApta2RpciAtcCAiL3dvb2RwZWNrZXIvc3JjIgpjZCAiL3dvb2RwZWNrZXIvc3JjIgoKZWNobyArICdncmFkbGUgYnVpbGQnCmdyYWRsZSBidWlsZAo=";
    let expected = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": expected_meta("build-via-gradle"),
        "spec": {
            "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": "workspace"}}],
            "containers": [{
                "name": format!("wp-{UUID}"), "image": "gradle:8.4.0-jdk21",
                "command": ["/bin/sh", "-c", "echo $CI_SCRIPT | base64 -d | /bin/sh -e"],
                "env": [{"name": "CI", "value": "woodpecker"}, {"name": "CI_SCRIPT", "value": script},
                        {"name": "SHELL", "value": "/bin/sh"}],
                "resources": {},
                "volumeMounts": [{"name": "workspace", "mountPath": "/woodpecker/src"}]
            }],
            "restartPolicy": "Never", "dnsConfig": dns(), "subdomain": "wp-hsvc-11301", "hostname": "build-via-gradle"
        }
    });
    assert_eq!(pod_json(&step, &opts()), (expected, vec![]));
}

#[test]
fn scratch_pod() {
    let step = Step {
        name: "curl-google".into(),
        image: "quay.io/curl/curl".into(),
        uuid: UUID.into(),
        entrypoint: vec!["/usr/bin/curl".into(), "-v".into(), "google.com".into()],
        ..Default::default()
    };
    let expected = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": expected_meta("curl-google"),
        "spec": {
            "containers": [{"name": format!("wp-{UUID}"), "image": "quay.io/curl/curl",
                            "command": ["/usr/bin/curl", "-v", "google.com"], "resources": {}}],
            "restartPolicy": "Never", "dnsConfig": dns(), "subdomain": "wp-hsvc-11301", "hostname": "curl-google"
        }
    });
    assert_eq!(pod_json(&step, &opts()).0, expected);
}

#[test]
fn full_pod() {
    let step = Step {
        uuid: UUID.into(),
        name: "go-test".into(),
        image: "meltwater/drone-cache".into(),
        working_dir: "/woodpecker/src".into(),
        pull: true,
        privileged: true,
        commands: vec!["go get".into(), "go test".into()],
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        volumes: vec!["woodpecker-cache:/woodpecker/src/cache".into()],
        environment: [("CGO".to_string(), "0".to_string())].into(),
        extra_hosts: vec![
            HostAlias { name: "cloudflare".into(), ip: "1.1.1.1".into() },
            HostAlias { name: "cf.v6".into(), ip: "2606:4700:4700::64".into() },
        ],
        ports: vec![
            Port { number: 1234, protocol: String::new() },
            Port { number: 2345, protocol: "tcp".into() },
            Port { number: 3456, protocol: "udp".into() },
        ],
        auth_config: Auth { username: "foo".into(), password: "bar".into() },
        backend_options: [(
            "kubernetes".to_string(),
            json!({
                "labels": {"part-of": "woodpecker-ci"},
                "annotations": {"kubernetes.io/limit-ranger": "LimitRanger plugin set: cpu, memory request and limit for container"},
                "nodeSelector": {"storage": "ssd"},
                "runtimeClassName": "runc",
                "serviceAccountName": "wp-svc-acc",
                "tolerations": [{"key": "net-port", "value": "100Mbit", "effect": "NoSchedule"}],
                "resources": {"requests": {"memory": "128Mi", "cpu": "1000m"}, "limits": {"memory": "256Mi", "cpu": "2"}},
                "securityContext": {
                    "privileged": true, "runAsNonRoot": true, "runAsUser": 101, "runAsGroup": 101, "fsGroup": 101,
                    "fsGroupChangePolicy": "OnRootMismatch", "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"},
                    "apparmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor-example-deny-write"}
                }
            }),
        )]
        .into(),
        ..Default::default()
    };
    let opts = Options {
        pull_secret_names: vec!["regcred".into(), "another-pull-secret".into()],
        pod_labels: [("app".to_string(), "test".to_string())].into(),
        pod_labels_allow_from_step: true,
        pod_annotations: [("apps.kubernetes.io/pod-index".to_string(), "0".to_string())].into(),
        pod_annotations_allow_from_step: true,
        pod_node_selector: [("topology.kubernetes.io/region".to_string(), "eu-central-1".to_string())].into(),
        pod_node_selector_allow_from_step: true,
        service_account_name_allow_from_step: true,
        // Woodpecker's FullPod predates the runtime-class gate (the step value was always used).
        runtime_class_allow_from_step: true,
        ..opts()
    };
    let script = "CmlmIFsgLW4gIiRDSV9ORVRSQ19NQUNISU5FIiBdOyB0aGVuCmNhdCA8PEVPRiA+ICRIT01FLy5uZXRyYwptYWNoaW5lICRDSV9ORVRSQ19NQUNISU5FCmxvZ2luICRDSV9ORVRSQ19VU0VSTkFNRQpwYXNzd29yZCAkQ0lfTkVUUkNfUEFTU1dPUkQKRU9GCmNobW9kIDA2MDAgJEhPTUUvLm5ldHJjCmZpCnVuc2V0IENJX05FVFJDX1VTRVJOQU1FCnVuc2V0IENJX05FVFJDX1BBU1NXT1JECnVuc2V0IENJX1NDUklQVApta2RpciAtcCAiL3dvb2RwZWNrZXIvc3JjIgpjZCAiL3dvb2RwZWNrZXIvc3JjIgoKZWNobyArICdnbyBnZXQnCmdvIGdldAoKZWNobyArICdnbyB0ZXN0JwpnbyB0ZXN0Cg==";
    let mut meta = expected_meta("go-test");
    meta["labels"]["app"] = "test".into();
    meta["labels"]["part-of"] = "woodpecker-ci".into();
    meta["annotations"] = json!({"apps.kubernetes.io/pod-index": "0",
        "kubernetes.io/limit-ranger": "LimitRanger plugin set: cpu, memory request and limit for container"});
    let expected = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {
            "volumes": [{"name": "woodpecker-cache", "persistentVolumeClaim": {"claimName": "woodpecker-cache"}}],
            "containers": [{
                "name": format!("wp-{UUID}"), "image": "meltwater/drone-cache", "command": ["/bin/sh", "-c"],
                "ports": [{"containerPort": 1234}, {"containerPort": 2345, "protocol": "TCP"},
                          {"containerPort": 3456, "protocol": "UDP"}],
                "env": [{"name": "CGO", "value": "0"}, {"name": "CI_SCRIPT", "value": script}, {"name": "SHELL", "value": "/bin/sh"}],
                "resources": {"limits": {"cpu": "2", "memory": "256Mi"}, "requests": {"cpu": "1", "memory": "128Mi"}},
                "volumeMounts": [{"name": "woodpecker-cache", "mountPath": "/woodpecker/src/cache"}],
                "imagePullPolicy": "Always",
                // Woodpecker also emits "allowPrivilegeEscalation": false here, which the
                // apiserver rejects next to privileged: true. We drop it and warn.
                "securityContext": {"privileged": true, "capabilities": {"drop": ["ALL"]}}
            }],
            "restartPolicy": "Never",
            "nodeSelector": {"storage": "ssd", "topology.kubernetes.io/region": "eu-central-1"},
            "runtimeClassName": "runc",
            "serviceAccountName": "wp-svc-acc",
            "securityContext": {
                "runAsUser": 101, "runAsGroup": 101, "runAsNonRoot": true, "fsGroup": 101,
                "fsGroupChangePolicy": "OnRootMismatch",
                "appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor-example-deny-write"},
                "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}
            },
            "imagePullSecrets": [{"name": "regcred"}, {"name": "another-pull-secret"}, {"name": format!("wp-{UUID}")}],
            "tolerations": [{"key": "net-port", "value": "100Mbit", "effect": "NoSchedule"}],
            "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["cloudflare"]},
                            {"ip": "2606:4700:4700::64", "hostnames": ["cf.v6"]}],
            "dnsConfig": dns(), "subdomain": "wp-hsvc-11301", "hostname": "go-test"
        }
    });
    let (got, warnings) = pod_json(&step, &opts);
    assert_eq!(got, expected);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("allowPrivilegeEscalation"));
}

#[test]
fn native_secrets_pod() {
    let step = Step {
        name: "test-secrets".into(),
        image: "alpine".into(),
        uuid: "3kgk0qj36d2me01he8bebctabr-0".into(),
        environment: [("CGO".to_string(), "0".to_string())].into(),
        volumes: vec!["workspace:/woodpecker/src".into()],
        backend_options: [(
            "kubernetes".to_string(),
            json!({"secrets": [
                {"name": "ghcr-push-secret"},
                {"name": "aws-ecr", "key": "AWS_ACCESS_KEY_ID"},
                {"name": "aws-ecr", "key": "access-key", "target": {"env": "AWS_SECRET_ACCESS_KEY"}},
                {"name": "reg-cred", "key": ".dockerconfigjson", "target": {"file": "~/.docker/config.json"}}
            ]}),
        )]
        .into(),
        ..Default::default()
    };
    let opts = Options {
        allow_native_secrets: true,
        ..opts()
    };
    let name = "wp-3kgk0qj36d2me01he8bebctabr-0";
    let expected = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "woodpecker", "labels": {
            "step": "test-secrets", "woodpecker-ci.org/step": "test-secrets", "woodpecker-ci.org/task-uuid": "11301"}},
        "spec": {
            "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": "workspace"}},
                        {"name": "reg-cred", "secret": {"secretName": "reg-cred"}}],
            "containers": [{
                "name": name, "image": "alpine",
                "envFrom": [{"secretRef": {"name": "ghcr-push-secret"}}],
                // Ordered in Woodpecker's fixture too: plain values, then native secrets in order.
                "env": [
                    {"name": "CGO", "value": "0"},
                    {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "aws-ecr", "key": "AWS_ACCESS_KEY_ID"}}},
                    {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "aws-ecr", "key": "access-key"}}}
                ],
                "resources": {},
                "volumeMounts": [{"name": "workspace", "mountPath": "/woodpecker/src"},
                                 {"name": "reg-cred", "mountPath": "~/.docker/config.json",
                                  "subPath": ".dockerconfigjson", "readOnly": true}]
            }],
            "restartPolicy": "Never", "dnsConfig": dns(), "subdomain": "wp-hsvc-11301", "hostname": "test-secrets"
        }
    });
    assert_eq!(pod_json(&step, &opts), (expected, vec![]));
}

#[test]
fn agent_tolerations_and_the_step_gate() {
    let step = Step {
        name: "toleration-test".into(),
        image: "alpine".into(),
        uuid: UUID.into(),
        backend_options: [(
            "kubernetes".to_string(),
            json!({"tolerations": [{"key": "custom", "value": "value", "effect": "NoSchedule"}]}),
        )]
        .into(),
        ..Default::default()
    };
    let agent = vec![
        step_options::Toleration {
            key: "foo".into(),
            value: "bar".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        },
        step_options::Toleration {
            key: "baz".into(),
            value: "qux".into(),
            effect: "NoExecute".into(),
            ..Default::default()
        },
    ];
    let closed = Options {
        pod_tolerations: agent.clone(),
        pod_tolerations_allow_from_step: false,
        ..opts()
    };
    let (p, w) = pod_json(&step, &closed);
    assert_eq!(
        p["spec"]["tolerations"],
        json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}, {"key": "baz", "value": "qux", "effect": "NoExecute"}])
    );
    assert_eq!(w.len(), 1);
    let (p, _) = pod_json(
        &step,
        &Options {
            pod_tolerations_allow_from_step: false,
            ..opts()
        },
    );
    assert!(p["spec"].get("tolerations").is_none());
    let (p, _) = pod_json(
        &step,
        &Options {
            pod_tolerations: agent,
            ..opts()
        },
    );
    assert_eq!(
        p["spec"]["tolerations"],
        json!([{"key": "custom", "value": "value", "effect": "NoSchedule"}])
    );
}
