//! deploy/ manifests, the Dockerfile and the static build: the kustomization renders
//! (`kubectl kustomize`), schema-valid (kubernetes-validate --strict), consistent with each other,
//! RBAC exactly as the code needs, a StatefulSet whose grace outlasts the drain, and a static binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use woodpecker_k8s_agent::backend::preflight::{LEASES, NAMESPACED, PATCH_PODS, PER_ORG, Permission};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The objects of a multi-document YAML text, as JSON values.
fn parse_objects(text: &str, what: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{what}: {e}"));
            serde_json::to_value(value).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// `kubectl kustomize deploy/<dir>`: the YAML it renders.
fn kustomize(dir: &str) -> String {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(repo().join("deploy").join(dir))
        .output()
        .unwrap_or_else(|e| panic!("`{kubectl} kustomize` could not run ({e}); kubectl 1.32 is expected"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl kustomize deploy/{dir} failed:\n{err}");
    String::from_utf8(out.stdout).unwrap()
}

/// The base as `kubectl kustomize deploy/` renders it.
fn base() -> Vec<Value> {
    parse_objects(&kustomize(""), "kubectl kustomize deploy/")
}

/// The namespace-per-org overlay, rendered.
fn per_org() -> Vec<Value> {
    let dir = "overlays/namespace-per-org";
    parse_objects(&kustomize(dir), dir)
}

/// The keep-failed-pods overlay, rendered.
fn keep_failed() -> Vec<Value> {
    let dir = "overlays/keep-failed-pods";
    parse_objects(&kustomize(dir), dir)
}

/// The value of `name` in the agent container's env.
fn env_var(objects: &[Value], name: &str) -> Value {
    let set = find(objects, "StatefulSet");
    let env = set["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    env.into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))["value"]
        .clone()
}

/// The files applied by hand, beside the kustomization.
const LOOSE: [&str; 2] = ["examples/secret.yaml", "optional/storageclass-reader.yaml"];

fn objects(path: &Path) -> Vec<Value> {
    parse_objects(&std::fs::read_to_string(path).unwrap(), &path.display().to_string())
}

fn find(objects: &[Value], kind: &str) -> Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn object(file: &str, kind: &str) -> Value {
    find(&objects(&repo().join("deploy").join(file)), kind)
}

/// The (group, resource, verb) triples a Role or ClusterRole grants; panics on wildcards.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    let triple = (
                        group.as_str().unwrap(),
                        resource.as_str().unwrap(),
                        verb.as_str().unwrap(),
                    );
                    assert!(![triple.0, triple.1, triple.2].contains(&"*"), "wildcard in {rule}");
                    out.insert((triple.0.into(), triple.1.into(), triple.2.into()));
                }
            }
        }
    }
    out
}

fn needed(perms: &[&[Permission]]) -> BTreeSet<(String, String, String)> {
    perms
        .iter()
        .flat_map(|list| list.iter())
        .map(|p| {
            let resource = match p.subresource {
                "" => p.resource.to_string(),
                sub => format!("{}/{sub}", p.resource),
            };
            (p.group.to_string(), resource, p.verb.to_string())
        })
        .collect()
}

