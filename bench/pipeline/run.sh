#!/usr/bin/env bash
# bench/pipeline/run.sh: what running a pipeline costs the agent, against what the simulated
# cluster costs in the same run. The sim runs as its own process (`sim --runner scripted`, a
# fresh one per run), so the two costs separate; `exec` runs fifty.yaml (50 steps,
# --parallelism 10) against it over TLS, through the real client, watch and log streams.
#
# Prints per run: wall time, exec's CPU time (user+sys) and peak RSS, the sim's CPU time and
# peak RSS over the same run, and the ratio exec CPU / sim CPU.
#
#   bash bench/pipeline/run.sh            # builds target/release if needed
#   BIN=path/to/binary RUNS=5 bash bench/pipeline/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/woodpecker-k8s-agent}
RUNS=${RUNS:-3}
PIPELINE=bench/pipeline/fifty.yaml
if [ ! -x "$BIN" ]; then cargo build --release; fi
if [ ! -x /usr/bin/time ]; then echo "bench needs GNU time: apt-get install time" >&2; exit 1; fi
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
SIM=
stop_sim() {
  if [ -n "$SIM" ]; then kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; SIM=; fi
}
trap 'stop_sim; rm -rf "$WORK"' EXIT

start_sim() {
  : >"$WORK/sim.out"
  "$BIN" sim --runner scripted >"$WORK/sim.out" 2>"$WORK/sim.err" &
  SIM=$!
  KUBECONFIG_PATH=
  for _ in $(seq 1 100); do
    KUBECONFIG_PATH=$(head -n1 "$WORK/sim.out" 2>/dev/null || true)
    if [ -n "$KUBECONFIG_PATH" ] && [ -f "$KUBECONFIG_PATH" ]; then return 0; fi
    sleep 0.1
  done
  echo "the sim did not print its kubeconfig path:" >&2; cat "$WORK/sim.err" >&2; exit 1
}
sim_cpu() { awk '{print $14 + $15}' "/proc/$SIM/stat"; }
sim_hwm() { awk '/VmHWM/ {print $2}' "/proc/$SIM/status"; }

printf '%-4s %8s %10s %11s %10s %10s %8s\n' run wall_s exec_cpu_s exec_rss_kb sim_cpu_s sim_rss_kb ratio
for run in $(seq 1 "$RUNS"); do
  start_sim
  before=$(sim_cpu)
  # The sim's local-path storage offers ReadWriteOnce only (as kind and k3s do).
  WOODPECKER_BACKEND_K8S_STORAGE_RWX=false /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
    "$BIN" exec --kubeconfig "$KUBECONFIG_PATH" --parallelism 10 "$PIPELINE" >"$WORK/exec.log" 2>&1 || {
      echo "exec failed:" >&2; tail -n 30 "$WORK/exec.log" >&2; exit 1; }
  after=$(sim_cpu)
  hwm=$(sim_hwm)
  stop_sim
  read -r wall user sys rss <"$WORK/time"
  awk -v r="$run" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v b="$before" -v a="$after" \
      -v t="$TICK" -v h="$hwm" 'BEGIN {
        ec = u + s; sc = (a - b) / t;
        printf "%-4s %8.2f %10.2f %11d %10.2f %10d %8.2f\n", r, w, ec, m, sc, h, (sc > 0 ? ec / sc : 0) }'
  ok=$(grep -c '^step-.*success' "$WORK/exec.log" || true)
  if [ "$ok" != 50 ]; then echo "only $ok of 50 steps succeeded" >&2; tail -n 20 "$WORK/exec.log" >&2; exit 1; fi
done
echo "(CPU times are user+sys; GNU time and /proc count in 10 ms ticks)"
