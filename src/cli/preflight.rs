//! The `preflight` subcommand.

use std::ffi::OsString;

pub fn run(_args: Vec<OsString>) -> super::Result {
    Err("`preflight` is not implemented yet".into())
}
