//! Unit tests for choosing a context and resolving its cluster and user: every field, the
//! auth order, and every error.

use std::path::{Path, PathBuf};

use super::*;
use crate::kube::config::testenv::{CA_PEM, CERT_PEM, EC_KEY_PEM, PKCS8_KEY_PEM, RSA_KEY_PEM, TestEnv, b64};
use crate::kube::config::{ConfigError, infer};

/// A kubeconfig at `/k/config` with one context `c` over cluster `cl` and user `u`.
fn kubeconfig(cluster: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: cl, user: u}}\n\
         clusters:\n- name: cl\n  cluster:\n    server: https://k.example:6443\n{cluster}\
         users:\n- name: u\n  user:\n{user}"
    )
}

fn env_with(yaml: &str) -> TestEnv {
    TestEnv::new()
        .var("KUBECONFIG", "/k/config")
        .file("/k/config", yaml)
        .file("/k/pki/ca.crt", CA_PEM)
        .file("/k/pki/client.crt", CERT_PEM)
        .file("/k/pki/client.key", RSA_KEY_PEM)
        .file("/k/token", "  file-token\n")
}

fn resolve_with(env: &TestEnv) -> Result<Config, ConfigError> {
    infer(env, &Overrides::default())
}

fn resolve(cluster: &str, user: &str) -> Result<Config, ConfigError> {
    resolve_with(&env_with(&kubeconfig(cluster, user)))
}

fn err(cluster: &str, user: &str) -> String {
    resolve(cluster, user).unwrap_err().to_string()
}

#[test]
fn server_keeps_path_prefix_and_drops_trailing_slash() {
    let yaml =
        kubeconfig("", "    token: t\n").replace("https://k.example:6443", "https://rancher.example/k8s/clusters/c-1/");
    let config = resolve_with(&env_with(&yaml)).unwrap();
    assert_eq!(config.server.to_string(), "https://rancher.example/k8s/clusters/c-1");
    assert_eq!(config.namespace, "default");
}

#[test]
fn server_without_scheme_gets_one_like_client_go() {
    assert_eq!(parse_server("10.0.0.1:6443", true).unwrap().scheme_str(), Some("https"));
    assert_eq!(parse_server("10.0.0.1:6443", false).unwrap().scheme_str(), Some("http"));
    assert_eq!(
        parse_server("https://[2001:db8::1]:6443", false).unwrap().host(),
        Some("[2001:db8::1]")
    );
    assert!(parse_server("ftp://x", false).unwrap_err().contains("http"));
    assert!(parse_server("https://x?y=1", false).unwrap_err().contains("query"));
}

#[test]
fn missing_or_bad_server_names_cluster_and_field() {
    let yaml = kubeconfig("", "    token: t\n").replace("    server: https://k.example:6443\n", "");
    let e = resolve_with(&env_with(&yaml)).unwrap_err().to_string();
    assert_eq!(e, "kubeconfig `/k/config`: cluster `cl`: `server` is not set");
    let yaml = kubeconfig("", "").replace("https://k.example:6443", "https://bad host");
    let e = resolve_with(&env_with(&yaml)).unwrap_err().to_string();
    assert!(
        e.starts_with("kubeconfig `/k/config`: cluster `cl`: `server` is not a valid URL"),
        "{e}"
    );
}

#[test]
fn certificate_authority_file_resolves_relative_to_the_kubeconfig() {
    let config = resolve("    certificate-authority: pki/ca.crt\n", "").unwrap();
    assert_eq!(config.tls.ca_pem.as_deref(), Some(CA_PEM.as_bytes()));
    assert_eq!(config.tls.ca_source.as_deref(), Some("/k/pki/ca.crt"));
    let e = err("    certificate-authority: nope.crt\n", "");
    assert_eq!(
        e,
        "kubeconfig `/k/config`: cluster `cl`: `certificate-authority` file `/k/nope.crt` cannot be read"
    );
    let e = err("    certificate-authority: token\n", "");
    assert!(
        e.ends_with("`certificate-authority` file `/k/token` holds no PEM certificate"),
        "{e}"
    );
}

