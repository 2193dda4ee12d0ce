#!/usr/bin/env bash
# The test command: host setup, lint, type-check, then every test (unit, integration in network
# namespaces, e2e with dockerd and kubectl 1.33). Extra arguments go to tap (e.g. a test file).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.bin:$PATH"
echo "==> lint" >&2
npx eslint --max-warnings=0 src test scripts
echo "==> typecheck" >&2
npx tsc -p tsconfig.json --noEmit
echo "==> tests" >&2
if [ "$#" -gt 0 ]; then
  exec npx tap "$@"
fi
exec npx tap
