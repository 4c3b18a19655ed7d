//! Where `exec` runs: the cluster the kubeconfig (or the in-cluster config) names, or the
//! embedded simulated cluster. Builds the Kubernetes backend over the real client and hands
//! it to [`super::execute`]; the backend's own watches stop only after the run (and its
//! cleanup) is over, so a cancel can still delete everything.

use std::sync::Arc;

use super::{Args, Planned, Printer, execute};
use crate::backend::lifecycle::{Kube, KubeBackend, Settings};
use crate::backend::options::Options;
use crate::kube::Client;
use crate::kube::config::{Config, Overrides};
use crate::pipeline::ulid;
use crate::shutdown::{self, Shutdown};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs on the cluster resolved as kubectl does (`--kubeconfig`, `--context`, `$KUBECONFIG`,
/// `~/.kube/config`, in-cluster).
pub async fn on_cluster(
    args: &Args,
    plan: Vec<Planned>,
    printer: Arc<Printer>,
    cancel: Shutdown,
) -> Result<bool, BoxError> {
    let overrides = Overrides {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone(),
    };
    let config = Config::infer(&overrides)?;
    with_config(config, false, args, plan, printer, cancel).await
}

/// Runs on the cluster `config` points at. `single_node`: the cluster's storage offers only
/// ReadWriteOnce volumes (the simulated cluster's `local-path`, like kind's and k3s's), so
/// the workspace claim asks for that instead of Woodpecker's ReadWriteMany default.
pub async fn with_config(
    config: Config,
    single_node: bool,
    args: &Args,
    plan: Vec<Planned>,
    printer: Arc<Printer>,
    cancel: Shutdown,
) -> Result<bool, BoxError> {
    let env = |k: &str| std::env::var(k).ok();
    let mut opts = Options::from_lookup(env)?;
    if let Some(ns) = &args.namespace {
        opts.namespace = ns.clone();
    }
    if single_node {
        opts.storage_rwx = false;
    }
    // A fresh agent id per run: it labels every object, and no other run sweeps them.
    let agent = format!("exec-{}", ulid::new().to_lowercase());
    let mut settings = Settings::from_lookup(&agent, env)?;
    settings.workflow_timeout_secs = Some(args.timeout.as_secs() as i64);
    let client = Client::new(config)?;
    let (stop, backend_shutdown) = shutdown::channel();
    let backend = Arc::new(KubeBackend::new(Kube::new(client), opts, settings, backend_shutdown));
    let ok = execute(backend, plan, args, printer, cancel).await;
    stop.fire();
    Ok(ok)
}
