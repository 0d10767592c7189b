/**
 * A recording proxy between the action and the engine: every Engine API request with its arrival
 * time, when the engine's answer began and ended, and its size. Used by bench/analyse.ts only:
 * it adds a little latency per call, so it is never on the timed path of bench/run.ts.
 */
import { createServer, request, type IncomingMessage, type ServerResponse, Agent } from 'node:http'
import { rm } from 'node:fs/promises'
import { addTo } from '../src/common/groups'

export interface Call {
  method: string
  path: string
  /** The path with IDs and names replaced, to group calls: GET /images/{id}/json. */
  kind: string
  /** process.hrtime in ms (compare with Sample.startedAtMs). */
  start: number
  firstByte: number
  end: number
  status: number
  bytes: number
}

export function kindOf(method: string, path: string): string {
  const p = path.replace(/^\/v\d+\.\d+/, '').split('?')[0]
  const generic = p
    .replace(/^\/images\/(?!json$|prune$|create$|load$|search$|get$)[^/]+(?=\/|$)/, '/images/{id}')
    .replace(/^\/containers\/(?!json$|create$|prune$)[^/]+(?=\/|$)/, '/containers/{id}')
  return `${method} ${generic}`
}

export class TraceProxy {
  readonly calls: Call[] = []
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 })
  private server = createServer((req, res) => this.forward(req, res))

  constructor(
    readonly socket: string,
    private readonly upstream: string
  ) {}

  /** Takes the calls recorded so far, with times made relative to `originMs` (a child's spawn). */
  take(originMs: number): Call[] {
    const calls = this.calls.splice(0).map(c => ({ ...c, start: c.start - originMs, firstByte: c.firstByte - originMs, end: c.end - originMs }))
    return calls.sort((a, b) => a.start - b.start)
  }

  private now(): number {
    return Number(process.hrtime.bigint()) / 1e6
  }

  async listen(): Promise<void> {
    await rm(this.socket, { force: true })
    await new Promise<void>(resolve => this.server.listen(this.socket, resolve))
  }

  async close(): Promise<void> {
    this.agent.destroy()
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
    await rm(this.socket, { force: true })
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const call: Call = { method: req.method ?? '', path: req.url ?? '', kind: kindOf(req.method ?? '', req.url ?? ''), start: this.now(), firstByte: 0, end: 0, status: 0, bytes: 0 }
    const up = request({ socketPath: this.upstream, method: req.method, path: req.url, headers: req.headers, agent: this.agent }, upRes => {
      call.firstByte = this.now()
      call.status = upRes.statusCode ?? 0
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.on('data', (chunk: Buffer) => (call.bytes += chunk.length))
      upRes.pipe(res)
      upRes.on('end', () => {
        call.end = this.now()
        this.calls.push(call)
      })
    })
    up.on('error', err => {
      call.end = this.now()
      call.status = 599
      this.calls.push(call)
      res.destroy(err)
    })
    req.pipe(up)
  }
}

export interface KindStats {
  kind: string
  count: number
  /** Sum of per-call latencies (request in, answer's end out). */
  sumMs: number
  medianMs: number
  p90Ms: number
  maxMs: number
  /** From the first call of this kind to the end of the last: the wall time the phase took. */
  spanMs: number
  firstAt: number
  lastEnd: number
  bytes: number
  /** Most calls in flight at once. */
  concurrency: number
}

export function summarise(calls: Call[]): KindStats[] {
  const kinds = new Map<string, Call[]>()
  for (const c of calls) addTo(kinds, c.kind, c)
  return [...kinds.entries()]
    .map(([kind, cs]) => {
      const lat = cs.map(c => c.end - c.start).sort((a, b) => a - b)
      const firstAt = Math.min(...cs.map(c => c.start))
      const lastEnd = Math.max(...cs.map(c => c.end))
      const events = cs.flatMap(c => [
        [c.start, 1],
        [c.end, -1]
      ]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
      let live = 0
      let concurrency = 0
      for (const [, d] of events) concurrency = Math.max(concurrency, (live += d))
      return {
        kind,
        count: cs.length,
        sumMs: lat.reduce((a, b) => a + b, 0),
        medianMs: lat[Math.floor(lat.length / 2)],
        p90Ms: lat[Math.floor(lat.length * 0.9)],
        maxMs: lat[lat.length - 1],
        spanMs: lastEnd - firstAt,
        firstAt,
        lastEnd,
        bytes: cs.reduce((a, c) => a + c.bytes, 0),
        concurrency
      }
    })
    .sort((a, b) => a.firstAt - b.firstAt)
}
