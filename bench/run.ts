/**
 * The benchmark: the action against the docker CLI doing the same job on the same private engine
 * and images, reported as ratios, and the targets of issue #6 as met or not. bench/README.md says
 * how to run it and why it measures the way it does.
 *
 *   npm run bench                  full: N = 300 and 3,000, and 1,000 for (3) and the curves
 *   BENCH_QUICK=1 npm run bench    (or --quick) N = 300 only, fewer repetitions
 *
 * Every timed run is one whole process, from spawn to exit, under GNU time (peak RSS): the action
 * is `node dist/index.js` with the environment testbed/runner.ts gives it (summary on, default
 * inputs, GITHUB_STEP_SUMMARY in a temp file); the CLI is /usr/bin/docker with a private
 * DOCKER_CONFIG against the same engine. Destructive runs start from a copy of the same data-root
 * snapshot. The two sides take turns and the one that goes first changes every repetition, so a
 * machine that slows down or speeds up during the run weighs on both sides alike.
 * Results: bench/results.json (quick: results-quick.json), a table and a Markdown block on stdout.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { api } from '../testbed/api'
import {
  BENCH_DIR,
  Bed,
  BUNDLE,
  actionEnv,
  ensureGnuTime,
  exists,
  loadAverage,
  log,
  machine,
  median,
  run,
  runAction,
  runCli,
  runnerEnv,
  stopOnSignals,
  timeIt,
  timed,
  type Machine,
  type Sample
} from './lib'
import {
  REPO,
  Scenes,
  BIG,
  BIG_BYTES,
  SMALL_BYTES,
  CACHE_BIG,
  CACHE_BUILDS,
  CACHE_REPO,
  buildCacheRecords,
  type CacheScene,
  type SetupCosts
} from './scenes'

const QUICK = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick')
const REPS_OVERRIDE = Number(process.env.BENCH_REPS || 0)
/** `BENCH_ONLY=cache`: (6) alone, on the build-cache scene, with no scene of N images made or restored. */
const CACHE_ONLY = process.env.BENCH_ONLY === 'cache'
if (process.env.BENCH_ONLY && !CACHE_ONLY)
  throw new Error(`BENCH_ONLY=${process.env.BENCH_ONLY}: only "cache" is known`)

type ScenarioName = 'remove' | 'prune' | 'nothing' | 'dryrun' | 'cache'

interface Scenario {
  name: ScenarioName
  title: string
  inputs: Record<string, string>
  cli?: string
  destructive: boolean
}

const SCENARIOS: Record<ScenarioName, Scenario> = {
  remove: {
    name: 'remove',
    title: '(1) remove by pattern',
    inputs: { refs: `${REPO}:*` },
    cli: `/usr/bin/docker rmi $(/usr/bin/docker images -q ${REPO})`,
    destructive: true
  },
  prune: {
    name: 'prune',
    title: '(2) prune all',
    inputs: { prune: 'all' },
    cli: '/usr/bin/docker image prune -a -f',
    destructive: true
  },
  nothing: {
    name: 'nothing',
    title: '(3) nothing to do',
    inputs: {},
    cli: '/usr/bin/docker image prune -f',
    destructive: false
  },
  dryrun: {
    name: 'dryrun',
    title: '(4) dry run',
    inputs: { refs: `${REPO}:*`, 'dry-run': 'true' },
    destructive: false
  },
  // On the build-cache scene, whose N is its number of records; build-cache alone touches no image.
  cache: {
    name: 'cache',
    title: '(6) build cache, all',
    inputs: { 'build-cache': 'all' },
    cli: '/usr/bin/docker builder prune -af',
    destructive: true
  }
}

/** Target of (6), from issue #17: the action's build-cache prune at most this many times the CLI's time. */
const CACHE_TARGET = 1.1

interface Plan {
  sizes: number[]
  runs: Array<{ n: number; scenario: ScenarioName; reps: number }>
  /** Repetitions of (6), on the build-cache scene. */
  cacheReps: number
}

function plan(): Plan {
  const d = (n: number): number => REPS_OVERRIDE || n
  if (CACHE_ONLY) return { sizes: [], runs: [], cacheReps: d(QUICK ? 3 : 9) }
  if (QUICK) {
    return {
      sizes: [300],
      runs: [
        { n: 0, scenario: 'nothing', reps: d(5) },
        { n: 0, scenario: 'dryrun', reps: d(5) },
        { n: 300, scenario: 'nothing', reps: d(5) },
        { n: 300, scenario: 'dryrun', reps: d(5) },
        { n: 300, scenario: 'remove', reps: d(2) },
        { n: 300, scenario: 'prune', reps: d(2) }
      ],
      cacheReps: d(3)
    }
  }
  return {
    sizes: [300, 1000, 3000],
    runs: [
      { n: 0, scenario: 'nothing', reps: d(7) },
      { n: 0, scenario: 'dryrun', reps: d(9) },
      { n: 300, scenario: 'nothing', reps: d(7) },
      { n: 300, scenario: 'dryrun', reps: d(9) },
      { n: 300, scenario: 'remove', reps: d(9) },
      { n: 300, scenario: 'prune', reps: d(9) },
      { n: 1000, scenario: 'nothing', reps: d(5) },
      { n: 1000, scenario: 'dryrun', reps: d(9) },
      { n: 3000, scenario: 'nothing', reps: d(5) },
      { n: 3000, scenario: 'dryrun', reps: d(9) },
      { n: 3000, scenario: 'remove', reps: d(3) },
      { n: 3000, scenario: 'prune', reps: d(3) }
    ],
    cacheReps: d(9)
  }
}

