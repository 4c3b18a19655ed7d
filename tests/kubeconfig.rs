//! kubeconfig resolution end to end: our `kubeconfig` command against
//! `kubectl config view --minify --raw --flatten -o json` over the corpus in
//! `testdata/kubeconfigs/`, plus the command's errors and its silence about secrets.
//! `sim_auth`: the resolved credentials against the simulated cluster.

mod sim_auth;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_woodpecker-k8s-agent");

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kubeconfigs")
}

/// One way of pointing both tools at the corpus.
struct Case {
    name: &'static str,
    /// `KUBECONFIG`, relative to the corpus directory (the working directory of both tools).
    env: Option<&'static str>,
    /// `--kubeconfig`.
    flag: Option<&'static str>,
    context: Option<&'static str>,
    /// What we expect kubectl and us to agree on, as a sanity check of the corpus itself.
    auth: &'static str,
}

// One case per line reads as a table; rustfmt would spread each over seven.
#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { name: "kind", env: Some("kind.yaml"), flag: None, context: None, auth: "client-certificate" },
    Case { name: "k3s", env: None, flag: Some("k3s.yaml"), context: None, auth: "client-certificate" },
    Case { name: "minikube", env: Some("minikube.yaml"), flag: None, context: None, auth: "client-certificate" },
    Case { name: "eks", env: Some("eks.yaml"), flag: None, context: None, auth: "exec" },
    Case { name: "gke", env: None, flag: Some("gke.yaml"), context: None, auth: "exec" },
    Case { name: "token-file", env: Some("token-file.yaml"), flag: None, context: None, auth: "token-file" },
    Case { name: "token-and-file", env: Some("token-and-file.yaml"), flag: None, context: None, auth: "token-file" },
    Case { name: "client-cert-files", env: None, flag: Some("client-cert-files.yaml"), context: None, auth: "client-certificate" },
    Case { name: "ipv6", env: Some("ipv6.yaml"), flag: None, context: None, auth: "token" },
    Case { name: "proxy", env: Some("proxy.yaml"), flag: None, context: None, auth: "basic" },
    Case { name: "rancher", env: Some("rancher.yaml"), flag: None, context: None, auth: "token" },
    Case { name: "aks-kubelogin", env: None, flag: Some("aks-kubelogin.yaml"), context: None, auth: "exec" },
    Case { name: "docker-desktop", env: Some("docker-desktop.yaml"), flag: None, context: None, auth: "client-certificate" },
    Case { name: "no-user", env: Some("no-user.yaml"), flag: None, context: None, auth: "none" },
    Case { name: "merged", env: Some("merged/01-contexts.yaml:merged/missing.yaml::merged/02-clusters.yaml"), flag: None, context: None, auth: "token" },
    Case { name: "merged --context prod", env: Some("merged/01-contexts.yaml:merged/02-clusters.yaml"), flag: None, context: Some("prod"), auth: "exec" },
    Case { name: "--kubeconfig beats KUBECONFIG", env: Some("merged/01-contexts.yaml"), flag: Some("ipv6.yaml"), context: None, auth: "token" },
    Case { name: "relative", env: Some("relative/conf/config"), flag: None, context: None, auth: "client-certificate" },
    Case { name: "impersonate", env: None, flag: Some("impersonate.yaml"), context: None, auth: "token" },
    Case { name: "relative exec", env: None, flag: Some("relative/conf/config"), context: Some("rel-exec"), auth: "exec" },
    Case { name: "client certificate X.509 v1", env: None, flag: Some("client-cert-v1.yaml"), context: None, auth: "client-certificate" },
];

