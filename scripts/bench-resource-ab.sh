#!/usr/bin/env bash
# GET /resource on two builds of the service, alternating A B B A in each round, both servers on
# CPU 0 and wrk (one thread) on CPU 1: the cost of a change on the request path, as a ratio per
# round, on a machine whose absolute figures drift by 10-20% between runs.
#
#   cp target/release/tracardi-twitter /tmp/before      # build A, then change and rebuild
#   cargo build --release --bin tracardi-twitter
#   BASE_BIN=/tmp/before bash scripts/bench-resource-ab.sh
#
# Knobs (environment): BASE_BIN (required: build A), NEW_BIN (build B, default
# target/release/tracardi-twitter), ROUNDS=10, DURATION=6s, CONNECTIONS=64.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${BASE_BIN:?set BASE_BIN to the build to compare against}"
NEW_BIN=${NEW_BIN:-target/release/tracardi-twitter}
ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_setup bench-ab

start() { # BIN NAME -> port
    local port
    port=$(free_port)
    mkdir -p "$work/$2"
    env -i PATH="$PATH" LISTEN_ADDR="127.0.0.1:$port" DATA_DIR="$work/$2" \
        API_KEY=bench-api-key-0123456789abcdef-0123456789 SECRET=bench-secret-0123456789abcdef-012345 \
        PUBLIC_RATE_LIMIT=0 taskset -c 0 "$1" >"$work/$2.log" 2>&1 &
    bench_started $!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
    echo "$port"
}
rps() { taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$1/resource" | awk '/Requests\/sec/ {print $2}'; }

a=$(start "$BASE_BIN" a)
b=$(start "$NEW_BIN" b)
for round in $(seq "$ROUNDS"); do
    a1=$(rps "$a"); b1=$(rps "$b"); b2=$(rps "$b"); a2=$(rps "$a")
    echo "$round $a1 $b1 $b2 $a2"
done | awk '{a = ($2 + $5) / 2; b = ($3 + $4) / 2; r = b / a; printf "round %2d: A %7.0f  B %7.0f  B/A %.3f\n", $1, a, b, r;
    sa += a; sb += b; sr += r; n++; rs[n] = r}
    END {asort(rs); printf "mean:     A %7.0f  B %7.0f  B/A %.3f (mean of rounds %.3f, median %.3f)\n", sa / n, sb / n, sb / sa, sr / n, (n % 2 ? rs[(n + 1) / 2] : (rs[n / 2] + rs[n / 2 + 1]) / 2)}'