#[test]
fn manifests_pass_kubernetes_validate_strict() {
    // What `kubectl apply -k` would send (the base and the overlay), and the loose files.
    let dir = std::env::temp_dir().join(format!("wp-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let mut count = 0;
    for (name, text) in [
        ("base.yaml", kustomize("")),
        ("per-org.yaml", kustomize("overlays/namespace-per-org")),
        ("keep-failed.yaml", kustomize("overlays/keep-failed-pods")),
    ] {
        count += parse_objects(&text, name).len();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    for loose in LOOSE {
        let path = repo().join("deploy").join(loose);
        count += objects(&path).len();
        files.push(path);
    }
    assert!(count >= 18, "deploy/ lost objects: {count}");
    // The oldest release we support (kubectl 1.32) and the validator's newest schema.
    for version in ["1.32.0", "1.37.0"] {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--kubernetes-version", version])
            .args(&files)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "kubernetes-validate could not run ({e}); install it with \
                     `python3 -m pip install kubernetes-validate` (scripts/test.sh does)"
                )
            });
        let report = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubernetes-validate --strict -k {version} failed:\n{report}"
        );
        // Every object was validated, none skipped as unknown.
        assert_eq!(report.matches(" passed for resource ").count(), count, "{report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn role_grants_exactly_what_the_agent_uses() {
    let base = base();
    assert_eq!(grants(&find(&base, "Role")), needed(&[NAMESPACED, LEASES]));
    // The overlay keeps the base Role (Leases live in the base namespace) and adds the rest
    // cluster-wide.
    let per_org = per_org();
    assert_eq!(grants(&find(&per_org, "Role")), needed(&[NAMESPACED, LEASES]));
    assert_eq!(grants(&find(&per_org, "ClusterRole")), needed(&[NAMESPACED, PER_ORG]));
    assert_eq!(
        env_var(&per_org, "WOODPECKER_BACKEND_K8S_NAMESPACE_PER_ORGANIZATION"),
        "true"
    );
    // Keeping failed pods patches them: the overlay that turns it on adds that verb and no other,
    // and keeps the rest of the agent's env.
    let keep = keep_failed();
    assert_eq!(
        grants(&find(&keep, "Role")),
        needed(&[NAMESPACED, LEASES, &[PATCH_PODS]])
    );
    let keep_for = env_var(&keep, "WOODPECKER_BACKEND_K8S_KEEP_FAILED_PODS");
    let keep_for = woodpecker_k8s_agent::go::duration::parse(keep_for.as_str().unwrap()).unwrap();
    assert_eq!(keep_for, 30 * 60 * 1_000_000_000);
    assert_eq!(env_var(&keep, "WOODPECKER_BACKEND"), "kubernetes");
}

#[test]
fn objects_refer_to_each_other() {
    let base = base();
    let sa = find(&base, "ServiceAccount");
    let role = find(&base, "Role");
    let binding = find(&base, "RoleBinding");
    let set = find(&base, "StatefulSet");
    let pdb = find(&base, "PodDisruptionBudget");
    let svc = find(&base, "Service");
    let secret = object("examples/secret.yaml", "Secret");
    let ns = find(&base, "Namespace")["metadata"]["name"].clone();
    for o in [&sa, &role, &binding, &set, &pdb, &svc, &secret] {
        assert_eq!(o["metadata"]["namespace"], ns, "{} is not in {ns}", o["kind"]);
    }
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], ns);
    let per_org = per_org();
    let crb = find(&per_org, "ClusterRoleBinding");
    assert_eq!(
        crb["roleRef"]["name"],
        find(&per_org, "ClusterRole")["metadata"]["name"]
    );
    let reader = "optional/storageclass-reader.yaml";
    let reader_binding = object(reader, "ClusterRoleBinding");
    assert_eq!(
        reader_binding["roleRef"]["name"],
        object(reader, "ClusterRole")["metadata"]["name"]
    );
    for b in [&crb, &reader_binding] {
        assert_eq!(b["subjects"][0]["name"], sa["metadata"]["name"]);
        assert_eq!(b["subjects"][0]["namespace"], ns);
    }

    let pod = &set["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(set["spec"]["selector"]["matchLabels"], *labels);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], *labels);
    assert_eq!(svc["spec"]["selector"], *labels);
    assert_eq!(svc["spec"]["clusterIP"], "None");
    assert_eq!(set["spec"]["serviceName"], svc["metadata"]["name"]);
    assert_eq!(pod["spec"]["serviceAccountName"], sa["metadata"]["name"]);
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}"))
    };
    let key_ref = &var("WOODPECKER_AGENT_SECRET")["valueFrom"]["secretKeyRef"];
    assert_eq!(key_ref["name"], secret["metadata"]["name"]);
    let key = key_ref["key"].as_str().unwrap();
    assert!(
        secret["stringData"].get(key).is_some(),
        "the example Secret has no key {key}"
    );
    assert!(var("WOODPECKER_SERVER")["value"].is_string());
    assert_eq!(var("WOODPECKER_BACKEND")["value"], "kubernetes");
    // Steps and Leases in the pod's own namespace.
    assert_eq!(
        var("WOODPECKER_BACKEND_K8S_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
}

/// A rollout, an eviction or a scale-down gives the agent its whole drain, then time to cancel,
/// clean up and release its Lease, before the kubelet kills it; the identity is the pod name.
#[test]
fn statefulset_outlasts_the_drain_and_keeps_identities() {
    let base = base();
    let set = find(&base, "StatefulSet");
    let spec = &set["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    let drain = woodpecker_k8s_agent::go::duration::setting(&var_value(c, "WOODPECKER_DRAIN_TIMEOUT"), true)
        .unwrap()
        .as_secs();
    let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace >= drain + 30,
        "terminationGracePeriodSeconds {grace} <= drain {drain} + 30"
    );
    // No fixed WOODPECKER_HOSTNAME: each replica is its pod name; no state volume: the Lease
    // keeps the agent id.
    let env = c["env"].as_array().unwrap();
    assert!(!env.iter().any(|e| e["name"] == "WOODPECKER_HOSTNAME"));
    assert!(spec.get("volumes").is_none() && c.get("volumeMounts").is_none());
    // One agent at a time may be disrupted; a single replica can still be drained.
    let pdb = find(&base, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(pdb["spec"].get("minAvailable").is_none());
    // A restarted agent may wait out its old Lease (15 s by default) before it answers.
    assert!(c["livenessProbe"]["initialDelaySeconds"].as_u64().unwrap() > 15);
}

#[test]
fn statefulset_is_restricted_and_probes_the_health_endpoint() {
    let set = find(&base(), "StatefulSet");
    let spec = &set["spec"]["template"]["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(sc.get("privileged").is_none_or(|p| p == false));

    let port = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["containerPort"] == 3000)
        .expect("port 3000");
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], "/healthz", "{probe}");
        assert!(
            get["port"] == port["name"] || get["port"] == 3000,
            "{probe} port {}",
            get["port"]
        );
    }
    for field in ["requests", "limits"] {
        assert!(c["resources"][field]["memory"].is_string(), "no memory {field}");
    }
    // The image runs as 65532: the Dockerfile's USER and the pod's runAsUser agree.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.lines().any(|l| l.trim() == "USER 65532:65532"));
    assert_eq!(spec["securityContext"]["runAsUser"], 65532);
}

