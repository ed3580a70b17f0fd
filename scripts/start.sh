#!/usr/bin/env bash
# The one command that starts the whole platform: npm start
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx vite build --config web/vite.config.ts --logLevel warn
exec node --import tsx scripts/platform.ts
