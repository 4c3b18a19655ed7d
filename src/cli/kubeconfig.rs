//! The `kubeconfig` subcommand: resolve the configuration as the agent would and print, as
//! JSON, what it will connect to. Never prints a token, password or key; only says which kind
//! of credential is in use.

use std::ffi::OsString;
use std::process::ExitCode;

use serde_json::{Value, json};

use kube::config::{AuthConfig, Config, Impersonation, Origin, Overrides, redact_userinfo};

const USAGE: &str = "\
Usage: woodpecker-k8s-agent kubeconfig [--kubeconfig FILE] [--context NAME] [--namespace NS]

Prints, as JSON, the cluster, namespace, TLS settings, proxy and kind of credential the agent
would use, resolved as kubectl resolves them (--kubeconfig, else KUBECONFIG, else
~/.kube/config, else the in-cluster service account). No secret values are printed.
";

pub fn run(args: Vec<OsString>) -> super::Result {
    use lexopt::prelude::*;
    let mut overrides = Overrides::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("kubeconfig") => overrides.kubeconfig = Some(parser.value()?.into()),
            Long("context") => overrides.context = Some(parser.value()?.string()?),
            Short('n') | Long("namespace") => overrides.namespace = Some(parser.value()?.string()?),
            Short('h') | Long("help") => {
                print!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let config = Config::infer(&overrides)?;
    println!("{}", serde_json::to_string_pretty(&describe(&config))?);
    Ok(ExitCode::SUCCESS)
}

/// The report: where the configuration came from and what it says, without secrets.
pub fn describe(config: &Config) -> Value {
    let (source, files, context, cluster, user) = match &config.origin {
        Origin::Kubeconfig {
            files,
            context,
            cluster,
            user,
        } => {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            ("kubeconfig", json!(files), json!(context), json!(cluster), json!(user))
        }
        Origin::InCluster => ("in-cluster", Value::Null, Value::Null, Value::Null, Value::Null),
        Origin::Unknown => ("unknown", Value::Null, Value::Null, Value::Null, Value::Null),
    };
    let mut auth = json!({ "kind": config.auth.kind() });
    match &config.auth {
        AuthConfig::TokenFile(path) | AuthConfig::InCluster { token_file: path } => {
            auth["token_file"] = json!(path.display().to_string());
        }
        AuthConfig::TokenFileWithFallback { token_file, .. } => {
            auth["token_file"] = json!(token_file.display().to_string());
        }
        AuthConfig::Basic { username, .. } => auth["username"] = json!(username),
        AuthConfig::Exec(exec) => {
            auth["command"] = json!(exec.command);
            auth["api_version"] = json!(exec.api_version);
        }
        _ => {}
    }
    json!({
        "source": source,
        "files": files,
        "context": context,
        "cluster": cluster,
        "user": user,
        "server": config.server.to_string().trim_end_matches('/'),
        "namespace": config.namespace,
        "tls": {
            "ca": config.tls.ca_source,
            "ca_sha256": config.tls.ca_pem.as_deref().map(sha256_hex),
            "insecure": config.tls.insecure_skip_verify,
            "server_name": config.tls.server_name,
            "client_certificate": config.tls.client_cert_pem.is_some(),
            "client_certificate_sha256": config.tls.client_cert_pem.as_deref().map(sha256_hex),
        },
        "proxy": config.proxy_url.as_ref().map(redact_userinfo),
        "auth": auth,
        "impersonate": impersonate(&config.impersonate),
    })
}

/// `null` when nobody is impersonated; otherwise the identity, as kubectl's view names it.
fn impersonate(imp: &Impersonation) -> Value {
    if imp.is_empty() {
        return Value::Null;
    }
    json!({
        "as": imp.user,
        "as-uid": imp.uid,
        "as-groups": imp.groups,
        "as-user-extra": imp.extra,
    })
}

/// A fingerprint of public material (CA bundle, client certificate), to compare without
/// printing it.
fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
