/**
 * The host daemon's benchmark (issue #20): `docker-image-reclaim watch` as its own process beside a
 * private engine, its CPU and memory idle and under bursts of engine events, how soon the ledger on
 * disk holds the last event of a burst, and whether it holds exactly the uses the engine reported.
 * bench/README.md ("The host daemon") says how to run it, the targets and why.
 *
 *   npm run build && npm run bench:watch
 *
 * CPU and memory come from /proc/<pid>/stat and /proc/<pid>/status of the daemon's node process.
 * The events are counted, and the expected ledger computed, from a second subscriber to the
 * engine's event stream, opened by this script before each burst.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { request, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { api, API_VERSION } from '../testbed/api'
import { isFlavour, type Flavour } from '../testbed/engine'
import { bedEnv, sleep } from '../testbed/process'
import { Scene } from '../testbed/scene'
import { BENCH_DIR, Bed, DOCKER, loadAverage, log, machine, run, stopOnSignals, type Machine } from './lib'
import { REPO_ROOT } from '../testbed/runner'
import { FOLLOWED_ACTIONS } from '../src/plan/last-use-ledger'

const CLI_BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'index.js')
const DEFAULT_FLAVOUR: Flavour = 'docker28'
const IDLE_S = Number(process.env.BENCH_IDLE_S || 60)
/** Images on the engine: the daemon's name cache and every reload of it cover all of them. */
const IMAGES = Number(process.env.BENCH_WATCH_IMAGES || 300)
/** Container create + remove cycles of burst A: two events each. */
const CONTAINER_CYCLES = Number(process.env.BENCH_WATCH_CYCLES || 1500)
/** Tag, create, untag, remove cycles of burst B: four events each. */
const MIXED_CYCLES = Number(process.env.BENCH_WATCH_MIXED || 500)
/** Requests in flight at once: enough to keep a 2-CPU engine busy without queueing behind each other. */
const WORKERS = 4
/** A folder for a V8 CPU profile of the daemon (written when it stops), to see where its CPU goes; slows it. */
const CPU_PROF = process.env.BENCH_WATCH_CPU_PROF
const REPO = 'wb'
const TAGGED = 'wbt'
/** Clock ticks a second, the unit of /proc/<pid>/stat's CPU times; set from `getconf CLK_TCK` at the start. */
let CLK_TCK = 100
const MB = 1e6
const LEDGER_POLL_MS = 20
const RSS_POLL_MS = 100
const SETTLE_TIMEOUT_MS = 120_000

// ---------------------------------------------------------------- the targets, set before measuring

const TARGETS = {
  idleCpuPercent: 0.1,
  idleRssMB: 64,
  burstCpuMsPer1000: 100,
  burstPeakRssMB: 100,
  ledgerLagMs: 2000
}

// ---------------------------------------------------------------- /proc

interface ProcSample {
  /** utime + stime of every thread of the process, in milliseconds. */
  cpuMs: number
  /** stime alone: the kernel's share (socket reads, the ledger's fsyncs). */
  systemMs: number
  rssKb: number
  /** The kernel's own peak of the resident set (VmHWM) since the process started. */
  hwmKb: number
  /** Context switches of the main thread: how often it woke up. */
  switches: number
}

function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  const systemTicks = Number(fields[12])
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
  return {
    cpuMs: (ticks * 1000) / CLK_TCK,
    systemMs: (systemTicks * 1000) / CLK_TCK,
    rssKb: field('VmRSS'),
    hwmKb: field('VmHWM'),
    switches: field('voluntary_ctxt_switches') + field('nonvoluntary_ctxt_switches')
  }
}

/** CPU of a process and all its descendants (dockerd and the containerd it started), in milliseconds. */
async function treeCpuMs(root: number): Promise<number> {
  const parents = new Map<number, number>()
  const cpu = new Map<number, number>()
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      parents.set(Number(name), Number(fields[1]))
      cpu.set(Number(name), ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK)
    } catch {
      // gone meanwhile
    }
  }
  let total = 0
  for (const [pid, ms] of cpu) {
    let p: number | undefined = pid
    while (p !== undefined && p > 1 && p !== root) p = parents.get(p)
    if (p === root) total += ms
  }
  return total
}

