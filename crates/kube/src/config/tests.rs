//! Unit tests for the resolution order (kubeconfig, then in-cluster) and for what `Config`
//! prints.

use std::path::PathBuf;

use super::testenv::{CA_PEM, TestEnv};
use super::*;

const KUBECONFIG: &str = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, namespace: from-file}\n\
                          clusters:\n- name: k\n  cluster: {server: 'https://file:6443'}\n";

fn in_cluster(env: TestEnv) -> TestEnv {
    env.var("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        .var("KUBERNETES_SERVICE_PORT", "443")
        .file("/sa/token", "t")
        .file("/sa/ca.crt", CA_PEM)
        .sa_dir("/sa")
}

fn server(env: &TestEnv, overrides: &Overrides) -> String {
    infer(env, overrides).unwrap().server.to_string()
}

#[test]
fn home_kubeconfig_beats_in_cluster() {
    let env = in_cluster(TestEnv::new().home("/h").file("/h/.kube/config", KUBECONFIG));
    assert_eq!(server(&env, &Overrides::default()), "https://file:6443/");
}

#[test]
fn in_cluster_when_no_kubeconfig_exists() {
    let env = in_cluster(TestEnv::new().home("/h").var("KUBECONFIG", "/missing"));
    let config = infer(&env, &Overrides::default()).unwrap();
    assert_eq!(config.server.to_string(), "https://10.96.0.1:443/");
    assert!(matches!(config.origin, Origin::InCluster));
    assert_eq!(config.namespace, "default");
}

#[test]
fn in_cluster_when_the_kubeconfig_chooses_no_context() {
    let env = in_cluster(TestEnv::new().home("/h").file("/h/.kube/config", "clusters: []"));
    assert!(matches!(
        infer(&env, &Overrides::default()).unwrap().origin,
        Origin::InCluster
    ));
    // Without in-cluster, the kubeconfig's own error is reported.
    let env = TestEnv::new().home("/h").file("/h/.kube/config", "clusters: []");
    let err = infer(&env, &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::NoContext { .. }), "{err}");
}

#[test]
fn an_explicit_kubeconfig_never_falls_back_to_in_cluster() {
    let env = in_cluster(TestEnv::new().file("/k", "clusters: []"));
    let over = Overrides {
        kubeconfig: Some(PathBuf::from("/k")),
        ..Overrides::default()
    };
    assert!(matches!(infer(&env, &over).unwrap_err(), ConfigError::NoContext { .. }));
    let over = Overrides {
        kubeconfig: Some(PathBuf::from("/missing")),
        ..Overrides::default()
    };
    assert!(matches!(
        infer(&env, &over).unwrap_err(),
        ConfigError::ReadKubeconfig { .. }
    ));
}

#[test]
fn a_context_flag_without_any_kubeconfig_is_an_error_even_in_cluster() {
    let env = in_cluster(TestEnv::new().home("/h"));
    let over = Overrides {
        context: Some("prod".into()),
        ..Overrides::default()
    };
    let err = infer(&env, &over).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kubeconfig `/h/.kube/config`: context `prod` is not defined"
    );
}

#[test]
fn nothing_at_all_lists_what_was_tried() {
    let env = TestEnv::new().home("/h");
    let err = infer(&env, &Overrides::default()).unwrap_err();
    assert!(matches!(&err, ConfigError::NoConfiguration { tried } if tried == &[PathBuf::from("/h/.kube/config")]));
    assert!(err.to_string().contains("`/h/.kube/config`"), "{err}");
    let err = infer(&TestEnv::new(), &Overrides::default()).unwrap_err().to_string();
    assert!(
        err.contains("no kubeconfig (HOME is not set) and not running in a cluster"),
        "{err}"
    );
}

#[test]
fn debug_hides_proxy_password_and_exec_env_values() {
    let uri: http::Uri = "http://user:sekrit-proxy@proxy:3128".parse().unwrap();
    assert_eq!(redact_userinfo(&uri), "http://proxy:3128");
    let config = Config {
        server: "https://k:6443".parse().unwrap(),
        namespace: "default".into(),
        tls: TlsConfig::default(),
        proxy_url: Some(uri),
        auth: AuthConfig::Exec(ExecConfig {
            command: "aws".into(),
            env: vec![("AWS_SECRET_ACCESS_KEY".into(), "sekrit-aws".into())],
            ..ExecConfig::default()
        }),
        impersonate: Default::default(),
        origin: Origin::Unknown,
    };
    let debug = format!("{config:?}");
    assert!(
        debug.contains("proxy:3128") && debug.contains("AWS_SECRET_ACCESS_KEY"),
        "{debug}"
    );
    assert!(!debug.contains("sekrit"), "{debug}");
}
