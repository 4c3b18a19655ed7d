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
