#!/usr/bin/env bash
# The one command that runs every test: npm test
# (unit, workflow, replay, integration, browser; plus type check and lint).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --for-tests
mkdir -p test-artifacts
echo "[test] building the console" >&2
npx vite build --config web/vite.config.ts --logLevel warn
echo "[test] type check" >&2
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p web/tsconfig.json   # the console's services against the API's route types
echo "[test] lint" >&2
npx eslint .
echo "[test] docker-compose.yml parses" >&2
if docker compose version >/dev/null 2>&1; then docker compose -f docker-compose.yml config -q; else docker-compose -f docker-compose.yml config -q; fi
echo "[test] vitest" >&2
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@"
code=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped`);
' || true
exit $code
