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


# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_setup bench-callback-redis

redis_port=$(start_redis)
load() { wrk_load "$1" "$2" scripts/wrk-callback.lua | cut -d' ' -f1,2; }

sqlite_port=$(start_service sqlite "")
read -r rps p99 < <(load "$sqlite_port" "$CONNECTIONS")
printf 'one process on SQLite:        %8s callbacks/s  p99 %6s ms\n' "$rps" "$p99"

one_port=$(start_service redis-one "redis://127.0.0.1:$redis_port/0")
read -r rps p99 < <(load "$one_port" "$CONNECTIONS")
printf 'one replica on Redis:         %8s callbacks/s  p99 %6s ms\n' "$rps" "$p99"

two_port=$(start_service redis-two "redis://127.0.0.1:$redis_port/0")
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
