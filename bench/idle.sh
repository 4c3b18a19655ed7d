#!/usr/bin/env bash
# Idle RSS of the agent: started against a simulated cluster (preflight and the start-up sweep
# done), with a "server" that accepts the connection and never answers, so no work arrives.
# Prints `<RSS KiB> <peak RSS KiB>` after SECS seconds.
#
# Usage: bench/idle.sh AGENT SIM [SECS]
set -euo pipefail
agent=$1 sim=$2 secs=${3:-5}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

"$sim" sim --dir "$work/sim" >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
# A listener on 127.0.0.1 that accepts and stays silent.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
s.settimeout(0.2)
end = time.time() + 600
while time.time() < end:
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass
' >"$work/port" &
pids+=($!)
for _ in $(seq 100); do
    grep -q "kubeconfig$" "$work/sim.out" 2>/dev/null && [ -s "$work/port" ] && break
    sleep 0.1
done

KUBECONFIG=$(tail -1 "$work/sim.out") \
WOODPECKER_SERVER="127.0.0.1:$(cat "$work/port")" \
WOODPECKER_AGENT_SECRET=bench-secret \
WOODPECKER_HEALTHCHECK=false \
WOODPECKER_AGENT_CONFIG_FILE="$work/agent.conf" \
WOODPECKER_HOSTNAME=bench \
WOODPECKER_BACKEND_K8S_STORAGE_RWX=false \
    "$agent" agent >"$work/agent.out" 2>"$work/agent.err" &
agentpid=$!
pids+=("$agentpid")
sleep "$secs"
if ! kill -0 "$agentpid" 2>/dev/null; then
    echo "the agent exited:" >&2
    tail -n 20 "$work/agent.err" >&2
    exit 1
fi
echo "$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$agentpid/status") $(awk '$1 == "VmHWM:" { print $2 }' "/proc/$agentpid/status")"
if [ -n "${BENCH_VERBOSE:-}" ]; then tail -n 5 "$work/agent.err" >&2; fi
