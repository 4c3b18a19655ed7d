//! The Woodpecker agent <-> server gRPC protocol (version 16): registration, polling for
//! workflows, reporting state and logs, health and metrics. Runs workflows with
//! `crate::pipeline`'s runtime on `crate::backend`.
//!
//! Layers, bottom up: [`proto`] (hand-derived prost messages of `proto/woodpecker.proto`),
//! [`grpc`] + [`tls`] (unary gRPC over hyper's HTTP/2 client), [`client`] (Woodpecker's RPCs:
//! token, metadata, retries), [`reporter`] + [`tracer`] + [`mask`] (step updates and masked log
//! batches, in order), [`workflow`] (one workflow: Wait, Extend, Init, run, Done), [`daemon`]
//! (startup, slots, drain), with [`config`], [`health`], [`metrics`] and [`log`] beside them.

pub mod client;
pub mod config;
pub mod daemon;
pub mod grpc;
pub mod health;
pub mod log;
pub mod mask;
pub use crate::metrics;
pub mod proto;
pub mod reporter;
pub mod runtime;
pub mod tls;
pub mod tracer;
pub mod values;
pub mod workflow;

pub use daemon::{Agent, Error};
pub use runtime::PipelineRunner;
pub use workflow::{Outcome, WorkflowRunner};
