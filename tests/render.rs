//! `render` end to end: each workflow in `testdata/workflows/*.json` (agent options from the
//! `.env` beside it, and nothing from our own environment) is rendered by the binary and
//! compared with its golden output in `testdata/render/` (`UPDATE_GOLDEN=1` rewrites them); the
//! YAML form is validated with `kubernetes-validate --strict`, and every name is checked
//! against the apiserver's name rules, which the schema does not encode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The schema version `kubernetes-validate` checks against (kubectl on the machine is 1.32).
const K8S_VERSION: &str = "1.32.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workflows under test, by stem.
fn workflows() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("testdata/workflows"))
        .expect("testdata/workflows exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "expected the workflow fixtures, found {names:?}");
    names
}

/// `KEY=VALUE` lines of `<name>.env` (comments and blank lines skipped).
fn env_of(name: &str) -> BTreeMap<String, String> {
    let path = root().join(format!("testdata/workflows/{name}.env"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return BTreeMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: bad line {l:?}", path.display()));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn render(name: &str, extra: &[&str]) -> Output {
    let wf = root().join(format!("testdata/workflows/{name}.json"));
    Command::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"))
        .arg("render")
        .arg(&wf)
        .args(extra)
        .env_clear()
        .envs(env_of(name))
        .output()
        .expect("run the binary")
}

fn ok_stdout(name: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "render {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

/// Compares `got` with the golden file, or rewrites it under `UPDATE_GOLDEN=1`.
fn golden(path: &Path, got: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if want != got {
        let line = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{} differs at line {}:\n want: {:?}\n  got: {:?}\n(UPDATE_GOLDEN=1 rewrites it after review)",
            path.display(),
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
}

#[test]
fn render_matches_goldens() {
    for name in workflows() {
        let out = render(&name, &[]);
        let stdout = ok_stdout(&name, &out);
        golden(&root().join(format!("testdata/render/{name}.json")), &stdout);
        golden(
            &root().join(format!("testdata/render/{name}.warnings")),
            &String::from_utf8_lossy(&out.stderr),
        );
        // Deterministic: a second run is byte-identical.
        assert_eq!(
            ok_stdout(&name, &render(&name, &[])),
            stdout,
            "{name}: output not deterministic"
        );
    }
}

fn kubernetes_validate() -> Command {
    let probe = Command::new("kubernetes-validate").arg("--version").output();
    if probe.is_ok_and(|o| o.status.success()) {
        return Command::new("kubernetes-validate");
    }
    let py = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--version"])
        .output();
    if py.is_ok_and(|o| o.status.success()) {
        let mut c = Command::new("python3");
        c.args(["-m", "kubernetes_validate"]);
        return c;
    }
    panic!("kubernetes-validate is not installed: run `pip install kubernetes-validate` (scripts/test.sh does it)");
}

#[test]
fn rendered_objects_pass_kubernetes_validate_strict() {
    let dir = std::env::temp_dir().join(format!("wp-render-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in workflows() {
        let yaml = ok_stdout(&name, &render(&name, &["-o", "yaml"]));
        let docs = yaml.matches("\n---\n").count() + 1;
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        let out = kubernetes_validate()
            .args(["--strict", "-k", K8S_VERSION])
            .arg(&file)
            .output()
            .unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name}: kubernetes-validate failed:\n{report}");
        assert_eq!(
            report.matches(" passed for resource ").count(),
            docs,
            "{name}: not every object validated:\n{report}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// The apiserver's name rules that the OpenAPI schema leaves out, and the workflow invariants
/// we promise: one anchor, everything else owned by it and labelled with the task.
#[test]
fn rendered_names_are_valid_and_everything_is_anchored() {
    for name in workflows() {
        let list: Value = serde_json::from_str(&ok_stdout(&name, &render(&name, &[]))).unwrap();
        assert_eq!((str_at(&list, "/apiVersion"), str_at(&list, "/kind")), ("v1", "List"));
        let items = list["items"].as_array().unwrap();
        let anchor = items
            .iter()
            .find(|o| o["kind"] == "Service")
            .expect("a headless Service");
        let anchor_name = str_at(anchor, "/metadata/name");
        assert_eq!(str_at(anchor, "/spec/clusterIP"), "None", "{name}");
        for o in items {
            let (kind, obj) = (str_at(o, "/kind"), str_at(o, "/metadata/name"));
            let what = format!("{name}: {kind} {obj}");
            assert!(is_dns_subdomain(obj), "{what}: invalid name");
            for (k, v) in o["metadata"]["labels"].as_object().into_iter().flatten() {
                assert!(is_label_value(v.as_str().unwrap()), "{what}: label {k}={v}");
            }
            if kind == "Namespace" || kind == "Service" {
                continue;
            }
            assert_eq!(
                str_at(o, "/metadata/ownerReferences/0/name"),
                anchor_name,
                "{what}: not anchored"
            );
            assert!(
                !str_at(o, "/metadata/labels/woodpecker-ci.org~1task-uuid").is_empty(),
                "{what}: no task label"
            );
            if kind != "Pod" {
                continue;
            }
            assert_eq!(str_at(o, "/spec/subdomain"), anchor_name, "{what}");
            let spec = &o["spec"];
            let containers = spec["containers"]
                .as_array()
                .into_iter()
                .chain(spec["initContainers"].as_array());
            for c in containers.flatten() {
                assert!(is_dns_label(str_at(c, "/name")), "{what}: container name {}", c["name"]);
            }
            for v in spec["volumes"].as_array().into_iter().flatten() {
                assert!(is_dns_label(str_at(v, "/name")), "{what}: volume name {}", v["name"]);
            }
            let host = str_at(o, "/spec/hostname");
            assert!(host.is_empty() || is_dns_label(host), "{what}: hostname {host}");
            let c = &spec["containers"][0];
            let privileged = c["securityContext"]["privileged"] == true;
            assert!(
                !(privileged && c["securityContext"]["allowPrivilegeEscalation"] == false),
                "{what}: rejected combo"
            );
        }
    }
}

#[test]
fn secrets_are_always_redacted() {
    let conf = std::fs::read_to_string(root().join("testdata/workflows/secrets.json")).unwrap();
    let clear = ["tok-9f8e7d6c5b4a", "aws-SECRET-value-123", "ghp_registryPASSWORD0001"];
    assert!(clear.iter().all(|s| conf.contains(s)), "fixture changed");
    let redacted = ok_stdout("secrets", &render("secrets", &[]));
    for s in clear {
        assert!(!redacted.contains(s), "secret {s} printed");
    }
    assert!(redacted.contains("[REDACTED]"));
    // The pod itself never holds a value, not even redacted: it references the step Secret.
    let list: Value = serde_json::from_str(&redacted).unwrap();
    for pod in list["items"].as_array().unwrap().iter().filter(|o| o["kind"] == "Pod") {
        assert!(!pod.to_string().contains("[REDACTED]"), "secret value in a pod spec");
    }
}

#[test]
fn bad_options_and_inputs_are_clear_errors() {
    let bin = env!("CARGO_BIN_EXE_woodpecker-k8s-agent");
    let wf = root().join("testdata/workflows/basic.json");
    for (var, value, needle) in [
        (
            "WOODPECKER_BACKEND_K8S_VOLUME_SIZE",
            "lots",
            "invalid WOODPECKER_BACKEND_K8S_VOLUME_SIZE",
        ),
        (
            "WOODPECKER_BACKEND_K8S_POD_LABELS",
            "{a: [1]",
            "invalid WOODPECKER_BACKEND_K8S_POD_LABELS",
        ),
        (
            "WOODPECKER_BACKEND_K8S_STORAGE_RWX",
            "maybe",
            "invalid WOODPECKER_BACKEND_K8S_STORAGE_RWX",
        ),
    ] {
        let out = Command::new(bin)
            .arg("render")
            .arg(&wf)
            .env_clear()
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        assert!(
            err.contains("error: backend options") && err.contains(needle),
            "{var}={value}: {err}"
        );
    }
    let out = Command::new(bin)
        .args(["render", "/nonexistent/wf.json"])
        .env_clear()
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("read workflow /nonexistent/wf.json"));
    let bad = std::env::temp_dir().join(format!("wp-render-bad-{}.json", std::process::id()));
    std::fs::write(&bad, "{\"pipeline\": 3}").unwrap();
    let out = Command::new(bin).arg("render").arg(&bad).env_clear().output().unwrap();
    std::fs::remove_file(&bad).ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("decode workflow") && err.contains("caused by"), "{err}");
    // Flags win over the environment.
    let out = Command::new(bin)
        .arg("render")
        .arg(&wf)
        .args(["--backend-k8s-namespace", "from-flag", "--task-uuid", "99"])
        .env_clear()
        .env("WOODPECKER_BACKEND_K8S_NAMESPACE", "from-env")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"namespace\": \"from-flag\"") && !text.contains("from-env"),
        "{text}"
    );
    assert!(text.contains("\"wp-hsvc-99\""));
}

#[test]
fn usage_and_argument_errors() {
    let bin = env!("CARGO_BIN_EXE_woodpecker-k8s-agent");
    let out = Command::new(bin).args(["render", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        help.contains("--task-uuid") && help.contains("--backend-k8s-pod-image-pull-secret-names"),
        "{help}"
    );
    assert!(help.contains("$WOODPECKER_BACKEND_K8S_PULL_SECRET_NAMES"), "{help}");
    // Issue 17: the admins' options are flags too, from the one table.
    for var in [
        "START_TIMEOUT",
        "START_GRACE",
        "MAX_STEP_TIMEOUT",
        "KEEP_FAILED_PODS",
        "DEFAULT_ARCH",
        "RUN_AS_USER",
        "RUN_AS_GROUP",
        "FS_GROUP",
        "POD_SECURITY_ENFORCE",
        "POD_PATCH",
        "SERVICE_PATCH",
        "CACHES",
        "WORKSPACE_EMPTYDIR",
    ] {
        let flag = format!("--backend-k8s-{}", var.to_lowercase().replace('_', "-"));
        let line = help
            .lines()
            .find(|l| l.trim_end().ends_with(&format!("$WOODPECKER_BACKEND_K8S_{var}")));
        assert!(line.is_some_and(|l| l.contains(&flag)), "{var}: {help}");
    }
    // A patch touching what the agent owns stops render (and the agent) naming the field.
    let out = Command::new(bin)
        .arg("render")
        .arg(root().join("testdata/workflows/basic.json"))
        .args(["--backend-k8s-pod-patch", "{spec: {containers: []}}"])
        .env_clear()
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("WOODPECKER_BACKEND_K8S_POD_PATCH") && err.contains("`spec.containers`: owned by the agent"),
        "{err}"
    );
    let wf = root().join("testdata/workflows/basic.json");
    for (args, needle) in [
        (vec!["-o", "xml"], "unknown output format \"xml\""),
        (vec!["--backend-k8s-no-such"], "--backend-k8s-no-such"),
        (vec!["extra.json"], "extra.json"),
    ] {
        let out = Command::new(bin)
            .arg("render")
            .arg(&wf)
            .args(&args)
            .env_clear()
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = Command::new(bin).arg("render").env_clear().output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing WORKFLOW.json"));
}

/// The Pod Security Standard "restricted" rules (kubernetes.io/docs/concepts/security/
/// pod-security-standards) that apply to what we emit, checked on the restricted fixture.
#[test]
fn restricted_fixture_meets_pod_security_restricted() {
    assert_restricted("restricted", 3);
}

/// Issue 17: agent-wide ids and the restricted defaults make plain steps (the clone step, a
/// service, a build with caches and patches) restricted with no per-step setup, and the
/// privileged step is refused (no objects, a warning) rather than sent to the cluster.
#[test]
fn admin_fixture_meets_pod_security_restricted_without_per_step_setup() {
    assert_restricted("admin", 3);
    let out = render("admin", &[]);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        warnings.contains(
            "step \"docker\": refused: the agent enforces Pod Security \"restricted\" (WOODPECKER_BACKEND_K8S_POD_SECURITY_ENFORCE) and the step asks for privileged: true"
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains("caches.secrets: not a cache the agent declares"),
        "{warnings}"
    );
    let list: Value = serde_json::from_str(&ok_stdout("admin", &out)).unwrap();
    let pod = |step: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "Pod" && o["metadata"]["labels"]["step"] == step)
            .unwrap_or_else(|| panic!("no pod for {step}"))
            .clone()
    };
    // DEFAULT_ARCH=none: no pin, unless the step names its platform.
    assert!(pod("clone")["spec"].get("nodeSelector").is_none());
    assert_eq!(pod("build")["spec"]["nodeSelector"]["kubernetes.io/arch"], "arm64");
    // The step timeout (2h) is capped at MAX_STEP_TIMEOUT (1h) and is the pod's deadline.
    assert_eq!(pod("build")["spec"]["activeDeadlineSeconds"], 3600);
    // The service patch reaches only the service.
    assert_eq!(pod("cache")["spec"]["terminationGracePeriodSeconds"], 5);
    assert!(pod("build")["spec"].get("terminationGracePeriodSeconds").is_none());
    assert_eq!(pod("clone")["spec"]["topologySpreadConstraints"][0]["maxSkew"], 1);
}

fn assert_restricted(fixture: &str, expected_pods: usize) {
    let list: Value = serde_json::from_str(&ok_stdout(fixture, &render(fixture, &[]))).unwrap();
    let pods: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "Pod")
        .collect();
    assert_eq!(pods.len(), expected_pods);
    for pod in pods {
        let name = str_at(pod, "/metadata/name");
        let spec = &pod["spec"];
        let psc = &spec["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{name}: runAsNonRoot");
        assert_ne!(psc["runAsUser"], 0, "{name}: runAsUser 0");
        let seccomp = str_at(psc, "/seccompProfile/type");
        assert!(
            seccomp == "RuntimeDefault" || seccomp == "Localhost",
            "{name}: seccomp {seccomp:?}"
        );
        for (k, _) in spec.as_object().unwrap() {
            assert!(
                !["hostNetwork", "hostPID", "hostIPC"].contains(&k.as_str()),
                "{name}: {k}"
            );
        }
        for v in spec["volumes"].as_array().into_iter().flatten() {
            let kinds: Vec<&String> = v.as_object().unwrap().keys().filter(|k| *k != "name").collect();
            assert!(
                kinds
                    .iter()
                    .all(|k| ["persistentVolumeClaim", "secret", "emptyDir"].contains(&k.as_str())),
                "{name}: {v}"
            );
        }
        let containers = spec["containers"]
            .as_array()
            .into_iter()
            .chain(spec["initContainers"].as_array());
        for c in containers.flatten() {
            let sc = &c["securityContext"];
            let cname = str_at(c, "/name");
            assert_eq!(
                sc["allowPrivilegeEscalation"], false,
                "{name}/{cname}: allowPrivilegeEscalation"
            );
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{name}/{cname}: drop ALL"
            );
            assert!(
                sc["capabilities"].get("add").is_none() && sc.get("privileged").is_none(),
                "{name}/{cname}"
            );
            assert!(
                c.get("ports")
                    .is_none_or(|p| p.as_array().unwrap().iter().all(|p| p.get("hostPort").is_none()))
            );
        }
    }
}

#[test]
fn yaml_output_is_the_json_output() {
    for name in workflows() {
        let json: Value = serde_json::from_str(&ok_stdout(&name, &render(&name, &[]))).unwrap();
        let yaml = ok_stdout(&name, &render(&name, &["-o", "yaml"]));
        let docs: Vec<Value> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_yaml::from_str(d).unwrap_or_else(|e| panic!("{name}: {e}\n{d}")))
            .collect();
        assert_eq!(&Value::Array(docs), &json["items"], "{name}");
    }
}