/** Samples the resident set every RSS_POLL_MS until stopped; returns the largest seen. */
function rssWatcher(pid: number): { stop: () => number } {
  let peak = procSample(pid).rssKb
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, procSample(pid).rssKb)
    } catch {
      // the daemon is gone; the phase reports it
    }
  }, RSS_POLL_MS)
  return {
    stop: () => {
      clearInterval(timer)
      return peak
    }
  }
}

// ---------------------------------------------------------------- the engine's events, seen from here

interface SeenEvent {
  type: string
  action: string
  actorId: string
  image?: string
  /** Milliseconds since the epoch, as the daemon reads it (timeNano / 1e6, floored). */
  time: number
}

/** A second subscriber to the engine's image and container events, opened before a burst. */
class EventTap {
  readonly events: SeenEvent[] = []
  private response: IncomingMessage | undefined

  private constructor(private readonly req: ReturnType<typeof request>) {}

  static open(socket: string): Promise<EventTap> {
    const filters = encodeURIComponent(JSON.stringify({ type: ['image', 'container'] }))
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: socket, method: 'GET', path: `/${API_VERSION}/events?filters=${filters}` })
      const tap = new EventTap(req)
      req.on('response', res => {
        tap.response = res
        let pending = ''
        res.on('data', (chunk: Buffer) => {
          pending += chunk.toString()
          let newline: number
          while ((newline = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, newline).trim()
            pending = pending.slice(newline + 1)
            if (line) tap.take(line)
          }
        })
        res.on('error', () => undefined)
        resolve(tap)
      })
      req.on('error', reject)
      req.end()
    })
  }

  private take(line: string): void {
    const m = JSON.parse(line) as {
      Type: string
      Action: string
      Actor: { ID: string; Attributes?: Record<string, string> }
      timeNano: number
    }
    const time = Math.floor(m.timeNano / 1e6)
    this.events.push({ type: m.Type, action: m.Action, actorId: m.Actor.ID, image: m.Actor.Attributes?.image, time })
  }

  close(): void {
    this.response?.destroy()
    this.req.destroy()
  }
}

// ---------------------------------------------------------------- the floors: other followers of the same events

/** A process that follows the same events beside the daemon, measured over the same windows. */
interface Floor {
  label: string
  child: ChildProcess
  pid: number
}

const FLOOR_LABELS = {
  node: 'bare Node reader',
  cli: 'docker events CLI'
} as const

/**
 * bench/events-reader.cjs, the least a Node process does to follow the events; and `docker events`
 * with JSON lines, which is how docuum follows them (it spawns the CLI and reads its output).
 */
async function startFloors(bed: Bed): Promise<Floor[]> {
  const filters = encodeURIComponent(JSON.stringify({ type: ['image', 'container'] }))
  const reader = spawn(
    process.execPath,
    [join(BENCH_DIR, 'events-reader.cjs'), bed.socket, `/${API_VERSION}/events?filters=${filters}`],
    { env: bedEnv(), stdio: ['ignore', 'pipe', 'inherit'] }
  )
  const cli = spawn(
    DOCKER,
    ['events', '--format', '{{json .}}', '--filter', 'type=image', '--filter', 'type=container'],
    { env: bed.cliEnv(), stdio: ['ignore', 'pipe', 'inherit'] }
  )
  // Read as docuum reads it: every line taken off the pipe, so the CLI never blocks on a full one.
  cli.stdout.resume()
  await new Promise<void>((resolve, reject) => {
    reader.stdout.once('data', () => resolve())
    reader.once('exit', code => reject(new Error(`bench/events-reader.cjs exited ${code}`)))
  })
  return [
    { label: FLOOR_LABELS.node, child: reader, pid: reader.pid as number },
    { label: FLOOR_LABELS.cli, child: cli, pid: cli.pid as number }
  ]
}

async function stopFloors(floors: Floor[]): Promise<void> {
  for (const floor of floors) {
    if (floor.child.exitCode !== null || floor.child.signalCode !== null) continue
    const gone = new Promise(resolve => floor.child.once('exit', resolve))
    floor.child.kill('SIGTERM')
    await gone
  }
}

/** CPU of each floor between two samples, by label. */
function floorCpu(floors: Floor[], before: Map<number, ProcSample>): Record<string, number> {
  return Object.fromEntries(floors.map(f => [f.label, procSample(f.pid).cpuMs - (before.get(f.pid)?.cpuMs ?? 0)]))
}

