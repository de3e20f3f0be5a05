#!/usr/bin/env bash
# Load comparison of GET /resource: tracardi-twitter (the whole service: routing, access log,
# CORS, timeout and body-limit layers) against a bare axum handler serving the same bytes
# (examples/bare_resource.rs), and against Tracardi's own Python stack, FastAPI on uvicorn
# (scripts/fastapi_resource.py, the same JSON, two workers: one per core). All run here, on
# loopback, in the same run; wrk drives each in turn, ours and bare alternating (ABBA), ROUNDS
# times. Prints requests/sec for each and the ratios.
#
#   bash scripts/bench-resource.sh
#
# Knobs (environment): ROUNDS=8 DURATION=8s CONNECTIONS=64 THREADS=2 OURS_PORT=20901 BARE_PORT=20902
# OURS_RUST_LOG (unset: the service's default, one info line per request, written to a file);
# SKIP_BUILD=1 to measure the binaries already in target/release; OURS_BIN=path: another build of
# the service (e.g. the commit before a change); FASTAPI=0 to leave FastAPI out;
# PIN=1: the servers on CPU 0 and wrk (one thread) on CPU 1, so that each server has a core of its
# own and the load generator does not compete with it: the figure then follows the server's own
# cost per request.
set -euo pipefail
cd "$(dirname "$0")/.."

# The machine's figures move by 10-20% between runs (a shared virtual machine, the load
# generator on the same two cores): several short alternating rounds, each with its own ratio.
ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WRK=(wrk)
if [[ -n ${PIN:-} ]]; then
    export SERVER_CPUS=0
    WRK=(taskset -c 1 wrk)
    THREADS=1
fi
OURS_PORT=${OURS_PORT:-20901}
BARE_PORT=${BARE_PORT:-20902}
FASTAPI_PORT=${FASTAPI_PORT:-20903}
FASTAPI=${FASTAPI:-1}

if ! command -v wrk >/dev/null; then
    echo "== installing wrk (Debian package)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "== building release binaries"
    cargo build --release --bin tracardi-twitter --example bare_resource
fi

work=$(mktemp -d)
# shellcheck source=scripts/bench-servers.sh
source scripts/bench-servers.sh
start_ours
start_bare bare_resource

ours="http://127.0.0.1:$OURS_PORT/resource"
bare="http://127.0.0.1:$BARE_PORT/resource"
wait_for "$ours"
wait_for "$bare"
if ! cmp -s <(curl -fsS "$ours") <(curl -fsS "$bare"); then
    echo "the two servers do not answer the same bytes" >&2
    exit 1
fi
echo "== both answer the same $(curl -fsS "$ours" | wc -c) bytes"
fastapi="http://127.0.0.1:$FASTAPI_PORT/resource"
if ((FASTAPI)); then
    # shellcheck source=scripts/fastapi-venv.sh
    source scripts/fastapi-venv.sh
    curl -fsS "$ours" >"$work/form.json"
    (
        export RESOURCE_JSON="$work/form.json"
        exec ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "$FASTAPI_VENV/bin/uvicorn" --app-dir scripts \
            fastapi_resource:app --host 127.0.0.1 --port "$FASTAPI_PORT" --workers 2
    ) >"$work/fastapi.log" 2>&1 &
    pids+=($!)
    wait_for "$fastapi"
    if cmp -s <(curl -fsS "$ours") <(curl -fsS "$fastapi"); then
        echo "== FastAPI answers the same bytes"
    else
        echo "== FastAPI answers the same JSON document, not byte for byte" >&2
    fi
fi

# user + system time of a process and its children that ended (uvicorn's workers are children)
cpu_ticks() {
    local pid total=0
    for pid in "$1" $(pgrep -P "$1" || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
measure() { # URL PID -> "requests/sec  server-CPU-microseconds-per-request"
    local before after
    before=$(cpu_ticks "$2")
    "${WRK[@]}" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" >"$work/wrk.out"
    after=$(cpu_ticks "$2")
    grep -E 'Socket errors|Non-2xx' "$work/wrk.out" >&2 || true
    awk -v ticks="$((after - before))" -v hz="$(getconf CLK_TCK)" '
        /requests in/ {n = $1}
        /^Requests\/sec:/ {rps = $2}
        END {printf "%s %.2f\n", rps, ticks / hz * 1e6 / n}' "$work/wrk.out"
}

echo "== ${WRK[*]} -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, alternating${PIN:+ (servers on CPU 0)} (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "   (cpu: the server's user+system CPU time per request, a figure less sensitive to noise)"
: >"$work/results"
for round in $(seq "$ROUNDS"); do
    # ABBA order: a drift in the machine's speed weighs on both alike.
    if ((round % 2)); then
        read -r o oc <<<"$(measure "$ours" "${pids[0]}")"
        read -r b bc <<<"$(measure "$bare" "${pids[1]}")"
    else
        read -r b bc <<<"$(measure "$bare" "${pids[1]}")"
        read -r o oc <<<"$(measure "$ours" "${pids[0]}")"
    fi
    f=0 fc=0
    if ((FASTAPI)); then read -r f fc <<<"$(measure "$fastapi" "${pids[2]}")"; fi
    printf 'round %d: tracardi-twitter %8.0f req/s (cpu %5.1f us/req)   bare axum %8.0f req/s (cpu %5.1f us/req)   ratio %.3f   FastAPI %6.0f req/s (cpu %6.1f us/req)\n' \
        "$round" "$o" "$oc" "$b" "$bc" "$(awk -v o="$o" -v b="$b" 'BEGIN {print o / b}')" "$f" "$fc"
    echo "$o $oc $b $bc $f $fc" >>"$work/results"
done
awk '{o += $1; oc += $2; b += $3; bc += $4; f += $5; fc += $6; n++} END {
    printf "mean:    tracardi-twitter %8.0f req/s (cpu %5.1f us/req)   bare axum %8.0f req/s (cpu %5.1f us/req)\n", o / n, oc / n, b / n, bc / n
    printf "ratio:   %.3f  (tracardi-twitter / bare, requests/sec; target >= 0.80)\n", o / b
    printf "cpu:     %.3f  (bare / tracardi-twitter, CPU per request)\n", bc / oc
    if (f > 0) {
        printf "FastAPI: %8.0f req/s (cpu %6.1f us/req); tracardi-twitter / FastAPI: %.1fx requests/sec, %.1fx CPU per request (target >= 15x)\n", f / n, fc / n, o / f, fc / oc
    }
}' "$work/results"
awk '{print $1 / $3}' "$work/results" | sort -n | awk '{r[NR] = $1} END {
    printf "rounds:  median ratio %.3f, lowest %.3f, highest %.3f\n", (r[int((NR + 1) / 2)] + r[int(NR / 2) + 1]) / 2, r[1], r[NR]
}'
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== access log written by tracardi-twitter: $(wc -l <"$work/ours.log") lines"