fn var_value(container: &Value, name: &str) -> String {
    let env = container["env"].as_array().unwrap();
    let var = env
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"));
    var["value"].as_str().unwrap().to_string()
}

/// `ARG` defaults substituted into one Dockerfile's instructions, as (INSTRUCTION, args).
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let mut args: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (instr, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut rest = rest.trim().to_string();
        for (k, v) in &args {
            rest = rest.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
        }
        if instr.eq_ignore_ascii_case("ARG")
            && let Some((k, v)) = rest.split_once('=')
        {
            args.push((k.to_string(), v.to_string()));
        }
        out.push((instr.to_ascii_uppercase(), rest));
    }
    out
}

#[test]
fn dockerfile_is_scratch_with_only_the_static_binary() {
    let instrs = dockerfile();
    let of = |name: &str| {
        instrs
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, a)| a.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(of("FROM"), ["scratch"], "one stage, from scratch");
    assert_eq!(
        of("COPY"),
        ["target/x86_64-unknown-linux-musl/release/woodpecker-k8s-agent /woodpecker-k8s-agent"]
    );
    assert!(of("ADD").is_empty() && of("RUN").is_empty());
    let user = of("USER");
    assert_eq!(user.len(), 1);
    let uid: u32 = user[0].split(':').next().unwrap().parse().expect("numeric USER");
    assert_ne!(uid, 0, "the image must not run as root");
    assert_eq!(of("ENTRYPOINT"), [r#"["/woodpecker-k8s-agent"]"#]);
    assert_eq!(of("CMD"), [r#"["agent"]"#]);

    // The build script writes the binary the COPY takes, and .dockerignore lets only it through.
    let script = std::fs::read_to_string(repo().join("scripts/build-static.sh")).unwrap();
    assert!(script.contains(r#"bin="target/$target/release/woodpecker-k8s-agent""#));
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let rules: Vec<&str> = ignore
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(rules[0], "*");
    assert!(rules.contains(&"!target/x86_64-unknown-linux-musl/release/woodpecker-k8s-agent"));
}

/// The ELF program header types of a 64-bit little-endian executable.
fn program_headers(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count)
        .map(|i| u32::from_le_bytes(elf[phoff + i * size..][..4].try_into().unwrap()))
        .collect()
}

const PT_INTERP: u32 = 3;
const PT_LOAD: u32 = 1;

/// Slow (a release LTO build for musl: minutes on 2 cores the first time, seconds after).
#[test]
fn build_script_produces_a_static_binary() {
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-static.sh"))
        .arg("x86_64")
        .output()
        .expect("run bash scripts/build-static.sh");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/build-static.sh failed:\n{log}");
    let path = repo().join(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.ends_with("target/x86_64-unknown-linux-musl/release/woodpecker-k8s-agent"),
        "{path:?}"
    );
    let elf = std::fs::read(&path).unwrap();
    let headers = program_headers(&elf);
    assert!(headers.contains(&PT_LOAD));
    assert!(
        !headers.contains(&PT_INTERP),
        "{path:?} asks for a dynamic loader (PT_INTERP)"
    );
    // And it runs with no loader and no libc on the machine's side.
    let version = Command::new(&path).arg("version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("woodpecker-k8s-agent "));
    // The dynamic agent is the counter-example: the check above can tell the two apart.
    let dynamic = std::fs::read(env!("CARGO_BIN_EXE_woodpecker-k8s-agent")).unwrap();
    assert!(program_headers(&dynamic).contains(&PT_INTERP));
}
