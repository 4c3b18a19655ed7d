//! The `kubeconfig` subcommand.

use std::ffi::OsString;

pub fn run(_args: Vec<OsString>) -> super::Result {
    Err("`kubeconfig` is not implemented yet".into())
}
