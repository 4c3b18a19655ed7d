//! Unit tests for choosing a context and resolving its cluster: every field and error, paths
//! and proxies. The user side is in `select_user_tests.rs`.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::testenv::{CA_PEM, CERT_PEM, RSA_KEY_PEM, TestEnv, b64};
use crate::config::{ConfigError, infer};

/// A kubeconfig at `/k/config` with one context `c` over cluster `cl` and user `u`.
pub(super) fn kubeconfig(cluster: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: cl, user: u}}\n\
         clusters:\n- name: cl\n  cluster:\n    server: https://k.example:6443\n{cluster}\
         users:\n- name: u\n  user:\n{user}"
    )
}

pub(super) fn env_with(yaml: &str) -> TestEnv {
    TestEnv::new()
        .var("KUBECONFIG", "/k/config")
        .file("/k/config", yaml)
        .file("/k/pki/ca.crt", CA_PEM)
        .file("/k/pki/client.crt", CERT_PEM)
        .file("/k/pki/client.key", RSA_KEY_PEM)
        .file("/k/token", "  file-token\n")
}

pub(super) fn resolve_with(env: &TestEnv) -> Result<Config, ConfigError> {
    infer(env, &Overrides::default())
}

pub(super) fn resolve(cluster: &str, user: &str) -> Result<Config, ConfigError> {
    resolve_with(&env_with(&kubeconfig(cluster, user)))
}

pub(super) fn err(cluster: &str, user: &str) -> String {
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
    assert!(
        e.contains("`proxy-url` uses a scheme other than http://; only http://"),
        "{e}"
    );
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
