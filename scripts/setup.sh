#!/usr/bin/env bash
# Installs and starts what mpdp needs on a fresh machine; safe to run again (does nothing twice).
# Usage: scripts/setup.sh [--for-tests]   (tests also need Chromium and docker-compose's config check)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

# 1. npm dependencies (again only when package-lock.json changed).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

# 2. PostgreSQL on 127.0.0.1:5432 (only when DATABASE_URL points at this machine).
DB_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mpdp}"
if [[ "$DB_URL" =~ @(127\.0\.0\.1|localhost)(:5432)?/ ]]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      log "installing PostgreSQL from Debian"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi

# 3. The Temporal CLI (built from its Go module when no binary is found; never downloaded).
if [ -z "${TEMPORAL_ADDRESS:-}" ]; then
  node --import tsx scripts/ensure-temporal.ts
fi

# 4. For tests: Chromium from Debian (browser tests) and docker-compose (checks docker-compose.yml parses).
if [ "${1:-}" = "--for-tests" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # Mini program icons are emoji: without a colour emoji font screenshots show empty boxes.
  [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
