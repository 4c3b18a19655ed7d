#!/usr/bin/env bash
# RSS and CPU of the agent while STEPS steps run at once, each printing LINES log lines, on a
# simulated cluster running in its own process (host runner: the steps are real processes).
# Prints: `<peak RSS KiB> <user+sys CPU s> <wall s> <log lines seen> <log lines expected>`.
#
# Usage: bench/stream.sh AGENT SIM [STEPS] [LINES]
#   AGENT  the binary that runs the pipeline (`exec --kubeconfig`): the static agent
#   SIM    a binary with the simulated cluster (default features)
set -euo pipefail
agent=$1 sim=$2 steps=${3:-50} lines=${4:-2000}
work=$(mktemp -d)
trap 'kill "$simpid" 2>/dev/null; wait "$simpid" 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=bench/sim-process.sh
source "$(dirname "$0")/sim-process.sh"
start_sim "$sim" "$work"

{
    echo "skip_clone: true"
    echo "steps:"
    for i in $(seq "$steps"); do
        echo "  s$i:"
        echo "    image: docker.io/library/busybox:1.36"
        echo "    depends_on: []"
        echo "    commands:"
        # About 100 bytes a line, paced so the steps overlap and stream together.
        echo "      - 'i=0; while [ \$i -lt $lines ]; do i=\$((i+1)); echo \"step $i line \$i of $lines: the quick brown fox jumps over the lazy dog 0123456789\"; [ \$((i % 200)) -eq 0 ] && sleep 0.05; done; true'"
    done
} >"$work/stream.yaml"

# The sim's storage is k3s-like (local-path: ReadWriteOnce only).
WOODPECKER_BACKEND_K8S_STORAGE_RWX=false /usr/bin/time -f '%M %U %S %e' -o "$work/time" \
    timeout 300 "$agent" exec --kubeconfig "$kubeconfig" "$work/stream.yaml" >"$work/out" 2>"$work/err" || {
    echo "exec failed:" >&2
    tail -n 20 "$work/err" >&2; tail -n 20 "$work/out" >&2
    exit 1
}
read -r rss user sys wall <"$work/time"
seen=$(grep -c "line [0-9]* of $lines" "$work/out" || true)
awk -v r="$rss" -v u="$user" -v s="$sys" -v w="$wall" -v seen="$seen" -v want=$((steps * lines)) \
    'BEGIN { printf "%d %.2f %.2f %d %d\n", r, u + s, w, seen, want }'
