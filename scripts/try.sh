#!/usr/bin/env bash
# Runs the bundled action for real, the way the runner does, and prints its log, outputs and job
# summary. Arguments are inputs as name=value (refs=app:* prune=all dry-run=true ...).
# With no docker-host input and no DOCKER_HOST, it starts a private engine with sample images
# and stops it afterwards; otherwise it acts on the engine you name.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-testbed.sh >/dev/null
[[ -d node_modules ]] || npm install --no-audit --no-fund >/dev/null
exec npx --no-install tsx testbed/try.ts "$@"
