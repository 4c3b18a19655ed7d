#!/usr/bin/env bash
# Fetches what the cgroup v2 test (tests/sim/cgroup2.rs) boots: QEMU and a static busybox from
# Debian's packages, and a Debian cloud kernel unpacked (not installed) into target/vm-kernel/.
# The build machines keep the memory controller in a cgroup v1 hierarchy of their own, so the
# only way to see the kernel enforce `memory.max` here is a small VM with cgroup v2 alone.
# Prints the kernel's path on stdout; progress goes to stderr. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "vm-kernel: $*" >&2; }
apt_install() {
    log "installing $* (apt-get)"
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

command -v qemu-system-x86_64 >/dev/null 2>&1 || apt_install qemu-system-x86
# The static busybox (the VM has no libc for a dynamic one).
dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static

dir=target/vm-kernel
kernel=$(ls "$dir"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
if [ -z "$kernel" ]; then
    [ -n "${APT_UPDATED:-}" ] || { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; APT_UPDATED=1; }
    # The metapackage names the current versioned image; download that and unpack it.
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
    [ -n "$pkg" ] || { log "no linux-image-cloud-amd64 in the apt lists"; exit 1; }
    tmp=$(mktemp -d)
    log "downloading $pkg (apt-get download) into $dir"
    (cd "$tmp" && apt-get download -q "$pkg" >&2 2>/dev/null || apt-get download "$pkg" >&2)
    mkdir -p "$dir"
    dpkg-deb -x "$tmp"/*.deb "$dir"
    rm -rf "$tmp"
    kernel=$(ls "$dir"/boot/vmlinuz-* | head -n 1)
fi
echo "$kernel"
