//! One file per subcommand. Each `run(args)` parses its own flags (lexopt), does its work and
//! returns the process exit code; errors bubble up to `main`, which prints their chain.

use std::error::Error as StdError;

pub mod agent;
pub mod exec;
pub mod kubeconfig;
pub mod preflight;
pub mod render;
#[cfg(feature = "sim")]
pub mod sim;

/// What every subcommand returns.
pub type Result = std::result::Result<std::process::ExitCode, Box<dyn StdError + Send + Sync>>;

/// Prints an error and each of its causes, one per line (`error: ...`, `  caused by: ...`).
pub fn report_error(err: &(dyn StdError + 'static)) {
    for (i, e) in crate::error_chain::causes(err).enumerate() {
        if i == 0 {
            eprintln!("error: {e}");
        } else {
            eprintln!("  caused by: {e}");
        }
    }
}

/// The runtime every async subcommand runs on. One thread is plenty for an agent that mostly
/// waits on sockets, and keeps idle memory low.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}
