//! The in-cluster service account: `KUBERNETES_SERVICE_HOST`/`_PORT` and the `token`, `ca.crt`
//! and `namespace` files the kubelet mounts. Knows nothing of kubeconfig files.
//!
//! Like client-go's `InClusterConfig`, both variables must be set and the token file must
//! exist for in-cluster configuration to be possible; the token is not kept here but re-read at
//! run time (`kube::auth`), because bound tokens rotate.

use std::path::Path;

use super::select::{check_certificates, parse_server};
use super::{AuthConfig, Config, ConfigError, Env, Origin, Overrides, TlsConfig};

pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `https://host:port`, with an IPv6 literal in brackets and `:443` kept explicit.
pub fn server_url(host: &str, port: &str) -> Result<http::Uri, String> {
    let host = host.trim();
    let port = port.trim();
    if host.is_empty() {
        return Err("KUBERNETES_SERVICE_HOST is empty".into());
    }
    port.parse::<u16>()
        .map_err(|_| format!("KUBERNETES_SERVICE_PORT `{port}` is not a port number"))?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    parse_server(&format!("https://{host}:{port}"), true).map_err(|p| format!("`https://{host}:{port}` {p}"))
}

/// The in-cluster configuration, or `None` when we are not inside a cluster.
pub fn load(env: &impl Env, overrides: &Overrides) -> Result<Option<Config>, ConfigError> {
    let (Some(host), Some(port)) = (
        env.var("KUBERNETES_SERVICE_HOST").filter(|v| !v.is_empty()),
        env.var("KUBERNETES_SERVICE_PORT").filter(|v| !v.is_empty()),
    ) else {
        return Ok(None);
    };
    let dir = env.service_account_dir();
    let token_file = dir.join("token");
    if env.read_file(&token_file, super::MAX_TOKEN_BYTES).is_err() {
        return Ok(None);
    }
    let server = server_url(&host, &port).map_err(|problem| ConfigError::InCluster {
        what: "the service address".into(),
        problem,
        source: None,
    })?;
    let ca_path = dir.join("ca.crt");
    let ca_pem = read(env, &ca_path, super::MAX_PEM_BYTES)?;
    check_certificates(&ca_pem).map_err(|problem| ConfigError::InCluster {
        what: format!("`{}`", ca_path.display()),
        problem,
        source: None,
    })?;
    // client-go's clientcmd: POD_NAMESPACE, then the namespace file (trimmed), then `default`.
    let namespace = match overrides.namespace.clone().filter(|n| !n.is_empty()) {
        Some(ns) => ns,
        None => env
            .var("POD_NAMESPACE")
            .filter(|n| !n.is_empty())
            .or_else(|| {
                env.read_file(&dir.join("namespace"), super::MAX_TOKEN_BYTES)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
                    .filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| "default".to_owned()),
    };
    let proxy_url = super::proxy::from_env(env, &server)?;
    Ok(Some(Config {
        server,
        namespace,
        tls: TlsConfig {
            ca_pem: Some(ca_pem),
            ca_source: Some(ca_path.display().to_string()),
            ..TlsConfig::default()
        },
        proxy_url,
        auth: AuthConfig::InCluster { token_file },
        impersonate: Default::default(),
        origin: Origin::InCluster,
    }))
}

fn read(env: &impl Env, path: &Path, limit: u64) -> Result<Vec<u8>, ConfigError> {
    env.read_file(path, limit).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => ConfigError::InCluster {
            what: format!("`{}`", path.display()),
            problem: e.to_string(),
            source: None,
        },
        _ => ConfigError::InCluster {
            what: format!("`{}`", path.display()),
            problem: "cannot be read".into(),
            source: Some(e),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testenv::{CA_PEM, TestEnv};

    #[test]
    fn server_url_brackets_ipv6_and_keeps_port() {
        assert_eq!(
            server_url("10.96.0.1", "443").unwrap().to_string(),
            "https://10.96.0.1:443/"
        );
        assert_eq!(
            server_url("fd00:10:96::1", "443").unwrap().to_string(),
            "https://[fd00:10:96::1]:443/"
        );
        assert_eq!(
            server_url("kubernetes.default.svc", "6443")
                .unwrap()
                .authority()
                .unwrap()
                .as_str(),
            "kubernetes.default.svc:6443"
        );
        assert!(
            server_url("10.96.0.1", "https")
                .unwrap_err()
                .contains("KUBERNETES_SERVICE_PORT")
        );
        assert!(server_url("", "443").unwrap_err().contains("KUBERNETES_SERVICE_HOST"));
    }

    fn cluster_env() -> TestEnv {
        TestEnv::new()
            .var("KUBERNETES_SERVICE_HOST", "fd00::1")
            .var("KUBERNETES_SERVICE_PORT", "443")
            .file("/sa/token", "tok\n")
            .file("/sa/ca.crt", CA_PEM)
            .file("/sa/namespace", " ci-jobs\n")
            .sa_dir("/sa")
    }

    #[test]
    fn loads_service_account() {
        let config = load(&cluster_env(), &Overrides::default()).unwrap().unwrap();
        assert_eq!(config.server.to_string(), "https://[fd00::1]:443/");
        assert_eq!(config.namespace, "ci-jobs");
        assert_eq!(config.tls.ca_source.as_deref(), Some("/sa/ca.crt"));
        assert!(matches!(&config.auth, AuthConfig::InCluster { token_file } if token_file == Path::new("/sa/token")));
    }

    #[test]
    fn environment_proxy_honours_no_proxy_cidr() {
        let env = cluster_env().var("HTTPS_PROXY", "http://p:3128");
        let config = load(&env, &Overrides::default()).unwrap().unwrap();
        assert_eq!(config.proxy_url.unwrap().host(), Some("p"));
        let env = env.var("NO_PROXY", "fd00::/8");
        assert!(load(&env, &Overrides::default()).unwrap().unwrap().proxy_url.is_none());
    }

    #[test]
    fn namespace_order() {
        let env = cluster_env().var("POD_NAMESPACE", "from-env");
        assert_eq!(
            load(&env, &Overrides::default()).unwrap().unwrap().namespace,
            "from-env"
        );
        let over = Overrides {
            namespace: Some("flag".into()),
            ..Overrides::default()
        };
        assert_eq!(load(&env, &over).unwrap().unwrap().namespace, "flag");
        let env = cluster_env().remove("/sa/namespace");
        assert_eq!(load(&env, &Overrides::default()).unwrap().unwrap().namespace, "default");
    }

    #[test]
    fn not_in_cluster_without_variables_or_token() {
        let env = cluster_env().unset("KUBERNETES_SERVICE_PORT");
        assert!(load(&env, &Overrides::default()).unwrap().is_none());
        let env = cluster_env().remove("/sa/token");
        assert!(load(&env, &Overrides::default()).unwrap().is_none());
    }

    #[test]
    fn missing_or_bad_ca_is_an_error() {
        let env = cluster_env().remove("/sa/ca.crt");
        let err = load(&env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("/sa/ca.crt") && err.contains("cannot be read"), "{err}");
        let env = cluster_env().file("/sa/ca.crt", "nope");
        let err = load(&env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
