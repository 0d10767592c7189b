#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (as root): installs the test bed's packages and
# the npm dependencies, type-checks, builds dist/, then runs the unit tests and the integration
# tests against a private Docker engine that the suite starts and stops itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-testbed.sh
# npm 11 leaves other platforms' optional bindings out of the lock it writes, and its own
# `npm ci` then calls that lock out of sync; `npm install` honours the lock as it is.
npm install --no-audit --no-fund
npm run typecheck
npm run build
mkdir -p .testbed
status=0
npm test -- --json --outputFile=.testbed/jest.json || status=$?
# One closing line any reader can count, whatever the runner prints above it.
node -e '
  const r = require("./.testbed/jest.json")
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)
' || true
exit "$status"
