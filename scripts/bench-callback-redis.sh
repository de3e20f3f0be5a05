#!/usr/bin/env bash
# Durable GET /callback at 64 connections, in one run: one process on SQLite (the default), one
# replica on Redis, and two replicas on the same Redis (32 connections each, at the same time).
# Redis is a server of this script's own (AOF on, appendfsync always, a directory under target/),
# never the machine's shared one. Every request is a distinct OAuth 1.0a approval
# (scripts/wrk-callback.lua); nothing is delivered (TRACARDI_API_URL unset).
#
#   bash scripts/bench-callback-redis.sh
#
# Knobs (environment): DURATION=10s CONNECTIONS=64 SKIP_BUILD=1 (use target/release as it is).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is needed: apt-get install -y redis-server" >&2; exit 1; }
[[ -n ${SKIP_BUILD:-} ]] || cargo build --release --bin tracardi-twitter

mkdir -p target
work=$(mktemp -d "$PWD/target/bench-callback-redis.XXXXXX")
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap stop EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --appendonly yes \
    --appendfsync always --save "" --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

# Starts the service on a free port (printed), with its own DATA_DIR and the given REDIS_URL.
start() {
    local name=$1 redis_url=$2 port
    port=$(free_port)
    mkdir -p "$work/$name"
    env -i PATH="$PATH" LISTEN_ADDR="127.0.0.1:$port" DATA_DIR="$work/$name" \
        API_KEY=bench-api-key-0123456789abcdef-0123456789 SECRET=bench-secret-0123456789abcdef-012345 \
        PUBLIC_RATE_LIMIT=0 REDIS_URL="$redis_url" RUST_LOG=warn \
        target/release/tracardi-twitter >"$work/$name.log" 2>&1 &
    pids+=($!)
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
    echo "$port"
}

# wrk against one port with $2 connections; prints "<callbacks/s> <p99 ms>".
load() {
    local port=$1 connections=$2
    RUN="$(date +%s%N)-$port" wrk -t1 -c"$connections" -d"$DURATION" --latency \
        -s scripts/wrk-callback.lua "http://127.0.0.1:$port" >"$work/wrk-$port.txt"
    awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p=$2; if (p ~ /us$/) {sub(/us/,"",p); p=p/1000} else if (p ~ /ms$/) {sub(/ms/,"",p)} else if (p ~ /s$/) {sub(/s/,"",p); p=p*1000}} END {printf "%.0f %.2f\n", rps, p}' "$work/wrk-$port.txt"
}

sqlite_port=$(start sqlite "")
read -r rps p99 < <(load "$sqlite_port" "$CONNECTIONS")
printf 'one process on SQLite:        %8s callbacks/s  p99 %6s ms\n' "$rps" "$p99"

one_port=$(start redis-one "redis://127.0.0.1:$redis_port/0")
read -r rps p99 < <(load "$one_port" "$CONNECTIONS")
printf 'one replica on Redis:         %8s callbacks/s  p99 %6s ms\n' "$rps" "$p99"

two_port=$(start redis-two "redis://127.0.0.1:$redis_port/0")
half=$((CONNECTIONS / 2))
load "$one_port" "$half" >"$work/a" &
first=$!
load "$two_port" "$half" >"$work/b" &
second=$!
wait "$first" "$second"
read -r rps_a p99_a <"$work/a"
read -r rps_b p99_b <"$work/b"
awk -v a="$rps_a" -v b="$rps_b" -v pa="$p99_a" -v pb="$p99_b" \
    'BEGIN {printf "two replicas on one Redis:    %8.0f callbacks/s  p99 %6.2f ms (worst of the two)\n", a + b, (pa > pb ? pa : pb)}'
echo "events in Redis: $(redis-cli -p "$redis_port" --scan --pattern '*' | wc -l) keys"
