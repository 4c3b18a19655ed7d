//! kubeconfig files: the serde types for the fields we honour, reading, and kubectl's merge.
//! Knows nothing of TLS, HTTP or which context is chosen (that is `select`).
//!
//! Where files come from (client-go `tools/clientcmd/loader.go`): `--kubeconfig` alone (a missing
//! file is an error); else every entry of `KUBECONFIG` (split on `:`, empty entries and
//! duplicates dropped, missing files skipped); else `~/.kube/config` (missing is fine).
//! Merge rule, "first one wins, never overwrite": the first file that defines a cluster, user or
//! context name owns that entry whole; the first `current-context` wins.
//! Each entry remembers the file it came from, because relative paths inside it resolve against
//! that file's directory.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::{ConfigError, Env};
use crate::secret::Secret;

/// One kubeconfig, or several merged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    #[serde(default, deserialize_with = "opt_string")]
    pub current_context: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub clusters: Vec<NamedCluster>,
    #[serde(default, deserialize_with = "nullable")]
    pub users: Vec<NamedUser>,
    #[serde(default, deserialize_with = "nullable")]
    pub contexts: Vec<NamedContext>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamedCluster {
    #[serde(deserialize_with = "string")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub cluster: Cluster,
    /// The file this entry was read from.
    #[serde(skip)]
    pub origin: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamedUser {
    #[serde(deserialize_with = "string")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub user: User,
    #[serde(skip)]
    pub origin: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamedContext {
    #[serde(deserialize_with = "string")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub context: Context,
    #[serde(skip)]
    pub origin: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    #[serde(default, deserialize_with = "opt_string")]
    pub server: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub certificate_authority: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub certificate_authority_data: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub insecure_skip_tls_verify: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub tls_server_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub proxy_url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub extensions: Vec<NamedExtension>,
}

/// `clusters[].cluster.extensions[]`; the one named [`EXEC_EXTENSION`] is handed to exec
/// plugins as `spec.cluster.config`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedExtension {
    #[serde(default, deserialize_with = "string")]
    pub name: String,
    #[serde(default)]
    pub extension: serde_json::Value,
}

pub const EXEC_EXTENSION: &str = "client.authentication.k8s.io/exec";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Context {
    #[serde(default, deserialize_with = "opt_string")]
    pub cluster: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    #[serde(default, deserialize_with = "secret")]
    pub token: Option<Secret>,
    #[serde(rename = "tokenFile", default, deserialize_with = "opt_string")]
    pub token_file: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub client_certificate: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub client_certificate_data: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub client_key: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    pub client_key_data: Option<Secret>,
    #[serde(default, deserialize_with = "opt_string")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    pub password: Option<Secret>,
    pub exec: Option<Exec>,
    pub auth_provider: Option<AuthProvider>,
    /// Impersonation: `as`, `as-uid`, `as-groups`, `as-user-extra`.
    #[serde(rename = "as", default, deserialize_with = "opt_string")]
    pub impersonate: Option<String>,
    #[serde(rename = "as-uid", default, deserialize_with = "opt_string")]
    pub impersonate_uid: Option<String>,
    #[serde(rename = "as-groups", default, deserialize_with = "nullable")]
    pub impersonate_groups: Vec<String>,
    #[serde(rename = "as-user-extra", default, deserialize_with = "nullable")]
    pub impersonate_extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// `users[].user.exec` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exec {
    #[serde(default, deserialize_with = "opt_string")]
    pub api_version: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub command: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<ExecEnvVar>,
    #[serde(default, deserialize_with = "opt_string")]
    pub install_hint: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub provide_cluster_info: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub interactive_mode: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
pub struct ExecEnvVar {
    #[serde(default, deserialize_with = "string")]
    pub name: String,
    #[serde(default, deserialize_with = "string")]
    pub value: String,
}

impl std::fmt::Debug for ExecEnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Plugins take credentials through their environment too; never print values.
        write!(f, "{}=[REDACTED]", self.name)
    }
}

/// `auth-provider`: only its name matters, to say it is not supported.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthProvider {
    #[serde(default, deserialize_with = "string")]
    pub name: String,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(opt_string(d)?.map(Secret::new))
}

/// A string field as kubectl reads it: YAML turns a plain `86753098675309`, `true` or `1.5`
/// into a number or a boolean, and Go's decoder refuses those for a string field (`cannot
/// unmarshal number into ... of type string`); only a string (quoted when it looks like a
/// number) is taken. yaml_serde would hand the scalar's text to a `String` as it is.
fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(StrictString)
}

/// [`string`] for an optional field: `null` or `~` is unset.
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(StrictOptString)
}

