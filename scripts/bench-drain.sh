#!/usr/bin/env bash
# How fast the delivery worker drains a stored backlog into a fast local fake Tracardi
# (examples/drain.rs): EVENTS (default 10 000) distinct events appended to a SqliteOutbox in a
# fresh directory under target/, then the real delivery::Worker posts them to an axum fake on
# 127.0.0.1 that answers 200 to POST /track. Timed from the worker's start until the fake has
# every event and the store counts every event delivered. Once per DELIVERY_BATCH given.
#
#   bash scripts/bench-drain.sh            # DELIVERY_BATCH 50 (the default), 1, 200 and 500
#   bash scripts/bench-drain.sh 50         # only 50
#
# Knobs (environment): EVENTS=10000 REPEAT=2 (each batch size is measured REPEAT times, in
# turn); SKIP_BUILD=1 to run the binary already in target/release/examples.
set -euo pipefail
cd "$(dirname "$0")/.."

batches=("$@")
((${#batches[@]})) || batches=(50 1 200 500)
REPEAT=${REPEAT:-2}

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "== building the release example"
    cargo build --release --example drain
fi

echo "== draining ${EVENTS:-10000} events, DELIVERY_BATCH ${batches[*]}, $REPEAT times (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
for _ in $(seq "$REPEAT"); do
    target/release/examples/drain "${batches[@]}"
done
echo "   (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
