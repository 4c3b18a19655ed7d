//! Secrets of a step: the step Secret holding `secret_mapping` values (§6.8), the registry pull
//! Secret from `auth_config` (§6.9), and references to existing native Secrets (§6.6). Pure
//! builders; secret values only ever go into the Secret objects, never into a pod spec.

use base64::Engine;
use serde_json::json;

use super::labels;
use super::names;
use super::options::Options;
use super::pod::{BuildError, PodContext};
use super::step_options::NativeSecret;
use super::types::Step;
use kube::types::{EnvVar, Secret, Volume, VolumeMount};

/// Whether the step has registry credentials (both username and password).
pub fn has_registry_auth(step: &Step) -> bool {
    !step.auth_config.username.is_empty() && !step.auth_config.password.is_empty()
}

/// The step Secret (`<pod>-step-secret`, type Opaque, `stringData` = the secret mapping), if the
/// step has secret env vars.
pub fn step_secret(step: &Step, ctx: &PodContext) -> Result<Option<Secret>, BuildError> {
    if step.secret_mapping.is_empty() {
        return Ok(None);
    }
    let pod = names::pod_name(step).map_err(|source| BuildError::Name {
        step: step.name.clone(),
        source,
    })?;
    Ok(Some(Secret {
        api_version: "v1".into(),
        kind: "Secret".into(),
        metadata: ctx.meta(names::step_secret_name(&pod)),
        type_: "Opaque".into(),
        data: Default::default(),
        string_data: step.secret_mapping.clone(),
    }))
}

