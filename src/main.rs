//! The entry point: parse the subcommand, run it, turn its result into an exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use woodpecker_k8s_agent::cli;

const USAGE: &str = "\
woodpecker-k8s-agent: run Woodpecker CI steps as Kubernetes pods

Usage: woodpecker-k8s-agent <COMMAND> [OPTIONS]

Commands:
  agent        connect to a Woodpecker server and run its workflows (the default)
  exec         run a local pipeline file on a cluster (or --embedded on the simulated one)
  render       print the Kubernetes objects the backend would create for a workflow
  kubeconfig   print what the agent will connect to, resolved as kubectl does
  preflight    check that the cluster, namespace, RBAC and storage are ready
  sim          run the simulated cluster and print its kubeconfig path
  version      print the version

Run `woodpecker-k8s-agent <COMMAND> --help` for the options of one command.
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();
    let result = match command.as_ref().and_then(|c| c.to_str()) {
        None | Some("agent") => cli::agent::run(rest),
        Some("exec") => cli::exec::run(rest),
        Some("render") => cli::render::run(rest),
        Some("kubeconfig") => cli::kubeconfig::run(rest),
        Some("preflight") => cli::preflight::run(rest),
        #[cfg(feature = "sim")]
        Some("sim") => cli::sim::run(rest),
        Some("version" | "--version" | "-V") => {
            println!("woodpecker-k8s-agent {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!("unknown command `{other}`; see `woodpecker-k8s-agent --help`").into()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            cli::report_error(err.as_ref());
            ExitCode::from(2)
        }
    }
}
