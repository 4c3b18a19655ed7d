//! Preflight: is this cluster ready for the agent? Reachable (`/version`), authenticated, the
//! namespace exists, RBAC allows every call the backend makes (one SelfSubjectAccessReview per
//! verb and resource), and the storage class fits `STORAGE_RWX`. Run by the `preflight`
//! command and at agent start.
//!
//! The judging (which permissions, what a review or a storage class means, the report) is pure
//! and lives in the submodules; `run` asks the apiserver; this file reads the settings.

pub(crate) mod permissions;
pub(crate) mod report;
mod run;
pub(crate) mod storage;

pub use permissions::{LEASES, NAMESPACED, PATCH_PODS, PER_ORG, Permission};
pub use report::{Check, CheckOutcome, Report};
pub use run::{SelfSubjectReview, VersionInfo, preflight};

/// What to check: the few backend settings ([`crate::backend::Options`]) preflight needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightOptions {
    /// Where step objects go (`NAMESPACE`); with per-org on, the prefix of the org namespaces.
    pub namespace: String,
    /// `STORAGE_CLASS`; empty means the cluster's default class.
    pub storage_class: String,
    /// `STORAGE_RWX`: the workflow volume asks for ReadWriteMany.
    pub storage_rwx: bool,
    /// `NAMESPACE_PER_ORGANIZATION`: namespaces are created on demand.
    pub namespace_per_org: bool,
    /// `KEEP_FAILED_PODS`: a failed step's pod is patched (labelled) instead of deleted, which
    /// needs `patch` on pods beyond the table `deploy/role.yaml` grants.
    pub keep_failed_pods: bool,
    /// `CACHES`: (cache name, claim name), each of which must exist in the namespace.
    pub caches: Vec<(String, String)>,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        PreflightOptions {
            namespace: "woodpecker".into(),
            storage_class: String::new(),
            storage_rwx: true,
            namespace_per_org: false,
            keep_failed_pods: false,
            caches: Vec::new(),
        }
    }
}

impl PreflightOptions {
    /// The settings preflight checks, out of the backend's resolved options.
    pub fn from_backend(opts: &crate::backend::Options) -> PreflightOptions {
        PreflightOptions {
            namespace: opts.namespace.clone(),
            storage_class: opts.storage_class.clone(),
            storage_rwx: opts.storage_rwx,
            namespace_per_org: opts.namespace_per_org,
            keep_failed_pods: opts.keep_failed_pods.is_some(),
            caches: opts.caches.iter().map(|(n, c)| (n.clone(), c.claim.clone())).collect(),
        }
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
        if self.keep_failed_pods {
            let ns = if self.namespace_per_org {
                ""
            } else {
                self.namespace.as_str()
            };
            all.push((permissions::PATCH_PODS, ns));
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_backend() {
        let backend = crate::backend::Options::default();
        assert_eq!(PreflightOptions::from_backend(&backend), PreflightOptions::default());
    }

    #[test]
    fn keeping_failed_pods_needs_patch_on_pods() {
        let has_patch = |o: &PreflightOptions| o.permissions().iter().any(|(p, _)| *p == permissions::PATCH_PODS);
        assert!(!has_patch(&PreflightOptions::default()));
        let keep = PreflightOptions {
            keep_failed_pods: true,
            ..PreflightOptions::default()
        };
        assert!(has_patch(&keep));
    }

    #[test]
    fn per_org_reviews_everything_cluster_wide() {
        let opts = PreflightOptions::default();
        let single = opts.permissions();
        assert!(single.iter().all(|(_, ns)| *ns == "woodpecker"));
        assert!(!single.iter().any(|(p, _)| p.resource == "namespaces"));
        let opts = PreflightOptions {
            namespace_per_org: true,
            ..PreflightOptions::default()
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
