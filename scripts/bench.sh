#!/usr/bin/env bash
# What `npm run bench` runs: in memory, the fan-out benchmark (against a bare Socket.IO server), our
# gateway next to Centrifugo on the same WebSocket clients (bench:peers; Centrifugo is built with
# `go install` by scripts/centrifugo.sh, skipped with a message without Go), slow clients and compression; then on real Redis and Kafka (started here unless REDIS_URL and KAFKA_BROKERS
# are given or services are already up; stopped on exit if started here) the cost of the Socket.IO Redis
# adapter, store commits/s on one Redis node vs the Redis Cluster (bench/commits.ts), Kafka produce -> client latency, and audit replay (entries/s from Redis into a file, the
# gateway's RSS while streaming a 1,000,000-entry topic). Each prints a table and writes bench/results/*.json.
#   npm run bench                 # both
#   npm run bench -- --clients 500 # args go to the fan-out benchmark; `npm run bench:kafka -- …` for the other
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

node_modules/.bin/tsx bench/run.ts "$@"
node_modules/.bin/tsx bench/peers.ts
node_modules/.bin/tsx bench/slow-clients.ts
node_modules/.bin/tsx bench/compression.ts

owns_services=0
teardown() { if (( owns_services )); then bash scripts/services.sh down >/dev/null || true; fi; }
trap teardown EXIT
if [[ -z "${REDIS_URL:-}" || -z "${KAFKA_BROKERS:-}" ]]; then
  if ! bash scripts/services.sh env >/dev/null 2>&1; then
    owns_services=1
    bash scripts/services.sh up >/dev/null
  fi
  eval "$(bash scripts/services.sh env)"
  export REDIS_URL KAFKA_BROKERS
fi
# The processes the benchmarks start run on REDIS_URL (a role given both refuses to start): the cluster's
# seeds go to the commits benchmark alone, which compares the two.
cluster_nodes="${REDIS_CLUSTER_NODES:-}"
unset REDIS_CLUSTER_NODES
REDIS_CLUSTER_NODES="$cluster_nodes" node_modules/.bin/tsx bench/commits.ts
node_modules/.bin/tsx bench/adapter-cost.ts
node_modules/.bin/tsx bench/kafka-e2e.ts
node_modules/.bin/tsx bench/replay.ts
