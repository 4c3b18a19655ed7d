//! From merged kubeconfig files to a resolved [`Config`]: pick the context, its cluster and
//! user, load the files and `-data` fields they name, and decide the auth method as client-go
//! does. Reads only through [`Env`]; knows nothing of HTTP requests or of running plugins.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::kubeconfig::{Exec, Loaded, NamedCluster, NamedUser, User};
pub use super::pem::{check_certificates, check_key, decode_base64};
use super::{
    AuthConfig, Config, ConfigError, Entry, Env, ExecConfig, Impersonation, MAX_PEM_BYTES, MAX_TOKEN_BYTES, Origin,
    Overrides, TlsConfig,
};
use crate::secret::Secret;

/// Resolves the chosen context of already-loaded kubeconfig files.
pub fn select(env: &impl Env, loaded: &Loaded, overrides: &Overrides) -> Result<Config, ConfigError> {
    let kc = &loaded.config;
    let files = &loaded.files;
    let context_name = overrides
        .context
        .clone()
        .or_else(|| kc.current_context.clone())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ConfigError::NoContext { files: files.clone() })?;
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .ok_or_else(|| ConfigError::ContextNotFound {
            files: files.clone(),
            context: context_name.clone(),
        })?;
    let cluster_name = context.context.cluster.clone().unwrap_or_default();
    let cluster = kc
        .clusters
        .iter()
        .find(|c| !cluster_name.is_empty() && c.name == cluster_name)
        .ok_or_else(|| ConfigError::ClusterNotFound {
            files: files.clone(),
            context: context_name.clone(),
            cluster: cluster_name.clone(),
        })?;
    let user_name = context.context.user.clone().unwrap_or_default();
    // A context naming no user is anonymous; one naming a user that no file defines is
    // refused, as kubectl refuses it (`cannot locate user`), instead of going on anonymously.
    let user = match user_name.as_str() {
        "" => None,
        name => Some(
            kc.users
                .iter()
                .find(|u| u.name == name)
                .ok_or_else(|| ConfigError::UserNotFound {
                    files: files.clone(),
                    context: context_name.clone(),
                    user: user_name.clone(),
                })?,
        ),
    };

    let (server, mut tls, proxy_url) = cluster_parts(env, cluster)?;
    let auth = match user {
        Some(user) => user_parts(env, user, cluster, &mut tls)?,
        None => AuthConfig::None,
    };
    let namespace = overrides
        .namespace
        .clone()
        .or_else(|| context.context.namespace.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    Ok(Config {
        server,
        namespace,
        tls,
        proxy_url,
        auth,
        impersonate: user.map(|u| impersonation(&u.user)).unwrap_or_default(),
        origin: Origin::Kubeconfig {
            files: files.clone(),
            context: context_name,
            cluster: cluster_name,
            user: user_name,
        },
    })
}

/// A path as written in a kubeconfig, made absolute against the directory of the file that
/// named it (client-go `ResolveLocalPaths`, which joins and cleans).
pub fn resolve(origin: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        return clean(path);
    }
    clean(&origin.parent().unwrap_or(Path::new("")).join(path))
}