struct StrictString;

impl<'de> serde::de::Visitor<'de> for StrictString {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

struct StrictOptString;

impl<'de> serde::de::Visitor<'de> for StrictOptString {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Kubeconfig files that were found, merged, with the list of files in merge order.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: Kubeconfig,
    pub files: Vec<PathBuf>,
}

/// Parses one file's text. An empty file is an empty kubeconfig (kubectl accepts it).
pub fn parse(text: &[u8], path: &Path) -> Result<Kubeconfig, ConfigError> {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let parse_err = |source: Box<dyn std::error::Error + Send + Sync>| ConfigError::ParseKubeconfig {
        path: path.to_owned(),
        source,
    };
    let text = std::str::from_utf8(text).map_err(|e| parse_err(e.into()))?;
    nesting::check(text).map_err(|e| parse_err(e.into()))?;
    // kubectl reads the first YAML document of a file and ignores any others.
    let parsed: Option<Kubeconfig> = match serde_yaml::Deserializer::from_str(text).next() {
        // serde's messages quote the value they reject; a kubeconfig's values are secrets.
        Some(document) => {
            Option::<Kubeconfig>::deserialize(document).map_err(|e| parse_err(redact::DecodeError::new(&e).into()))?
        }
        None => None,
    };
    let mut config = parsed.unwrap_or_default();
    // kubectl refuses a file that defines one name twice (its list-to-map conversion fails).
    let dup = |entry: super::Entry| ConfigError::field(path, entry, "name", "is defined twice in this file");
    if let Some(name) = duplicate(config.clusters.iter().map(|c| &c.name)) {
        return Err(dup(super::Entry::Cluster(name)));
    }
    if let Some(name) = duplicate(config.users.iter().map(|u| &u.name)) {
        return Err(dup(super::Entry::User(name)));
    }
    if let Some(name) = duplicate(config.contexts.iter().map(|c| &c.name)) {
        return Err(dup(super::Entry::Context(name)));
    }
    for c in &mut config.clusters {
        c.origin = path.to_owned();
    }
    for u in &mut config.users {
        u.origin = path.to_owned();
    }
    for c in &mut config.contexts {
        c.origin = path.to_owned();
    }
    Ok(config)
}

fn duplicate<'a>(names: impl Iterator<Item = &'a String>) -> Option<String> {
    let mut seen = HashSet::new();
    names.into_iter().find(|n| !seen.insert(*n)).cloned()
}

impl Kubeconfig {
    /// Merges `later` into `self` by kubectl's rule: what `self` already has wins.
    pub fn merge(&mut self, later: Kubeconfig) {
        if self.current_context.as_deref().is_none_or(str::is_empty) {
            self.current_context = later.current_context;
        }
        merge_named(&mut self.clusters, later.clusters, |c| &c.name);
        merge_named(&mut self.users, later.users, |u| &u.name);
        merge_named(&mut self.contexts, later.contexts, |c| &c.name);
    }
}

fn merge_named<T>(into: &mut Vec<T>, later: Vec<T>, name: impl Fn(&T) -> &String) {
    let known: HashSet<String> = into.iter().map(|t| name(t).clone()).collect();
    into.extend(later.into_iter().filter(|t| !known.contains(name(t))));
}

/// The files resolution would look at, in order (for errors and reports).
pub fn candidate_paths(env: &impl Env, explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_owned()];
    }
    if let Some(list) = env.var("KUBECONFIG").filter(|v| !v.is_empty()) {
        let mut seen = HashSet::new();
        return list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .filter(|p| seen.insert(p.clone()))
            .collect();
    }
    env.home_dir()
        .map(|home| vec![home.join(".kube").join("config")])
        .unwrap_or_default()
}

/// Reads and merges the kubeconfig files; `None` when none exists (and none was named
/// explicitly).
pub fn load(env: &impl Env, explicit: Option<&Path>) -> Result<Option<Loaded>, ConfigError> {
    let mut loaded: Option<Loaded> = None;
    for path in candidate_paths(env, explicit) {
        let text = match env.read_file(&path, super::MAX_KUBECONFIG_BYTES) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound && explicit.is_none() => continue,
            Err(source) => return Err(ConfigError::ReadKubeconfig { path, source }),
        };
        let path = super::select::clean(&env.absolute(&path));
        let config = parse(&text, &path)?;
        match &mut loaded {
            None => {
                loaded = Some(Loaded {
                    config,
                    files: vec![path],
                })
            }
            Some(acc) => {
                acc.config.merge(config);
                acc.files.push(path);
            }
        }
    }
    Ok(loaded)
}

mod nesting;
pub mod redact;

#[cfg(test)]
mod tests;
