//! Running pipelines: the YAML front end for `exec` (what the user wrote -> a compiled
//! `backend::WorkflowConfig`), and the runtime that drives a [`crate::backend::Backend`] through a
//! workflow. Knows the backend's contract, not Kubernetes.
//!
//! - [`yaml`]: workflow files to what the user wrote (matrix, `${VAR}`, anchors, every key).
//! - [`compile`]: what the user wrote to a `backend::WorkflowConfig` (stages, env, secrets, clone).
//! - [`env`]: the run's metadata and the `CI_*` variables.
//! - [`files`]: which workflow files a run reads, and which workflows stay by `depends_on`.
//! - [`error`]: the front end's error, pointing at file, line and key.
//! - [`runtime`]: [`run_workflow`], Woodpecker's order and failure semantics.
//! - [`trace`]: what the runtime reports (step states, log lines).
//! - [`ulid`]: step and volume ids.

pub mod compile;
pub(crate) mod env;
pub(crate) mod error;
pub(crate) mod files;
pub(crate) mod runtime;
pub(crate) mod trace;
pub(crate) mod ulid;
pub mod yaml;

pub use env::Metadata;
pub use error::{ErrorKind, PipelineError};
pub use runtime::{RuntimeOptions, WorkflowOutcome, run_workflow};
pub use trace::{LogKind, LogLine, StepState, Tracer};
