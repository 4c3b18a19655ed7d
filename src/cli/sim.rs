//! The `sim` subcommand: runs the simulated cluster standalone (host runner by default) and
//! prints the path of its kubeconfig, then serves until Ctrl-C / SIGTERM.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use sim::{RunnerKind, Sim, SimConfig};

const USAGE: &str = "\
Usage: woodpecker-k8s-agent sim [--dir D] [--http] [--port P] [--runner host|scripted] [--tick MS]

Runs a simulated Kubernetes cluster (apiserver + one kubelet) on 127.0.0.1 and prints the
path of a kubeconfig for it. With the host runner (the default) each container's command runs
as a process on this machine, in its own mount namespace.

Options:
  --dir D          where to keep the kubeconfig, certificates and volumes (default: a temp dir)
  --http           serve plain HTTP instead of HTTPS
  --port P         listen on 127.0.0.1:P (default: a free port)
  --runner R       host (default) or scripted (no processes; every container exits 0)
  --tick MS        the kubelet's pace between lifecycle steps (default 50)
";

pub fn run(args: Vec<OsString>) -> super::Result {
    use lexopt::prelude::*;
    let mut cfg = SimConfig {
        runner: RunnerKind::Host,
        tick: std::time::Duration::from_millis(50),
        // Woodpecker's service pods run until deleted.
        run_until_deleted_label: Some(crate::backend::labels::SERVICE.into()),
        ..SimConfig::default()
    };
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("dir") => cfg.dir = Some(PathBuf::from(parser.value()?)),
            Long("http") => cfg.tls = false,
            Long("port") => cfg.port = parser.value()?.string()?.parse().map_err(|e| format!("--port: {e}"))?,
            Long("tick") => {
                let ms: u64 = parser
                    .value()?
                    .string()?
                    .parse()
                    .map_err(|e| format!("--tick: {e} (milliseconds)"))?;
                cfg.tick = std::time::Duration::from_millis(ms);
            }
            Long("runner") => {
                cfg.runner = match parser.value()?.string()?.as_str() {
                    "host" => RunnerKind::Host,
                    "scripted" => RunnerKind::Scripted,
                    other => return Err(format!("--runner: unknown runner {other:?} (host or scripted)").into()),
                }
            }
            Long("help") | Short('h') => {
                print!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    super::runtime()?.block_on(async move {
        if cfg.runner == RunnerKind::Host {
            eprintln!(
                "warning: the host runner runs each container's command on THIS machine (no images; only a private mount namespace)"
            );
        }
        // Before the kubeconfig path is printed: whoever reads it may signal us at once.
        let mut signals = crate::shutdown::Signals::install()?;
        let sim = Sim::start(cfg.clone()).await?;
        eprintln!("simulated cluster at {}", sim.url());
        println!("{}", sim.kubeconfig_path().display());
        signals.next().await;
        sim.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
