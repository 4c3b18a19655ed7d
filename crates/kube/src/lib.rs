//! The generic Kubernetes client. Knows nothing of Woodpecker.
//!
//! - [`config`]: where the connection comes from: kubeconfig files (merged as kubectl merges
//!   them), the in-cluster service account, exec credential plugins. One source per file.
//! - [`auth`]: credentials at run time: static tokens, re-read token files, cached exec plugin
//!   output, basic auth.
//! - [`client`]: HTTPS transport (hyper + rustls/ring), retries, timeouts; with
//!   `tls` (rustls setup) and `connector` (TCP, CONNECT proxy) beside it, and `h1`, the
//!   hyper-less HTTP/1.1 GET that log streams use, each on a connection of its own.
//! - [`retry`]: when to retry and how long to wait. [`params`]: query strings and bodies.
//! - [`decode`]: incremental line splitters for watch and log bodies.
//! - [`error`]: the typed error every call returns, built from the apiserver's `Status`.
//! - [`api`]: create/get/list/delete for the resources we use.
//! - [`watch`]: resumable watch streams over chunked HTTP, with relist on 410.
//! - [`logs`]: lossless container log streams that resume after a drop.
//! - [`types`]: hand-written serde types for the objects and the fields we use.

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
mod connector;
pub mod decode;
pub mod error;
mod h1;
pub mod logs;
pub mod params;
pub mod retry;
pub mod secret;
pub mod time;
pub mod tls;
pub mod types;
pub mod watch;

pub use api::Api;
pub use client::{Client, ClientOptions, Stats};
pub use config::Config;
pub use error::Error;
pub use params::{DeleteParams, ListParams, LogParams, WatchParams};
pub use secret::Secret;
