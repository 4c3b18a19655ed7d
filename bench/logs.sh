#!/usr/bin/env bash
# The agent's log path under load: STEPS steps of one workflow at once, each printing LINES
# numbered lines at full speed (`seq`), run by `exec` (AGENT, the shipped static binary)
# against the simulated cluster in its own process (SIM `sim`, host runner: the steps are real
# processes). exec's output is checked as it comes (no file): per step, every line number
# exactly once and in order.
# Prints: `<peak RSS KiB> <user+sys CPU s> <wall s> <lines seen> <lost> <duplicated> <exit>`.
#
# Usage: bench/logs.sh AGENT SIM [STEPS] [LINES]
set -euo pipefail
agent=$1 sim=$2 steps=${3:-100} lines=${4:-100000}
work=$(mktemp -d)
simpid=""
trap '[ -n "$simpid" ] && kill "$simpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT

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
        # About 70 bytes a line.
        echo "      - \"seq -f 's$i line %.0f of $lines, the quick brown fox jumps over the dog' 1 $lines\""
    done
} >"$work/logs.yaml"

# Per step, the next expected number; a smaller one is a repeat, a larger one a gap.
check='
/^\[s[0-9]+\] s[0-9]+ line [0-9]+ of / {
    s = $2; n = $4 + 0; seen++
    if (n == next_[s] + 1) { next_[s] = n }
    else if (n <= next_[s]) { dup++ }
    else { lost += n - next_[s] - 1; next_[s] = n }
}
END {
    for (i = 1; i <= steps; i++) { s = "s" i; if (next_[s] < want) lost += want - next_[s] }
    printf "%d %d %d\n", seen, lost, dup
}'

set +e
WOODPECKER_BACKEND_K8S_STORAGE_RWX=false /usr/bin/time -f '%M %U %S %e' -o "$work/time" \
    timeout 900 "$agent" exec --kubeconfig "$kubeconfig" --parallelism "$steps" "$work/logs.yaml" \
    2>"$work/err" | awk -v steps="$steps" -v want="$lines" "$check" >"$work/check"
status=${PIPESTATUS[0]}
set -e
if [ ! -s "$work/time" ]; then
    echo "exec did not run:" >&2
    tail -n 20 "$work/err" >&2
    exit 1
fi
[ "$status" = 0 ] || { echo "exec exited $status:" >&2; tail -n 5 "$work/err" >&2; }
read -r rss user sys wall <"$work/time"
read -r seen lost dup <"$work/check"
awk -v r="$rss" -v u="$user" -v s="$sys" -v w="$wall" -v seen="$seen" -v lost="$lost" -v dup="$dup" -v st="$status" \
    'BEGIN { printf "%d %.2f %.2f %d %d %d %d\n", r, u + s, w, seen, lost, dup, st }'
