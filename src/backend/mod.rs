//! Woodpecker's Kubernetes backend: the workflow types the server sends, the agent options,
//! pure builders for every object (no I/O), and the step lifecycle on one shared watch.
//! Speaks to the cluster only through `kube`.

pub(crate) mod affinity;
mod environment;
mod error;
pub(crate) mod labels;
pub(crate) mod lifecycle;
pub(crate) mod loglines;
pub(crate) mod names;
pub(crate) mod namespace;
pub(crate) mod options;
pub(crate) mod pod;
pub(crate) mod podpatch;
pub mod preflight;
pub(crate) mod quantity;
pub(crate) mod reaper;
pub(crate) mod render;
pub(crate) mod resources;
pub(crate) mod script;
pub(crate) mod secrets;
pub(crate) mod security;
pub(crate) mod service;
pub(crate) mod step_options;
pub(crate) mod types;
pub(crate) mod volume;
pub(crate) mod weak;

use std::future::Future;

/// A step's output: one item per line (stdout and stderr merged, no trailing newline).
/// The backend may add lines of its own (warnings, why a pod is still pending).
pub use loglines::{Batch, LogLines, LogSender, log_channel};
pub use options::Options;
pub use pod::{BuildError, PodContext};
pub use types::{Environment, Stage, State, Step, WorkflowConfig};

pub use error::BackendError;
// What the other rooms, the tests and the benches use; every other item stays inside backend.
pub use labels::SERVICE as SERVICE_LABEL;
pub use lifecycle::{KubeBackend, KubeIo, LifecycleSettings, Limits};
pub use options::Cache;
pub use reaper::Holder;
pub use types::SecretValue;

/// The backend contract (Woodpecker's `pipeline/backend/types.Backend`): one instance per agent,
/// shared by every workflow and step at once, isolated by the task id (the workflow id).
///
/// Order per workflow: `setup_workflow`, then per step `start_step`, `tail_step` (read to its
/// end), `wait_step`, `destroy_step`; finally `destroy_workflow`, which also stops detached
/// steps and services and must work after a failed setup.
pub trait Backend: Send + Sync + 'static {
    fn setup_workflow(
        &self,
        conf: &WorkflowConfig,
        task: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    fn start_step(&self, step: &Step, task: &str) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// A stream of the step's log lines that ends when the container ends.
    fn tail_step(&self, step: &Step, task: &str) -> impl Future<Output = Result<LogLines, BackendError>> + Send;
    /// Blocks until the step finishes.
    fn wait_step(&self, step: &Step, task: &str) -> impl Future<Output = Result<State, BackendError>> + Send;
    /// Idempotent; safe when `start_step` failed or never ran.
    fn destroy_step(&self, step: &Step, task: &str) -> impl Future<Output = Result<(), BackendError>> + Send;
    fn destroy_workflow(
        &self,
        conf: &WorkflowConfig,
        task: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}
