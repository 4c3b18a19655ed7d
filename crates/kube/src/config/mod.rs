//! Where the connection comes from, resolved exactly as kubectl resolves it.
//!
//! Order (one place, [`infer`]): `--kubeconfig`, else `KUBECONFIG` (a `:`-separated list merged
//! first-wins), else `~/.kube/config`; when no kubeconfig file exists (or none selects a context)
//! and the in-cluster variables are set, the service account. Each source lives in its own file
//! and returns only its own parts; this module assembles the resolved [`Config`].
//!
//! Resolution is a pure core: everything it reads goes through the [`Env`] trait, so tests never
//! touch the process environment or the real service-account directory. [`ProcessEnv`] is the
//! thin real implementation.
//!
//! CONTRACT (shared with `kube::client`): the fields of [`Config`] below are what the transport
//! consumes. Extend, do not rename, without telling the client's owner.

mod error;
pub mod exec;
pub mod impersonate;
pub mod incluster;
pub mod kubeconfig;
pub mod pem;
pub mod proxy;
pub mod select;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use error::{ConfigError, Entry};
pub use impersonate::Impersonation;

use crate::secret::Secret;

/// Everything the transport needs to reach and authenticate to one apiserver.
/// `Debug` is written by hand: a proxy URL may carry a password.
#[derive(Clone)]
pub struct Config {
    /// `https://host:port[/prefix]` (or `http://` for a plain-HTTP simulated cluster), no
    /// trailing `/`.
    pub server: http::Uri,
    /// The default namespace (from the context, the in-cluster namespace file, or `default`).
    pub namespace: String,
    pub tls: TlsConfig,
    /// An HTTP CONNECT proxy (`proxy-url`).
    pub proxy_url: Option<http::Uri>,
    pub auth: AuthConfig,
    /// Who the requests act as (the kubeconfig user's `as`, `as-groups`, ...).
    pub impersonate: Impersonation,
    /// Where this came from, for reports and errors.
    pub origin: Origin,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .field("tls", &self.tls)
            .field("proxy_url", &self.proxy_url.as_ref().map(redact_userinfo))
            .field("auth", &self.auth)
            .field("impersonate", &self.impersonate)
            .field("origin", &self.origin)
            .finish()
    }
}

/// `scheme://host[:port]`: what can be shown of a URL that may carry `user:password@`.
pub fn redact_userinfo(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
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
    /// PEM client certificate chain and key for mutual TLS. Checked at load time: the key is
    /// accepted by `rustls::pki_types::PrivateKeyDer::from_pem_slice` (PKCS#1, SEC1, PKCS#8).
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Secret>,
}

/// How requests authenticate. Runtime behaviour (re-reading token files, running and caching
/// exec plugins) lives in `kube::auth`.
///
/// Which one wins when a user sets several follows client-go: `token`/`tokenFile` and
/// `username`/`password` together are an error; a client certificate combines with a token or
/// basic auth (the certificate goes in [`TlsConfig`], the variant says the header); an exec
/// plugin is used only when none of token, basic or client certificate is set (client-go's exec
/// authenticator stands aside then).
// Built once per process; boxing the exec variant would only make matching noisier.
#[allow(clippy::large_enum_variant)]
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
    /// `token` and `tokenFile` both set: client-go sends the file's content (re-read like
    /// [`AuthConfig::TokenFile`]) and falls back to the inline token when the file cannot be read.
    TokenFileWithFallback {
        token_file: PathBuf,
        token: Secret,
    },
}

impl AuthConfig {
    /// The short name the `kubeconfig` command prints: `none`, `token`, `token-file`, `basic`,
    /// `client-certificate`, `exec`, `in-cluster`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthConfig::None => "none",
            AuthConfig::Token(_) => "token",
            AuthConfig::TokenFile(_) | AuthConfig::TokenFileWithFallback { .. } => "token-file",
            AuthConfig::Basic { .. } => "basic",
            AuthConfig::ClientCertificate => "client-certificate",
            AuthConfig::Exec(_) => "exec",
            AuthConfig::InCluster { .. } => "in-cluster",
        }
    }
}

/// An exec credential plugin (client.authentication.k8s.io v1 / v1beta1).
/// `Debug` is written by hand: `env` values may be credentials.
#[derive(Clone, Default)]
pub struct ExecConfig {
    pub api_version: String,
    /// As written, or made absolute against `base_dir` when it holds a path separator.
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub install_hint: Option<String>,
    pub provide_cluster_info: bool,
    /// `IfAvailable`, `Never` or `Always` (defaulted to `IfAvailable` for v1beta1).
    pub interactive_mode: Option<String>,
    /// The cluster, for `KUBERNETES_EXEC_INFO` when `provide_cluster_info` is set.
    pub cluster_server: String,
    pub cluster_ca_data: Option<String>,
    pub cluster_insecure: bool,
    pub cluster_server_name: Option<String>,
    /// Directory the command path resolves against when it holds a separator.
    pub base_dir: Option<PathBuf>,
    /// The cluster's `proxy-url`, also handed to the plugin.
    pub cluster_proxy_url: Option<String>,
    /// The cluster extension named `client.authentication.k8s.io/exec`, handed to the plugin
    /// as `spec.cluster.config`.
    pub cluster_config: Option<serde_json::Value>,
}

