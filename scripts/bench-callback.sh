#!/usr/bin/env bash
# Load comparison of GET /callback with DISTINCT redirects: tracardi-twitter (the release binary,
# every callback written durably to SQLite, WAL, synchronous=FULL, group commit, before the
# answer) against a bare axum handler answering the same page bytes without storing anything
# (examples/bare_callback.rs). Both run here, on loopback, in the same run; wrk drives each in
# turn, alternating, ROUNDS times, with scripts/wrk-callback.lua making every request a new
# `?oauth_token=<run>-<thread>-<n>&oauth_verifier=v`. Prints callbacks/sec and p99 latency for
# both and the ratio. Then it checks that nothing acknowledged was lost: the store holds one
# event per 200 wrk counted (plus, at most, the requests wrk abandoned in flight when its time was
# up), and, exactly, one event per 200 of EXACT more callbacks sent with curl --parallel, counted
# after a graceful stop.
#
#   bash scripts/bench-callback.sh
#
# TRACARDI_API_URL is not set, so nothing is delivered: the run measures receiving and storing.
# DATA_DIR is a fresh directory under target/ (the project's disk, not a tmpfs).
#
# Knobs (environment): ROUNDS=2 DURATION=10s CONNECTIONS=64 THREADS=2 EXACT=5000
# OURS_PORT=20931 BARE_PORT=20932; OURS_RUST_LOG (unset: the service's default, an access line and a
# "callback recorded" line per request, written to a file); KEEP=1 keeps the data directory;
# SKIP_BUILD=1 to measure the binaries already in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
OURS_PORT=${OURS_PORT:-20931}
BARE_PORT=${BARE_PORT:-20932}

if ! command -v wrk >/dev/null; then
    echo "== installing wrk (Debian package)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
if ! command -v sqlite3 >/dev/null; then
    echo "== installing sqlite3 (Debian package)"
    apt-get install -y sqlite3 >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y sqlite3 >/dev/null; }
fi
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "== building release binaries"
    cargo build --release --bin tracardi-twitter --example bare_callback
fi

for port in "$OURS_PORT" "$BARE_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is already in use; set OURS_PORT / BARE_PORT" >&2
        exit 1
    fi
done

mkdir -p target
work=$(mktemp -d "$PWD/target/bench-callback.XXXXXX")
# shellcheck source=scripts/bench-servers.sh
source scripts/bench-servers.sh
start_ours
start_bare bare_callback

ours="http://127.0.0.1:$OURS_PORT"
bare="http://127.0.0.1:$BARE_PORT"
wait_for "$ours/health"
wait_for "$bare/callback"
probe="/callback?oauth_token=probe&oauth_verifier=v"
if ! cmp -s <(curl -fsS "$ours$probe") <(curl -fsS "$bare$probe"); then
    echo "the two servers do not answer the same bytes" >&2
    exit 1
fi
echo "== both answer the same $(curl -fsS "$bare$probe" | wc -c) bytes (the probe stored 1 event)"

run_wrk() { # NAME URL RUN -> "callbacks/sec p99_ms ok inflight"
    RUN=$3 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s scripts/wrk-callback.lua "$2" >"$work/wrk-$1-$3.out"
    grep -E 'Socket errors|Non-2xx' "$work/wrk-$1-$3.out" | sed "s/^/  $1: /" >&2 || true
    awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2
            if (v ~ /us$/) { sub(/us$/, "", v); p99 = v / 1000 }
            else if (v ~ /ms$/) { sub(/ms$/, "", v); p99 = v }
            else if (v ~ /m$/) { sub(/m$/, "", v); p99 = v * 60000 }
            else { sub(/s$/, "", v); p99 = v * 1000 }
        }
        /^callbacks:/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); c[kv[1]] = kv[2] }
        }
        END { printf "%s %s %d %d\n", rps, p99, c["ok"], c["inflight"] }
    ' "$work/wrk-$1-$3.out"
}

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s scripts/wrk-callback.lua, $ROUNDS rounds, alternating"
echo "   (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
ours_rps=0 bare_rps=0 ours_ok=0 ours_inflight=0 ours_p99_max=0
for round in $(seq "$ROUNDS"); do
    read -r o o99 ook oin < <(run_wrk ours "$ours" "r$round")
    read -r b b99 _ _ < <(run_wrk bare "$bare" "r$round")
    printf 'round %d: tracardi-twitter %8.0f callbacks/s  p99 %7.2f ms   bare axum %8.0f req/s  p99 %7.2f ms   ratio %.3f\n' \
        "$round" "$o" "$o99" "$b" "$b99" "$(awk -v a="$o" -v b="$b" 'BEGIN {print a / b}')"
    ours_rps=$(awk -v a="$ours_rps" -v b="$o" 'BEGIN {print a + b}')
    bare_rps=$(awk -v a="$bare_rps" -v b="$b" 'BEGIN {print a + b}')
    ours_p99_max=$(awk -v a="$ours_p99_max" -v b="$o99" 'BEGIN {print (b > a) ? b : a}')
    ours_ok=$((ours_ok + ook))
    ours_inflight=$((ours_inflight + oin))
done
awk -v o="$ours_rps" -v b="$bare_rps" -v n="$ROUNDS" -v p="$ours_p99_max" 'BEGIN {
    printf "mean:    tracardi-twitter %8.0f callbacks/s                bare axum %8.0f req/s\n", o / n, b / n
    printf "ratio:   %.3f (tracardi-twitter / bare; target >= 0.20); worst p99 of tracardi-twitter %.2f ms (target < 10)\n", o / b, p
}'
echo "   (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"

count() { sqlite3 "$data/outbox.sqlite3" 'select count(*) from events'; }

# wrk abandons the requests in flight when its time is up: the service may have stored them
# without wrk reading the answer. So the wrk check is a bound, and an exact check follows.
sleep 0.5
stored=$(($(count) - 1)) # minus the probe
extra=$((stored - ours_ok))
echo "== store: $stored events from wrk's requests; wrk counted $ours_ok answers 200 and $ours_inflight requests still in flight when it stopped"
if ((extra == 0)); then
    echo "   stored events = 200 answers"
elif ((extra > 0 && extra <= ours_inflight)); then
    echo "   stored events = 200 answers + $extra of the requests in flight at wrk's stop (stored, answer never read)"
else
    echo "   MISMATCH: $extra events more than 200 answers (negative: acknowledged events missing)" >&2
    exit 1
fi

# Exact check: EXACT distinct callbacks, CONNECTIONS at a time, every answer read (curl).
EXACT=${EXACT:-5000}
for i in $(seq "$EXACT"); do
    printf 'url = "%s/callback?oauth_token=exact-%d&oauth_verifier=v"\noutput = /dev/null\n' "$ours" "$i"
done >"$work/exact.curl"
before=$(count)
curl -sS --parallel --parallel-max "$CONNECTIONS" -K "$work/exact.curl" -w '%{http_code}\n' >"$work/exact.codes" 2>"$work/exact.err" || true
ok=$(grep -c '^200$' "$work/exact.codes" || true)

# Stop the service (SIGTERM, graceful) and count what it stored.
kill "$ours_pid"
wait "$ours_pid" 2>/dev/null || true
after=$(count)
echo "== exact check: $EXACT callbacks with curl --parallel-max $CONNECTIONS: $ok answered 200 ($((EXACT - ok)) did not); the store grew by $((after - before)) events (counted after a graceful stop)"
if ((after - before != ok)); then
    echo "   MISMATCH" >&2
    exit 1
fi
echo "   stored events = 200 answers"
echo "== log written by tracardi-twitter: $(wc -l <"$work/ours.log") lines"
