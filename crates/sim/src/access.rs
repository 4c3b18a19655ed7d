//! How to reach a simulated cluster: the kubeconfig file it writes for itself (CA data, bearer
//! token, context `sim`, namespace `woodpecker`, mode 0600) and the same, already resolved, as
//! a `kube::Config`.

use std::io;
use std::path::Path;

use base64::Engine;

use kube::Secret;
use kube::config::{AuthConfig, Config, Origin, TlsConfig};

pub const CONTEXT: &str = "sim";
pub const NAMESPACE: &str = "woodpecker";

/// The kubeconfig text.
pub fn kubeconfig(url: &str, ca_pem: Option<&str>, token: &str) -> String {
    let mut cluster = format!("    server: {url}\n");
    if let Some(ca) = ca_pem {
        let ca = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes());
        cluster.push_str(&format!("    certificate-authority-data: {ca}\n"));
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n{cluster}users:\n- name: {CONTEXT}\n  user:\n    token: \"{token}\"\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: {NAMESPACE}\ncurrent-context: {CONTEXT}\n"
    )
}

/// Writes the kubeconfig, readable by its owner only (it holds the token).
pub fn write_kubeconfig(path: &Path, url: &str, ca_pem: Option<&str>, token: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(kubeconfig(url, ca_pem, token).as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))
}

/// The resolved configuration the kubeconfig describes.
pub fn config(url: &str, ca_pem: Option<&str>, token: &str, path: &Path) -> Config {
    Config {
        server: url.parse().expect("the sim's URL is a valid URI"),
        namespace: NAMESPACE.into(),
        tls: TlsConfig {
            ca_pem: ca_pem.map(|p| p.as_bytes().to_vec()),
            ca_source: ca_pem.map(|_| format!("{}: certificate-authority-data", path.display())),
            ..TlsConfig::default()
        },
        proxy_url: None,
        auth: AuthConfig::Token(Secret::new(token)),
        impersonate: Default::default(),
        origin: Origin::Kubeconfig {
            files: vec![path.to_path_buf()],
            context: CONTEXT.into(),
            cluster: CONTEXT.into(),
            user: CONTEXT.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_kubeconfig_has_no_ca() {
        let text = kubeconfig("http://127.0.0.1:1", None, "t");
        assert!(text.contains("server: http://127.0.0.1:1\n") && !text.contains("certificate-authority"));
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(v["contexts"][0]["context"]["namespace"].as_str(), Some(NAMESPACE));
    }
}
