// Run by bench/watch.ts beside the daemon: the least a Node process does to follow the engine's
// events, one request and a JSON.parse a line, so the daemon's own cost can be told from Node's.
const { request } = require('node:http')

const [socket, path] = process.argv.slice(2)
let events = 0
let pending = ''
const req = request({ socketPath: socket, method: 'GET', path }, res => {
  res.on('data', chunk => {
    pending += chunk.toString()
    let newline
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline).trim()
      pending = pending.slice(newline + 1)
      if (line && JSON.parse(line).Type) events++
    }
  })
  process.stdout.write('following\n')
})
req.end()
process.on('SIGTERM', () => {
  process.stdout.write(`${events}\n`)
  process.exit(0)
})