/// Runs a tool in the corpus directory with a clean environment (no real ~/.kube/config, no
/// in-cluster variables).
fn run(program: &str, args: &[&str], case: &Case, home: &Path) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(corpus())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECACHEDIR", home.join("cache"));
    if let Some(list) = case.env {
        cmd.env("KUBECONFIG", list);
    }
    if let Some(file) = case.flag {
        cmd.args(["--kubeconfig", file]);
    }
    if let Some(context) = case.context {
        cmd.args(["--context", context]);
    }
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && program == "kubectl" => panic!(
            "kubectl is not installed, and these tests use it as the reference: install it \
             (e.g. `curl -LO https://dl.k8s.io/release/v1.32.4/bin/linux/amd64/kubectl && \
             install kubectl /usr/local/bin/`, or `apt-get install kubectl` from the Kubernetes \
             apt repository)"
        ),
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

fn json_of(out: Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what} printed no JSON: {e}"))
}

fn home(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wka-kubeconfig-{}-{}",
        std::process::id(),
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn str_of(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// The auth method client-go would pick for a user stanza (see `AuthConfig` for the rule).
fn kubectl_auth_kind(user: &Value) -> &'static str {
    if str_of(&user["tokenFile"]).is_some() {
        "token-file"
    } else if str_of(&user["token"]).is_some() {
        "token"
    } else if str_of(&user["username"]).is_some() || str_of(&user["password"]).is_some() {
        "basic"
    } else if str_of(&user["client-certificate-data"]).is_some() {
        "client-certificate"
    } else if user["exec"].is_object() {
        "exec"
    } else {
        "none"
    }
}

fn sha_of_data(v: &Value) -> Option<String> {
    let data = str_of(v)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("kubectl base64");
    Some(sha256_hex(&bytes))
}

#[test]
fn corpus_resolves_as_kubectl_resolves_it() {
    assert!(CASES.len() >= 10);
    for case in CASES {
        let home = home(case.name);
        let ours = json_of(
            run(BIN, &["kubeconfig"], case, &home),
            &format!("{}: our kubeconfig", case.name),
        );
        let view = ["config", "view", "--minify", "--raw", "--flatten", "-o", "json"];
        let kubectl = json_of(run("kubectl", &view, case, &home), &format!("{}: kubectl", case.name));
        let name = case.name;

        let context = &kubectl["contexts"][0];
        let cluster = &kubectl["clusters"][0]["cluster"];
        let users = kubectl["users"].as_array().cloned().unwrap_or_default();
        let user = users.first().map(|u| u["user"].clone()).unwrap_or(Value::Null);

        assert_eq!(ours["context"], context["name"], "{name}: context");
        assert_eq!(ours["cluster"], context["context"]["cluster"], "{name}: cluster");
        assert_eq!(
            ours["user"].as_str(),
            Some(str_of(&context["context"]["user"]).unwrap_or("")),
            "{name}: user"
        );
        let server = cluster["server"].as_str().unwrap().trim_end_matches('/');
        assert_eq!(ours["server"], server, "{name}: server");
        let namespace = str_of(&context["context"]["namespace"]).unwrap_or("default");
        assert_eq!(ours["namespace"], namespace, "{name}: namespace");

        let tls = &ours["tls"];
        assert_eq!(
            tls["insecure"].as_bool(),
            Some(cluster["insecure-skip-tls-verify"].as_bool().unwrap_or(false)),
            "{name}: insecure-skip-tls-verify"
        );
        assert_eq!(
            str_of(&tls["server_name"]),
            str_of(&cluster["tls-server-name"]),
            "{name}: tls-server-name"
        );
        assert_eq!(
            tls["ca_sha256"].as_str().map(str::to_owned),
            sha_of_data(&cluster["certificate-authority-data"]),
            "{name}: certificate authority"
        );
        let proxy = str_of(&cluster["proxy-url"]).map(|p| p.trim_end_matches('/'));
        assert_eq!(str_of(&ours["proxy"]), proxy, "{name}: proxy-url");

        let kind = kubectl_auth_kind(&user);
        assert_eq!(ours["auth"]["kind"], kind, "{name}: auth kind");
        assert_eq!(kind, case.auth, "{name}: the corpus case is what it claims to be");
        let cert = sha_of_data(&user["client-certificate-data"]);
        assert_eq!(
            tls["client_certificate_sha256"].as_str().map(str::to_owned),
            cert,
            "{name}: client certificate"
        );
        if kind == "exec" {
            let command = user["exec"]["command"].as_str().unwrap();
            let resolved = ours["auth"]["command"].as_str().unwrap();
            if command.contains('/') {
                // kubectl prints it as written; we resolve it against the kubeconfig's directory.
                assert!(Path::new(resolved).is_absolute(), "{name}: {resolved}");
                assert!(
                    resolved.ends_with(command.trim_start_matches("./")),
                    "{name}: {resolved}"
                );
                assert!(resolved.starts_with(corpus().to_str().unwrap()), "{name}: {resolved}");
            } else {
                assert_eq!(resolved, command, "{name}: exec command");
            }
            assert_eq!(
                ours["auth"]["api_version"], user["exec"]["apiVersion"],
                "{name}: exec apiVersion"
            );
        }
        // Impersonation: what kubectl would send as Impersonate-* headers.
        let as_fields = ["as", "as-uid", "as-groups", "as-user-extra"];
        if as_fields.iter().any(|f| !user[*f].is_null()) {
            for f in as_fields {
                assert_eq!(ours["impersonate"][f], user[f], "{name}: {f}");
            }
        } else {
            assert!(ours["impersonate"].is_null(), "{name}: nobody impersonated");
        }
        if kind == "token-file" {
            let file = user["tokenFile"].as_str().unwrap();
            let resolved = ours["auth"]["token_file"].as_str().unwrap();
            assert_eq!(Path::new(resolved), corpus().join(file), "{name}: tokenFile");
        }
        std::fs::remove_dir_all(&home).unwrap();
    }
}

#[test]
fn output_never_holds_a_secret() {
    let pki = corpus().join("pki");
    let mut secrets: Vec<String> = vec!["sekrit".into(), "PRIVATE KEY".into()];
    for key in ["client-rsa.key", "client-ec.key", "client-pkcs8.key"] {
        let pem = std::fs::read(pki.join(key)).unwrap();
        secrets.push(base64::engine::general_purpose::STANDARD.encode(&pem)[..40].to_owned());
    }
    for case in CASES {
        let home = home(&format!("secrets-{}", case.name));
        let out = run(BIN, &["kubeconfig"], case, &home);
        assert!(out.status.success(), "{}", case.name);
        let text = String::from_utf8_lossy(&out.stdout);
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{}: `{secret}` printed:\n{text}",
                case.name
            );
        }
        std::fs::remove_dir_all(&home).unwrap();
    }
}

