//! Woodpecker's Kubernetes backend: the workflow types the server sends, the agent options,
//! pure builders for every object (no I/O), and the step lifecycle on one shared watch.
//! Speaks to the cluster only through `kube`.

pub mod affinity;
mod environment;
mod error;
pub mod labels;
pub mod lifecycle;
pub mod loglines;
pub mod names;
pub mod namespace;
pub mod options;
pub mod pod;
pub mod podpatch;
pub mod preflight;
pub mod quantity;
pub mod reaper;
pub mod render;
pub mod resources;
pub mod script;
pub mod secrets;
pub mod security;
pub mod service;
pub mod step_options;
pub mod types;
pub mod volume;
pub mod weak;

use std::future::Future;

/// A step's output: one item per line (stdout and stderr merged, no trailing newline).
/// The backend may add lines of its own (warnings, why a pod is still pending).
pub use loglines::{LogLines, LogSender, log_channel};
pub use options::Options;
pub use pod::{BuildError, PodContext};
pub use types::{Environment, Stage, State, Step, WorkflowConfig};

pub use error::BackendError;

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