#[test]
fn certificate_authority_data_wins_over_the_file() {
    let cluster = format!(
        "    certificate-authority: missing.crt\n    certificate-authority-data: {}\n",
        b64(CA_PEM)
    );
    let config = resolve(&cluster, "").unwrap();
    assert_eq!(config.tls.ca_pem.as_deref(), Some(CA_PEM.as_bytes()));
    assert_eq!(config.tls.ca_source.as_deref(), Some("certificate-authority-data"));
    let e = err("    certificate-authority-data: '%%%'\n", "");
    assert_eq!(
        e,
        "kubeconfig `/k/config`: cluster `cl`: `certificate-authority-data` is not valid base64"
    );
    let e = err(&format!("    certificate-authority-data: {}\n", b64("hello")), "");
    assert!(
        e.ends_with("`certificate-authority-data` holds no PEM certificate"),
        "{e}"
    );
}

#[test]
fn insecure_server_name_and_proxy() {
    let config = resolve(
        "    insecure-skip-tls-verify: true\n    tls-server-name: kubernetes.default\n    proxy-url: http://proxy.local:3128\n",
        "",
    )
    .unwrap();
    assert!(config.tls.insecure_skip_verify);
    assert_eq!(config.tls.server_name.as_deref(), Some("kubernetes.default"));
    assert_eq!(config.proxy_url.unwrap().to_string(), "http://proxy.local:3128/");
}

#[test]
fn insecure_with_a_ca_is_refused_like_kubectl() {
    let e = err(
        "    insecure-skip-tls-verify: true\n    certificate-authority: pki/ca.crt\n",
        "",
    );
    assert!(
        e.starts_with("kubeconfig `/k/config`: cluster `cl`: `insecure-skip-tls-verify` cannot be combined"),
        "{e}"
    );
}

#[test]
fn proxy_must_be_http_and_is_never_echoed() {
    let e = err("    proxy-url: socks5://user:pw@proxy:1080\n", "");
    assert!(e.contains("`proxy-url` uses `socks5://`; only http://"), "{e}");
    assert!(!e.contains("pw@"), "{e}");
    let e = err("    proxy-url: 'http://sec ret@x'\n", "");
    assert!(
        e.ends_with("`proxy-url` is not a valid URL") && !e.contains("sec ret"),
        "{e}"
    );
}

#[test]
fn namespace_from_context_flag_or_default() {
    let yaml = kubeconfig("", "").replace("{cluster: cl, user: u}", "{cluster: cl, user: u, namespace: ci}");
    let env = env_with(&yaml);
    assert_eq!(resolve_with(&env).unwrap().namespace, "ci");
    let over = Overrides {
        namespace: Some("flag".into()),
        ..Overrides::default()
    };
    assert_eq!(infer(&env, &over).unwrap().namespace, "flag");
}

