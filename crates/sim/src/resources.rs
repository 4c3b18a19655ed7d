//! The resource kinds the simulated apiserver serves: plural, Kind, group/version, scope, short
//! names and verbs. Discovery, OpenAPI, routing and Tables all read this one table.

/// One servable resource.
#[derive(Debug)]
pub struct ResourceDef {
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    /// Empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [&'static str],
}

const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["po"],
        verbs: RW,
        subresources: &["log", "status"],
    },
    ResourceDef {
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        kind: "PersistentVolumeClaim",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["pvc"],
        verbs: RW,
        subresources: &["status"],
    },
    ResourceDef {
        plural: "services",
        singular: "service",
        kind: "Service",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["svc"],
        verbs: RW,
        subresources: &["status"],
    },
    ResourceDef {
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &[],
        verbs: RW,
        subresources: &[],
    },
    ResourceDef {
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["cm"],
        verbs: RW,
        subresources: &[],
    },
    ResourceDef {
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        group: "",
        version: "v1",
        namespaced: false,
        short_names: &["ns"],
        verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
        subresources: &["status"],
    },
    ResourceDef {
        plural: "nodes",
        singular: "node",
        kind: "Node",
        group: "",
        version: "v1",
        namespaced: false,
        short_names: &["no"],
        verbs: &["get", "list", "patch", "update", "watch"],
        subresources: &["status"],
    },
    ResourceDef {
        plural: "events",
        singular: "event",
        kind: "Event",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["ev"],
        verbs: RW,
        subresources: &[],
    },
    ResourceDef {
        plural: "storageclasses",
        singular: "storageclass",
        kind: "StorageClass",
        group: "storage.k8s.io",
        version: "v1",
        namespaced: false,
        short_names: &["sc"],
        verbs: RW,
        subresources: &[],
    },
    ResourceDef {
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        group: "coordination.k8s.io",
        version: "v1",
        namespaced: true,
        short_names: &[],
        verbs: RW,
        subresources: &[],
    },
    ResourceDef {
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        group: "authorization.k8s.io",
        version: "v1",
        namespaced: false,
        short_names: &[],
        verbs: &["create"],
        subresources: &[],
    },
];

impl ResourceDef {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Finds a resource by group and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by plural alone (plurals are unique here).
pub fn by_plural(plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.plural == plural)
}

/// The group versions served, core first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}
