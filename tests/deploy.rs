//! deploy/ manifests, the Dockerfile and the static build: schema-valid (kubernetes-validate
//! --strict), consistent with each other, RBAC exactly as the code needs, and a static binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use woodpecker_k8s_agent::backend::preflight::permissions::{NAMESPACED, PER_ORG, Permission};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.yaml` under deploy/, sorted.
fn manifest_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("deploy"), &mut files);
    files.sort();
    files
}

/// The objects of one YAML file (multi-document), as JSON values.
fn objects(path: &Path) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::to_value(value).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn object(file: &str, kind: &str) -> Value {
    objects(&repo().join("deploy").join(file))
        .into_iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("deploy/{file} has no {kind}"))
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
    let files = manifest_files();
    assert!(files.len() >= 7, "deploy/ lost files: {files:?}");
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
        let objects: usize = files.iter().map(|f| objects(f).len()).sum();
        assert_eq!(report.matches(" passed for resource ").count(), objects, "{report}");
    }
}

#[test]
fn role_grants_exactly_what_the_agent_uses() {
    let role = object("role.yaml", "Role");
    assert_eq!(grants(&role), needed(&[NAMESPACED]));
    let per_org = object("optional/namespace-per-org.yaml", "ClusterRole");
    assert_eq!(grants(&per_org), needed(&[NAMESPACED, PER_ORG]));
}

#[test]
fn objects_refer_to_each_other() {
    let sa = object("serviceaccount.yaml", "ServiceAccount");
    let role = object("role.yaml", "Role");
    let binding = object("rolebinding.yaml", "RoleBinding");
    let deploy = object("deployment.yaml", "Deployment");
    let secret = object("examples/secret.yaml", "Secret");
    let ns = object("namespace.yaml", "Namespace")["metadata"]["name"].clone();
    for o in [&sa, &role, &binding, &deploy, &secret] {
        assert_eq!(o["metadata"]["namespace"], ns, "{} is not in {ns}", o["kind"]);
    }
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], ns);
    for file in ["optional/namespace-per-org.yaml", "optional/storageclass-reader.yaml"] {
        let crb = object(file, "ClusterRoleBinding");
        assert_eq!(
            crb["roleRef"]["name"],
            object(file, "ClusterRole")["metadata"]["name"],
            "{file}"
        );
        assert_eq!(crb["subjects"][0]["name"], sa["metadata"]["name"], "{file}");
        assert_eq!(crb["subjects"][0]["namespace"], ns, "{file}");
    }

    let pod = &deploy["spec"]["template"];
    assert_eq!(deploy["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]);
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
}

#[test]
fn deployment_is_restricted_and_probes_the_health_endpoint() {
    let deploy = object("deployment.yaml", "Deployment");
    let spec = &deploy["spec"]["template"]["spec"];
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
    // A read-only root: whatever the agent writes lives on a mounted volume.
    let state = var_value(c, "WOODPECKER_AGENT_CONFIG_FILE");
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| state.starts_with(m["mountPath"].as_str().unwrap())),
        "{state} not on a volume"
    );
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
