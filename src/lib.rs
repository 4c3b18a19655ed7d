//! woodpecker-k8s-agent: a small, fully static Woodpecker CI agent that runs every pipeline step
//! as a Kubernetes pod, over a hand-rolled Kubernetes REST client.
//!
//! # Layout
//!
//! A workspace of three crates. Arrows point one way: cli -> agent -> pipeline -> backend ->
//! `kube`; `sim` -> `kube`. Between crates a wrong arrow does not compile; inside this crate
//! `tests/layers.rs` fails on one.
//!
//! - `kube` (`crates/kube`): the generic Kubernetes client: configuration (kubeconfig,
//!   in-cluster, exec plugins), transport, typed errors, CRUD, resumable watches and lossless log
//!   streams. Knows nothing of Woodpecker.
//! - `sim` (`crates/sim`, feature `sim`, on by default): an in-process apiserver and kubelet that
//!   real kubectl can talk to, for the tests and `exec --embedded`. Not in the shipped binary.
//! - [`backend`]: Woodpecker's Kubernetes backend: the workflow/step types the server sends,
//!   agent options, pure object builders, and the step lifecycle on one shared watch.
//! - [`pipeline`]: the YAML front end for `exec`, and the runtime that drives a backend through
//!   a workflow (stages, parallel steps, services, cancel, timeouts).
//! - [`agent`]: Woodpecker's agent <-> server gRPC protocol (version 16).
//! - [`cli`]: one file per subcommand; `main.rs` only dispatches.
//!
//! Shared by every room, importing none: [`go`] (Go's rules for what Go programs wrote),
//! [`shutdown`] (the cancel signal and the process signals), [`error_chain`] (an error and its
//! causes, printed), [`metrics`] (the agent's counters).

pub mod agent;
pub mod backend;
pub mod cli;
pub mod error_chain;
pub mod go;
pub mod metrics;
pub mod pipeline;
pub mod shutdown;

pub use shutdown::Shutdown;
