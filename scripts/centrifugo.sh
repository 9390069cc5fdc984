#!/usr/bin/env bash
# Centrifugo, the peer our benchmarks compare against: built from the Go module proxy with `go install`
# into a cache outside the repo (never committed), run with a minimal config on loopback.
#
#   scripts/centrifugo.sh path     build once if missing, print the binary's path (exit 3: no Go toolchain)
#   scripts/centrifugo.sh config   print the config `run` uses (JSON) for the settings below
#   scripts/centrifugo.sh run      write that config and exec Centrifugo on it (the pid is Centrifugo's)
#
# Settings (env; BONDX_ prefixed, because Centrifugo itself reads every CENTRIFUGO_* variable):
#   BONDX_CENTRIFUGO_VERSION  v6.9.1          module version (the proxy's github.com/centrifugal/centrifugo/v6)
#   BONDX_CENTRIFUGO_PORT     8100            HTTP port: /connection/uni_websocket and /api
#   BONDX_CENTRIFUGO_SECRET   bench-secret    HS256 key of connection tokens (claims: sub, exp, channels)
#   BONDX_CENTRIFUGO_API_KEY  bench-api-key   X-API-Key of the HTTP server API (/api/publish, /api/batch)
#   BONDX_CENTRIFUGO_JOIN     false           uni_websocket join_push_messages: many pushes per frame, \n-delimited
#   BONDX_CENTRIFUGO_REDIS    (unset)         redis://host:port: the Redis engine instead of the memory engine
# Namespace `prices` (channels prices:<isin>) keeps history (1000 entries, 300 s), like our topics.
set -euo pipefail

VERSION="${BONDX_CENTRIFUGO_VERSION:-v6.9.1}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/bondx/centrifugo-${VERSION#v}"
BIN="$CACHE/bin/centrifugo"

log() { echo "[centrifugo] $*" >&2; }

build() {
  [[ -x "$BIN" ]] && return 0
  if ! command -v go >/dev/null 2>&1; then
    log "no Go toolchain on PATH: cannot build Centrifugo $VERSION (Centrifugo v6.9.1 needs Go >= 1.26, its go.mod)"
    exit 3
  fi
  log "building github.com/centrifugal/centrifugo/v6@$VERSION into $CACHE (minutes on 2 cores, once)"
  mkdir -p "$CACHE/bin"
  # Outside any module, so the repo's files play no part; GOBIN puts the binary in our cache.
  (cd "$CACHE" && GOBIN="$CACHE/bin" GOFLAGS=-mod=mod go install "github.com/centrifugal/centrifugo/v6@$VERSION") >"$CACHE/build.log" 2>&1 || {
    tail -n 20 "$CACHE/build.log" >&2
    log "build failed (log: $CACHE/build.log)"
    exit 1
  }
}

config() {
  local join="${BONDX_CENTRIFUGO_JOIN:-false}" engine='{"type":"memory"}'
  [[ "$join" == true || "$join" == false ]] || { log "BONDX_CENTRIFUGO_JOIN must be true or false"; exit 2; }
  if [[ -n "${BONDX_CENTRIFUGO_REDIS:-}" ]]; then
    local address="${BONDX_CENTRIFUGO_REDIS#redis://}"
    engine="{\"type\":\"redis\",\"redis\":{\"address\":[\"${address%/}\"]}}"
  fi
  cat <<JSON
{
  "http_server": { "address": "127.0.0.1", "port": ${BONDX_CENTRIFUGO_PORT:-8100} },
  "log": { "level": "warn" },
  "engine": $engine,
  "client": { "token": { "hmac_secret_key": "${BONDX_CENTRIFUGO_SECRET:-bench-secret}" }, "allowed_origins": ["*"] },
  "http_api": { "key": "${BONDX_CENTRIFUGO_API_KEY:-bench-api-key}" },
  "channel": { "namespaces": [ { "name": "prices", "history_size": 1000, "history_ttl": "300s" } ] },
  "uni_websocket": { "enabled": true, "join_push_messages": $join },
  "usage_stats": { "disabled": true }
}
JSON
}

case "${1:-}" in
  path)
    build
    echo "$BIN"
    ;;
  config) config ;;
  run)
    build
    mkdir -p "$CACHE/run"
    file="$CACHE/run/config-${BONDX_CENTRIFUGO_PORT:-8100}.json"
    config >"$file"
    exec "$BIN" --config "$file"
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
