// Run by testbed/runner.ts runBundle in place of dist/index.js (its `script` option): prints the
// environment the runner-like harness gives the action, so bench/lib.ts can spawn the bundle itself.
process.stdout.write(JSON.stringify(process.env))
