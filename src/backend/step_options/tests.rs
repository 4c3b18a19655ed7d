//! Tests of the lenient step option decoding and the gates.

use serde_json::json;

use super::*;

fn decode(v: Value) -> (StepOptions, Vec<String>) {
    StepOptions::decode(Some(&v))
}

#[test]
fn absent_or_null_gives_defaults() {
    assert_eq!(StepOptions::decode(None), (StepOptions::default(), vec![]));
    assert_eq!(decode(Value::Null), (StepOptions::default(), vec![]));
}

#[test]
fn everything_decodes() {
    let (o, w) = decode(json!({
        "resources": {"requests": {"memory": "128Mi", "cpu": 1}, "limits": {"memory": 256, "cpu": 0.5}},
        "runtimeClassName": "gvisor",
        "serviceAccountName": "builder",
        "labels": {"team": "a", "n": 5, "flag": true},
        "annotations": {"x": "y"},
        "nodeSelector": {"pool": "ci"},
        "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": "3600"}],
        "affinity": {"nodeAffinity": {}},
        "securityContext": {
            "privileged": "true", "runAsNonRoot": 1, "runAsUser": "0x3e9", "runAsGroup": 1000.0, "fsGroup": "010",
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
            "apparmorProfile": {"type": "RuntimeDefault"},
            "allowPrivilegeEscalation": false, "capabilities": {"drop": "ALL"}
        },
        "secrets": {"name": "db", "key": "password", "target": {"env": "DB_PASSWORD"}},
        "workspaceVolume": "false",
        "hostUsers": 0
    }));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        o.requests,
        BTreeMap::from([("cpu".into(), "1".into()), ("memory".into(), "128Mi".into())])
    );
    assert_eq!(
        o.limits,
        BTreeMap::from([("cpu".into(), "0.5".into()), ("memory".into(), "256".into())])
    );
    assert_eq!(o.runtime_class_name.as_deref(), Some("gvisor"));
    assert_eq!(o.service_account_name.as_deref(), Some("builder"));
    assert_eq!(
        (o.labels["n"].as_str(), o.labels["flag"].as_str()),
        ("5", "1"),
        "weak strings"
    );
    assert_eq!(o.tolerations[0].toleration_seconds, Some(3600));
    assert!(o.affinity.is_some());
    let sc = o.security_context.unwrap();
    assert_eq!(sc.privileged, Some(true));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.run_as_user, Some(1001), "hex string");
    assert_eq!(sc.run_as_group, Some(1000));
    assert_eq!(sc.fs_group, Some(8), "leading zero is octal, as Go's base 0");
    assert_eq!(sc.seccomp_profile.unwrap().localhost_profile, "p.json");
    assert_eq!(sc.apparmor_profile.unwrap().type_, "RuntimeDefault");
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities_drop, ["ALL"], "a single value fills a list");
    assert_eq!(o.secrets.len(), 1, "a single map fills a list");
    assert_eq!(o.secrets[0].target_env, "DB_PASSWORD");
    assert_eq!(o.workspace_volume, Some(false));
    assert_eq!(o.host_users, Some(false));
}

#[test]
fn keys_match_case_insensitively() {
    let (o, w) = decode(json!({"ServiceAccountName": "sa", "NODESELECTOR": {"a": "b"}}));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(o.service_account_name.as_deref(), Some("sa"));
    assert_eq!(o.node_selector["a"], "b");
}

