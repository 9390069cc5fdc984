#!/usr/bin/env bash
# A headless Chromium for the dashboard's browser test (test/browser/dashboard.test.ts runs this).
#
#   scripts/browser.sh     prints the browser's path; installs Debian's `chromium` first if missing
#
# CHROMIUM_PATH set -> that browser is used as it is (must be executable). Otherwise the first of
# chromium / chromium-browser on PATH, else `apt-get update` + `apt-get install chromium` (as root, or
# via sudo). No browser build is ever downloaded by npm (playwright-core is only the driver).
# Progress goes to stderr, the path alone to stdout; a browser that can not be had is exit 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG="$ROOT/.services/apt-chromium.log"

log() { echo "[browser] $*" >&2; }
die() { echo "[browser] ERROR: $*" >&2; exit 1; }

if [[ -n "${CHROMIUM_PATH:-}" ]]; then
  [[ -x "$CHROMIUM_PATH" ]] || die "CHROMIUM_PATH=$CHROMIUM_PATH is not executable"
  echo "$CHROMIUM_PATH"
  exit 0
fi

find_browser() { command -v chromium || command -v chromium-browser; }

if ! find_browser >/dev/null; then
  command -v apt-get >/dev/null || die "chromium is not installed and apt-get is not available; install it or set CHROMIUM_PATH"
  as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
  mkdir -p "$(dirname "$LOG")"
  # Wait for (not fail on) a concurrent apt/dpkg run holding the lock.
  lock=(-o DPkg::Lock::Timeout=300)
  log "installing Debian's chromium (apt-get update + install; log in $LOG)"
  as_root apt-get "${lock[@]}" update -qq >"$LOG" 2>&1 </dev/null || die "apt-get update failed (see $LOG)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq --no-install-recommends chromium >>"$LOG" 2>&1 </dev/null \
    || die "apt-get install chromium failed (see $LOG)"
fi
find_browser || die "chromium still not on PATH after the install"
