//! The Woodpecker agent <-> server gRPC protocol (version 16): registration, polling for
//! workflows, reporting state and logs, health and metrics. Runs workflows with
//! `crate::pipeline`'s runtime on `crate::backend`.
