#!/usr/bin/env bash
# Agent-mode measurements: idle RSS, RSS with 20 workflows running, CPU time per step.
# Runs bench/agent/main.rs (release): a Woodpecker server process and an agent process on the
# fake backend (no cluster), so the numbers are the agent's own (gRPC, runtime, log reporter),
# not the Kubernetes client's. Linux only (/proc). Usage: bash bench/agent/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --example agent-bench >&2
BIN=target/release/examples/agent-bench
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# run_case NAME WORKFLOWS STEPS LINES SLEEP_MS IDLE_MS MAX_WORKFLOWS
run_case() {
  local name=$1 n=$2 steps=$3 lines=$4 sleep_ms=$5 idle_ms=$6 cap=$7
  "$BIN" server "$n" "$steps" "$lines" "$sleep_ms" "$idle_ms" >"$TMP/$name.server" &
  local spid=$!
  while ! grep -q '^addr' "$TMP/$name.server" 2>/dev/null; do sleep 0.05; done
  local addr; addr=$(awk '/^addr/ {print $2}' "$TMP/$name.server")
  WOODPECKER_SERVER=$addr WOODPECKER_AGENT_SECRET=agent-s3cret WOODPECKER_HEALTHCHECK=false \
    WOODPECKER_MAX_WORKFLOWS=$cap WOODPECKER_AGENT_CONFIG_FILE="$TMP/$name.conf" WOODPECKER_LOG_LEVEL=warn \
    "$BIN" agent 2>"$TMP/$name.agent.log" &
  APID=$!
  SPID=$spid
}

# 1. Idle: registered, polling, nothing to do.
run_case idle 1 1 1 10 3000 1
sleep 2
IDLE=$(rss_kb "$APID")
wait "$SPID"; kill -TERM "$APID"; wait "$APID" || true

# 2. 20 workflows at once, each one step sleeping 4 s after 20 lines.
run_case twenty 20 1 20 4000 500 20
while ! grep -q queued "$TMP/twenty.server"; do sleep 0.05; done
sleep 2
RSS20=$(rss_kb "$APID")
wait "$SPID"; HWM20=$(hwm_kb "$APID"); kill -TERM "$APID"; wait "$APID" || true

# 3. CPU per step: 100 workflows x 5 steps x 50 lines, 10 at a time, no sleeping.
run_case cpu 100 5 50 0 300 10
while ! grep -q queued "$TMP/cpu.server"; do sleep 0.01; done
T0=$(cpu_ticks "$APID")
wait "$SPID"
T1=$(cpu_ticks "$APID")
kill -TERM "$APID"; wait "$APID" || true
STEPS=500
CPU_MS=$(( (T1 - T0) * 1000 / TCK ))

mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }
RUNNING=$(awk '/^done/ {print $4}' "$TMP/twenty.server")
echo "| measure (agent process, fake backend) | value |"
echo "| --- | --- |"
echo "| idle RSS (registered, polling) | $(mib "$IDLE") |"
echo "| RSS with 20 workflows running ($RUNNING at once seen by the server) | $(mib "$RSS20") (peak $(mib "$HWM20")) |"
echo "| CPU per step, 50 log lines each | $(( CPU_MS * 1000 / STEPS )) µs ($CPU_MS ms for $STEPS steps, $(awk '/^done/ {print $2}' "$TMP/cpu.server") ms wall) |"
