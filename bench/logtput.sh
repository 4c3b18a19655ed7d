#!/usr/bin/env bash
# Log throughput of AGENT (the shipped static binary) against curl on the same URL. The
# simulated cluster runs in a process of its own (`bench-steps serve-log`, release build): a
# pod of image `bench/big` has a log of LINES lines of about 100 bytes (plus an end marker) the
# moment it starts, and runs until deleted. `exec` follows that log to a pipe; then, while the
# pod still runs, curl reads the same URL our follower asks for (`follow=true&timestamps=true`)
# over HTTP/2 (curl's default through ALPN) and over HTTP/1.1. Each reader is timed by the same
# reader process from the log's first line to the end marker (no process start, connection
# set-up or pod start). Best of RUNS runs, a new pod each. The best of curl's runs is the best
# of twice as many tries (two protocols), and curl's own rate varies by a third from run to run
# here, so each run's ratio (ours against the faster curl on the same pod, read right after
# ours) is kept too, and their median printed.
# Prints `<ours MiB/s> <curl h2 MiB/s> <curl http/1.1 MiB/s> <median run ratio>` (MiB of log
# text; per run on stderr).
#
# Usage: bench/logtput.sh AGENT HARNESS [LINES] [RUNS]
#   HARNESS: target/release/examples/bench-steps (cargo build --release --example bench-steps)
set -euo pipefail
agent=$1 harness=$2 lines=${3:-200000} runs=${4:-3}
work=$(mktemp -d)
simpid="" execpid=""
trap '[ -n "$execpid" ] && kill "$execpid" 2>/dev/null; [ -n "$simpid" ] && kill "$simpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=bench/sim-process.sh
. "$(dirname "$0")/sim-process.sh"
start_sim_cmd "$work" "$harness" serve-log "$lines"
server=$(sed -n 's/^ *server: *//p' "$kubeconfig")
sed -n 's/^ *certificate-authority-data: *//p' "$kubeconfig" | base64 -d >"$work/ca.pem"
printf 'Authorization: Bearer %s\n' "$(sed -n 's/^ *token: *"\(.*\)"/\1/p' "$kubeconfig")" >"$work/auth"
chmod 600 "$work/auth"
# The log text: LINES lines of "%08d <85 bytes>" and a newline, as bench/steps.rs writes them.
bytes=$((95 * lines))

cat >"$work/logs.yaml" <<EOF
skip_clone: true
steps:
  big:
    image: bench/big
    commands:
      - "true"
EOF

# Each reader's output goes to `HARNESS time-log`: the seconds from the read that brought the
# log's first line to the one that brought the end marker (not from exec's first byte: its
# header comes before the pod exists); `drain` reads on to the end (exec's output must not
# break: exec would cancel its steps). A compiled reader: it shares the two cores with what it
# times.

curl_args=(-sS --fail --cacert "$work/ca.pem" -H "@$work/auth")
pods() {
    curl "${curl_args[@]}" "$server/api/v1/namespaces/woodpecker/pods" |
        python3 -c 'import json,sys; print(" ".join(p["metadata"]["name"] for p in json.load(sys.stdin)["items"]))'
}
# The stream goes on while the pod runs: curl stops at its time limit; --no-buffer, or the
# marker would wait in curl's stdio buffer until then.
timed_curl() { curl "${curl_args[@]}" --no-buffer --max-time 5 "$@" 2>/dev/null | "$harness" time-log || true; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (b + 0 > a + 0) ? b : a }'; }
mibps() { awk -v s="$1" -v b="$bytes" 'BEGIN { if (s + 0 > 0) printf "%.1f", b / s / 1048576; else print 0 }'; }
ours=0 h2=0 h1=0 ratios=""
for _ in $(seq "$runs"); do
    before=$(pods)
    rm -f "$work/t"
    WOODPECKER_BACKEND_K8S_STORAGE_RWX=false "$agent" exec --kubeconfig "$kubeconfig" "$work/logs.yaml" \
        2>"$work/err" > >("$harness" time-log drain >"$work/t") &
    execpid=$!
    for _ in $(seq 600); do [ -s "$work/t" ] && break; sleep 0.1; done
    t=$(cat "$work/t")
    pod=""
    for p in $(pods); do [[ " $before " == *" $p "* ]] || pod=$p; done
    # The container is named as the pod (backend/build).
    url="$server/api/v1/namespaces/woodpecker/pods/$pod/log?container=$pod&follow=true&timestamps=true"
    c2=$(timed_curl --http2 "$url")
    c1=$(timed_curl --http1.1 "$url")
    kill "$execpid"
    wait "$execpid" || true
    execpid=""
    o=$(mibps "$t") a=$(mibps "$c2") b=$(mibps "$c1")
    ratio=$(awk -v o="$o" -v a="$a" -v b="$b" 'BEGIN { m = (a > b) ? a : b; if (m > 0) printf "%.3f", o / m; else print 0 }')
    ratios="$ratios $ratio"
    echo "logtput: ours $o curl h2 $a curl http/1.1 $b MiB/s, ratio $ratio" >&2
    ours=$(best "$ours" "$o")
    h2=$(best "$h2" "$a")
    h1=$(best "$h1" "$b")
done
median=$(printf '%s\n' $ratios | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "$ours $h2 $h1 $median"