const sampleAll = (floors: Floor[]): Map<number, ProcSample> => new Map(floors.map(f => [f.pid, procSample(f.pid)]))

// ---------------------------------------------------------------- the daemon

interface Daemon {
  pid: number
  child: ChildProcess
  stateDir: string
  stderr: () => string
  exit: Promise<number | null>
}

async function startDaemon(host: string): Promise<Daemon> {
  const stateDir = await mkdtemp(join(tmpdir(), 'dirb-watch-state-'))
  // No inherited DOCKER_*: the daemon must follow the private engine and no other.
  const env = Object.fromEntries(Object.entries(bedEnv()).filter(([k]) => !k.startsWith('DOCKER_')))
  const child = spawn(
    process.execPath,
    [
      ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : []),
      CLI_BUNDLE,
      'watch',
      '--state-dir',
      stateDir,
      '--docker-host',
      host
    ],
    {
      env,
      stdio: ['ignore', 'ignore', 'pipe']
    }
  )
  let err = ''
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()))
  const exit = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const deadline = Date.now() + 30_000
  while (!/Following /.test(err)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon did not start following:\n${err}`)
    await sleep(50)
  }
  return { pid: child.pid as number, child, stateDir, stderr: () => err, exit }
}

interface Ledger {
  engines: Record<string, { lastEvent: number; images: Record<string, number> }>
}

async function readLedgerFile(stateDir: string): Promise<Ledger | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, 'ledger.json'), 'utf8')) as Ledger
  } catch {
    return undefined
  }
}

function onlyEngine(ledger: Ledger | undefined): { lastEvent: number; images: Record<string, number> } | undefined {
  const entries = Object.values(ledger?.engines ?? {})
  return entries.length === 1 ? entries[0] : undefined
}

// ---------------------------------------------------------------- the engine's work

async function ok(socket: string, method: string, path: string, body?: object): Promise<string> {
  const res = body === undefined ? await api(socket, method, path) : await post(socket, path, body)
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${res.body}`)
  return res.body
}

function post(socket: string, path: string, body: object): Promise<{ status: number; body: string }> {
  const data = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        method: 'POST',
        path: `/${API_VERSION}${path}`,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) }
      },
      res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      }
    )
    req.on('error', reject)
    req.end(data)
  })
}

/** A container made from an image by name and never started: a FROM-scratch image has nothing to run. */
async function containerCycle(socket: string, image: string): Promise<void> {
  const made = JSON.parse(
    await ok(socket, 'POST', '/containers/create', { Image: image, Cmd: ['/never-run'], NetworkDisabled: true })
  ) as { Id: string }
  await ok(socket, 'DELETE', `/containers/${made.Id}?force=1`)
}

/** A second name for the image, a container made from its first name, the second name dropped. */
async function mixedCycle(socket: string, n: number): Promise<void> {
  const tag = String(n % IMAGES)
  await ok(socket, 'POST', `/images/${REPO}:${tag}/tag?repo=${TAGGED}&tag=${tag}`)
  // Another image than the one tagged: the name the container names is not the one the tag moved.
  await containerCycle(socket, `${REPO}:${(n * 7 + 3) % IMAGES}`)
  await ok(socket, 'DELETE', `/images/${TAGGED}:${tag}`)
}

async function inParallel(count: number, work: (n: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) await work(next++)
  }
  await Promise.all(Array.from({ length: WORKERS }, worker))
}

/** The engine logs every API call only in debug mode, which dockerd takes on SIGHUP without a restart. */
async function engineDebug(bed: Bed): Promise<boolean> {
  if (bed.flavour === 'podman') return false
  const config = join(bed.root, 'daemon.json')
  const current = JSON.parse(await readFile(config, 'utf8')) as object
  await writeFile(config, `${JSON.stringify({ ...current, debug: true })}\n`)
  process.kill(bed.pid, 'SIGHUP')
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (/level=debug/.test(await readFile(join(bed.root, 'dockerd.log'), 'utf8'))) return true
    await api(bed.socket, 'GET', '/_ping')
    await sleep(100)
  }
  return false
}

/**
 * How often the engine was asked for its image list, from its debug log: Docker 20 and 28 word the
 * line apart, and dockerode sends no version in the path unless told to.
 */
