#!/usr/bin/env bash
# Signed POST /x/webhook at 64 connections, beside durable GET /callback, on one process with the
# embedded SQLite store (and, with REDIS=1, on a Redis of this script's own: AOF on, appendfsync
# always). Every webhook body is a distinct X Activity API mention, signed with the consumer
# secret the service runs with; its signature is checked, the body read and routed (the account's
# and the author's links looked up), and the event stored before the 200. Nothing is delivered
# (TRACARDI_API_URL unset). Past BODIES_COUNT requests the bodies repeat and are not stored again:
# keep it above what one run sends.
#
#   bash scripts/bench-webhook.sh
#
# Knobs (environment): DURATION=10s CONNECTIONS=64 BODIES_COUNT=400000 REDIS=1 (REDIS_ONLY=1:
# Redis alone) SKIP_BUILD=1 SERVICE_BIN (another build).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
BODIES_COUNT=${BODIES_COUNT:-400000}
SECRET_X=bench-consumer-secret
export BODIES  # read by scripts/wrk-webhook.lua
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
[[ -n ${SKIP_BUILD:-} ]] || cargo build --release --bin tracardi-twitter

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_setup bench-webhook
BODIES="$work/bodies.tsv"

python3 - "$work/bodies.tsv" "$SECRET_X" "$BODIES_COUNT" <<'PY'
import base64, hashlib, hmac, json, sys
path, secret, count = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
with open(path, "w") as out:
    for n in range(count):
        post = str(2080765813578191303 + n)
        body = json.dumps({"data": {"event_uuid": post, "event_type": "post.mention.create",
            "filter": {"user_id": "1111111111111111111"},
            "payload": {"id": post, "text": "hey @acme, order %d arrived" % n,
                "author_id": "2222222222222222222", "created_at": "2026-07-24T21:23:23.000Z",
                "lang": "en", "entities": {"mentions": [{"start": 4, "end": 9, "username": "acme",
                "id": "1111111111111111111"}]}},
            "includes": {"users": [{"id": "2222222222222222222", "username": "fan"}]}}},
            separators=(",", ":"))
        tag = base64.b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest()).decode()
        out.write("sha256=%s\t%s\n" % (tag, body))
PY

start() { start_service "$1" "$2" TWITTER_CONSUMER_KEY=bench-consumer-key TWITTER_CONSUMER_SECRET="$SECRET_X"; }

report() {
    local store=$1 port=$2
    read -r rps p99 line < <(wrk_load "$port" "$CONNECTIONS" scripts/wrk-webhook.lua)
    printf '%-7s POST /x/webhook (signed): %8s stored/s  p99 %6s ms   %s\n' "$store" "$rps" "$p99" "$line"
    read -r rps p99 line < <(wrk_load "$port" "$CONNECTIONS" scripts/wrk-callback.lua)
    printf '%-7s GET /callback:             %8s stored/s  p99 %6s ms   %s\n' "$store" "$rps" "$p99" "$line"
}

[[ -n ${REDIS_ONLY:-} ]] || report SQLite "$(start sqlite "")"
if [[ -n ${REDIS:-} ]]; then
    report Redis "$(start redis "redis://127.0.0.1:$(start_redis)/0")"
fi
