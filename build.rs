//! Link option of the shipped static binary (x86_64 musl, `scripts/build-static.sh`): its
//! relative relocations are stored packed (`-z pack-relative-relocs`, DT_RELR) instead of as
//! 24-byte RELA entries. The binary stays a static PIE; musl's start-up code applies RELR
//! (musl 1.2.4 and later; Rust's musl targets ship 1.2.5). That is about 140 KB of the
//! binary. Only the verified target gets it; aarch64 has not been run with it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
