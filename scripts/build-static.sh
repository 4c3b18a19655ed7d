#!/usr/bin/env bash
# Builds the shipped agent as a fully static musl binary: release profile (size-tuned, see
# Cargo.toml), `--no-default-features` (no simulated cluster). Installs what it needs when missing:
# the Rust target with rustup, and the C compiler ring's C/asm needs with apt-get.
#
# Usage: bash scripts/build-static.sh [x86_64|aarch64|all]     (default: x86_64)
# Prints the path of each binary it built on stdout; progress goes to stderr.
#
# x86_64: Debian's musl-tools gives `x86_64-linux-musl-gcc`, which cc-rs finds by itself.
# aarch64: Debian has no aarch64 musl cross compiler, but ring only compiles freestanding C and
# assembly, and Rust's musl target links its own self-contained musl (crt objects and libc.a),
# so the glibc cross gcc (`gcc-aarch64-linux-gnu`) serves as both ring's compiler and the linker
# driver. See the README, "Shipping", for what was verified.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "build-static: $*" >&2; }

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get is missing: install $* with your package manager"
        exit 1
    fi
    log "installing $* (apt-get)"
    # apt-cache needs a fresh list on a new machine; update once per run.
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_target() {
    if ! rustup target list --installed | grep -qx "$1"; then
        log "adding the Rust target $1 (rustup)"
        rustup target add "$1" >&2
    fi
}

# Fails unless the file is a static ELF: no PT_INTERP program header, no dynamic section
# with NEEDED entries.
check_static() {
    local bin=$1
    if readelf -lW "$bin" | grep -q 'INTERP'; then
        log "$bin has a PT_INTERP header: it is dynamically linked"
        exit 1
    fi
    if readelf -dW "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
        log "$bin needs shared libraries: $(readelf -dW "$bin" | grep NEEDED | tr -s ' ')"
        exit 1
    fi
}

build() {
    local target=$1
    ensure_target "$target"
    case "$target" in
        x86_64-unknown-linux-musl)
            command -v x86_64-linux-musl-gcc >/dev/null 2>&1 || apt_install musl-tools
            ;;
        aarch64-unknown-linux-musl)
            command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || apt_install gcc-aarch64-linux-gnu
            export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
            export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
            export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
            ;;
        *)
            log "unknown target $target"
            exit 2
            ;;
    esac
    log "cargo build --release --no-default-features --target $target"
    cargo build --release --no-default-features --target "$target" >&2
    local bin="target/$target/release/woodpecker-k8s-agent"
    check_static "$bin"
    log "$bin: $(stat -c %s "$bin") bytes, static"
    echo "$bin"
}

case "${1:-x86_64}" in
    x86_64) build x86_64-unknown-linux-musl ;;
    aarch64) build aarch64-unknown-linux-musl ;;
    all)
        build x86_64-unknown-linux-musl
        build aarch64-unknown-linux-musl
        ;;
    *)
        echo "usage: $0 [x86_64|aarch64|all]" >&2
        exit 2
        ;;
esac