// ---------------------------------------------------------------- measuring

interface Run {
  ms: number
  maxRssKb: number
  code: number
  /** Set when the run did not do what it should have: its time then means nothing. */
  problem?: string
  outputs?: { deletedCount?: string; reclaimedBytes?: string }
  /** Dry runs: CPU time of the action's process, user and system (bench/cpu-probe.cjs). */
  cpuMs?: number
  restoreMs?: number
  /** 1-minute load average just before the run. */
  load?: number
}

interface Rep {
  rep: number
  first: 'action' | 'cli'
  action: Run
  cli?: Run
  /** Dry runs: the same step against an empty engine, run next to it (alternating), for the curve. */
  baseline?: Run
  /** action / cli, this repetition. */
  ratio?: number
  /** (3), and (6) on the containerd store: the least any such step can take, timed next to it. */
  floor?: Floor
}

/**
 * The least a step can take: a bare `node -e 0`, timed as a whole process as the action is, and
 * the engine's own time for what any such step has to ask of it, asked from the bench. (3): the
 * smallest image list it has to read, the dangling images. (6) on the containerd store: the
 * prune, with the image list asked beside it, because counting a shared record's bytes there
 * needs at least the list (docs/reclaimed-bytes.md).
 */
interface Floor {
  nodeMs: number
  engineMs: number
}

interface Result {
  n: number
  scenario: ScenarioName
  title: string
  inputs: Record<string, string>
  cliCommand?: string
  reps: Rep[]
  action: Stats
  cli?: Stats
  /** Median of the pairwise ratios, and their range. */
  ratio?: { median: number; min: number; max: number }
  /** Median 1-minute load average before the runs: above the CPU count, other work was waiting for a CPU. */
  loadAverage: number
  problems: string[]
  /** (3) and (6): medians of the floor's parts, and of their sum in each repetition. */
  floor?: Floor & { ms: number }
}

interface Stats {
  medianMs: number
  minMs: number
  maxMs: number
  maxRssMB: number
  medianRssMB: number
}

const MB = 1e6
const kbToMB = (kb: number): number => (kb * 1024) / MB

function stats(runs: Run[]): Stats {
  const ms = runs.map(r => r.ms)
  const rss = runs.map(r => kbToMB(r.maxRssKb))
  return {
    medianMs: median(ms),
    minMs: Math.min(...ms),
    maxMs: Math.max(...ms),
    maxRssMB: Math.max(...rss),
    medianRssMB: median(rss)
  }
}

const CPU_PROBE = join(BENCH_DIR, 'cpu-probe.cjs')

function cpuMsOf(sample: Sample): number | undefined {
  const line = /^BENCHCPU (\d+)$/m.exec(sample.stderr)
  return line ? Number(line[1]) / 1000 : undefined
}

function asRun(sample: Sample, problem: string | undefined, extra: Partial<Run> = {}): Run {
  const p =
    problem ??
    (sample.code !== 0
      ? `exit code ${sample.code}: ${(sample.stderr || sample.stdout).trim().split('\n').slice(-3).join(' | ')}`
      : undefined)
  return { ms: sample.ms, maxRssKb: sample.maxRssKb, code: sample.code, ...(p ? { problem: p } : {}), ...extra }
}

/** bench/planning.ts at one N: planning and byte prediction alone, in one process. */
interface Planning {
  n: number
  images: number
  deletions: number
  inspected: number
  /** Every pass; the first is what a real run pays, since V8 has not optimised the code yet. */
  ms: number[]
  firstMs: number
  medianMs: number
  /**
   * The control of each pass (bench/planning.ts): one filter and one Map over the same images, so
   * its growth with N is the machine's own (caches, hash tables), not the planner's.
   */
  linearMs: number[]
  linearMedianMs: number
}

