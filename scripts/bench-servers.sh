# Sourced by the load scripts: start tracardi-twitter (release, defaults, a fresh DATA_DIR under
# $work) and a bare example server on loopback, wait until both answer, stop both on exit.
# Expects: $work (a scratch directory), $OURS_PORT, $BARE_PORT; optional OURS_RUST_LOG, KEEP,
# SERVER_CPUS (a taskset CPU list both servers are confined to), OURS_BIN (the service's binary).
# Sets: $ours_pid, $data.

pids=()
data="$work/data"

stop_servers() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n ${KEEP:-} ]]; then echo "== kept $work"; else rm -rf "$work"; fi
}
trap stop_servers EXIT

# The service with its defaults: no inherited setting may change what is measured.
start_ours() {
    (
        export LISTEN_ADDR="127.0.0.1:$OURS_PORT" DATA_DIR="$data"
        unset API_KEY SECRET TRACARDI_API_URL TRACARDI_SOURCE_ID CALLBACK_SUCCESS_URL CALLBACK_DENIED_URL
        # wrk is one client (127.0.0.1): the per-client limit would answer most callbacks 429.
        export PUBLIC_RATE_LIMIT=0
        if [[ -n ${OURS_RUST_LOG:-} ]]; then export RUST_LOG=$OURS_RUST_LOG; else unset RUST_LOG; fi
        exec ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "${OURS_BIN:-target/release/tracardi-twitter}"
    ) 2>"$work/ours.log" &
    ours_pid=$!
    pids+=("$ours_pid")
}

# start_bare EXAMPLE: a bare handler from examples/, on $BARE_PORT.
start_bare() {
    ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "target/release/examples/$1" "$BARE_PORT" 2>"$work/bare.log" &
    pids+=($!)
}

# wait_for URL: until anything answers there (10 s at most).
wait_for() {
    for _ in $(seq 100); do
        curl -sS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no answer from $1; server logs:" >&2
    cat "$work"/*.log >&2
    exit 1
}
