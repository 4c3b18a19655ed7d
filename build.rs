//! Link option of the shipped static binary (x86_64 musl, `scripts/build-static.sh`): its
//! relative relocations are stored packed (`-z pack-relative-relocs`, DT_RELR) instead of as
//! 24-byte RELA entries, about 140 KB of the binary. It stays a static PIE: musl's start-up
//! code applies RELR since musl 1.2.4, and Rust's musl targets ship musl 1.2.5 from Rust 1.93
//! (rust-lang/rust#142682; 1.2.3 before). An older toolchain would link a binary that crashes
//! at start, so it gets the plain relocations. Only the verified target gets it; aarch64 has
//! not been run with it.

use std::process::Command;

/// The first Rust release whose musl targets ship musl 1.2.5.
const RELR_MINOR: u32 = 93;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && rustc_minor(&var("RUSTC")).is_some_and(|minor| minor >= RELR_MINOR)
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The minor version of `rustc --version` ("rustc 1.95.0 (...)" gives 95).
fn rustc_minor(rustc: &str) -> Option<u32> {
    let rustc = if rustc.is_empty() { "rustc" } else { rustc };
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split(['.', '-']);
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
