//! Where `exec` runs: the cluster the kubeconfig (or the in-cluster config) names, or the
//! embedded simulated cluster. Builds the Kubernetes backend over the real client and hands
//! it to [`super::execute`]; the backend's own watches stop only after the run (and its
//! cleanup) is over, so a cancel can still delete everything.

use std::sync::Arc;

use super::{ExecArgs, Planned, Printer, execute};
use crate::backend::lifecycle::{KubeBackend, KubeIo, LifecycleSettings};
use crate::backend::options::Options;
use crate::pipeline::ulid;
use crate::shutdown::{self, Shutdown};
use kube::Client;
use kube::config::{Config, Overrides};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs on the cluster resolved as kubectl does (`--kubeconfig`, `--context`, `$KUBECONFIG`,
/// `~/.kube/config`, in-cluster).
pub async fn on_cluster(
    args: &ExecArgs,
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

/// The backend options: Woodpecker's `WOODPECKER_BACKEND_K8S_*` variables, then our flags.
pub fn backend_options(args: &ExecArgs, single_node: bool) -> Result<Options, BoxError> {
    let mut opts = Options::from_lookup(|k| std::env::var(k).ok())?;
    if let Some(ns) = &args.namespace {
        opts.namespace = ns.clone();
    }
    if single_node {
        opts.storage_rwx = false;
    }
    Ok(opts)
}

/// Runs on the cluster `config` points at. `single_node`: the cluster's storage offers only
/// ReadWriteOnce volumes (the simulated cluster's `local-path`, like kind's and k3s's), so
/// the workspace claim asks for that instead of Woodpecker's ReadWriteMany default.
pub async fn with_config(
    config: Config,
    single_node: bool,
    args: &ExecArgs,
    plan: Vec<Planned>,
    printer: Arc<Printer>,
    cancel: Shutdown,
) -> Result<bool, BoxError> {
    let env = |k: &str| std::env::var(k).ok();
    let opts = backend_options(args, single_node)?;
    // A fresh agent id per run: it labels every object, and no other run sweeps them.
    let agent = format!("exec-{}", ulid::new().to_lowercase());
    let mut settings = LifecycleSettings::from_lookup(&agent, env)?;
    settings.workflow_timeout_secs = Some(args.timeout.as_secs() as i64);
    let client = Client::new(config)?;
    let (stop, backend_shutdown) = shutdown::channel();
    let kube = KubeIo::new(client.clone());
    let lease = super::lease::hold(&kube, &opts, &agent, backend_shutdown.clone()).await;
    let backend = Arc::new(KubeBackend::new(kube, opts, settings, backend_shutdown));
    let ok = execute(backend, plan, args, printer, cancel).await;
    stop.fire();
    if let Some(lease) = lease {
        lease.release().await;
    }
    Ok(ok)
}

/// Copies the checkout's tracked files (`git ls-files`) into the workspace claim of every
/// workflow without a clone step, on the simulated cluster, so steps start with the sources
/// as after a clone. Returns how many files were copied per workflow; none when `repo` is not a
/// git checkout.
#[cfg(feature = "sim")]
pub fn seed_workspaces(
    sim: &sim::Sim,
    namespace: &str,
    plan: &[Planned],
    repo: &std::path::Path,
) -> std::io::Result<usize> {
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["ls-files", "-z"])
        .output();
    let Ok(out) = out.map(|o| if o.status.success() { o.stdout } else { Vec::new() }) else {
        return Ok(0);
    };
    let files: Vec<&std::path::Path> = out
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| std::path::Path::new(std::ffi::OsStr::from_bytes(f)))
        .collect();
    let mut copied = 0;
    for conf in plan.iter().filter_map(|p| p.compiled.as_ref()).map(|c| &c.config) {
        let steps: Vec<_> = conf.stages.iter().flat_map(|s| &s.steps).collect();
        let (Some(first), false) = (steps.first(), steps.iter().any(|s| s.type_ == "clone")) else {
            continue;
        };
        let Ok(claim) = crate::backend::names::volume_claim_name(&conf.volume) else {
            continue;
        };
        let workspace = first.environment.get("CI_WORKSPACE").cloned().unwrap_or_default();
        let rel = workspace
            .strip_prefix(&first.workspace_base)
            .unwrap_or("")
            .trim_start_matches('/');
        let dest = sim.claim_dir(namespace, &claim).join(rel);
        copied = 0;
        for f in &files {
            let src = repo.join(f);
            if !src.is_file() {
                continue;
            }
            let dst = dest.join(f);
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(&src, &dst)?;
            copied += 1;
        }
    }
    Ok(copied)
}
