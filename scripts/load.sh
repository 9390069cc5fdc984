#!/usr/bin/env bash
# Load scenarios (Artillery 2, artillery/*.yml) against a local in-memory stack.
#
#   npm run load                      # all scenarios
#   npm run load -- market-data       # one of: market-data mixed reconnect mobile
#   bash scripts/load.sh mixed mobile # several
#
# Starts `bondx all` (in-memory store + market simulator at SIMULATOR_RATE events/s) on 127.0.0.1,
# waits for /api/v1/ws/health, runs each scenario with `npx --yes artillery@2.0.34` (not a
# dependency of the project: it is large), samples the server's outbound queue (/metrics) and open
# connections (/api/v1/ws/health) every second, writes artillery/reports/{scenario}.json|.log,
# prints a summary table and stops the stack. Exit code 0 only when every scenario met every
# target (connection success > 95%, p95 latency < 100 ms, drop rate < 1%, queue < 1000, and the
# scenario's own `ensure` checks).
#
# Environment (all optional): LOAD_PORT (8000), LOAD_PROMETHEUS_PORT (8001), SIMULATOR_RATE (200),
# JWT_SECRET (random per run), ARTILLERY_VERSION (2.0.34).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_SCENARIOS=(market-data mixed reconnect mobile)
PORT="${LOAD_PORT:-8000}"
PROM_PORT="${LOAD_PROMETHEUS_PORT:-8001}"
RATE="${SIMULATOR_RATE:-200}"
ARTILLERY=(npx --yes "artillery@${ARTILLERY_VERSION:-2.0.34}")
REPORTS="$ROOT/artillery/reports"
STACK_START_TIMEOUT_S=90
SCENARIO_TIMEOUT_S=150 # every scenario is < 60 s of phases + holds; this only bounds a hang

say() { echo "[load] $*" >&2; }

scenarios=()
for arg in "${@:-all}"; do
  case "$arg" in
    all) scenarios+=("${ALL_SCENARIOS[@]}") ;;
    market-data | mixed | reconnect | mobile) scenarios+=("$arg") ;;
    market) scenarios+=(market-data) ;;
    *) say "unknown scenario '$arg' (use: all ${ALL_SCENARIOS[*]})"; exit 2 ;;
  esac
done

export JWT_SECRET="${JWT_SECRET:-load-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"
export ARTILLERY_DISABLE_TELEMETRY=true # loopback-only machine; nothing leaves it
mkdir -p "$REPORTS"

if curl -sf --max-time 1 "http://127.0.0.1:$PORT/api/v1/ws/health" >/dev/null 2>&1; then
  say "something already answers on 127.0.0.1:$PORT: stop it or set LOAD_PORT"
  exit 2
fi

STACK_PID=""
stop_stack() {
  [[ -n "$STACK_PID" ]] || return 0
  # The stack runs in its own session (setsid): its process group is exactly what we started.
  kill -TERM -- "-$STACK_PID" 2>/dev/null
  for _ in $(seq 1 40); do
    kill -0 "$STACK_PID" 2>/dev/null || break
    sleep 0.25
  done
  kill -KILL -- "-$STACK_PID" 2>/dev/null
  wait "$STACK_PID" 2>/dev/null
  STACK_PID=""
}
trap 'rc=$?; stop_stack; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting stack: bondx all on 127.0.0.1:$PORT (metrics :$PROM_PORT), SIMULATOR_RATE=$RATE"
HOST=127.0.0.1 PORT="$PORT" PROMETHEUS_PORT="$PROM_PORT" SIMULATOR_RATE="$RATE" LOG_LEVEL="${LOG_LEVEL:-warn}" \
  setsid node_modules/.bin/tsx src/cli/bondx.ts all >"$REPORTS/stack.log" 2>&1 &
STACK_PID=$!

deadline=$((SECONDS + STACK_START_TIMEOUT_S))
until curl -sf --max-time 1 "http://127.0.0.1:$PORT/api/v1/ws/health" >/dev/null 2>&1; do
  if ! kill -0 "$STACK_PID" 2>/dev/null; then
    say "stack exited during start-up:"; tail -20 "$REPORTS/stack.log" >&2; exit 1
  fi
  if ((SECONDS >= deadline)); then
    say "stack not healthy after ${STACK_START_TIMEOUT_S}s:"; tail -20 "$REPORTS/stack.log" >&2; exit 1
  fi
  sleep 0.5
done
sleep 2 # let the simulator fill every topic before the first snapshot
say "stack healthy"

# One line per second: "<largest outbound queue of any connection> <open connections>".
sample() {
  local queue conns
  queue=$(curl -s --max-time 1 "http://127.0.0.1:$PROM_PORT/metrics" | awk '$1 ~ /^bondx_queue_size/ { if ($2 > m) m = $2 } END { print m + 0 }')
  conns=$(curl -s --max-time 1 "http://127.0.0.1:$PORT/api/v1/ws/health" | grep -o '"total":[0-9]*' | head -1 | cut -d: -f2)
  echo "${queue:-0} ${conns:-0}"
}

connections_now() { sample | awk '{ print $2 }'; }

for name in "${scenarios[@]}"; do
  # Start each scenario from an idle gateway (per-user connection limits, clean queue samples).
  for _ in $(seq 1 20); do [[ "$(connections_now)" == "0" ]] && break; sleep 0.5; done
  rm -f "$REPORTS/$name.json" "$REPORTS/$name.samples" "$REPORTS/$name.rc"
  say "running $name (artillery/$name.yml) ..."
  started=$SECONDS
  timeout "$SCENARIO_TIMEOUT_S" "${ARTILLERY[@]}" run --target "http://127.0.0.1:$PORT" \
    --output "$REPORTS/$name.json" "artillery/$name.yml" >"$REPORTS/$name.log" 2>&1 &
  art_pid=$!
  while kill -0 "$art_pid" 2>/dev/null && ((SECONDS - started < SCENARIO_TIMEOUT_S + 5)); do
    sample >>"$REPORTS/$name.samples"
    sleep 1
  done
  wait "$art_pid"
  rc=$?
  echo "$rc" >"$REPORTS/$name.rc"
  sample >>"$REPORTS/$name.samples" # and once after the run
  say "$name finished in $((SECONDS - started))s, artillery exit $rc"
  sed -n '/^Checks:/,$p' "$REPORTS/$name.log" | grep -E '^(ok|fail):' | sed 's/^/[load]   /' >&2
done

health=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/api/v1/ws/health")
say "server health after the run: $(echo "$health" | grep -o '"status":"[a-z]*"' | head -1), alerts: $(echo "$health" | grep -o '"alerts":\[[^]]*\]' | head -1)"
stop_stack

node artillery/summary.mjs "$REPORTS" "${scenarios[@]}"
