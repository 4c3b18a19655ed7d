//! The Woodpecker agent <-> server gRPC protocol (version 16): registration, polling for
//! workflows, reporting state and logs, health and metrics. Runs workflows with
//! `crate::pipeline`'s runtime on `crate::backend`.
//!
//! Layers, bottom up: [`proto`] (hand-derived prost messages of `proto/woodpecker.proto`),
//! [`grpc`] + [`tls`] (unary gRPC over hyper's HTTP/2 client), [`client`] (Woodpecker's RPCs:
//! token, metadata, retries), [`reporter`] + [`tracer`] (step updates and log batches, in
//! order; lines arrive masked from the runtime), [`workflow`] (one workflow: Wait, Extend,
//! Init, run, Done), [`daemon`] (startup, slots, drain), with [`config`], [`health`] and
//! [`metrics`] beside them, and [`lease`] (the agent's Lease: one live process per identity) with
//! [`idstore`] (where the agent id is kept). Its own
//! lines go to the process log (`crate::log`).

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod grpc;
pub(crate) mod health;
pub(crate) mod idstore;
pub(crate) mod lease;
pub(crate) use crate::metrics;
pub mod proto;
pub(crate) mod reporter;
pub(crate) mod runtime;
pub(crate) mod tls;
pub(crate) mod tracer;
pub(crate) mod values;
pub(crate) mod vars;
pub(crate) mod workflow;

pub use config::AgentConfig;
pub use daemon::{Agent, DaemonError};
pub use lease::{LeaseOptions, acquire as acquire_lease};
pub use runtime::PipelineRunner;
pub use workflow::{WorkflowEnd, WorkflowRunner};
