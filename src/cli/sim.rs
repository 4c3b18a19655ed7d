//! The `sim` subcommand.

use std::ffi::OsString;

pub fn run(_args: Vec<OsString>) -> super::Result {
    Err("`sim` is not implemented yet".into())
}