#[test]
fn unknown_and_bad_values_warn_and_keep_the_rest() {
    let (o, w) = decode(json!({
        "resource": {},
        "labels": "not-a-map",
        "hostUsers": "maybe",
        "securityContext": {"runAsUser": "root", "capabilities": {"add": ["NET_ADMIN"]}, "fsGroupChangePolicy": "Sometimes"},
        "tolerations": [{"operator": "Maybe", "effect": "Never"}, "x"],
        "secrets": [{"key": "k"}],
        "annotations": {"ok": "yes", "bad": {"nested": 1}, "bad key": "x"},
        "nodeSelector": {"pool": "has space"},
        "serviceAccountName": "kept"
    }));
    let joined = w.join("\n");
    for needle in [
        "backend_options.kubernetes.resource: unknown option",
        "backend_options.kubernetes.labels: expected a map, got a string",
        "backend_options.kubernetes.hostUsers: expected a bool",
        "securityContext.runAsUser: expected an integer",
        "securityContext.capabilities.add: capabilities can only be dropped",
        "fsGroupChangePolicy: \"Sometimes\" is not OnRootMismatch or Always",
        "tolerations[0]: operator \"Maybe\" is not Exists or Equal, ignored",
        "tolerations[1]: expected a map",
        "secrets[0].name",
        "annotations.bad: expected a string",
        "annotations: \"bad key\" is not a valid key",
        "nodeSelector: value \"has space\" of \"pool\" is not a valid label value",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert_eq!(o.service_account_name.as_deref(), Some("kept"));
    assert_eq!(o.annotations, BTreeMap::from([("ok".to_string(), "yes".to_string())]));
    assert!(o.node_selector.is_empty());
    assert!(o.secrets.is_empty());
    assert_eq!(
        decode(json!("string")).1,
        ["backend_options.kubernetes: expected a map, got a string"]
    );
}

#[test]
fn values_the_apiserver_rejects_are_dropped() {
    let (o, w) = decode(json!({
        "tolerations": [
            {"key": "a", "effect": "Never"},
            {"key": "a", "operator": "Exists", "value": "v"},
            {"operator": "Equal", "value": "v"},
            {"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5},
            {"operator": "Exists"},
            {"key": "b", "effect": "NoExecute", "tolerationSeconds": 5}
        ],
        "securityContext": {
            "seccompProfile": {"type": "Localhost"},
            "apparmorProfile": {"type": "RuntimeDefault", "localhostProfile": "x"},
            "fsGroupChangePolicy": "Sometimes"
        }
    }));
    assert_eq!(o.tolerations.len(), 2, "{w:?}");
    assert_eq!(
        (o.tolerations[0].operator.as_str(), o.tolerations[1].key.as_str()),
        ("Exists", "b")
    );
    let sc = o.security_context.unwrap();
    assert_eq!(sc.seccomp_profile, None);
    assert_eq!(
        sc.apparmor_profile,
        Some(Profile {
            type_: "RuntimeDefault".into(),
            localhost_profile: String::new()
        })
    );
    assert_eq!(sc.fs_group_change_policy, None);
    let joined = w.join("\n");
    for needle in [
        "tolerations[0]: effect \"Never\"",
        "tolerations[1]: a value needs operator Equal",
        "tolerations[2]: an empty key needs operator Exists",
        "tolerations[3]: tolerationSeconds needs effect NoExecute",
        "seccompProfile: type Localhost needs a localhostProfile",
        "apparmorProfile.localhostProfile: only allowed with type Localhost",
        "fsGroupChangePolicy: \"Sometimes\" is not OnRootMismatch or Always, ignored",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert_eq!(w.len(), 7, "{joined}");
}

#[test]
fn each_gate_on_and_off() {
    let all = json!({
        "labels": {"a": "b"}, "annotations": {"a": "b"}, "nodeSelector": {"a": "b"},
        "tolerations": [{"key": "a"}], "affinity": {"podAffinity": {}},
        "runtimeClassName": "r", "serviceAccountName": "s", "secrets": [{"name": "n"}],
        "resources": {"limits": {"cpu": "1"}}, "hostUsers": false
    });
    // Defaults: everything gated except tolerations.
    let (mut o, _) = decode(all.clone());
    let w = o.gate(&Options::default());
    assert_eq!(w.len(), 7, "{w:?}");
    for var in [
        "POD_LABELS_ALLOW_FROM_STEP",
        "POD_ANNOTATIONS_ALLOW_FROM_STEP",
        "POD_NODE_SELECTOR_ALLOW_FROM_STEP",
        "POD_AFFINITY_ALLOW_FROM_STEP",
        "RUNTIME_CLASS_ALLOW_FROM_STEP",
        "SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP",
        "ALLOW_NATIVE_SECRETS",
    ] {
        assert!(w.iter().any(|m| m.contains(var)), "no warning for {var}");
    }
    assert!(o.labels.is_empty() && o.annotations.is_empty() && o.node_selector.is_empty());
    assert!(o.affinity.is_none() && o.runtime_class_name.is_none() && o.service_account_name.is_none());
    assert!(o.secrets.is_empty());
    assert_eq!(o.tolerations.len(), 1, "tolerations are allowed by default");
    assert_eq!(o.limits["cpu"], "1", "ungated options stay");
    assert_eq!(o.host_users, Some(false));

    let open = Options {
        pod_labels_allow_from_step: true,
        pod_annotations_allow_from_step: true,
        pod_node_selector_allow_from_step: true,
        pod_tolerations_allow_from_step: false,
        pod_affinity_allow_from_step: true,
        runtime_class_allow_from_step: true,
        service_account_name_allow_from_step: true,
        allow_native_secrets: true,
        ..Default::default()
    };
    let (mut o, _) = decode(all);
    let w = o.gate(&open);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("POD_TOLERATIONS_ALLOW_FROM_STEP"));
    assert!(o.tolerations.is_empty());
    assert!(!o.labels.is_empty() && !o.annotations.is_empty() && !o.node_selector.is_empty());
    assert!(o.affinity.is_some() && o.runtime_class_name.is_some() && o.service_account_name.is_some());
    assert_eq!(o.secrets.len(), 1);
}