/// Lexical clean-up like Go's `filepath.Clean`: drops `.` and folds `dir/..`.
pub fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// A file a kubeconfig field names, read under `limit`; `field_err` makes the field's error
/// from the problem (the io error is kept as the cause, except for a file over the limit,
/// which the problem itself says).
fn read(
    env: &impl Env,
    path: &Path,
    limit: u64,
    field_err: impl FnOnce(String) -> ConfigError,
) -> Result<Vec<u8>, ConfigError> {
    env.read_file(path, limit)
        .map_err(|e| match super::read_problem(path, e) {
            (problem, Some(cause)) => field_err(problem).with_source(cause),
            (problem, None) => field_err(problem),
        })
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Parses a `server` or in-cluster URL: adds a scheme when missing as client-go does (https
/// when any TLS setting is present, else http), drops a trailing `/`.
pub fn parse_server(raw: &str, tls_hint: bool) -> Result<http::Uri, String> {
    let raw = raw.trim().trim_end_matches('/');
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else if tls_hint {
        format!("https://{raw}")
    } else {
        format!("http://{raw}")
    };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|e: http::uri::InvalidUri| format!("is not a valid URL ({e})"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err("must be an http:// or https:// URL".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if uri.query().is_some() {
        return Err("must not have a query".into());
    }
    Ok(uri)
}

fn cluster_parts(
    env: &impl Env,
    named: &NamedCluster,
) -> Result<(http::Uri, TlsConfig, Option<http::Uri>), ConfigError> {
    let c = &named.cluster;
    let file = &named.origin;
    let err = |field: &'static str, problem: String| {
        ConfigError::field(file, Entry::Cluster(named.name.clone()), field, problem)
    };
    let mut tls = TlsConfig {
        insecure_skip_verify: c.insecure_skip_tls_verify,
        server_name: non_empty(&c.tls_server_name).map(str::to_owned),
        ..TlsConfig::default()
    };
    if let Some(data) = non_empty(&c.certificate_authority_data) {
        // The data field overrides the file (client-go).
        let pem = decode_base64(data).ok_or_else(|| err("certificate-authority-data", "is not valid base64".into()))?;
        check_certificates(&pem).map_err(|p| err("certificate-authority-data", p))?;
        tls.ca_pem = Some(pem);
        tls.ca_source = Some("certificate-authority-data".into());
    } else if let Some(path) = non_empty(&c.certificate_authority) {
        let path = resolve(file, path);
        let pem = read(env, &path, MAX_PEM_BYTES, |p| err("certificate-authority", p))?;
        check_certificates(&pem).map_err(|p| err("certificate-authority", format!("file `{}` {p}", path.display())))?;
        tls.ca_pem = Some(pem);
        tls.ca_source = Some(path.display().to_string());
    }
    if tls.insecure_skip_verify && tls.ca_pem.is_some() {
        return Err(err(
            "insecure-skip-tls-verify",
            "cannot be combined with a certificate authority (kubectl refuses it too)".into(),
        ));
    }
    let server = non_empty(&c.server).ok_or_else(|| err("server", "is not set".into()))?;
    let tls_hint = tls.ca_pem.is_some() || tls.insecure_skip_verify;
    let server = parse_server(server, tls_hint).map_err(|p| err("server", p))?;
    let proxy = match non_empty(&c.proxy_url) {
        // client-go: without `proxy-url`, the environment's proxy (and NO_PROXY) applies.
        None => super::proxy::from_env(env, &server)?,
        Some(raw) => {
            // Never echo the URL: it may carry a password.
            let uri: http::Uri = raw.parse().map_err(|_| err("proxy-url", "is not a valid URL".into()))?;
            match uri.scheme_str() {
                Some("http") => {}
                Some(_) => {
                    return Err(err(
                        "proxy-url",
                        "uses a scheme other than http://; only http:// proxies (HTTP CONNECT) are supported".into(),
                    ));
                }
                None => return Err(err("proxy-url", "has no scheme (want http://)".into())),
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(err("proxy-url", "has no host".into()));
            }
            Some(uri)
        }
    };
    Ok((server, tls, proxy))
}

/// The user's `as*` fields; empty strings count as unset (client-go).
fn impersonation(u: &User) -> Impersonation {
    Impersonation {
        user: non_empty(&u.impersonate).map(str::to_owned),
        uid: non_empty(&u.impersonate_uid).map(str::to_owned),
        groups: u.impersonate_groups.clone(),
        extra: u.impersonate_extra.clone(),
    }
}

fn user_parts(
    env: &impl Env,
    named: &NamedUser,
    cluster: &NamedCluster,
    tls: &mut TlsConfig,
) -> Result<AuthConfig, ConfigError> {
    let u: &User = &named.user;
    let file = &named.origin;
    let err = |field: &'static str, problem: String| {
        ConfigError::field(file, Entry::User(named.name.clone()), field, problem)
    };
    if let Some(provider) = &u.auth_provider {
        return Err(err(
            "auth-provider",
            // Only a known provider's name is repeated: the field's value is never quoted.
            format!(
                "{}is not supported (kubectl dropped the in-tree providers); use an exec \
                 credential plugin such as gke-gcloud-auth-plugin or kubelogin",
                match provider.name.as_str() {
                    known @ ("gcp" | "azure" | "oidc") => format!("`{known}` "),
                    _ => String::new(),
                }
            ),
        ));
    }
    let token = u.token.as_ref().filter(|t| !t.is_empty());
    let token_file = non_empty(&u.token_file).map(|p| resolve(file, p));
    let has_basic = non_empty(&u.username).is_some() || u.password.as_ref().is_some_and(|p| !p.is_empty());
    if has_basic && (token.is_some() || token_file.is_some()) {
        return Err(err(
            "username",
            "cannot be combined with `token` or `tokenFile`: kubectl allows only one of them".into(),
        ));
    }

    // Client certificate: the data fields override the files (client-go).
    let has_cert = non_empty(&u.client_certificate).is_some() || non_empty(&u.client_certificate_data).is_some();
    if has_cert {
        let cert = if let Some(data) = non_empty(&u.client_certificate_data) {
            let pem =
                decode_base64(data).ok_or_else(|| err("client-certificate-data", "is not valid base64".into()))?;
            check_certificates(&pem).map_err(|p| err("client-certificate-data", p))?;
            pem
        } else {
            let path = resolve(file, u.client_certificate.as_deref().unwrap_or_default());
            let pem = read(env, &path, MAX_PEM_BYTES, |p| err("client-certificate", p))?;
            check_certificates(&pem)
                .map_err(|p| err("client-certificate", format!("file `{}` {p}", path.display())))?;
            pem
        };
        let key = if let Some(data) = u.client_key_data.as_ref().filter(|d| !d.is_empty()) {
            let pem =
                decode_base64(data.expose()).ok_or_else(|| err("client-key-data", "is not valid base64".into()))?;
            check_key(&pem).map_err(|p| err("client-key-data", p.into()))?;
            pem
        } else if let Some(path) = non_empty(&u.client_key) {
            let path = resolve(file, path);
            let pem = read(env, &path, MAX_PEM_BYTES, |p| err("client-key", p))?;
            check_key(&pem).map_err(|p| err("client-key", format!("file `{}` {p}", path.display())))?;
            pem
        } else {
            return Err(err(
                "client-key",
                "is not set: `client-certificate` needs `client-key` or `client-key-data`".into(),
            ));
        };
        let key_field = if u.client_key_data.as_ref().is_some_and(|d| !d.is_empty()) {
            "client-key-data"
        } else {
            "client-key"
        };
        super::pem::check_pair(&cert, &key).map_err(|p| err(key_field, p.into()))?;
        let key = String::from_utf8(key).map_err(|_| err("client-key", "is not PEM text".into()))?;
        tls.client_cert_pem = Some(cert);
        tls.client_key_pem = Some(Secret::new(key));
    }

    if let Some(path) = token_file {
        // client-go reads the file once at load; a missing or empty file is an error then.
        let text = read(env, &path, MAX_TOKEN_BYTES, |p| err("tokenFile", p))?;
        let empty = String::from_utf8_lossy(&text).trim().is_empty();
        return match token {
            Some(token) => Ok(AuthConfig::TokenFileWithFallback {
                token_file: path,
                token: token.clone(),
            }),
            None if empty => Err(err("tokenFile", format!("file `{}` is empty", path.display()))),
            None => Ok(AuthConfig::TokenFile(path)),
        };
    }
    if let Some(token) = token {
        return Ok(AuthConfig::Token(Secret::new(token.expose().trim())));
    }
    if has_basic {
        return Ok(AuthConfig::Basic {
            username: u.username.clone().unwrap_or_default(),
            password: u.password.clone().unwrap_or_default(),
        });
    }
    if has_cert {
        // client-go's exec authenticator stands aside when a certificate is configured.
        return Ok(AuthConfig::ClientCertificate);
    }
    match &u.exec {
        Some(exec) => Ok(AuthConfig::Exec(exec_config(exec, named, cluster, tls)?)),
        None => Ok(AuthConfig::None),
    }
}

fn exec_config(
    exec: &Exec,
    named: &NamedUser,
    cluster: &NamedCluster,
    tls: &TlsConfig,
) -> Result<ExecConfig, ConfigError> {
    let file = &named.origin;
    let err = |field: &'static str, problem: String| {
        ConfigError::field(file, Entry::User(named.name.clone()), field, problem)
    };
    let command = non_empty(&exec.command).ok_or_else(|| err("exec.command", "is not set".into()))?;
    let api_version = non_empty(&exec.api_version).ok_or_else(|| err("exec.apiVersion", "is not set".into()))?;
    let is_v1 = match api_version {
        super::exec::V1 => true,
        super::exec::V1BETA1 => false,
        _ => {
            return Err(err(
                "exec.apiVersion",
                format!(
                    "is not supported (want {} or {})",
                    super::exec::V1,
                    super::exec::V1BETA1
                ),
            ));
        }
    };
    // client-go: v1 requires interactiveMode; v1beta1 defaults it to IfAvailable.
    let interactive_mode = match non_empty(&exec.interactive_mode) {
        None if is_v1 => {
            return Err(err(
                "exec.interactiveMode",
                "is not set (required for client.authentication.k8s.io/v1)".into(),
            ));
        }
        None => "IfAvailable".to_owned(),
        Some(m @ ("Never" | "IfAvailable" | "Always")) => m.to_owned(),
        Some(_) => {
            return Err(err(
                "exec.interactiveMode",
                "is not one of Never, IfAvailable, Always".into(),
            ));
        }
    };
    let mut env = Vec::new();
    for var in &exec.env {
        if var.name.is_empty() {
            return Err(err("exec.env", "has an entry without a name".into()));
        }
        env.push((var.name.clone(), var.value.clone()));
    }
    // Like client-go, the command resolves against the file only when it holds a separator;
    // a bare name is a PATH lookup.
    let command = if command.contains('/') {
        resolve(file, command).display().to_string()
    } else {
        command.to_owned()
    };
    Ok(ExecConfig {
        api_version: api_version.to_owned(),
        command,
        args: exec.args.clone(),
        env,
        install_hint: non_empty(&exec.install_hint).map(str::to_owned),
        provide_cluster_info: exec.provide_cluster_info,
        interactive_mode: Some(interactive_mode),
        cluster_server: cluster.cluster.server.clone().unwrap_or_default(),
        cluster_ca_data: tls.ca_pem.as_ref().map(|pem| STANDARD.encode(pem)),
        cluster_insecure: tls.insecure_skip_verify,
        cluster_server_name: tls.server_name.clone(),
        base_dir: file.parent().map(Path::to_owned),
        cluster_proxy_url: non_empty(&cluster.cluster.proxy_url).map(str::to_owned),
        cluster_config: cluster
            .cluster
            .extensions
            .iter()
            .find(|e| e.name == super::kubeconfig::EXEC_EXTENSION)
            .map(|e| e.extension.clone()),
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod user_tests;