#[test]
fn context_flag_overrides_current_context() {
    let yaml = kubeconfig("", "    token: t\n").replace(
        "contexts:\n- name: c\n",
        "contexts:\n- name: other\n  context: {cluster: cl, namespace: o}\n- name: c\n",
    );
    let env = env_with(&yaml);
    let over = Overrides {
        context: Some("other".into()),
        ..Overrides::default()
    };
    let config = infer(&env, &over).unwrap();
    assert_eq!(config.namespace, "o");
    assert!(matches!(config.auth, AuthConfig::None), "other has no user: anonymous");
    match config.origin {
        Origin::Kubeconfig { context, user, .. } => assert_eq!((context.as_str(), user.as_str()), ("other", "")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn context_and_cluster_errors() {
    let env = env_with(&kubeconfig("", ""));
    let over = Overrides {
        context: Some("nope".into()),
        ..Overrides::default()
    };
    assert_eq!(
        infer(&env, &over).unwrap_err().to_string(),
        "kubeconfig `/k/config`: context `nope` is not defined"
    );
    let yaml = kubeconfig("", "").replace("{cluster: cl, user: u}", "{cluster: gone, user: u}");
    assert_eq!(
        resolve_with(&env_with(&yaml)).unwrap_err().to_string(),
        "kubeconfig `/k/config`: context `c`: cluster `gone` is not defined"
    );
    let yaml = kubeconfig("", "").replace("{cluster: cl, user: u}", "{user: u}");
    assert_eq!(
        resolve_with(&env_with(&yaml)).unwrap_err().to_string(),
        "kubeconfig `/k/config`: context `c`: `cluster` is not set"
    );
    let yaml = kubeconfig("", "").replace("current-context: c\n", "");
    let e = resolve_with(&env_with(&yaml)).unwrap_err().to_string();
    assert!(e.contains("no context chosen"), "{e}");
}

#[test]
fn undefined_user_is_anonymous_like_client_go() {
    let yaml = kubeconfig("", "    token: t\n").replace("user: u}", "user: ghost}");
    assert!(matches!(resolve_with(&env_with(&yaml)).unwrap().auth, AuthConfig::None));
}

#[test]
fn token_is_trimmed_and_token_file_resolves_relative() {
    let config = resolve("", "    token: ' abc '\n").unwrap();
    assert!(matches!(&config.auth, AuthConfig::Token(t) if t.expose() == "abc"));
    let config = resolve("", "    tokenFile: token\n").unwrap();
    assert!(matches!(&config.auth, AuthConfig::TokenFile(p) if p == Path::new("/k/token")));
    let e = err("", "    tokenFile: gone\n");
    assert_eq!(
        e,
        "kubeconfig `/k/config`: user `u`: `tokenFile` file `/k/gone` cannot be read"
    );
    let env = env_with(&kubeconfig("", "    tokenFile: /k/blank\n")).file("/k/blank", " \n");
    let e = resolve_with(&env).unwrap_err().to_string();
    assert!(e.ends_with("`tokenFile` file `/k/blank` is empty"), "{e}");
}

#[test]
fn token_and_token_file_send_the_file_with_the_token_as_fallback() {
    let config = resolve("", "    token: inline\n    tokenFile: token\n").unwrap();
    match config.auth {
        AuthConfig::TokenFileWithFallback { token_file, token } => {
            assert_eq!(token_file, PathBuf::from("/k/token"));
            assert_eq!(token.expose(), "inline");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn basic_auth_and_its_conflict_with_tokens() {
    let config = resolve("", "    username: admin\n    password: pw\n").unwrap();
    assert!(
        matches!(&config.auth, AuthConfig::Basic { username, password } if username == "admin" && password.expose() == "pw")
    );
    let e = err("", "    username: admin\n    password: pw\n    token: t\n");
    assert!(
        e.starts_with("kubeconfig `/k/config`: user `u`: `username` cannot be combined"),
        "{e}"
    );
}

#[test]
fn client_certificate_files_and_data_with_every_key_format() {
    let config = resolve(
        "",
        "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n",
    )
    .unwrap();
    assert!(matches!(config.auth, AuthConfig::ClientCertificate));
    assert_eq!(config.tls.client_cert_pem.as_deref(), Some(CERT_PEM.as_bytes()));
    assert_eq!(config.tls.client_key_pem.unwrap().expose(), RSA_KEY_PEM);
    for key in [RSA_KEY_PEM, EC_KEY_PEM, PKCS8_KEY_PEM] {
        let user = format!(
            "    client-certificate: missing\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(CERT_PEM),
            b64(key)
        );
        let config = resolve("", &user).unwrap();
        assert_eq!(config.tls.client_key_pem.unwrap().expose(), key);
    }
}

#[test]
fn client_certificate_errors_name_the_field() {
    let e = err("", &format!("    client-certificate-data: {}\n", b64(CERT_PEM)));
    assert!(
        e.starts_with("kubeconfig `/k/config`: user `u`: `client-key` is not set"),
        "{e}"
    );
    let e = err(
        "",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: '!!'\n",
            b64(CERT_PEM)
        ),
    );
    assert_eq!(
        e,
        "kubeconfig `/k/config`: user `u`: `client-key-data` is not valid base64"
    );
    let e = err(
        "",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(CERT_PEM),
            b64(CA_PEM)
        ),
    );
    assert!(
        e.ends_with("`client-key-data` holds no PEM private key (want RSA, EC or PKCS#8)"),
        "{e}"
    );
    let e = err(
        "",
        "    client-certificate: pki/client.key\n    client-key: pki/client.key\n",
    );
    assert!(
        e.contains("`client-certificate` file `/k/pki/client.key` holds no PEM certificate"),
        "{e}"
    );
    let e = err(
        "",
        "    client-certificate: pki/client.crt\n    client-key: pki/none.key\n",
    );
    assert!(e.ends_with("`client-key` file `/k/pki/none.key` cannot be read"), "{e}");
}

#[test]
fn certificate_combines_with_a_token() {
    let config = resolve(
        "",
        "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n    token: t\n",
    )
    .unwrap();
    assert!(matches!(config.auth, AuthConfig::Token(_)));
    assert!(config.tls.client_cert_pem.is_some());
}

const EXEC_V1: &str = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/plugin\n      args: [get-token]\n      env: [{name: A, value: b}]\n      installHint: install it\n      provideClusterInfo: true\n      interactiveMode: Never\n";

#[test]
fn exec_plugin_fields() {
    let config = resolve(
        "    certificate-authority: pki/ca.crt\n    tls-server-name: api\n",
        EXEC_V1,
    )
    .unwrap();
    let AuthConfig::Exec(exec) = config.auth else {
        panic!("{:?}", config.auth)
    };
    assert_eq!(exec.api_version, "client.authentication.k8s.io/v1");
    assert_eq!(exec.command, "/k/bin/plugin");
    assert_eq!(exec.args, ["get-token"]);
    assert_eq!(exec.env, [("A".to_owned(), "b".to_owned())]);
    assert_eq!(exec.install_hint.as_deref(), Some("install it"));
    assert!(exec.provide_cluster_info);
    assert_eq!(exec.interactive_mode.as_deref(), Some("Never"));
    assert_eq!(exec.cluster_server, "https://k.example:6443");
    assert_eq!(exec.cluster_ca_data.as_deref(), Some(b64(CA_PEM).as_str()));
    assert_eq!(exec.cluster_server_name.as_deref(), Some("api"));
    assert!(exec.cluster_config.is_none());
}

#[test]
fn exec_gets_the_cluster_exec_extension() {
    let cluster = "    extensions:\n    - name: other\n      extension: {x: 1}\n    - name: client.authentication.k8s.io/exec\n      extension: {audience: ci}\n";
    let AuthConfig::Exec(exec) = resolve(cluster, EXEC_V1).unwrap().auth else {
        panic!()
    };
    assert_eq!(exec.cluster_config.unwrap()["audience"], "ci");
}

#[test]
fn exec_bare_command_stays_a_path_lookup_and_v1beta1_defaults_interactive_mode() {
    let user = "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n";
    let AuthConfig::Exec(exec) = resolve("", user).unwrap().auth else {
        panic!()
    };
    assert_eq!(exec.command, "aws");
    assert_eq!(exec.interactive_mode.as_deref(), Some("IfAvailable"));
}

#[test]
fn exec_errors() {
    let v1 = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n";
    let e = err("", v1);
    assert!(
        e.ends_with("`exec.interactiveMode` is not set (required for client.authentication.k8s.io/v1)"),
        "{e}"
    );
    let e = err("", &format!("{v1}      interactiveMode: Sometimes\n"));
    assert!(
        e.ends_with("`exec.interactiveMode` `Sometimes` is not one of Never, IfAvailable, Always"),
        "{e}"
    );
    let e = err(
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1alpha1\n      command: aws\n",
    );
    assert!(
        e.contains("`exec.apiVersion` `client.authentication.k8s.io/v1alpha1` is not supported"),
        "{e}"
    );
    let e = err("", "    exec:\n      command: aws\n");
    assert_eq!(e, "kubeconfig `/k/config`: user `u`: `exec.apiVersion` is not set");
    let e = err(
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n",
    );
    assert_eq!(e, "kubeconfig `/k/config`: user `u`: `exec.command` is not set");
    let e = err(
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: a\n      env: [{value: x}]\n",
    );
    assert!(e.ends_with("`exec.env` has an entry without a name"), "{e}");
}

#[test]
fn exec_stands_aside_for_token_basic_or_certificate() {
    let with_token = format!("{EXEC_V1}    token: t\n");
    assert!(matches!(resolve("", &with_token).unwrap().auth, AuthConfig::Token(_)));
    let with_cert = format!("{EXEC_V1}    client-certificate: pki/client.crt\n    client-key: pki/client.key\n");
    assert!(matches!(
        resolve("", &with_cert).unwrap().auth,
        AuthConfig::ClientCertificate
    ));
}

#[test]
fn auth_provider_is_not_supported() {
    let e = err(
        "",
        "    auth-provider:\n      name: gcp\n      config: {access-token: ya29.secret}\n",
    );
    assert!(
        e.starts_with("kubeconfig `/k/config`: user `u`: `auth-provider` `gcp` is not supported"),
        "{e}"
    );
    assert!(e.contains("gke-gcloud-auth-plugin") && !e.contains("ya29"), "{e}");
}

#[test]
fn paths_in_a_merged_file_resolve_against_that_file() {
    let first = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: cl, user: u}\n";
    let second = "clusters:\n- name: cl\n  cluster: {server: 'https://x:6443', certificate-authority: ca.crt}\n\
                  users:\n- name: u\n  user: {tokenFile: ../tok}\n";
    let env = TestEnv::new()
        .var("KUBECONFIG", "/a/first:/b/sub/second")
        .file("/a/first", first)
        .file("/b/sub/second", second)
        .file("/b/sub/ca.crt", CA_PEM)
        .file("/b/tok", "t");
    let config = infer(&env, &Overrides::default()).unwrap();
    assert_eq!(config.tls.ca_source.as_deref(), Some("/b/sub/ca.crt"));
    assert!(matches!(&config.auth, AuthConfig::TokenFile(p) if p == Path::new("/b/tok")));
    match config.origin {
        Origin::Kubeconfig { files, .. } => {
            assert_eq!(files, [PathBuf::from("/a/first"), PathBuf::from("/b/sub/second")])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn clean_folds_dots_like_go() {
    for (raw, want) in [
        ("/a/b/../c", "/a/c"),
        ("/a/./b/", "/a/b"),
        ("/../x", "/x"),
        ("a/../../b", "../b"),
        ("./", "."),
        ("a/b/../..", "."),
    ] {
        assert_eq!(clean(Path::new(raw)), PathBuf::from(want), "{raw}");
    }
}

#[test]
fn environment_proxy_applies_only_without_proxy_url() {
    let env = env_with(&kubeconfig("", "")).var("HTTPS_PROXY", "http://env-proxy:3128");
    assert_eq!(resolve_with(&env).unwrap().proxy_url.unwrap().host(), Some("env-proxy"));
    let env =
        env_with(&kubeconfig("    proxy-url: http://kc-proxy:3128\n", "")).var("HTTPS_PROXY", "http://env-proxy:3128");
    assert_eq!(resolve_with(&env).unwrap().proxy_url.unwrap().host(), Some("kc-proxy"));
    let env = env_with(&kubeconfig("", ""))
        .var("HTTPS_PROXY", "http://env-proxy:3128")
        .var("no_proxy", "example");
    assert!(resolve_with(&env).unwrap().proxy_url.is_none());
}
