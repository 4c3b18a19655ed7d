//! What runs a container on the simulated node: the scripted runner (behaviour from
//! [`ScriptRule`]s, no processes) or the host runner (the container's command as a local
//! process in its own mount namespace). The kubelet drives both through [`run_container`].

pub mod cgroup;
pub mod host;
pub mod scripted;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

pub use scripted::{Matcher, PodFault, ScriptRule};

use super::Shared;
use super::logs::ContainerLog;

/// Which runner the kubelet uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RunnerKind {
    /// Behaviour from rules; nothing is executed. The default for tests.
    #[default]
    Scripted,
    /// Runs each container's command on this machine.
    Host,
}

/// Why the kubelet stops a pod's containers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kill {
    /// The pod is being deleted: SIGTERM, SIGKILL after the grace period.
    Deleted { grace: Duration },
    /// `activeDeadlineSeconds` passed.
    Deadline,
    /// Node-pressure eviction.
    Evicted,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    pub code: i32,
    /// `Completed`, `Error`, `OOMKilled`, `StartError`...
    pub reason: String,
    pub message: Option<String>,
    pub signal: Option<i32>,
}

impl Exit {
    pub fn code(code: i32) -> Self {
        Exit {
            code,
            reason: if code == 0 { "Completed".into() } else { "Error".into() },
            message: None,
            signal: None,
        }
    }
    /// Terminated by a signal (exit 128+N).
    pub fn signal(sig: i32) -> Self {
        Exit {
            code: 128 + sig,
            reason: "Error".into(),
            message: None,
            signal: Some(sig),
        }
    }
}

/// Everything a runner needs for one container.
pub(crate) struct ContainerRun<'a> {
    pub shared: &'a Arc<Shared>,
    pub pod: &'a Value,
    pub container: &'a Value,
    pub log: Arc<ContainerLog>,
    pub kill: watch::Receiver<Option<Kill>>,
    pub plan: &'a scripted::ContainerPlan,
}

/// Runs one container to its end (or until killed).
pub(crate) async fn run_container(kind: RunnerKind, run: ContainerRun<'_>) -> Exit {
    match kind {
        RunnerKind::Scripted => scripted::run(run).await,
        RunnerKind::Host => host::run(run).await,
    }
}

/// Waits until a kill is requested and returns it.
pub async fn killed(kill: &mut watch::Receiver<Option<Kill>>) -> Kill {
    loop {
        if let Some(k) = *kill.borrow_and_update() {
            return k;
        }
        if kill.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
