//! Preflight: is this cluster ready for the agent? Reachable (`/version`), authenticated, the
//! namespace exists, RBAC allows every call the backend makes (one SelfSubjectAccessReview per
//! verb and resource), and the storage class fits `STORAGE_RWX`. Run by the `preflight`
//! command and at agent start.
//!
//! The judging (which permissions, what a review or a storage class means, the report) is pure
//! and lives in the submodules; `run` asks the apiserver; this file reads the settings.

pub mod permissions;
pub mod report;
mod run;
pub mod storage;

pub use permissions::Permission;
pub use report::{Check, Outcome, Report};
pub use run::{SelfSubjectReview, VersionInfo, preflight};

/// What to check. Built from the backend's `WOODPECKER_BACKEND_K8S_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where step objects go (`NAMESPACE`); with per-org on, the prefix of the org namespaces.
    pub namespace: String,
    /// `STORAGE_CLASS`; empty means the cluster's default class.
    pub storage_class: String,
    /// `STORAGE_RWX`: the workflow volume asks for ReadWriteMany.
    pub storage_rwx: bool,
    /// `NAMESPACE_PER_ORGANIZATION`: namespaces are created on demand.
    pub namespace_per_org: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: "woodpecker".into(),
            storage_class: String::new(),
            storage_rwx: true,
            namespace_per_org: false,
        }
    }
}

impl Options {
    /// Reads the backend's settings with the same names and defaults as Woodpecker's agent.
    /// `env` is a lookup (the process env in `main`, a map in tests).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
        let var = |name: &str| env(&format!("WOODPECKER_BACKEND_K8S_{name}")).filter(|v| !v.is_empty());
        let flag = |name: &str, default: bool| match var(name) {
            None => Ok(default),
            Some(v) => parse_bool(&v)
                .ok_or_else(|| format!("WOODPECKER_BACKEND_K8S_{name}: `{v}` is not a boolean (true/false/1/0)")),
        };
        let defaults = Options::default();
        Ok(Options {
            namespace: var("NAMESPACE").unwrap_or(defaults.namespace),
            storage_class: var("STORAGE_CLASS").unwrap_or_default(),
            storage_rwx: flag("STORAGE_RWX", true)?,
            namespace_per_org: flag("NAMESPACE_PER_ORGANIZATION", false)?,
        })
    }

    /// The permissions to review: cluster-wide ones come with `""` as their namespace.
    pub fn permissions(&self) -> Vec<(Permission, &str)> {
        let mut all: Vec<(Permission, &str)> = Vec::new();
        if self.namespace_per_org {
            // Org namespaces do not exist yet: every permission must hold cluster-wide.
            all.extend(permissions::PER_ORG.iter().map(|p| (*p, "")));
            all.extend(permissions::NAMESPACED.iter().map(|p| (*p, "")));
        } else {
            all.extend(permissions::NAMESPACED.iter().map(|p| (*p, self.namespace.as_str())));
        }
        all
    }
}

/// Go's `strconv.ParseBool`, which Woodpecker's flags use.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_match_woodpecker() {
        assert_eq!(Options::from_env(env(&[])).unwrap(), Options::default());
        let opts = Options::from_env(env(&[
            ("WOODPECKER_BACKEND_K8S_NAMESPACE", "ci"),
            ("WOODPECKER_BACKEND_K8S_STORAGE_CLASS", "nfs"),
            ("WOODPECKER_BACKEND_K8S_STORAGE_RWX", "F"),
            ("WOODPECKER_BACKEND_K8S_NAMESPACE_PER_ORGANIZATION", "1"),
        ]))
        .unwrap();
        assert_eq!(opts.namespace, "ci");
        assert_eq!(opts.storage_class, "nfs");
        assert!(!opts.storage_rwx && opts.namespace_per_org);
    }

    #[test]
    fn a_bad_boolean_names_the_variable() {
        let err = Options::from_env(env(&[("WOODPECKER_BACKEND_K8S_STORAGE_RWX", "yes")])).unwrap_err();
        assert!(
            err.contains("WOODPECKER_BACKEND_K8S_STORAGE_RWX") && err.contains("`yes`"),
            "{err}"
        );
    }

    #[test]
    fn per_org_reviews_everything_cluster_wide() {
        let opts = Options::default();
        let single = opts.permissions();
        assert!(single.iter().all(|(_, ns)| *ns == "woodpecker"));
        assert!(!single.iter().any(|(p, _)| p.resource == "namespaces"));
        let opts = Options {
            namespace_per_org: true,
            ..Options::default()
        };
        let per_org = opts.permissions();
        assert!(per_org.iter().all(|(_, ns)| ns.is_empty()));
        assert!(
            per_org
                .iter()
                .any(|(p, _)| p.resource == "namespaces" && p.verb == "create")
        );
    }
}