const NCC_CLI = join(BENCH_DIR, '..', 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js')

class Bench {
  readonly results: Result[] = []
  readonly planning: Planning[] = []
  private planner: string | undefined
  constructor(
    private readonly bed: Bed,
    /** A second private engine that stays empty: N=0 runs, and the paired baseline of the dry-run curve. */
    private readonly empty: Bed,
    private readonly scenes: Scenes
  ) {}

  private on(n: number): Bed {
    return n === 0 ? this.empty : this.bed
  }

  private async sceneCheck(n: number): Promise<void> {
    const count = await this.on(n).imageCount()
    if (count !== n) throw new Error(`expected the scene of ${n} images, the engine holds ${count}`)
  }

  /** Set once the build-cache scene is ready: (6) runs on it. */
  cacheScene: CacheScene | undefined

  private async restore(s: Scenario, n: number): Promise<number> {
    return this.bed.restore(s.name === 'cache' ? this.scenes.cacheSnapshotDir() : this.scenes.snapshotDir(n))
  }

  private async action(s: Scenario, n: number): Promise<Run> {
    const probe =
      s.name === 'dryrun'
        ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require=${CPU_PROBE}`.trim() }
        : undefined
    const sample = await runAction(s.inputs, this.on(n).host, { extraEnv: probe })
    const deletedCount = sample.outputs['deleted-count']
    const reclaimedBytes = sample.outputs['reclaimed-bytes']
    const expected = s.name === 'nothing' || s.name === 'cache' ? 0 : n
    let problem: string | undefined
    if (sample.code === 0 && deletedCount !== String(expected))
      problem = `deleted-count ${deletedCount}, expected ${expected}`
    const cacheBytes = sample.outputs['build-cache-reclaimed-bytes']
    if (!problem && sample.code === 0 && s.name === 'cache' && !/^[1-9]\d*$/.test(cacheBytes ?? ''))
      problem = `build-cache-reclaimed-bytes ${cacheBytes}, expected a positive count`
    if (!problem && sample.code === 0) problem = await this.after(s, n)
    return asRun(sample, problem, {
      outputs: { deletedCount, reclaimedBytes },
      cpuMs: probe ? cpuMsOf(sample) : undefined
    })
  }

  private async cli(s: Scenario, n: number): Promise<Run> {
    const sample = await runCli(this.on(n), s.cli as string)
    return asRun(sample, sample.code === 0 ? await this.after(s, n) : undefined)
  }

  /**
   * What the engine must hold after a run: nothing of the scene after (1) and (2), all of it
   * otherwise; after (6), no build cache record and every image of its scene.
   */
  private async after(s: Scenario, n: number): Promise<string | undefined> {
    if (s.name === 'cache') {
      const records = (await buildCacheRecords(this.bed.socket)).length
      const images = await this.bed.imageCount(CACHE_REPO)
      if (records > 0) return `${records} build cache records left afterwards, expected none`
      return images === CACHE_BUILDS
        ? undefined
        : `${images} images of ${CACHE_REPO} afterwards, expected ${CACHE_BUILDS}`
    }
    const left = await this.on(n).imageCount()
    const want = s.destructive ? 0 : n
    return left === want ? undefined : `the engine holds ${left} images afterwards, expected ${want}`
  }

  async scenario(n: number, name: ScenarioName, reps: number): Promise<void> {
    const s = SCENARIOS[name]
    log(`${s.title}, N=${n}: ${reps} repetition${reps > 1 ? 's' : ''}${s.cli ? ' of each side, alternating' : ''}`)
    const out: Rep[] = []
    for (let rep = 0; rep < reps; rep++) {
      const first = rep % 2 === 0 ? 'action' : 'cli'
      const other = s.cli ? 'cli' : n > 0 && name === 'dryrun' ? 'baseline' : undefined
      const order: Array<'action' | 'cli' | 'baseline'> = other
        ? first === 'action'
          ? ['action', other]
          : [other, 'action']
        : ['action']
      const entry: Partial<Rep> = { rep, first: first as Rep['first'] }
      for (const side of order) {
        let restoreMs: number | undefined
        if (s.destructive) restoreMs = await this.restore(s, n)
        else await this.sceneCheck(n)
        const load = loadAverage()
        const r =
          side === 'action' ? await this.action(s, n) : side === 'cli' ? await this.cli(s, n) : await this.action(s, 0)
        r.load = load
        if (restoreMs !== undefined) r.restoreMs = restoreMs
        entry[side] = r
        if (r.problem) log(`  ${side} rep ${rep}: PROBLEM ${r.problem}`)
      }
      const e = entry as Rep
      if (e.cli) e.ratio = e.action.ms / e.cli.ms
      if (name === 'nothing') e.floor = await this.floor(n)
      if (name === 'cache' && this.bed.info.imageStore === 'containerd') e.floor = await this.cacheFloor()
      log(
        `  rep ${rep}: action ${e.action.ms.toFixed(0)} ms (${kbToMB(e.action.maxRssKb).toFixed(0)} MB)` +
          (e.cli ? `, cli ${e.cli.ms.toFixed(0)} ms, ratio ${e.ratio?.toFixed(2)}` : '') +
          (e.baseline ? `, same step on an empty engine ${e.baseline.ms.toFixed(0)} ms` : '') +
          (e.floor ? `, floor ${e.floor.nodeMs.toFixed(0)} + ${e.floor.engineMs.toFixed(0)} ms` : '')
      )
      out.push(e)
    }
    const problems = out.flatMap(r =>
      [r.action.problem, r.cli?.problem, r.baseline?.problem].filter((p): p is string => p !== undefined)
    )
    const ratios = out.flatMap(r => (r.ratio === undefined ? [] : [r.ratio]))
    this.results.push({
      n,
      scenario: name,
      title: s.title,
      inputs: s.inputs,
      cliCommand: s.cli,
      reps: out,
      action: stats(out.map(r => r.action)),
      cli: s.cli ? stats(out.map(r => r.cli as Run)) : undefined,
      ratio: ratios.length ? { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) } : undefined,
      loadAverage: median(out.flatMap(r => [r.action.load, r.cli?.load]).filter((l): l is number => l !== undefined)),
      problems,
      floor: floorOf(out)
    })
  }

  private async floor(n: number): Promise<Floor> {
    const node = await timed(process.execPath, ['-e', '0'], { env: runnerEnv() })
    const { ms: engineMs } = await timeIt(() =>
      api(this.on(n).socket, 'GET', `/images/json?filters=${encodeURIComponent('{"dangling":["true"]}')}`)
    )
    return { nodeMs: node.ms, engineMs }
  }

  /** (6)'s floor on the containerd store, on the scene put back as for a run. */
  private async cacheFloor(): Promise<Floor> {
    const node = await timed(process.execPath, ['-e', '0'], { env: runnerEnv() })
    await this.restore(SCENARIOS.cache, 0)
    const socket = this.bed.socket
    const { ms: engineMs, value } = await timeIt(() =>
      Promise.all([api(socket, 'POST', '/build/prune?all=1'), api(socket, 'GET', '/images/json?all=1')])
    )
    const failed = value.find(res => res.status !== 200)
    if (failed) throw new Error(`(6)'s floor: the engine answered ${failed.status}: ${failed.body.trim()}`)
    return { nodeMs: node.ms, engineMs }
  }

  /** Planning and byte prediction of the dry run's settings, on the scene the engine holds now. */
  async planningCurve(n: number): Promise<void> {
    await this.sceneCheck(n)
    const env = await actionEnv(SCENARIOS.dryrun.inputs, this.on(n).host)
    const out = JSON.parse(await run(process.execPath, [await this.plannerBundle()], env)) as Pick<
      Planning,
      'images' | 'deletions' | 'inspected' | 'ms' | 'linearMs'
    >
    if (out.deletions !== n) throw new Error(`planning at N=${n}: ${out.deletions} deletions planned`)
    const point = {
      n,
      ...out,
      firstMs: out.ms[0],
      medianMs: median(out.ms.slice(1)),
      linearMedianMs: median(out.linearMs.slice(1))
    }
    log(
      `planning and byte prediction, N=${n}: first ${point.firstMs.toFixed(1)} ms, then a median of ${point.medianMs.toFixed(1)} ms`
    )
    this.planning.push(point)
  }

  /** bench/planning.ts bundled by ncc into a temp directory, once. */
  private async plannerBundle(): Promise<string> {
    if (this.planner) return this.planner
    const dir = await mkdtemp(join(tmpdir(), 'dirb-bench-planning-'))
    await run(process.execPath, [NCC_CLI, 'build', join(BENCH_DIR, 'planning.ts'), '-o', dir, '--quiet'])
    this.planner = join(dir, 'index.js')
    return this.planner
  }

  async dispose(): Promise<void> {
    if (this.planner) await rm(dirname(this.planner), { recursive: true, force: true })
  }

  find(n: number, name: ScenarioName): Result | undefined {
    return this.results.find(r => r.n === n && r.scenario === name)
  }
}

const floorText = (f: NonNullable<Result['floor']>, engine: string): string =>
  `${fmtMs(f.ms)}: node -e 0 ${fmtMs(f.nodeMs)}, ${engine} ${fmtMs(f.engineMs)}`

/** (6)'s floor beside the CLI: the least ratio a step that counts exactly can reach. */
function floorRatio(r: Result): string {
  if (!r.floor || !r.cli) return ''
  const ratios = r.reps.flatMap(rep =>
    rep.floor && rep.cli ? [(rep.floor.nodeMs + rep.floor.engineMs) / rep.cli.ms] : []
  )
  return `; floor ${floorText(r.floor, "the engine's prune with its image list beside it")}, floor/CLI ${median(ratios).toFixed(2)}`
}

function floorOf(reps: Rep[]): Result['floor'] {
  const floors = reps.flatMap(rep => (rep.floor ? [rep.floor] : []))
  if (floors.length === 0) return undefined
  const of = (part: (f: Floor) => number): number => median(floors.map(part))
  return { nodeMs: of(f => f.nodeMs), engineMs: of(f => f.engineMs), ms: of(f => f.nodeMs + f.engineMs) }
}

// ---------------------------------------------------------------- targets

interface Target {
  target: string
  measured: string
  met: boolean | null
}

function nlogn(n: number): number {
  return n * Math.log(n)
}

interface CurvePoint {
  n: number
  medianMs: number
  /** Wall clock, net of the paired empty-engine run: the engine's list and /system/df included. */
  netMs: number
  medianCpuMs: number
  /** CPU time of the action's process, net of the paired run: its own work on N images. */
  netCpuMs: number
  growth?: number
  cpuGrowth?: number
  nlognGrowth?: number
}

/**
 * Dry-run medians, and net of the paired empty-engine run of each repetition (start-up, connect,
 * summary): in wall-clock time, and in the CPU time of the action's process.
 */
function curve(bench: Bench): CurvePoint[] {
  const points = bench.results.filter(r => r.scenario === 'dryrun' && r.n > 0).sort((a, b) => a.n - b.n)
  const net = (r: Result, of: (run: Run) => number): number =>
    median(r.reps.map(rep => of(rep.action) - (rep.baseline ? of(rep.baseline) : 0)))
  const wall = (run: Run): number => run.ms
  const cpu = (run: Run): number => run.cpuMs ?? NaN
  return points.map((r, i) => {
    const point: CurvePoint = {
      n: r.n,
      medianMs: r.action.medianMs,
      netMs: net(r, wall),
      medianCpuMs: median(r.reps.map(rep => cpu(rep.action))),
      netCpuMs: net(r, cpu)
    }
    if (i > 0) {
      const prev = points[i - 1]
      point.growth = point.netMs / net(prev, wall)
      point.cpuGrowth = point.netCpuMs / net(prev, cpu)
      point.nlognGrowth = nlogn(r.n) / nlogn(prev.n)
    }
    return point
  })
}

interface PlanningPoint {
  n: number
  firstMs: number
  medianMs: number
  linearMedianMs: number
  growth?: number
  linearGrowth?: number
  nlognGrowth?: number
}

/** The planning medians by N, each with its growth from the one before. */
function planningCurve(bench: Bench): PlanningPoint[] {
  const points = [...bench.planning].sort((a, b) => a.n - b.n)
  return points.map((p, i) => {
    const prev = points[i - 1]
    const point: PlanningPoint = { n: p.n, firstMs: p.firstMs, medianMs: p.medianMs, linearMedianMs: p.linearMedianMs }
    if (prev) {
      Object.assign(point, {
        growth: p.medianMs / prev.medianMs,
        linearGrowth: p.linearMedianMs / prev.linearMedianMs,
        nlognGrowth: nlogn(p.n) / nlogn(prev.n)
      })
    }
    return point
  })
}

/** A segment may grow up to this much faster than N log N before it counts as worse: medians still carry some noise. */
const CURVE_TOLERANCE = 1.15

function targets(bench: Bench, sizes: number[]): Target[] {
  const out: Target[] = []
  for (const name of ['remove', 'prune'] as const) {
    for (const n of [300, 3000]) {
      const r = bench.find(n, name)
      const label = `${SCENARIOS[name].title}: action/CLI ratio <= 1.0 at N=${n}`
      if (!r || !r.ratio) {
        out.push({
          target: label,
          measured: sizes.includes(n)
            ? 'not measured'
            : `not measured (${CACHE_ONLY ? 'BENCH_ONLY=cache' : 'quick mode'})`,
          met: null
        })
        continue
      }
      const bad = r.problems.length > 0 ? ` (INVALID: ${r.problems[0]})` : ''
      out.push({
        target: label,
        measured: `median ratio ${r.ratio.median.toFixed(2)} (range ${r.ratio.min.toFixed(2)}-${r.ratio.max.toFixed(2)}); ${fmtMs(r.action.medianMs)} vs ${fmtMs(r.cli?.medianMs ?? NaN)}${bad}`,
        met: r.problems.length === 0 && r.ratio.median <= 1.0
      })
    }
  }
  const cache = bench.results.find(r => r.scenario === 'cache')
  const cacheLabel = `${SCENARIOS.cache.title}: action/CLI ratio <= ${CACHE_TARGET} on ${bench.cacheScene?.records ?? 'its'} records`
  if (cache?.ratio) {
    const bad = cache.problems.length > 0 ? ` (INVALID: ${cache.problems[0]})` : ''
    out.push({
      target: cacheLabel,
      measured: `median ratio ${cache.ratio.median.toFixed(2)} (range ${cache.ratio.min.toFixed(2)}-${cache.ratio.max.toFixed(2)}); ${fmtMs(cache.action.medianMs)} vs ${fmtMs(cache.cli?.medianMs ?? NaN)}${floorRatio(cache)}${bad}`,
      met: cache.problems.length === 0 && cache.ratio.median <= CACHE_TARGET
    })
  } else {
    out.push({ target: cacheLabel, measured: 'not measured', met: null })
  }
  const nothing = bench.results.filter(r => r.scenario === 'nothing')
  for (const r of nothing) {
    out.push({
      target: `(3) nothing to do: whole process < 250 ms (engine holding ${r.n} images)`,
      measured: `median ${fmtMs(r.action.medianMs)} (CLI ${fmtMs(r.cli?.medianMs ?? NaN)}${r.floor ? `; floor ${floorText(r.floor, "the engine's dangling list alone")}` : ''})`,
      met: r.problems.length === 0 && r.action.medianMs < 250
    })
  }
  const dry = bench.find(3000, 'dryrun')
  out.push({
    target: '(4) dry run over 3,000 images < 2 s',
    measured: dry ? `median ${fmtMs(dry.action.medianMs)}` : 'not measured (quick mode)',
    met: dry ? dry.problems.length === 0 && dry.action.medianMs < 2000 : null
  })
  const points = planningCurve(bench)
  if (points.length >= 3) {
    const segments = points.filter(p => p.growth !== undefined)
    const steps = segments
      .map(
        p =>
          `${p.n}: x${p.growth?.toFixed(2)} vs N log N x${p.nlognGrowth?.toFixed(2)} (linear control x${p.linearGrowth?.toFixed(2)})`
      )
      .join('; ')
    out.push({
      target: `(4) planning and byte prediction (in one process, bench/planning.ts) grow no worse than N log N (each step within x${CURVE_TOLERANCE} of it)`,
      measured: steps,
      met: segments.every(p => (p.growth as number) <= (p.nlognGrowth as number) * CURVE_TOLERANCE)
    })
  } else {
    out.push({
      target: '(4) dry-run cost grows no worse than N log N over 300, 1,000, 3,000',
      measured: QUICK ? 'not measured (quick mode)' : 'not measured (needs an overlay2 engine)',
      met: null
    })
  }
  const at3000 = bench.results.filter(r => r.n === 3000)
  if (at3000.length > 0) {
    const peak = Math.max(...at3000.map(r => r.action.maxRssMB))
    const which = at3000.find(r => r.action.maxRssMB === peak)
    out.push({
      target: '(5) peak memory of the action < 100 MB at N=3,000',
      measured: `${peak.toFixed(1)} MB (${which?.title})`,
      met: peak < 100
    })
  } else {
    const peak = Math.max(...bench.results.map(r => r.action.maxRssMB))
    out.push({
      target: '(5) peak memory of the action < 100 MB at N=3,000',
      measured: `not measured at 3,000 (quick mode); ${peak.toFixed(1)} MB at 300`,
      met: null
    })
  }
  return out
}

// ---------------------------------------------------------------- printing

const fmtMs = (ms: number): string =>
  Number.isNaN(ms) ? '-' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`
const metText = (met: boolean | null): string => (met === null ? 'n/a' : met ? 'met' : 'NOT met')

function pad(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n')
}

function tableRows(bench: Bench): string[][] {
  const header = [
    'scenario',
    'N',
    'reps',
    'action median',
    'action range',
    'CLI median',
    'CLI range',
    'ratio (median of pairs)',
    'ratio range',
    'action peak RSS',
    'CLI peak RSS',
    'load avg'
  ]
  const rows = bench.results.map(r => [
    r.title + (r.problems.length ? ' (INVALID)' : ''),
    String(r.n),
    String(r.reps.length),
    fmtMs(r.action.medianMs),
    `${fmtMs(r.action.minMs)}-${fmtMs(r.action.maxMs)}`,
    r.cli ? fmtMs(r.cli.medianMs) : '-',
    r.cli ? `${fmtMs(r.cli.minMs)}-${fmtMs(r.cli.maxMs)}` : '-',
    r.ratio ? r.ratio.median.toFixed(2) : '-',
    r.ratio ? `${r.ratio.min.toFixed(2)}-${r.ratio.max.toFixed(2)}` : '-',
    `${r.action.maxRssMB.toFixed(1)} MB`,
    r.cli ? `${r.cli.maxRssMB.toFixed(1)} MB` : '-',
    r.loadAverage.toFixed(1)
  ])
  return [header, ...rows]
}

const growthText = (growth: number | undefined): string => (growth ? `x${growth.toFixed(2)}` : '-')

/** A captioned Markdown table of numbers, every column right-aligned. */
function numberTable(lines: string[], caption: string, header: string[], rows: string[][]): void {
  lines.push('', caption, '', `| ${header.join(' | ')} |`, `| ${header.map(() => '---:').join(' | ')} |`)
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
}

function markdown(
  bench: Bench,
  m: Machine,
  ts: Target[],
  setup: SetupCosts,
  restoreMs: Record<number, number>,
  cacheRestoreMs: number | undefined
): string {
  const lines: string[] = []
  lines.push(
    `Benchmark (\`npm run bench\`${QUICK ? ', quick mode' : ''}), ${m.date.slice(0, 10)}: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}; ` +
      `engine ${m.engineVersion} (API ${m.engineApi}), ${m.cli}; ${m.node}. Medians of whole processes (spawn to exit); ` +
      `ratio = median of per-repetition action/CLI ratios, sides alternated.`
  )
  lines.push('')
  lines.push('| scenario | N | action | docker CLI | ratio | action peak RSS | load avg |')
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of bench.results) {
    const cli = r.cli ? `${fmtMs(r.cli.medianMs)} (\`${(r.cliCommand ?? '').replace(/\/usr\/bin\//g, '')}\`)` : '-'
    lines.push(
      `| ${r.title}${r.problems.length ? ' (invalid)' : ''} | ${r.n.toLocaleString('en')} | ${fmtMs(r.action.medianMs)} | ${cli} | ${r.ratio ? r.ratio.median.toFixed(2) : '-'} | ${r.action.maxRssMB.toFixed(0)} MB | ${r.loadAverage.toFixed(1)} |`
    )
  }
  const c = curve(bench)
  if (c.length > 0) {
    numberTable(
      lines,
      "Dry-run curve (net = median of, per repetition, the dry run minus the same step on an empty engine run next to it; CPU = user and system time of the action's process, which leaves out its waits for the engine):",
      ['N', 'dry run', 'net', 'net growth', 'CPU', 'net CPU', 'net CPU growth', 'N log N growth'],
      c.map(p => [
        p.n.toLocaleString('en'),
        fmtMs(p.medianMs),
        fmtMs(p.netMs),
        growthText(p.growth),
        fmtMs(p.medianCpuMs),
        fmtMs(p.netCpuMs),
        growthText(p.cpuGrowth),
        growthText(p.nlognGrowth)
      ])
    )
  }
  const points = planningCurve(bench)
  if (points.length > 0) {
    numberTable(
      lines,
      "Planning and byte prediction alone (`bench/planning.ts`: the dry run's plan, pricing from disk usage and price(), run again and again in one process on the state the engine gave; first = the one a real run has, before V8 optimises it; the control is one pass over the same images that is linear by construction):",
      ['N', 'first', 'median of the rest', 'growth', 'linear control', 'its growth', 'N log N growth'],
      points.map(p => [
        p.n.toLocaleString('en'),
        `${p.firstMs.toFixed(1)} ms`,
        `${p.medianMs.toFixed(1)} ms`,
        growthText(p.growth),
        `${p.linearMedianMs.toFixed(2)} ms`,
        growthText(p.linearGrowth),
        growthText(p.nlognGrowth)
      ])
    )
  }
  lines.push('')
  lines.push('| target | measured | |')
  lines.push('| --- | --- | --- |')
  for (const t of ts) lines.push(`| ${t.target} | ${t.measured} | ${metText(t.met)} |`)
  lines.push('')
  const made =
    setup.generateMs !== undefined
      ? `making the largest scene once (Scene.many in chunks + builds, their loads included) took ${fmtMs(setup.generateMs)}`
      : ''
  const loaded =
    setup.loadMs !== undefined
      ? `docker load of its ${setup.loadImages}-image archive into an empty engine takes ${fmtMs(setup.loadMs)}`
      : ''
  const load = [made, loaded].filter(Boolean).join('; ') || 'scene setup times not recorded'
  lines.push(
    `Scenes: N images in \`bench\`, ${BIG} of them with a ${BIG_BYTES / 1e6} MB layer, the rest a distinct ${SMALL_BYTES / 1e3} kB layer each; ${load} (${setup.source}); ` +
      `each destructive run starts from a copy of the engine's data root (restore + restart: ${Object.entries(restoreMs)
        .map(([n, ms]) => `${fmtMs(ms)} at ${n}`)
        .join(', ')}).`
  )
  const c6 = bench.cacheScene
  if (c6) {
    lines.push(
      '',
      `Build-cache scene: ${CACHE_BUILDS} BuildKit builds FROM scratch (\`docker buildx build --load\`, the engine's own BuildKit), ${CACHE_BIG} of them with a ${BIG_BYTES / 1e6} MB layer, the rest ${SMALL_BYTES / 1e3} kB; ` +
        `the engine keeps ${c6.records} records of ${c6.bytes.toLocaleString('en')} bytes and the ${c6.images} images; ` +
        `N of (6) is its records. Restore + restart: ${fmtMs(cacheRestoreMs ?? NaN)}.`
    )
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------- main

let bed: Bed | undefined
let empty: Bed | undefined

async function main(): Promise<void> {
  const started = Date.now()
  if (!exists(BUNDLE)) throw new Error(`${BUNDLE} is missing: npm run build first`)
  const installed = await ensureGnuTime()
  const m = await machine()
  const p = plan()
  log(`mode ${QUICK ? 'quick' : 'full'}; ${m.nproc} CPUs, ${m.memoryGiB} GiB, ${m.kernel}, ${m.node}`)
  stopOnSignals(() => [bed, empty])
  bed = await Bed.start()
  empty = await Bed.start()
  log(`private engines: pid ${bed.pid} at ${bed.host} (scenes), pid ${empty.pid} at ${empty.host} (stays empty)`)
  const version = await bed.engineVersion()
  m.engineVersion = version.Version
  m.engineApi = version.ApiVersion
  const scenes = new Scenes(bed)
  await scenes.init()
  const bench = new Bench(bed, empty, scenes)

  // Warm the page cache for node, the bundle and the docker binary before anything is timed.
  for (let i = 0; i < 2; i++) {
    await runAction({}, bed.host)
    await runCli(bed, SCENARIOS.nothing.cli as string)
  }

  const restoreMs: Record<number, number[]> = {}
  const setupStart = Date.now()
  let setup: SetupCosts = { source: 'none' }
  for (const n of [0, ...p.sizes]) {
    if (n > 0) {
      if (setup.source === 'none') {
        setup = await scenes.ensure(p.sizes)
        log(`scenes ready in ${((Date.now() - setupStart) / 1000).toFixed(0)} s`)
      }
      ;(restoreMs[n] ??= []).push(await bed.restore(scenes.snapshotDir(n)))
    }
    for (const r of p.runs.filter(r => r.n === n)) await bench.scenario(r.n, r.scenario, r.reps)
    // bench/planning.ts prices from disk usage, which only overlay2 gives per image.
    if (n > 0 && bed.info.imageStore === 'overlay2') {
      await bed.restore(scenes.snapshotDir(n))
      await bench.planningCurve(n)
    }
    for (const r of bench.results.filter(r => r.n === n))
      for (const rep of r.reps)
        for (const side of [rep.action, rep.cli]) if (side?.restoreMs) restoreMs[n].push(side.restoreMs)
  }
  bench.cacheScene = await scenes.ensureCache()
  await bench.scenario(bench.cacheScene.records, 'cache', p.cacheReps)
  const cacheRun = bench.results.find(r => r.scenario === 'cache')
  const cacheRestoreMs = median(
    (cacheRun?.reps ?? [])
      .flatMap(rep => [rep.action.restoreMs, rep.cli?.restoreMs])
      .filter((ms): ms is number => ms !== undefined)
  )
  await bench.dispose()
  await bed.stop()
  bed = undefined
  await empty.stop()
  empty = undefined
  const snapshotProblems = [...(await scenes.verify(p.sizes)), ...(await scenes.verifyCache())]
  for (const problem of snapshotProblems) log(`WARNING ${problem}`)

  const ts = targets(bench, p.sizes)
  const restoreMedian = Object.fromEntries(
    Object.entries(restoreMs)
      .filter(([n]) => n !== '0')
      .map(([n, v]) => [n, median(v)])
  )
  const md = markdown(bench, m, ts, setup, restoreMedian, cacheRestoreMs)
  const elapsed = (Date.now() - started) / 1000
  const out = {
    mode: QUICK ? 'quick' : 'full',
    machine: m,
    gnuTimeInstalled: installed ?? null,
    elapsedSeconds: Math.round(elapsed),
    scene: { repo: REPO, big: BIG, bigBytes: BIG_BYTES, smallBytes: SMALL_BYTES },
    setup,
    restoreMsMedian: restoreMedian,
    cacheScene: bench.cacheScene ?? null,
    cacheRestoreMsMedian: cacheRestoreMs,
    snapshotProblems,
    results: bench.results,
    dryRunCurve: curve(bench),
    planning: bench.planning,
    targets: ts,
    markdown: md
  }
  const file = join(BENCH_DIR, QUICK ? 'results-quick.json' : 'results.json')
  await writeFile(file, `${JSON.stringify(out, null, 2)}\n`)

  process.stdout.write(`\n${pad(tableRows(bench))}\n\n`)
  process.stdout.write(
    `${pad([['target', 'measured', ''], ...ts.map(t => [t.target, t.measured, metText(t.met)])])}\n\n`
  )
  process.stdout.write(`--- Markdown (for docs/speed.md) ---\n\n${md}\n\n`)
  process.stdout.write(`results: ${file}; ${elapsed.toFixed(0)} s in all${installed ? `; ${installed}` : ''}\n`)
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
  for (const b of [bed, empty]) await b?.stop().catch(e => process.stderr.write(`stopping an engine: ${String(e)}\n`))
})