fn run_ours(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("kubeconfig")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .output()
        .unwrap()
}

#[test]
fn errors_name_file_entry_and_field_and_hide_the_value() {
    let dir = home("errors");
    let file = dir.join("config");
    std::fs::write(
        &file,
        "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: ci}\n\
         clusters:\n- name: k\n  cluster: {server: 'https://k:6443'}\n\
         users:\n- name: ci\n  user:\n    client-certificate: /nowhere.crt\n    client-key-data: 'sekrit*key'\n",
    )
    .unwrap();
    let out = run_ours(&dir, &["--kubeconfig", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "kubeconfig `{}`: user `ci`: `client-certificate` file `/nowhere.crt` cannot be read",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("caused by: "), "the io error is the cause: {stderr}");

    let data = std::fs::read_to_string(&file).unwrap().replace(
        "client-certificate: /nowhere.crt",
        &format!(
            "client-certificate-data: {}",
            base64::engine::general_purpose::STANDARD
                .encode(std::fs::read(corpus().join("pki/client-ec.crt")).unwrap())
        ),
    );
    std::fs::write(&file, data).unwrap();
    let out = run_ours(&dir, &["--kubeconfig", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "kubeconfig `{}`: user `ci`: `client-key-data` is not valid base64",
            file.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("sekrit"), "{stderr}");

    let out = run_ours(&dir, &["--kubeconfig", file.to_str().unwrap(), "--context", "nope"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("context `nope` is not defined"), "{stderr}");

    // No KUBECONFIG, an empty home, no in-cluster variables: nothing to connect to.
    let empty_home = home("errors-empty-home");
    let out = run_ours(&empty_home, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no Kubernetes configuration"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/.kube/config", empty_home.display())),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&empty_home).unwrap();
}

#[test]
fn namespace_flag_and_home_config() {
    let dir = home("home-config");
    std::fs::create_dir_all(dir.join(".kube")).unwrap();
    std::fs::copy(corpus().join("no-user.yaml"), dir.join(".kube/config")).unwrap();
    let out = run_ours(&dir, &["-n", "team-a"]);
    let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours["namespace"], "team-a");
    assert_eq!(ours["server"], "http://127.0.0.1:8080");
    assert_eq!(ours["files"][0], dir.join(".kube/config").display().to_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_corpus_fails_in_both_tools_and_we_say_where() {
    let cases = [
        (
            "invalid/duplicate-cluster.yaml",
            "cluster `c`: `name` is defined twice in this file",
        ),
        ("invalid/missing-ca.yaml", "cluster `c`: `certificate-authority` file"),
        // kubectl: `cannot locate user ghost`; we went on anonymously.
        (
            "invalid/undefined-user.yaml",
            "context `c`: user `ghost` is not defined",
        ),
        // kubectl: `cannot unmarshal number into Go struct field AuthInfo.users.user.token of
        // type string`; we took the number's text.
        (
            "invalid/numeric-token.yaml",
            "users[0].user.token: invalid type: an integer, expected a string",
        ),
        (
            "invalid/numeric-password.yaml",
            "users[0].user.password: invalid type: an integer, expected a string",
        ),
    ];
    for (file, want) in cases {
        let case = Case {
            name: file,
            env: None,
            flag: Some(file),
            context: None,
            auth: "",
        };
        let home = home(file);
        let view = ["config", "view", "--minify", "--raw", "--flatten", "-o", "json"];
        let kubectl = run("kubectl", &view, &case, &home);
        assert!(!kubectl.status.success(), "{file}: kubectl accepted it");
        let ours = run(BIN, &["kubeconfig"], &case, &home);
        assert!(!ours.status.success(), "{file}: we accepted it");
        let stderr = String::from_utf8_lossy(&ours.stderr);
        let path = corpus().join(file);
        assert!(
            stderr.contains(&format!("kubeconfig `{}`", path.display())),
            "{file}: {stderr}"
        );
        assert!(stderr.contains(want), "{file}: {stderr}");
        assert!(!stderr.contains("8675309"), "{file}: {stderr}");
        std::fs::remove_dir_all(&home).unwrap();
    }
}

#[tokio::test]
async fn a_relative_exec_command_runs_from_the_kubeconfig_directory() {
    use kube::auth::Credentials;
    use kube::config::{AuthConfig, Overrides, ProcessEnv, infer};
    let overrides = Overrides {
        kubeconfig: Some(corpus().join("relative/conf/config")),
        context: Some("rel-exec".into()),
        namespace: None,
    };
    let config = infer(&ProcessEnv, &overrides).unwrap();
    let AuthConfig::Exec(exec) = &config.auth else {
        panic!("{:?}", config.auth)
    };
    assert_eq!(Path::new(&exec.command), corpus().join("relative/conf/bin/plugin"));
    let creds = Credentials::new(&config.auth).unwrap();
    let header = creds.authorization().await.unwrap().unwrap();
    assert_eq!(header.to_str().unwrap(), "Bearer relative-plugin-token");
    assert!(header.is_sensitive());
}

#[test]
fn help_and_unknown_flags() {
    let dir = home("help");
    let out = run_ours(&dir, &["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--kubeconfig FILE"));
    let out = run_ours(&dir, &["--bogus"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `tokenFile: /dev/zero` was read to 1 GiB before an error; every file a kubeconfig names is
/// read under a bound, and the error names the field and the file at once.
#[test]
fn dev_zero_in_any_file_field_stops_at_the_bound() {
    let dir = home("dev-zero");
    let file = dir.join("config");
    let base = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: ci}\n\
                clusters:\n- name: k\n  cluster: {server: 'https://k:6443'CLUSTER}\nusers:\n- name: ci\n  user:\n";
    let pki = corpus().join("pki");
    let cases = [
        (
            "",
            "    tokenFile: /dev/zero\n",
            "user `ci`: `tokenFile` file `/dev/zero` holds more than 1 MiB",
        ),
        (
            ", certificate-authority: /dev/zero",
            "    token: t\n",
            "cluster `k`: `certificate-authority` file `/dev/zero` holds more than 4 MiB",
        ),
        (
            "",
            "    client-certificate: /dev/zero\n    client-key: KEY\n",
            "user `ci`: `client-certificate` file `/dev/zero` holds more than 4 MiB",
        ),
        (
            "",
            "    client-certificate: CERT\n    client-key: /dev/zero\n",
            "user `ci`: `client-key` file `/dev/zero` holds more than 4 MiB",
        ),
    ];
    for (cluster, user, want) in cases {
        let user = user
            .replace("KEY", pki.join("client-rsa.key").to_str().unwrap())
            .replace("CERT", pki.join("client-rsa.crt").to_str().unwrap());
        std::fs::write(&file, format!("{}{user}", base.replace("CLUSTER", cluster))).unwrap();
        let start = std::time::Instant::now();
        let out = run_ours(&dir, &["--kubeconfig", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{want}");
        assert!(
            stderr.contains(&format!(
                "kubeconfig `{}`: {want} (the limit for this file)",
                file.display()
            )),
            "{stderr}"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{want}: {:?}",
            start.elapsed()
        );
    }
    // The kubeconfig itself.
    let out = run_ours(&dir, &["--kubeconfig", "/dev/zero"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kubeconfig `/dev/zero` cannot be read"), "{stderr}");
    assert!(
        stderr.contains("holds more than 16 MiB (the limit for this file)"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The marker every file of `invalid/values/` holds in the value it gets wrong.
const MARKER: &str = "kc-secret-7f3a9";

/// serde's messages quote the value they reject (`invalid type: string "kc-secret-...",
/// expected struct User`); none of ours does, for any bad kubeconfig in the corpus. The error
/// still names the file, and a decoder error keeps the field path and the expected type.
#[test]
fn no_error_quotes_a_value_of_a_bad_kubeconfig() {
    let dir = corpus().join("invalid/values");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let home = home("values");
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read(file).unwrap();
        let decoded = String::from_utf8_lossy(&text)
            .split_whitespace()
            .filter_map(|w| base64::engine::general_purpose::STANDARD.decode(w).ok())
            .any(|d| String::from_utf8_lossy(&d).contains(MARKER));
        assert!(
            String::from_utf8_lossy(&text).contains(MARKER) || decoded,
            "{name}: the corpus file holds the marker (in base64 for a -data field)"
        );
        let out = Command::new(BIN)
            .args(["kubeconfig", "--kubeconfig"])
            .arg(file)
            .current_dir(&dir)
            .env_clear()
            .env("HOME", &home)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted");
        assert!(
            stderr.contains(&format!("kubeconfig `{}`", file.display())),
            "{name}: {stderr}"
        );
        for needle in [MARKER, "7f3a9", "86753098675309"] {
            assert!(!stderr.contains(needle), "{name}: `{needle}` quoted:\n{stderr}");
        }
    }
    // The decoder's messages keep the path and the expected type.
    let out = Command::new(BIN)
        .args(["kubeconfig", "--kubeconfig"])
        .arg(dir.join("user-is-a-string.yaml"))
        .env_clear()
        .env("HOME", &home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("users[0].user: invalid type: a string, expected struct User at line 11 column 9"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&home).unwrap();
}
