#!/usr/bin/env bash
# What `npm run bench` runs: the fan-out benchmark (in memory, against a bare Socket.IO server), then the
# Kafka produce -> client benchmark on real Kafka and Redis (started here unless REDIS_URL and
# KAFKA_BROKERS are given or services are already up; stopped on exit if started here).
#   npm run bench                 # both
#   npm run bench -- --clients 500 # args go to the fan-out benchmark; `npm run bench:kafka -- …` for the other
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

node_modules/.bin/tsx bench/run.ts "$@"

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
node_modules/.bin/tsx bench/kafka-e2e.ts
