//! The value types of the options cluster admins asked for (issue 17): the default arch pin,
//! the Pod Security level the agent enforces, and cache volumes.

/// Which `kubernetes.io/arch` a step without a `platform` of its own is pinned to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefaultArch {
    /// The agent's (`CI_SYSTEM_PLATFORM`), as Woodpecker does.
    #[default]
    Agent,
    /// No pin: the scheduler picks any node (multi-arch images).
    None,
}

/// A Pod Security Standard level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PssLevel {
    Baseline,
    Restricted,
}

impl PssLevel {
    pub fn name(self) -> &'static str {
        match self {
            PssLevel::Baseline => "baseline",
            PssLevel::Restricted => "restricted",
        }
    }
}

/// An admin-declared cache: an existing PersistentVolumeClaim steps may mount by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cache {
    pub claim: String,
    pub read_only: bool,
}

/// `WORKSPACE_EMPTYDIR`: the workspace is an `emptyDir` of a per-workflow holder pod, which
/// the steps mount from the node (`hostPath` under the kubelet's directory), pinned to its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyDirWorkspace {
    /// `Memory` for a tmpfs.
    pub medium: Option<String>,
    /// Canonical quantity.
    pub size_limit: Option<String>,
    /// The kubelet's root directory on the nodes (`--root-dir`).
    pub kubelet_dir: String,
}

impl Default for EmptyDirWorkspace {
    fn default() -> Self {
        EmptyDirWorkspace {
            medium: None,
            size_limit: None,
            kubelet_dir: "/var/lib/kubelet".into(),
        }
    }
}
