#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (as root): installs the test bed's packages and
# the npm dependencies, type-checks, builds dist/, then runs the unit tests once and the
# integration tests once per engine flavour (testbed/ENGINES.md), each against a private engine
# that the suite starts and stops itself.
#
# RECLAIM_ENGINES picks the flavours (space separated); the default is all six, the longest runs
# first. RECLAIM_LANES (default 2) is how many flavours run at once: each has its own engine and
# root, and their tests mostly wait on the engine, so two share this 2-CPU machine well. Each
# run's output is printed whole when it ends.
# The closing line sums every run; the exit status is non-zero if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
FLAVOURS=${RECLAIM_ENGINES:-docker26-containerd docker28-containerd podman docker20 docker26 docker28}
LANES=${RECLAIM_LANES:-2}

bash scripts/install-testbed.sh
# npm 11 leaves other platforms' optional bindings out of the lock it writes, and its own
# `npm ci` then calls that lock out of sync; `npm install` honours the lock as it is.
npm install --no-audit --no-fund
npm run typecheck
npm run lint
npm run format:check
npm run build
mkdir -p .testbed
rm -f .testbed/jest-*.json

status=0
runs=(unit)
echo "=== unit tests"
npm run test:unit -- --json --outputFile=.testbed/jest-unit.json || status=1

integration() {
  local flavour=$1 rc=0
  # --forceExit: a test that timed out may leave a promise polling an engine the teardown stopped;
  # the run must still end (the teardown stops every engine the tests started, by pid).
  RECLAIM_ENGINE=$flavour npm run test:itg -- --forceExit --json --outputFile=".testbed/jest-$flavour.json" \
    >".testbed/itg-$flavour.log" 2>&1 || rc=$?
  flock .testbed/print.lock sh -c 'echo "=== integration tests against the $1 engine"; cat "$2"' - \
    "$flavour" ".testbed/itg-$flavour.log"
  return "$rc"
}

pids=()
for flavour in $FLAVOURS; do
  runs+=("$flavour")
  while [ "$(jobs -rp | wc -l)" -ge "$LANES" ]; do sleep 1; done
  integration "$flavour" &
  pids+=("$!")
done
# Each by its pid: bash keeps a finished child's status until it is asked for.
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

# One closing line any reader can count, whatever the runner prints above it: the sum over the
# runs. A suite that could not run counts as one failure, and so does a run that wrote no report
# (its engine did not start, say), so the line never hides a failed run.
node -e '
  const fs = require("fs")
  let passed = 0, failed = 0
  for (const run of process.argv.slice(1)) {
    const file = `.testbed/jest-${run}.json`
    if (!fs.existsSync(file)) {
      console.log(`run ${run}: no report (the run did not finish)`)
      failed += 1
      continue
    }
    const r = JSON.parse(fs.readFileSync(file, "utf8"))
    const broken = r.numRuntimeErrorTestSuites
    console.log(`run ${run}: ${r.numPassedTests} passed / ${r.numFailedTests} failed` + (broken ? ` / ${broken} suites could not run` : ""))
    passed += r.numPassedTests
    failed += r.numFailedTests + broken + (r.numTotalTests === 0 && !r.success && broken === 0 ? 1 : 0)
  }
  console.log(`tests: ${passed} passed, ${failed} failed`)
' "${runs[@]}" || status=1
exit "$status"
