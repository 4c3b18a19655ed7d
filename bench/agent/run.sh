#!/usr/bin/env bash
# Agent-mode measurements: idle RSS, RSS with 20 workflows running, CPU time per step, and one
# step printing a million lines (CPU per line, peak RSS).
# bench/agent/main.rs (release) plays the Woodpecker server and a simulated cluster in one
# process; the agent under test runs in its own process and is measured from /proc:
#   kube: the shipped binary (`woodpecker-k8s-agent agent`) with the real Kubernetes backend
#         against the simulated cluster (scripted kubelet, no containers run);
#   fake: `agent-bench agent`, the same agent on the fake backend of tests/agent/fake.rs (no
#         Kubernetes client at all), to separate the agent's own cost.
# The driver process (server + sim) is not measured. Linux only. Usage: bash bench/agent/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --bins --example agent-bench >&2
BENCH=target/release/examples/agent-bench
AGENT=target/release/woodpecker-k8s-agent
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# CPU time in µs over every thread of the process (schedstat is in ns; /proc/PID/stat's ticks
# are 10 ms, too coarse here).
cpu_us() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%d", ns / 1000}'; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

# start MODE NAME WORKFLOWS STEPS LINES SLEEP_MS IDLE_MS MAX_WORKFLOWS: sets SPID, APID
start() {
  local mode=$1 name=$2 n=$3 steps=$4 lines=$5 sleep_ms=$6 idle_ms=$7 cap=$8
  "$BENCH" server "$n" "$steps" "$lines" "$sleep_ms" "$idle_ms" >"$TMP/$name.server" 2>"$TMP/$name.server.log" &
  SPID=$!
  while ! grep -q '^kubeconfig' "$TMP/$name.server" 2>/dev/null; do sleep 0.05; done
  local addr kc
  addr=$(awk '/^addr/ {print $2}' "$TMP/$name.server")
  kc=$(awk '/^kubeconfig/ {print $2}' "$TMP/$name.server")
  local cmd=("$BENCH" agent)
  [ "$mode" = kube ] && cmd=("$AGENT" agent)
  env -i PATH="$PATH" KUBECONFIG="$kc" WOODPECKER_SERVER="$addr" WOODPECKER_AGENT_SECRET=agent-s3cret \
    WOODPECKER_HEALTHCHECK=false WOODPECKER_MAX_WORKFLOWS="$cap" WOODPECKER_HOSTNAME="bench-$name" \
    WOODPECKER_AGENT_CONFIG_FILE="$TMP/$name.conf" WOODPECKER_LOG_LEVEL=warn \
    WOODPECKER_BACKEND_K8S_STORAGE_RWX=false \
    "${cmd[@]}" 2>"$TMP/$name.agent.log" &
  APID=$!
}

stop() {
  kill -TERM "$APID"; wait "$APID" || { echo "agent $1 failed:" >&2; tail -5 "$TMP/$1.agent.log" >&2; }
}

measure() {
  local mode=$1
  # 1. Idle: registered, polling, nothing to do.
  start "$mode" "idle-$mode" 1 1 1 10 3000 1
  sleep 2.5
  IDLE=$(rss_kb "$APID")
  wait "$SPID"; stop "idle-$mode"
  # 2. 20 workflows at once, each one step writing 20 lines over 6 s.
  start "$mode" "twenty-$mode" 20 1 20 6000 500 20
  while ! grep -q queued "$TMP/twenty-$mode.server"; do sleep 0.05; done
  sleep 4
  RSS20=$(rss_kb "$APID")
  wait "$SPID"; HWM20=$(hwm_kb "$APID"); stop "twenty-$mode"
  RUNNING=$(awk '/^done/ {print $4}' "$TMP/twenty-$mode.server")
  # 3. CPU per step: 40 workflows x 5 steps x 50 lines, 10 at a time, no pause between lines.
  start "$mode" "cpu-$mode" 40 5 50 0 300 10
  while ! grep -q queued "$TMP/cpu-$mode.server"; do sleep 0.01; done
  local t0 t1; t0=$(cpu_us "$APID")
  wait "$SPID"
  t1=$(cpu_us "$APID")
  stop "cpu-$mode"
  local steps=200 cpu_ms=$(( (t1 - t0) / 1000 ))
  WALL=$(awk '/^done/ {print $2}' "$TMP/cpu-$mode.server")
  echo "| $mode | $(mib "$IDLE") | $(mib "$RSS20") (peak $(mib "$HWM20"); $RUNNING at once) | $(( (t1 - t0) / steps )) µs ($cpu_ms ms / $steps steps, $WALL ms wall) |"
}

echo "| agent | idle RSS | RSS, 20 workflows running | CPU per step (50 lines) |"
echo "| --- | --- | --- | --- |"
measure kube
measure fake

# 4. One step printing a million lines at full speed (kube only: the fake backend echoes its
#    commands): agent CPU per line and peak RSS, the cost of the log path and the reporter's
#    queue (which makes the step's log reader wait past its backlog instead of growing).
big_log() {
  local lines=1000000 t0 t1 hwm
  start kube big-kube 1 1 "$lines" 0 300 1
  while ! grep -q queued "$TMP/big-kube.server"; do sleep 0.01; done
  t0=$(cpu_us "$APID")
  wait "$SPID"
  t1=$(cpu_us "$APID")
  hwm=$(hwm_kb "$APID")
  stop big-kube
  echo
  echo "One step printing $lines lines at full speed (kube): $(awk -v c=$((t1 - t0)) -v l=$lines 'BEGIN { printf "%.2f", c / l }') µs of agent CPU a line ($(( (t1 - t0) / 1000 )) ms), peak RSS $(mib "$hwm"), $(awk '/^done/ {print $2}' "$TMP/big-kube.server") ms wall"
}
big_log
