// One removal phase for bench/removals.ts, in a fresh Node process as the action's is:
//   node removals-child.cjs <client> <width> <socket> <ids-file>
// DELETE /images/{id}?noprune=1 for every ID in the file, <width> at a time, through dockerode,
// docker-modem's dial or node:http. Prints {"ms", "cpuMs"} for the phase alone.
const http = require('node:http')
const { readFileSync } = require('node:fs')
const { inspect } = require('node:util')
const Docker = require('dockerode')

const [client, width, socket, idsFile] = process.argv.slice(2)
const ids = readFileSync(idsFile, 'utf8').trim().split('\n')
const agent = new http.Agent({ keepAlive: true })
// docker-modem formats every request's options with util.inspect, agent included: with its
// sockets that costs about 20 ms of CPU a request (src/connection.ts hides it the same way).
Object.defineProperty(agent, inspect.custom, { value: () => '[Agent]' })
const docker = new Docker({ socketPath: socket, version: 'v1.41', agent })

function viaHttp(id) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, agent, method: 'DELETE', path: `/v1.41/images/${id}?noprune=1` }, res => {
      const chunks = []
      res.on('data', chunk => chunks.push(chunk))
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(Buffer.concat(chunks).toString())) : reject(new Error(`DELETE ${id}: ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.end()
  })
}

function viaDial(id) {
  const opts = { path: `/images/${id}?`, method: 'DELETE', options: { noprune: true }, statusCodes: { 200: true, 404: 'no such image', 409: 'conflict', 500: 'server error' } }
  return new Promise((resolve, reject) => docker.modem.dial(opts, (err, data) => (err ? reject(err) : resolve(data))))
}

const send = { http: viaHttp, dial: viaDial, dockerode: id => docker.getImage(id).remove({ noprune: true }) }[client]
if (!send) throw new Error(`unknown client ${client}`)

async function main() {
  const start = performance.now()
  const cpu = process.cpuUsage()
  let next = 0
  await Promise.all(Array.from({ length: Number(width) }, async () => {
    while (next < ids.length) await send(ids[next++])
  }))
  const used = process.cpuUsage(cpu)
  process.stdout.write(JSON.stringify({ ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000 }))
  agent.destroy()
}

main().catch(error => {
  process.stderr.write(`${error.stack ?? error}\n`)
  process.exitCode = 1
})
