# Shared by the load scripts that start the release binary and Redis servers of their own
# (bench-callback-redis.sh, bench-webhook.sh, bench-resource-ab.sh); sourced, then
# `bench_setup NAME` once.

# bench_setup NAME: a scratch directory under target/ (`work`); every process started by
# start_redis and start_service is stopped, and the directory removed, when the script exits.
# Those two are called as `port=$(start_...)`, in a subshell, so each writes its process id to
# "$work/pids" rather than to a variable the script would never see.
bench_setup() {
    mkdir -p target
    work=$(mktemp -d "$PWD/target/$1.XXXXXX")
    pids=()
    trap bench_stop EXIT
}

# Remembers a process for bench_stop, from the script or from a subshell.
bench_started() { echo "$1" >>"$work/pids"; }

bench_stop() {
    if [[ -f $work/pids ]]; then
        while read -r pid; do pids+=("$pid"); done <"$work/pids"
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        # Not a child when started in a subshell: `wait` cannot, so poll until it is gone.
        wait "$pid" 2>/dev/null || while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    done
    rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A redis-server of the script's own, AOF on, appendfsync always; prints its port.
start_redis() {
    command -v redis-server >/dev/null || { echo "redis-server is needed: apt-get install -y redis-server" >&2; exit 1; }
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --appendonly yes \
        --appendfsync always --save "" --daemonize no >"$work/redis-$port.log" 2>&1 &
    bench_started $!
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
    echo "$port"
}

# start_service NAME REDIS_URL [VAR=value ...]: the service on a free port with its own DATA_DIR
# (and REDIS_URL when not empty), no per-client limit, warnings only; prints its port. The
# binary is SERVICE_BIN, by default target/release/tracardi-twitter.
start_service() {
    local name=$1 redis_url=$2 port
    shift 2
    port=$(free_port)
    mkdir -p "$work/$name"
    env -i PATH="$PATH" LISTEN_ADDR="127.0.0.1:$port" DATA_DIR="$work/$name" \
        API_KEY=bench-api-key-0123456789abcdef-0123456789 SECRET=bench-secret-0123456789abcdef-012345 \
        PUBLIC_RATE_LIMIT=0 REDIS_URL="$redis_url" RUST_LOG=warn "$@" \
        "${SERVICE_BIN:-target/release/tracardi-twitter}" >"$work/$name.log" 2>&1 &
    bench_started $!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
    echo "$port"
}

# wrk_load PORT CONNECTIONS SCRIPT: one wrk thread for DURATION; prints
# "<requests/s> <p99 ms> <the script's tally line>; <its latency percentiles>".
wrk_load() {
    local port=$1 connections=$2 script=$3
    RUN="$(date +%s%N)-$port" wrk -t1 -c"$connections" -d"$DURATION" --latency \
        -s "$script" "http://127.0.0.1:$port" >"$work/wrk-$port.txt"
    awk '/Requests\/sec/ {rps=$2}
        /^ +99%/ {p=$2; if (p ~ /us$/) {sub(/us/,"",p); p=p/1000} else if (p ~ /ms$/) {sub(/ms/,"",p)} else if (p ~ /s$/) {sub(/s/,"",p); p=p*1000}}
        /^[a-z]+: sent=/ {line=$0}
        /^latency ms:/ {lat=$0}
        END {printf "%.0f %.2f %s; %s\n", rps, p, line, lat}' "$work/wrk-$port.txt"
}
