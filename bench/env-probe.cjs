// Run by testbed/runner.ts runBundle in place of dist/index.js (its `script` option): prints the
// environment the test bed gives the action as a runner would, so bench/lib.ts can spawn the bundle
// itself and time nothing but that one process.
process.stdout.write(JSON.stringify(process.env))
