// Preloaded into the bundle by bundle.test.ts (NODE_OPTIONS=--require): at exit, writes the
// native add-ons (.node shared objects) mapped into the process to the file NATIVE_PROBE_OUT names.
const { readFileSync, writeFileSync } = require('node:fs')

process.on('exit', () => {
  const mapped = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .map(line => line.split(/\s+/)[5] ?? '')
    .filter(path => path.endsWith('.node'))
  writeFileSync(process.env.NATIVE_PROBE_OUT, JSON.stringify([...new Set(mapped)]))
})
