#!/usr/bin/env bash
# The README's first command: installs what skiff needs (scripts/setup.sh), then runs
# `skiff up` (the whole single-node cluster in one process). Extra arguments go to `skiff up`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/cli/main.js up "$@"