/// The registry host of an image reference after Docker normalisation: the first path
/// component if it has a `.` or `:` or is `localhost`, otherwise `docker.io`.
pub fn registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The registry pull Secret (`wp-<uuid>`, type `kubernetes.io/dockerconfigjson`), if the step
/// has registry credentials.
pub fn registry_secret(step: &Step, opts: &Options, ctx: &PodContext) -> Result<Option<Secret>, BuildError> {
    if !has_registry_auth(step) {
        return Ok(None);
    }
    let name_err = |source| BuildError::Name {
        step: step.name.clone(),
        source,
    };
    let name = names::registry_secret_name(step).map_err(name_err)?;
    let pod = names::pod_name(step).map_err(name_err)?;
    // Go's encoding/json field order (username, password) and HTML escaping, byte for byte.
    let config = format!(
        r#"{{"auths":{{{}:{{"username":{},"password":{}}}}}}}"#,
        go_json_string(registry_host(&step.image)),
        go_json_string(&step.auth_config.username),
        go_json_string(&step.auth_config.password),
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(config);
    let mut metadata = ctx.meta(name);
    metadata.labels = labels::registry_secret_labels(step, &pod, opts, &ctx.task, &ctx.agent);
    Ok(Some(Secret {
        api_version: "v1".into(),
        kind: "Secret".into(),
        metadata,
        type_: "kubernetes.io/dockerconfigjson".into(),
        data: [(".dockerconfigjson".to_string(), encoded)].into(),
        string_data: Default::default(),
    }))
}

/// A JSON string as Go's `encoding/json` writes it: like serde_json, plus `<`, `>`, `&`, U+2028
/// and U+2029 escaped as `\u00XX`.
fn go_json_string(s: &str) -> String {
    let plain = serde_json::Value::from(s).to_string();
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// What native secrets add to a pod.
#[derive(Debug, Default)]
pub struct NativeParts {
    pub env: Vec<EnvVar>,
    pub env_from: Vec<serde_json::Value>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

/// Classifies each native secret (already gated by `ALLOW_NATIVE_SECRETS`): `file` (a volume
/// and a read-only mount), `advanced` (one env var from a key), or `simple` (`envFrom`).
pub fn native_secrets(secrets: &[NativeSecret], warnings: &mut Vec<String>) -> NativeParts {
    let mut out = NativeParts::default();
    for s in secrets {
        if !s.target_file.is_empty() {
            let Ok(dns) = names::to_dns_name(&s.name) else {
                warnings.push(format!("native secret {:?}: not a valid Secret name, ignored", s.name));
                continue;
            };
            let vol = names::to_dns_label(&dns);
            if !out.volumes.iter().any(|v| v.name == vol) {
                out.volumes.push(Volume {
                    name: vol.clone(),
                    secret: Some(json!({"secretName": s.name})),
                    ..Default::default()
                });
            }
            out.mounts.push(VolumeMount {
                name: vol,
                mount_path: s.target_file.clone(),
                sub_path: s.key.clone(),
                read_only: true,
            });
        } else if !s.key.is_empty() {
            let name = if s.target_env.is_empty() {
                s.key.to_uppercase()
            } else {
                s.target_env.clone()
            };
            out.env.push(EnvVar {
                name,
                value: None,
                value_from: Some(json!({"secretKeyRef": {"name": s.name, "key": s.key}})),
            });
        } else if !s.target_env.is_empty() {
            // Woodpecker emits a secretKeyRef with an empty key, which the apiserver rejects.
            warnings.push(format!("native secret {:?}: target.env needs a key, ignored", s.name));
        } else {
            out.env_from.push(json!({"secretRef": {"name": s.name}}));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::types::Auth;

    #[test]
    fn registry_hosts() {
        for (image, host) in [
            ("alpine", "docker.io"),
            ("library/alpine:3", "docker.io"),
            ("ghcr.io/o/i:1", "ghcr.io"),
            ("localhost/x", "localhost"),
            ("registry:5000/x", "registry:5000"),
            ("docker.io/library/alpine", "docker.io"),
        ] {
            assert_eq!(registry_host(image), host, "{image}");
        }
    }

    #[test]
    fn registry_secret_shape() {
        let step = Step {
            name: "build".into(),
            uuid: "01ABC".into(),
            image: "ghcr.io/o/i".into(),
            auth_config: Auth {
                username: "u".into(),
                password: "p\"w".into(),
            },
            ..Default::default()
        };
        let ctx = PodContext {
            namespace: "ns".into(),
            task: "9".into(),
            ..Default::default()
        };
        let s = registry_secret(&step, &Options::default(), &ctx).unwrap().unwrap();
        assert_eq!(s.metadata.name, "wp-01abc");
        assert_eq!(s.type_, "kubernetes.io/dockerconfigjson");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&s.data[".dockerconfigjson"])
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"auths":{"ghcr.io":{"username":"u","password":"p\"w"}}}"#
        );
        assert!(
            !format!("{s:?}").contains(&s.data[".dockerconfigjson"]),
            "Debug must not show values"
        );
        assert_eq!(go_json_string("a<b>&\u{2028}"), r#""a\u003cb\u003e\u0026\u2028""#);
        let no_pw = Step {
            auth_config: Auth {
                username: "u".into(),
                password: String::new(),
            },
            ..step
        };
        assert!(registry_secret(&no_pw, &Options::default(), &ctx).unwrap().is_none());
    }

    #[test]
    fn native_secret_kinds() {
        let s = |name: &str, key: &str, env: &str, file: &str| NativeSecret {
            name: name.into(),
            key: key.into(),
            target_env: env.into(),
            target_file: file.into(),
        };
        let mut w = Vec::new();
        let parts = native_secrets(
            &[
                s("tls.cert", "ca.crt", "", "/etc/ca.crt"),
                s("db", "password", "", ""),
                s("db", "user", "DB_USER", ""),
                s("all-env", "", "", ""),
                s("bad", "", "ONLY_ENV", ""),
            ],
            &mut w,
        );
        assert_eq!(parts.volumes.len(), 1);
        assert_eq!(parts.volumes[0].name, "tls-cert");
        assert_eq!(parts.volumes[0].secret, Some(json!({"secretName": "tls.cert"})));
        assert_eq!(parts.mounts[0].sub_path, "ca.crt");
        assert!(parts.mounts[0].read_only);
        assert_eq!(
            parts.env.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["PASSWORD", "DB_USER"]
        );
        assert_eq!(parts.env_from, vec![json!({"secretRef": {"name": "all-env"}})]);
        assert_eq!(w.len(), 1);
    }
}
