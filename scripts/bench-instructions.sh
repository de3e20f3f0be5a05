#!/usr/bin/env bash
# User-space instructions per `GET /resource`, tracardi-twitter against the bare axum handler
# (examples/bare_resource.rs), counted by valgrind's callgrind. Unlike requests per second on
# this shared machine (±15% from one round to the next), the count is repeatable to within a
# percent or two, so it shows what a change to the request path costs or saves. It leaves out
# the kernel's share (the TCP stack, most of each request's CPU time) and the cache effects.
#
#   bash scripts/bench-instructions.sh
#
# Each server runs under callgrind with instrumentation off while it starts and warms up, on for
# 5 s of `wrk -t1 -c4`, then the count is divided by the requests wrk completed.
# Knobs: SKIP_BUILD=1 to use the binaries already in target/release; OURS_BIN (another build of
# the service); OURS_PORT, BARE_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

OURS_PORT=${OURS_PORT:-20901}
BARE_PORT=${BARE_PORT:-20902}

for tool in wrk valgrind; do
    if ! command -v "$tool" >/dev/null; then
        echo "== installing $tool (Debian package)"
        apt-get install -y "$tool" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
    fi
done

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "== building release binaries"
    cargo build --release --bin tracardi-twitter --example bare_resource
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count NAME PORT COMMAND...: prints "NAME: N requests, I instructions per request".
count() {
    local name=$1 port=$2
    shift 2
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/$name.out" "$@" \
        2>"$work/$name.valgrind.log" &
    local pid=$!
    for _ in $(seq 300); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/resource" 2>/dev/null && break
        sleep 0.2
    done
    for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/resource"; done
    callgrind_control -i on "$pid" >/dev/null 2>&1
    wrk -t1 -c4 -d5s "http://127.0.0.1:$port/resource" >"$work/$name.wrk"
    callgrind_control -i off "$pid" >/dev/null 2>&1
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local requests instructions
    requests=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
    instructions=$(callgrind_annotate "$work/$name.out" 2>/dev/null |
        awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$name: $requests requests, $((instructions / requests)) instructions per request"
}

(
    export LISTEN_ADDR="127.0.0.1:$OURS_PORT" DATA_DIR="$work/data"
    unset API_KEY SECRET TRACARDI_API_URL TRACARDI_SOURCE_ID RUST_LOG
    count tracardi-twitter "$OURS_PORT" "${OURS_BIN:-target/release/tracardi-twitter}"
)
count bare-axum "$BARE_PORT" target/release/examples/bare_resource "$BARE_PORT"
