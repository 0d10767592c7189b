// Preloaded into the bundle by bundle.test.ts (NODE_OPTIONS=--require): at exit, writes the Node
// built-in modules the process required through require() to the file BUILTINS_PROBE_OUT names.
// The bundle's own modules are invisible from here, but each library the bundle carries asks
// for the built-ins it needs as it loads, so these say which libraries were loaded.
const Module = require('node:module')
const { writeFileSync } = require('node:fs')

const asked = new Set()
const original = Module.prototype.require
Module.prototype.require = function require(id) {
  if (Module.isBuiltin(id)) asked.add(id.replace(/^node:/, ''))
  return original.apply(this, arguments)
}

process.on('exit', () => {
  writeFileSync(process.env.BUILTINS_PROBE_OUT, JSON.stringify([...asked].sort()))
})
