/**
 * A probe of where a destructive run's time goes: the action's step and the CLI's command, on the
 * same scene as the benchmark, each through a proxy that times every request to the engine.
 *
 *   RECLAIM_ENGINE=docker28 npx tsx bench/requests.ts prune 4    (2) at 300 images, 4 rounds
 *   RECLAIM_ENGINE=docker28 npx tsx bench/requests.ts cache 4    (6) on the build-cache scene
 *
 * Prints, per side and round, the whole process, when its first request went out, when its last
 * answer came, and per kind of request how many there were, their summed and longest times, and
 * how long the engine was busy with that kind (the union of their intervals). The sides alternate.
 */
import { createServer, request, type Server } from 'node:http'
import { join } from 'node:path'
import { Bed, log, median, runAction, stopOnSignals, timed, type Sample } from './lib'
import { Scenes } from './scenes'

interface Timed {
  kind: string
  start: number
  end: number
  status: number
}

/** The request's route with IDs, names and versions taken out, and its query's keys. */
function kindOf(method: string, url: string): string {
  const [path, query = ''] = url.split('?')
  const route = path
    .replace(/^\/v\d+\.\d+/, '')
    .replace(/^\/images\/(?!json$|prune$).+?(\/json|\/history)?$/, '/images/{ref}$1')
  const keys = [...new URLSearchParams(query).keys()].sort().join(',')
  return `${method} ${route}${keys ? `?${keys}` : ''}`
}

/** A proxy in front of the engine's socket that records when each request came and when its answer ended. */
async function timingProxy(engineSocket: string, at: string): Promise<{ server: Server; seen: Timed[] }> {
  const seen: Timed[] = []
  const server = createServer((req, res) => {
    const start = performance.now()
    const upstream = request(
      { socketPath: engineSocket, method: req.method, path: req.url, headers: req.headers },
      answer => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
        answer.on('end', () =>
          seen.push({
            kind: kindOf(req.method ?? '', req.url ?? ''),
            start,
            end: performance.now(),
            status: answer.statusCode ?? 0
          })
        )
      }
    )
    upstream.on('error', () => res.socket?.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>(resolve => server.listen(at, resolve))
  return { server, seen }
}

/** Milliseconds covered by at least one of the intervals. */
function busy(intervals: Timed[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start)
  let total = 0
  let [from, to] = [-Infinity, -Infinity]
  for (const { start, end } of sorted) {
    if (start > to) {
      total += to - from > 0 ? to - from : 0
      ;[from, to] = [start, end]
    } else to = Math.max(to, end)
  }
  return total + (to - from > 0 ? to - from : 0)
}

interface Round {
  side: 'action' | 'cli'
  ms: number
  code: number
  firstMs: number
  lastMs: number
  kinds: Record<
    string,
    { count: number; fromMs: number; toMs: number; sumMs: number; maxMs: number; busyMs: number; statuses: number[] }
  >
}

function summarise(side: Round['side'], sample: Sample, spawned: number, seen: Timed[]): Round {
  const kinds: Round['kinds'] = {}
  for (const kind of new Set(seen.map(t => t.kind))) {
    const of = seen.filter(t => t.kind === kind)
    kinds[kind] = {
      count: of.length,
      fromMs: Math.min(...of.map(t => t.start)) - spawned,
      toMs: Math.max(...of.map(t => t.end)) - spawned,
      sumMs: of.reduce((sum, t) => sum + t.end - t.start, 0),
      maxMs: Math.max(...of.map(t => t.end - t.start)),
      busyMs: busy(of),
      statuses: [...new Set(of.map(t => t.status))]
    }
  }
  return {
    side,
    ms: sample.ms,
    code: sample.code,
    firstMs: Math.min(...seen.map(t => t.start)) - spawned,
    lastMs: Math.max(...seen.map(t => t.end)) - spawned,
    kinds
  }
}

const SIDES = {
  prune: { inputs: { prune: 'all' }, cli: '/usr/bin/docker image prune -a -f' },
  cache: { inputs: { 'build-cache': 'all' }, cli: '/usr/bin/docker builder prune -af' }
}

let bed: Bed | undefined

async function main(): Promise<void> {
  const which = (process.argv[2] ?? 'prune') as keyof typeof SIDES
  const rounds = Number(process.argv[3] ?? 4)
  if (!SIDES[which]) throw new Error(`bench/requests.ts prune|cache [rounds], not ${which}`)
  stopOnSignals(() => [bed])
  bed = await Bed.start()
  const scenes = new Scenes(bed)
  log(`engine ${await scenes.init()}`)
  const snapshot =
    which === 'cache'
      ? (await scenes.ensureCache(), scenes.cacheSnapshotDir())
      : (await scenes.ensure([300]), scenes.snapshotDir(300))
  const out: Round[] = []
  for (let round = 0; round < rounds; round++) {
    const order: Round['side'][] = round % 2 === 0 ? ['action', 'cli'] : ['cli', 'action']
    for (const side of order) {
      await bed.restore(snapshot)
      const proxy = await timingProxy(bed.socket, join(bed.root, 'timing.sock'))
      const host = `unix://${join(bed.root, 'timing.sock')}`
      const spawned = performance.now()
      const sample =
        side === 'action'
          ? await runAction(SIDES[which].inputs, host)
          : await timed('/bin/sh', ['-c', SIDES[which].cli], { env: { ...bed.cliEnv(), DOCKER_HOST: host } })
      proxy.server.closeAllConnections()
      await new Promise<void>(resolve => proxy.server.close(() => resolve()))
      const r = summarise(side, sample, spawned, proxy.seen)
      out.push(r)
      log(
        `round ${round} ${side}: ${r.ms.toFixed(0)} ms, exit ${r.code}, requests ${r.firstMs.toFixed(0)}-${r.lastMs.toFixed(0)} ms`
      )
      for (const [kind, k] of Object.entries(r.kinds))
        log(
          `  ${kind}: ${k.count}, ${k.fromMs.toFixed(0)}-${k.toMs.toFixed(0)} ms, sum ${k.sumMs.toFixed(0)} ms, longest ${k.maxMs.toFixed(0)} ms, busy ${k.busyMs.toFixed(0)} ms, status ${k.statuses.join('/')}`
        )
    }
  }
  for (const side of ['action', 'cli'] as const) {
    const of = out.filter(r => r.side === side)
    log(
      `${side}: median ${median(of.map(r => r.ms)).toFixed(0)} ms; first request at ${median(of.map(r => r.firstMs)).toFixed(0)} ms, last answer at ${median(of.map(r => r.lastMs)).toFixed(0)} ms`
    )
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exitCode = 1
  })
  .finally(() => bed?.stop())