impl fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<String> = self.env.iter().map(|(k, _)| format!("{k}=[REDACTED]")).collect();
        f.debug_struct("ExecConfig")
            .field("api_version", &self.api_version)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &env)
            .field("install_hint", &self.install_hint)
            .field("provide_cluster_info", &self.provide_cluster_info)
            .field("interactive_mode", &self.interactive_mode)
            .field("cluster_server", &self.cluster_server)
            .finish_non_exhaustive()
    }
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

/// What the user typed on the command line (`--kubeconfig`, `--context`, `--namespace`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// Everything resolution reads from the outside world.
pub trait Env {
    /// An environment variable; `None` when unset or not UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    fn home_dir(&self) -> Option<PathBuf>;
    /// A whole file of at most `limit` bytes; a longer one is an error of kind
    /// [`io::ErrorKind::FileTooLarge`] after reading `limit + 1` bytes (`/dev/zero` stops).
    fn read_file(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>>;
    /// `path` made absolute against the current directory (client-go records each
    /// kubeconfig's absolute location). The default leaves it as it is.
    fn absolute(&self, path: &Path) -> PathBuf {
        path.to_owned()
    }
    /// The service-account directory (`/var/run/secrets/kubernetes.io/serviceaccount`).
    fn service_account_dir(&self) -> PathBuf {
        PathBuf::from(incluster::SERVICE_ACCOUNT_DIR)
    }
}

/// The most a kubeconfig file may hold (16 MiB: hundreds of clusters with inline CAs).
pub const MAX_KUBECONFIG_BYTES: u64 = 16 << 20;
/// The most a certificate-authority bundle, client certificate or key file may hold (4 MiB:
/// a system CA bundle is about 200 KB).
pub const MAX_PEM_BYTES: u64 = 4 << 20;
/// The most a token file may hold (1 MiB: service-account tokens are about 1 KB).
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// Reads at most `limit` bytes of a file; more is an error of kind
/// [`io::ErrorKind::FileTooLarge`] (see [`too_large`]), found after `limit + 1` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    check_bound(bytes, limit)
}

/// `bytes` when it holds at most `limit` bytes, else the [`too_large`] error.
pub fn check_bound(bytes: Vec<u8>, limit: u64) -> io::Result<Vec<u8>> {
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// The error of a file longer than `limit` bytes.
pub fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("holds more than {} (the limit for this file)", size(limit)),
    )
}

/// `limit` in MiB or KiB when it is a whole number of them.
fn size(limit: u64) -> String {
    if limit >= 1 << 20 && limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else if limit >= 1 << 10 && limit.is_multiple_of(1 << 10) {
        format!("{} KiB", limit >> 10)
    } else {
        format!("{limit} bytes")
    }
}

/// What a failed read of a file a kubeconfig names says after the field: `file `P` holds more
/// than 1 MiB (the limit for this file)` or `file `P` cannot be read` (the cause kept).
pub(crate) fn read_problem(path: &Path, e: io::Error) -> (String, Option<io::Error>) {
    if e.kind() == io::ErrorKind::FileTooLarge {
        (format!("file `{}` {e}", path.display()), None)
    } else {
        (format!("file `{}` cannot be read", path.display()), Some(e))
    }
}

/// The real process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn home_dir(&self) -> Option<PathBuf> {
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
    }

    fn read_file(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        read_bounded(path, limit)
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
    }
}

impl Config {
    /// [`infer`] against the real process environment.
    pub fn infer(overrides: &Overrides) -> Result<Config, ConfigError> {
        infer(&ProcessEnv, overrides)
    }
}

/// Resolves the configuration as kubectl does (see the module doc for the order).
pub fn infer(env: &impl Env, overrides: &Overrides) -> Result<Config, ConfigError> {
    let loaded = kubeconfig::load(env, overrides.kubeconfig.as_deref())?;
    let chosen = overrides.context.is_some()
        || loaded
            .as_ref()
            .is_some_and(|kc| kc.config.current_context.as_deref().is_some_and(|c| !c.is_empty()));
    if let Some(kc) = &loaded
        && (chosen || overrides.kubeconfig.is_some())
    {
        return select::select(env, kc, overrides);
    }
    if let Some(context) = &overrides.context {
        // No kubeconfig at all, yet a context was asked for: kubectl says it does not exist.
        return Err(ConfigError::ContextNotFound {
            files: kubeconfig::candidate_paths(env, None),
            context: context.clone(),
        });
    }
    // client-go: an empty merged kubeconfig (no context chosen) falls back to in-cluster when
    // that is possible, and otherwise reports the kubeconfig's own error.
    if let Some(config) = incluster::load(env, overrides)? {
        return Ok(config);
    }
    match loaded {
        Some(kc) => select::select(env, &kc, overrides),
        None => Err(ConfigError::NoConfiguration {
            tried: kubeconfig::candidate_paths(env, None),
        }),
    }
}

#[cfg(test)]
pub(crate) mod testenv;

#[cfg(test)]
mod tests;
