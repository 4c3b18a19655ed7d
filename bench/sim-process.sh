# Sourced by the bench scripts that run the simulated cluster in a process of its own.
# start_sim_cmd WORK CMD...: runs CMD (which prints its kubeconfig path last), waits (up to 20 s)
# for that path, and sets `simpid` and `kubeconfig`. start_sim SIM WORK: the same for
# `SIM sim --dir WORK/sim`.
start_sim_cmd() {
    local work=$1
    shift
    "$@" >"$work/sim.out" 2>"$work/sim.err" &
    simpid=$!
    for _ in $(seq 200); do
        grep -q "kubeconfig$" "$work/sim.out" 2>/dev/null && break
        sleep 0.1
    done
    kubeconfig=$(tail -1 "$work/sim.out")
}

start_sim() {
    start_sim_cmd "$2" "$1" sim --dir "$2/sim"
}
