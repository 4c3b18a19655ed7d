//! Running pipelines: the YAML front end for `exec` (what the user wrote -> a compiled
//! `backend::Config`), and the runtime that drives a [`crate::backend::Backend`] through a
//! workflow. Knows the backend's contract, not Kubernetes.
//!
//! - [`runtime`]: [`run_workflow`], Woodpecker's order and failure semantics.
//! - [`trace`]: what the runtime reports (step states, log lines).
//! - [`ulid`]: step and volume ids.

pub mod runtime;
pub mod trace;
pub mod ulid;

pub use runtime::{RuntimeOptions, WorkflowOutcome, run_workflow};
