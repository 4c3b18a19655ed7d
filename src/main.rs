//! The entry point: parse the subcommand, run it, turn its result into an exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use woodpecker_k8s_agent::cli;

/// The static (musl) build allocates with mimalloc: musl's own allocator maps and unmaps page
/// groups as buffers come and go, and cost 0.83 against 0.46 us of CPU per log line in a paired
/// run (README, "Logs under load"). glibc builds keep glibc's.
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(target_env = "musl")]
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_arena_eager_commit` (mimalloc.h of v3, libmimalloc-sys 0.1.49 as Cargo.lock pins
/// it: check the enum when updating): on by default where the kernel overcommits,
/// it kept every page the agent ever touched resident (24 against 7 MiB for one busy step).
#[cfg(target_env = "musl")]
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

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
    // SAFETY: sets a plain integer option; mimalloc reads options lazily and allows this at
    // any time.
    #[cfg(target_env = "musl")]
    unsafe {
        mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0)
    };
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
