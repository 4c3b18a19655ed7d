//! Exec credential plugins (client.authentication.k8s.io v1 and v1beta1): the
//! `KUBERNETES_EXEC_INFO` we hand the plugin, running it, and reading the `ExecCredential` it
//! prints. Knows nothing of caching or of when to run (that is `kube::auth`).
//!
//! Protocol (client-go `plugin/pkg/client/auth/exec/exec.go`): the plugin runs with our
//! environment plus its `env` entries plus `KUBERNETES_EXEC_INFO`; stdin is never passed (the
//! agent is not interactive, so `interactiveMode: Always` is refused); stdout must be an
//! `ExecCredential` of the same apiVersion whose `status` holds a token and/or a client
//! certificate and key, and optionally `expirationTimestamp` (RFC 3339).

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::ExecConfig;
use crate::auth::AuthError;
use crate::secret::Secret;

pub const V1: &str = "client.authentication.k8s.io/v1";
pub const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// How long a plugin may run. client-go waits forever; an agent should not hang on a wedged
/// plugin, and two minutes is far above what cloud plugins take.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What a plugin returned.
#[derive(Debug, Clone, Default)]
pub struct ExecCredential {
    pub token: Option<Secret>,
    /// PEM client certificate chain, when the plugin returns mutual-TLS material.
    pub client_certificate_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Secret>,
    /// `None`: valid until the server answers 401.
    pub expires_at: Option<SystemTime>,
}

/// The `KUBERNETES_EXEC_INFO` JSON for this plugin. `spec.cluster` only with
/// `provideClusterInfo`.
pub fn exec_info(config: &ExecConfig) -> String {
    let mut spec = serde_json::json!({ "interactive": false });
    if config.provide_cluster_info {
        let mut cluster = serde_json::json!({ "server": config.cluster_server });
        if let Some(name) = &config.cluster_server_name {
            cluster["tls-server-name"] = name.clone().into();
        }
        if config.cluster_insecure {
            cluster["insecure-skip-tls-verify"] = true.into();
        }
        if let Some(ca) = &config.cluster_ca_data {
            cluster["certificate-authority-data"] = ca.clone().into();
        }
        if let Some(proxy) = &config.cluster_proxy_url {
            cluster["proxy-url"] = proxy.clone().into();
        }
        if let Some(extra) = &config.cluster_config {
            cluster["config"] = extra.clone();
        }
        spec["cluster"] = cluster;
    }
    serde_json::json!({
        "apiVersion": config.api_version,
        "kind": "ExecCredential",
        "spec": spec,
    })
    .to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    status: Option<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    expiration_timestamp: Option<String>,
}

/// Reads a plugin's stdout. The error is a problem description that never quotes the output.
pub fn parse_output(config: &ExecConfig, stdout: &[u8]) -> Result<ExecCredential, String> {
    let out: Output = serde_json::from_slice(stdout).map_err(|e| {
        format!(
            "printed something that is not ExecCredential JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if out.kind != "ExecCredential" {
        return Err("printed a `kind` other than `ExecCredential`".into());
    }
    if out.api_version != config.api_version {
        return Err(format!(
            "printed an `apiVersion` other than the configured `{}`",
            config.api_version
        ));
    }
    let status = out.status.ok_or("printed no `status`")?;
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let token = non_empty(status.token).map(|t| Secret::new(t.trim()));
    let cert = non_empty(status.client_certificate_data);
    let key = non_empty(status.client_key_data);
    if cert.is_some() != key.is_some() {
        return Err("printed only one of `clientCertificateData` and `clientKeyData`".into());
    }
    if token.is_none() && cert.is_none() {
        return Err("printed neither a `token` nor a client certificate and key".into());
    }
    if let Some(cert) = &cert {
        super::select::check_certificates(cert.as_bytes())
            .map_err(|p| format!("printed `clientCertificateData` that {p}"))?;
    }
    if let Some(key) = &key {
        super::select::check_key(key.as_bytes()).map_err(|p| format!("printed `clientKeyData` that {p}"))?;
    }
    if let (Some(cert), Some(key)) = (&cert, &key) {
        super::pem::check_pair(cert.as_bytes(), key.as_bytes())
            .map_err(|p| format!("printed `clientKeyData` that {p}"))?;
    }
    let expires_at = match non_empty(status.expiration_timestamp) {
        None => None,
        Some(ts) => Some(parse_rfc3339(&ts).ok_or("printed an `expirationTimestamp` that is not RFC 3339")?),
    };
    Ok(ExecCredential {
        token,
        client_certificate_pem: cert.map(String::into_bytes),
        client_key_pem: key.map(Secret::new),
        expires_at,
    })
}

/// Runs the plugin once and reads its credential.
pub async fn run(config: &ExecConfig) -> Result<ExecCredential, AuthError> {
    let command = config.command.clone();
    if config.interactive_mode.as_deref() == Some("Always") {
        return Err(AuthError::ExecInteractive { command });
    }
    let mut cmd = tokio::process::Command::new(&config.command);
    cmd.args(&config.args)
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .env("KUBERNETES_EXEC_INFO", exec_info(config))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            AuthError::ExecNotFound {
                command: command.clone(),
                install_hint: config.install_hint.clone(),
                source,
            }
        } else {
            AuthError::ExecSpawn {
                command: command.clone(),
                source,
            }
        }
    })?;
    let output = match tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output()).await {
        Err(_) => return Err(AuthError::ExecTimeout { command }),
        Ok(Err(source)) => return Err(AuthError::ExecSpawn { command, source }),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        return Err(AuthError::ExecFailed {
            command,
            status: output.status,
            stderr: stderr_tail(&output.stderr),
        });
    }
    parse_output(config, &output.stdout).map_err(|problem| AuthError::ExecOutput { command, problem })
}

/// The last KiB of a plugin's stderr, for the error message.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    match text.char_indices().rev().nth(1023) {
        Some((i, _)) => format!("...{}", &text[i..]),
        None => text.to_owned(),
    }
}

/// An RFC 3339 timestamp (`2026-11-28T01:02:03Z`, fractional seconds and `+hh:mm` offsets
/// allowed) as a `SystemTime`. `None` for anything else or before 1970.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let (secs, nanos) = crate::time::parse_rfc3339(s)?;
    Some(UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos))
}

#[cfg(test)]
mod tests;
