//! Where the connection comes from, resolved exactly as kubectl resolves it.
//!
//! Order (one place, [`Config::infer`]): `--kubeconfig`, else `KUBECONFIG` (a `:`-separated
//! list merged first-wins), else `~/.kube/config`; when no kubeconfig file exists and the
//! in-cluster variables are set, the service account. Each source lives in its own file and
//! returns only its own parts; this module assembles the resolved [`Config`].
//!
//! CONTRACT (shared with `kube::client`): the fields of [`Config`] below are what the transport
//! consumes. Extend, do not rename, without telling the client's owner.

use std::path::PathBuf;

use crate::secret::Secret;

/// Everything the transport needs to reach and authenticate to one apiserver.
#[derive(Debug, Clone)]
pub struct Config {
    /// `https://host:port` (or `http://` for a plain-HTTP simulated cluster), no trailing `/`.
    pub server: http::Uri,
    /// The default namespace (from the context, the in-cluster namespace file, or `default`).
    pub namespace: String,
    pub tls: TlsConfig,
    /// An HTTP CONNECT proxy (`proxy-url`).
    pub proxy_url: Option<http::Uri>,
    pub auth: AuthConfig,
    /// Where this came from, for reports and errors.
    pub origin: Origin,
}

#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// PEM bundle of the cluster CA(s); `None` means no CA was configured.
    pub ca_pem: Option<Vec<u8>>,
    /// Where the CA came from (a path, `certificate-authority-data`, the service-account file).
    pub ca_source: Option<String>,
    pub insecure_skip_verify: bool,
    /// Overrides the name checked against the server certificate (`tls-server-name`).
    pub server_name: Option<String>,
    /// PEM client certificate chain and key for mutual TLS.
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Secret>,
}

/// How requests authenticate. Runtime behaviour (re-reading token files, running and caching
/// exec plugins) lives in `kube::auth`.
#[derive(Debug, Clone, Default)]
pub enum AuthConfig {
    #[default]
    None,
    Token(Secret),
    /// Re-read about once a minute; bound service-account tokens rotate.
    TokenFile(PathBuf),
    Basic {
        username: String,
        password: Secret,
    },
    /// Client certificate only (the material is in [`TlsConfig`]).
    ClientCertificate,
    Exec(ExecConfig),
    /// The in-cluster service-account token file.
    InCluster {
        token_file: PathBuf,
    },
}

/// An exec credential plugin (client.authentication.k8s.io v1 / v1beta1).
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub api_version: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub install_hint: Option<String>,
    pub provide_cluster_info: bool,
    /// `IfAvailable`, `Never` or `Always`.
    pub interactive_mode: Option<String>,
    /// The cluster, for `KUBERNETES_EXEC_INFO` when `provide_cluster_info` is set.
    pub cluster_server: String,
    pub cluster_ca_data: Option<String>,
    pub cluster_insecure: bool,
    pub cluster_server_name: Option<String>,
    /// Directory the command path resolves against when it holds a separator.
    pub base_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub enum Origin {
    #[default]
    Unknown,
    Kubeconfig {
        files: Vec<PathBuf>,
        context: String,
        cluster: String,
        user: String,
    },
    InCluster,
}
