#!/usr/bin/env node
import { run } from './run'
import { runWatch } from './watch'

const argv = process.argv.slice(2)
void (argv[0] === 'watch' ? runWatch(argv.slice(1), process) : run(argv, process)).then(code => {
  process.exitCode = code
})
