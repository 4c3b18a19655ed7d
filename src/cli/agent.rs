//! The `agent` subcommand.

use std::ffi::OsString;

pub fn run(_args: Vec<OsString>) -> super::Result {
    Err("`agent` is not implemented yet".into())
}
