//! The `exec` subcommand.

use std::ffi::OsString;

pub fn run(_args: Vec<OsString>) -> super::Result {
    Err("`exec` is not implemented yet".into())
}
