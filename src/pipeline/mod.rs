//! Running pipelines: the YAML front end for `exec` (what the user wrote -> a compiled
//! `backend::Config`), and the runtime that drives a [`crate::backend::Backend`] through a
//! workflow. Knows the backend's contract, not Kubernetes.

pub mod trace;