async function imageListCalls(bed: Bed): Promise<number> {
  const text = await readFile(join(bed.root, 'dockerd.log'), 'utf8')
  return (text.match(/(?:Calling GET |method=GET .*request-url="?)(?:\/v[\d.]+)?\/images\/json/g) ?? []).length
}

// ---------------------------------------------------------------- phases

interface Idle {
  seconds: number
  cpuMs: number
  systemMs: number
  cpuPercent: number
  /** The same window's CPU of the floors, in milliseconds. */
  floors: Record<string, number>
  rssStartMB: number
  rssEndMB: number
  peakRssMB: number
  wakeupsPerS: number
  load: number
}

async function idle(daemon: Daemon, floors: Floor[]): Promise<Idle> {
  // Whatever the start left to do (the first list, the first flush) is over before the window opens.
  await sleep(5_000)
  const load = loadAverage()
  const floorsBefore = sampleAll(floors)
  const before = procSample(daemon.pid)
  const rss = rssWatcher(daemon.pid)
  const start = process.hrtime.bigint()
  await sleep(IDLE_S * 1000)
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const peak = rss.stop()
  const after = procSample(daemon.pid)
  const cpuMs = after.cpuMs - before.cpuMs
  return {
    seconds,
    cpuMs,
    systemMs: after.systemMs - before.systemMs,
    floors: floorCpu(floors, floorsBefore),
    cpuPercent: (cpuMs / (seconds * 1000)) * 100,
    rssStartMB: (before.rssKb * 1024) / MB,
    rssEndMB: (after.rssKb * 1024) / MB,
    peakRssMB: (peak * 1024) / MB,
    wakeupsPerS: (after.switches - before.switches) / seconds,
    load
  }
}

interface Burst {
  name: string
  events: number
  uses: number
  seconds: number
  eventsPerS: number
  cpuMs: number
  systemMs: number
  cpuMsPer1000: number
  /** The same window's CPU of the floors, in milliseconds per 1,000 events. */
  floorsPer1000: Record<string, number>
  engineCpuMs: number
  peakRssMB: number
  hwmMB: number
  /** From the engine's time of the burst's last event until the ledger file held it. */
  ledgerLagMs: number
  imageLists?: number
  /** Every use the engine reported is in the ledger, at its latest time, and nothing else is. */
  problems: string[]
  load: number
}

async function burst(
  name: string,
  bed: Bed,
  daemon: Daemon,
  floors: Floor[],
  ids: Map<string, string>,
  recorded: Map<string, number>,
  work: () => Promise<void>,
  countLists: boolean
): Promise<Burst> {
  const load = loadAverage()
  const tap = await EventTap.open(bed.socket)
  const listsBefore = countLists ? await imageListCalls(bed) : 0
  const floorsBefore = sampleAll(floors)
  const before = procSample(daemon.pid)
  const engineBefore = await treeCpuMs(bed.pid)
  const rss = rssWatcher(daemon.pid)
  const start = process.hrtime.bigint()
  await work()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  // The tap's own stream may trail the last answer by a little: the last event is the one it saw last.
  await sleep(200)
  tap.close()
  const events = tap.events
  // The daemon asks the engine only for the actions it reads: its ledger can reach the last of those.
  const last = [...events].reverse().find(e => FOLLOWED_ACTIONS.includes(e.action)) ?? events[events.length - 1]
  const uses = expectedUses(events, ids, recorded)
  const problems: string[] = []
  let lagMs = NaN
  const deadline = Date.now() + SETTLE_TIMEOUT_MS
  for (;;) {
    const entry = onlyEngine(await readLedgerFile(daemon.stateDir))
    if (entry && entry.lastEvent >= last.time && holds(entry.images, recorded)) {
      lagMs = Date.now() - last.time
      break
    }
    if (Date.now() > deadline) {
      problems.push(`the ledger did not hold the burst's last event ${SETTLE_TIMEOUT_MS / 1000} s after it`)
      break
    }
    await sleep(LEDGER_POLL_MS)
  }
  // The CPU of the burst includes the daemon's catching up and its write of the ledger.
  const after = procSample(daemon.pid)
  const floorsAfter = floorCpu(floors, floorsBefore)
  const peak = rss.stop()
  const engineAfter = await treeCpuMs(bed.pid)
  const entry = onlyEngine(await readLedgerFile(daemon.stateDir))
  problems.push(...compare(entry?.images ?? {}, recorded))
  const cpuMs = after.cpuMs - before.cpuMs
  return {
    name,
    events: events.length,
    uses,
    seconds,
    eventsPerS: events.length / seconds,
    cpuMs,
    systemMs: after.systemMs - before.systemMs,
    cpuMsPer1000: (cpuMs / events.length) * 1000,
    floorsPer1000: Object.fromEntries(Object.entries(floorsAfter).map(([k, v]) => [k, (v / events.length) * 1000])),
    engineCpuMs: engineAfter - engineBefore,
    peakRssMB: (peak * 1024) / MB,
    hwmMB: (after.hwmKb * 1024) / MB,
    ledgerLagMs: lagMs,
    imageLists: countLists ? (await imageListCalls(bed)) - listsBefore : undefined,
    problems,
    load
  }
}

/**
 * The uses among the events, by the daemon's own rules (docs/host-daemon.md): a container created
 * or started from an image, the image pulled, loaded, imported, built or tagged. Adds each image's
 * latest use to `recorded`; returns how many uses there were.
 */
function expectedUses(events: SeenEvent[], ids: Map<string, string>, recorded: Map<string, number>): number {
  let uses = 0
  for (const e of events) {
    let id: string | undefined
    if (e.type === 'container' && (e.action === 'create' || e.action === 'start')) id = ids.get(e.image ?? '')
    else if (e.type === 'image' && ['pull', 'load', 'import', 'tag', 'build'].includes(e.action))
      // Podman gives an image's ID without the sha256: the ledger keeps.
      id = /^[0-9a-f]{64}$/.test(e.actorId) ? `sha256:${e.actorId}` : e.actorId
    else continue
    uses++
    if (!id) throw new Error(`a use of an image this bench did not make: ${JSON.stringify(e)}`)
    recorded.set(id, Math.max(recorded.get(id) ?? 0, e.time))
  }
  return uses
}

function holds(images: Record<string, number>, expected: Map<string, number>): boolean {
  for (const [id, time] of expected) if (!(images[id] >= time)) return false
  return true
}

function compare(images: Record<string, number>, expected: Map<string, number>): string[] {
  const problems: string[] = []
  for (const [id, time] of expected)
    if (images[id] !== time) problems.push(`${id.slice(7, 19)}: ledger ${images[id]}, last use ${time}`)
  for (const id of Object.keys(images)) if (!expected.has(id)) problems.push(`${id.slice(7, 19)}: never used here`)
  return problems.length > 10 ? [...problems.slice(0, 10), `... and ${problems.length - 10} more`] : problems
}

// ---------------------------------------------------------------- report

interface Verdict {
  target: string
  measured: string
  met: boolean
}

function verdicts(idleRun: Idle, bursts: Burst[]): Verdict[] {
  const out: Verdict[] = [
    {
      target: `idle CPU < ${TARGETS.idleCpuPercent}% of one core over ${IDLE_S} s`,
      measured: `${idleRun.cpuPercent.toFixed(3)}% (${idleRun.cpuMs.toFixed(0)} ms)`,
      met: idleRun.cpuPercent < TARGETS.idleCpuPercent
    },
    {
      target: `idle RSS < ${TARGETS.idleRssMB} MB`,
      measured: `${idleRun.peakRssMB.toFixed(1)} MB`,
      met: idleRun.peakRssMB < TARGETS.idleRssMB
    }
  ]
  for (const b of bursts) {
    out.push(
      {
        target: `${b.name}: CPU < ${TARGETS.burstCpuMsPer1000} ms per 1,000 events`,
        measured: `${b.cpuMsPer1000.toFixed(1)} ms (${b.cpuMs.toFixed(0)} ms for ${b.events} events)`,
        met: b.cpuMsPer1000 < TARGETS.burstCpuMsPer1000
      },
      {
        target: `${b.name}: CPU per 1,000 events <= the ${FLOOR_LABELS.cli}'s (docuum's way), same burst`,
        measured: `${b.cpuMsPer1000.toFixed(1)} against ${b.floorsPer1000[FLOOR_LABELS.cli].toFixed(1)} ms`,
        met: b.cpuMsPer1000 <= b.floorsPer1000[FLOOR_LABELS.cli]
      },
      {
        target: `${b.name}: peak RSS < ${TARGETS.burstPeakRssMB} MB`,
        measured: `${b.peakRssMB.toFixed(1)} MB (VmHWM ${b.hwmMB.toFixed(1)} MB)`,
        met: b.peakRssMB < TARGETS.burstPeakRssMB && b.hwmMB < TARGETS.burstPeakRssMB
      },
      {
        target: `${b.name}: ledger on disk holds the last event < ${TARGETS.ledgerLagMs} ms after it`,
        measured: Number.isNaN(b.ledgerLagMs) ? 'never' : `${b.ledgerLagMs.toFixed(0)} ms`,
        met: b.ledgerLagMs < TARGETS.ledgerLagMs
      },
      {
        target: `${b.name}: the ledger holds exactly the uses the engine reported`,
        measured: b.problems.length === 0 ? `${b.uses} uses, all there` : b.problems.join('; '),
        met: b.problems.length === 0
      }
    )
  }
  return out
}

function markdown(m: Machine, flavour: string, engine: string, idleRun: Idle, bursts: Burst[], v: Verdict[]): string {
  const lines = [
    `Run of ${m.date.slice(0, 16).replace('T', ' ')} UTC, engine ${flavour} (${engine}), ${IMAGES} images, ` +
      `${m.nproc} CPUs (${m.cpuModel}), Node ${m.node}, bundle sha256 \`${m.bundleSha256.slice(0, 8)}…\` ` +
      `(dist/index.js; the daemon is dist/cli/index.js of the same build).`,
    '',
    '| target | measured | |',
    '| --- | --- | --- |',
    ...v.map(x => `| ${x.target} | ${x.measured} | ${x.met ? 'met' : 'NOT met'} |`),
    '',
    `Idle, ${idleRun.seconds.toFixed(0)} s: ${idleRun.cpuMs.toFixed(0)} ms of CPU ` +
      `(${idleRun.systemMs.toFixed(0)} ms of it system), ` +
      `RSS ${idleRun.rssStartMB.toFixed(1)} to ${idleRun.rssEndMB.toFixed(1)} MB, ` +
      `${idleRun.wakeupsPerS.toFixed(1)} wake-ups a second, load average ${idleRun.load.toFixed(2)}; ` +
      `the same window: ${FLOOR_LABELS.node} ${idleRun.floors[FLOOR_LABELS.node]?.toFixed(0)} ms, ` +
      `${FLOOR_LABELS.cli} ${idleRun.floors[FLOOR_LABELS.cli]?.toFixed(0)} ms.`,
    '',
    '| burst | events | uses | time | events/s | daemon CPU (system) | per 1,000 | bare Node reader, per 1,000 | ' +
      'docker events CLI, per 1,000 | engine CPU | peak RSS | ledger lag | image lists | load avg |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...bursts.map(
      b =>
        `| ${b.name} | ${b.events} | ${b.uses} | ${b.seconds.toFixed(1)} s | ${b.eventsPerS.toFixed(0)} | ` +
        `${b.cpuMs.toFixed(0)} ms (${b.systemMs.toFixed(0)}) | ${b.cpuMsPer1000.toFixed(1)} ms | ` +
        `${b.floorsPer1000[FLOOR_LABELS.node]?.toFixed(1)} ms | ` +
        `${b.floorsPer1000[FLOOR_LABELS.cli]?.toFixed(1)} ms | ` +
        `${(b.engineCpuMs / 1000).toFixed(1)} s | ${b.peakRssMB.toFixed(1)} MB | ${b.ledgerLagMs.toFixed(0)} ms | ` +
        `${b.imageLists ?? '-'} | ${b.load.toFixed(2)} |`
    ),
    ...reloadCost(bursts)
  ]
  return lines.join('\n')
}

/**
 * What burst B's image lists cost, the daemon and the engine: their CPU beyond burst A's rate per
 * event, shared out over the lists the daemon asked for (burst A asks for none).
 */
function reloadCost(bursts: Burst[]): string[] {
  const [a, b] = bursts
  if (!a || !b || !b.imageLists) return []
  const extra = b.cpuMs - (a.cpuMsPer1000 * b.events) / 1000
  const engineExtra = b.engineCpuMs - (a.engineCpuMs * b.events) / a.events
  return [
    '',
    `Burst B beyond burst A's rate per event: ${extra.toFixed(0)} ms of the daemon's CPU and ` +
      `${(engineExtra / 1000).toFixed(1)} s of the engine's for ${b.imageLists} image lists of ${IMAGES} images, ` +
      `${(extra / b.imageLists).toFixed(2)} and ${(engineExtra / b.imageLists).toFixed(1)} ms a list; ` +
      `${((b.imageLists / b.events) * 1000).toFixed(0)} lists per 1,000 events.`
  ]
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const name = process.env.RECLAIM_ENGINE?.trim() || DEFAULT_FLAVOUR
  if (!isFlavour(name)) throw new Error(`RECLAIM_ENGINE=${name} is not an engine flavour`)
  let bed: Bed | undefined
  let daemon: Daemon | undefined
  let floors: Floor[] = []
  stopOnSignals(() => {
    for (const child of [daemon?.child, ...floors.map(f => f.child)]) child?.kill('SIGKILL')
    return [bed]
  })
  try {
    const m = await machine()
    CLK_TCK = Number(await run('getconf', ['CLK_TCK']))
    log(`starting a private ${name} engine`)
    bed = await Bed.start(name)
    log(`engine root ${bed.root}`)
    const version = await bed.engineVersion()
    const countLists = await engineDebug(bed)
    const scene = new Scene({ host: bed.host, dataRoot: bed.dataRoot })
    log(`loading ${IMAGES} images`)
    const loaded = await scene.many(REPO, IMAGES)
    // Podman names the image as it keeps it (docker.io/library/wb:3) in its container events.
    const ids = new Map(
      loaded.flatMap((id, n) => [`${REPO}:${n}`, `docker.io/library/${REPO}:${n}`].map(name => [name, id] as const))
    )
    // The daemon starts from the engine's now in whole seconds: the load's events must be older than that.
    await sleep(2_000)
    log('starting the daemon, a bare Node reader and `docker events` beside it')
    daemon = await startDaemon(bed.host)
    floors = await startFloors(bed)
    log(`idle for ${IDLE_S} s`)
    const idleRun = await idle(daemon, floors)
    const recorded = new Map<string, number>()
    const socket = bed.socket
    const bursts: Burst[] = []
    log(`burst A: ${CONTAINER_CYCLES} containers created and removed`)
    bursts.push(
      await burst(
        'A containers',
        bed,
        daemon,
        floors,
        ids,
        recorded,
        () => inParallel(CONTAINER_CYCLES, n => containerCycle(socket, `${REPO}:${n % IMAGES}`)),
        countLists
      )
    )
    log(`burst B: ${MIXED_CYCLES} cycles of tag, create, untag, remove`)
    bursts.push(
      await burst(
        'B tags + containers',
        bed,
        daemon,
        floors,
        ids,
        recorded,
        () => inParallel(MIXED_CYCLES, n => mixedCycle(socket, n)),
        countLists
      )
    )
    log('stopping the daemon')
    await stopFloors(floors)
    daemon.child.kill('SIGTERM')
    const code = await daemon.exit
    const final = onlyEngine(await readLedgerFile(daemon.stateDir))
    const stopProblems = [
      ...(code === 0 ? [] : [`the daemon exited ${code}`]),
      ...compare(final?.images ?? {}, recorded).map(p => `after the stop: ${p}`)
    ]
    const v = verdicts(idleRun, bursts)
    v.push({
      target: 'SIGTERM: exit 0, the ledger as it was',
      measured: stopProblems.length === 0 ? 'exit 0' : stopProblems.join('; '),
      met: stopProblems.length === 0
    })
    const md = markdown(m, name, `${version.Version}, API ${version.ApiVersion}`, idleRun, bursts, v)
    const out = {
      machine: m,
      engine: { flavour: name, ...version },
      images: IMAGES,
      targets: TARGETS,
      idle: idleRun,
      bursts,
      verdicts: v,
      daemonLog: daemon.stderr(),
      loadAfter: loadAverage(),
      markdown: md
    }
    await writeFile(join(BENCH_DIR, 'results-watch.json'), `${JSON.stringify(out, null, 2)}\n`)
    process.stdout.write(`${md}\n`)
    await rm(daemon.stateDir, { recursive: true, force: true })
    daemon = undefined
  } finally {
    await stopFloors(floors)
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill('SIGTERM')
      await daemon.exit
    }
    // Only a run that failed gets here with the daemon still set: its ledger is kept to look at.
    if (daemon) log(`the daemon's state folder is kept: ${daemon.stateDir}`)
    await bed?.stop()
  }
}

main().catch(error => {
  log(`failed: ${(error as Error).stack ?? String(error)}`)
  process.exitCode = 1
})
