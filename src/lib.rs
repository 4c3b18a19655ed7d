//! woodpecker-k8s-agent: a small, fully static Woodpecker CI agent that runs every pipeline step
//! as a Kubernetes pod, over a hand-rolled Kubernetes REST client.
//!
//! # Layout
//!
//! Five rooms; dependencies point downwards only (`agent`/`pipeline` -> `backend` -> `kube`),
//! and `sim` stands beside `kube` as the cluster our tests and `exec --embedded` run against.
//!
//! - [`kube`]: the generic Kubernetes client: configuration (kubeconfig, in-cluster, exec
//!   plugins), transport, typed errors, CRUD, resumable watches and lossless log streams.
//!   Knows nothing of Woodpecker.
//! - [`backend`]: Woodpecker's Kubernetes backend: the workflow/step types the server sends,
//!   agent options, pure object builders, and the step lifecycle on one shared watch.
//! - [`pipeline`]: the YAML front end for `exec`, and the runtime that drives a backend through
//!   a workflow (stages, parallel steps, services, cancel, timeouts).
//! - [`agent`]: Woodpecker's agent <-> server gRPC protocol (version 16).
//! - [`sim`] (feature `sim`, on by default): an in-process apiserver and kubelet that real
//!   kubectl can talk to.
//! - [`cli`]: one file per subcommand; `main.rs` only dispatches.
//! - [`metrics`]: process-wide counters any room may bump; the agent serves them.
//! - [`log`]: the process log (one level, one format) every room writes its own lines to.
//! - [`go`]: Go's rules (JSON, durations, bools and ints, zerolog lines) wherever we read or
//!   write what Go programs do.

pub mod agent;
pub mod backend;
pub mod cli;
pub mod go;
pub mod kube;
pub mod log;
pub mod metrics;
pub mod pipeline;
pub mod secret;
pub mod shutdown;
#[cfg(feature = "sim")]
pub mod sim;

pub use secret::Secret;
pub use shutdown::Shutdown;
