#!/usr/bin/env bash
# What `npm test` runs: real Redis, Redis Cluster and Kafka up, vitest, services down.
#
#   npm test                      # gates (type check, lint), then the whole suite
#   npm test -- test/unit -t foo  # args go straight to `vitest run` (gates skipped: a focused run)
#
# REDIS_URL, REDIS_CLUSTER_NODES and KAFKA_BROKERS all set -> use those, start nothing.
# Services already running from `scripts/services.sh up` -> reuse them and
# leave them running. Otherwise start them here and stop them on exit.
# Exit code is vitest's; any failure before the tests run exits non-zero
# (a missing service is a failure, never a skip). The last line printed is
# `tests: N passed, M failed`.
set -uo pipefail # no -e: vitest's exit code is collected by hand

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS=.services/vitest.json

say() { echo "[test] $*" >&2; }

owns_services=0
teardown() {
  if (( owns_services )); then
    owns_services=0
    bash scripts/services.sh down || say "WARNING: services.sh down failed"
  fi
}
trap 'rc=$?; teardown; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A fresh clone has no node_modules; vitest and the probes need them.
if [[ ! -x node_modules/.bin/vitest ]]; then
  say "node_modules missing, running npm ci"
  npm ci --no-audit --no-fund || { say "ERROR: npm ci failed"; exit 1; }
fi

# Gates first, and only for the whole suite: a type error or a lint error fails `npm test` (and CI)
# before any service starts. Focused runs (`npm test -- file`) skip them, so work in progress elsewhere
# in the tree does not block one test file.
if (( $# == 0 )); then
  say "type check (npm run typecheck)"
  npm run --silent typecheck || { say "ERROR: type check failed"; exit 1; }
  say "lint (npm run lint: biome, warnings are errors)"
  npm run --silent lint || { say "ERROR: lint failed"; exit 1; }
fi

mkdir -p .services
rm -f "$RESULTS"

if bash scripts/services.sh env >/dev/null 2>&1; then
  say "using services that are already up"
else
  owns_services=1 # set first so a half-started `up` is cleaned up too
  bash scripts/services.sh up >/dev/null || { say "ERROR: could not start Redis/Redis Cluster/Kafka for the tests"; exit 1; }
fi
svc_env="$(bash scripts/services.sh env)" || { say "ERROR: services are not available"; exit 1; }
eval "$svc_env"
export REDIS_URL KAFKA_BROKERS
# The suite's roles run on the single node (REDIS_URL): the cluster goes only to the tests that ask for
# it, under a name no spawned role (which inherits this environment) reads as its configuration.
export BONDX_TEST_REDIS_CLUSTER_NODES="$REDIS_CLUSTER_NODES"
unset REDIS_CLUSTER_NODES
export KAFKAJS_NO_PARTITIONER_WARNING="${KAFKAJS_NO_PARTITIONER_WARNING:-1}"
say "REDIS_URL=$REDIS_URL KAFKA_BROKERS=$KAFKA_BROKERS BONDX_TEST_REDIS_CLUSTER_NODES=$BONDX_TEST_REDIS_CLUSTER_NODES"

npx vitest run --reporter=default --reporter=json --outputFile="$RESULTS" "$@"
rc=$?

# Stop services before the summary so the summary really is the last line.
teardown

if [[ -s "$RESULTS" ]]; then
  # Failed = failed tests + files that failed without any failed test
  # (e.g. an import error), so a red run never reads "0 failed".
  summary="$(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const fileErrors = (r.testResults ?? []).filter((f) => f.status === "failed" &&
      !(f.assertionResults ?? []).some((a) => a.status === "failed")).length;
    console.log(`tests: ${r.numPassedTests ?? 0} passed, ${(r.numFailedTests ?? 0) + fileErrors} failed`);
  ' "$RESULTS")" || summary=""
fi
if [[ -z "${summary:-}" ]]; then
  say "vitest wrote no readable results to $RESULTS"
  (( rc != 0 )) || rc=1
  exit "$rc"
fi
echo "$summary"
exit "$rc"
