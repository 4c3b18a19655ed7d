# Sourced by the bench scripts that run the simulated cluster in a process of its own.
# start_sim SIM WORK: runs `SIM sim` with its files under WORK/sim, waits (up to 20 s) for the
# kubeconfig path it prints, and sets `simpid` and `kubeconfig`.
start_sim() {
    local sim=$1 work=$2
    "$sim" sim --dir "$work/sim" >"$work/sim.out" 2>"$work/sim.err" &
    simpid=$!
    for _ in $(seq 200); do
        grep -q "kubeconfig$" "$work/sim.out" 2>/dev/null && break
        sleep 0.1
    done
    kubeconfig=$(tail -1 "$work/sim.out")
}
