#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need beyond the Rust
# toolchain (kubernetes-validate from PyPI; the musl target and musl-tools through
# scripts/build-static.sh; QEMU, busybox-static and a kernel for the cgroup v2 VM through
# scripts/vm-kernel.sh; kubectl comes with the machine image), then runs every test.
# Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "installing kubernetes-validate (PyPI) for the schema tests" >&2
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
if ! command -v kubectl >/dev/null 2>&1; then
    echo "warning: kubectl is not installed; the kubectl tests will fail and say so" >&2
fi

# The static musl build (installs the musl target and musl-tools when missing). The deploy test
# runs the same script and checks the binary; building it here first keeps that release build
# from competing for the 2 cores with the timing-sensitive tests running beside it.
bash scripts/build-static.sh x86_64 >/dev/null
# QEMU, a static busybox and a Debian cloud kernel for the cgroup v2 test (tests/sim/cgroup2.rs).
bash scripts/vm-kernel.sh >/dev/null

cargo test --workspace --all-targets "$@"
