/**
 * Where the action's time goes at N=3,000 (BENCH_ANALYSE_N to change it; BENCH_QUICK=1 for 300).
 *
 *   npx tsx bench/analyse.ts      ~5 min once the scenes are cached (bench/run.ts makes them)
 *
 * 1. Start-up: bare node, the bundle's module load (a run whose docker-host cannot be reached, and
 *    require() of the bundle timed inside such a run), the load cost of each dependency, a CPU profile.
 * 2. Every Engine API call of whole runs (nothing to do, dry run, remove, prune, and the CLI's own
 *    rmi and prune) through a recording proxy: what the action asks, how long each kind takes, and
 *    the client-side gaps between them. The dry run also under --cpu-prof.
 * 3. The engine alone, without the action: list, /system/df, inspect sequential and 8 wide,
 *    history, DELETE 1/2/4/8 wide, and POST /images/prune, per image.
 * 4. Projections: what the run would take with each change to src/, from the numbers above.
 * Writes bench/analysis.json and prints a report.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { api, apiJson } from '../testbed/api'
import { REPO_ROOT } from '../testbed/runner'
import { BENCH_DIR, Bed, BUNDLE, actionEnv, ensureGnuTime, loadAverage, log, machine, median, runAction, runnerEnv, stopOnSignals, timed, timeIt, type Sample } from './lib'
import { readProfile, type ProfileSummary } from './profile'
import { REPO, Scenes } from './scenes'
import { TraceProxy, summarise, type Call, type KindStats } from './trace'

const QUICK = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick')
const N = Number(process.env.BENCH_ANALYSE_N || (QUICK ? 300 : 3000))
const UNREACHABLE = 'unix:///nonexistent/docker.sock'

let bed: Bed | undefined

const r1 = (x: number): number => Math.round(x * 10) / 10

// ---------------------------------------------------------------- 1. start-up

const LOAD_PROBE = `
const t0 = performance.now()
require(${JSON.stringify(BUNDLE)})
const t1 = performance.now()
process.on('exit', () => process.stderr.write('\\nLOADPROBE ' + JSON.stringify({ bootMs: t0, requireMs: t1 - t0, exitAtMs: performance.now(), rssMB: process.memoryUsage().rss / 1e6 }) + '\\n'))
`

const DEPS = ['@actions/core', '@actions/exec', 'dockerode', 'docker-modem', 'ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'tar-fs']

function depProbe(dep: string): string {
  return `
const t0 = performance.now()
import(${JSON.stringify(dep)}).then(() => {
  process.stderr.write('DEPPROBE ' + JSON.stringify({ ms: performance.now() - t0, rssMB: process.memoryUsage().rss / 1e6 }) + '\\n')
})
`
}

function probeLine<T>(sample: Sample, tag: string): T {
  const line = sample.stderr.split('\n').find(l => l.startsWith(`${tag} `))
  if (!line) throw new Error(`no ${tag} line: ${sample.stderr.slice(-500)}`)
  return JSON.parse(line.slice(tag.length + 1)) as T
}

async function startup(b: Bed) {
  log('start-up: bare node, unreachable-engine runs, require() of the bundle and of each dependency')
  const bare: Sample[] = []
  for (let i = 0; i < 10; i++) bare.push(await timed(process.execPath, ['-e', '0'], { env: runnerEnv() }))
  const unreachable: Sample[] = []
  for (let i = 0; i < 10; i++) unreachable.push(await runAction({ 'docker-host': UNREACHABLE }, b.host))
  const env = await actionEnv({ 'docker-host': UNREACHABLE }, b.host)
  const loads: Array<{ bootMs: number; requireMs: number; exitAtMs: number; rssMB: number }> = []
  const dir = await mkdtemp(join(tmpdir(), 'dirb-bench-load-'))
  try {
    for (let i = 0; i < 7; i++) {
      const files = { GITHUB_OUTPUT: join(dir, 'o'), GITHUB_STEP_SUMMARY: join(dir, 's'), GITHUB_STATE: join(dir, 'st') }
      for (const f of Object.values(files)) await writeFile(f, '')
      loads.push(probeLine(await timed(process.execPath, ['-e', LOAD_PROBE], { env: { ...env, ...files } }), 'LOADPROBE'))
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  const deps: Record<string, { ms: number; rssMB: number }> = {}
  for (const dep of DEPS) {
    const runs: Array<{ ms: number; rssMB: number }> = []
    for (let i = 0; i < 5; i++) {
      const s = await timed(process.execPath, ['-e', depProbe(dep)], { env: runnerEnv(), cwd: REPO_ROOT })
      if (s.code !== 0) break
      runs.push(probeLine(s, 'DEPPROBE'))
    }
    if (runs.length) deps[dep] = { ms: r1(median(runs.map(r => r.ms))), rssMB: r1(median(runs.map(r => r.rssMB))) }
  }
  const bareRss = median(bare.map(s => (s.maxRssKb * 1024) / 1e6))
  return {
    bareNodeMs: r1(median(bare.map(s => s.ms))),
    bareNodeRssMB: r1(bareRss),
    unreachableRunMs: r1(median(unreachable.map(s => s.ms))),
    unreachableRunRssMB: r1(median(unreachable.map(s => (s.maxRssKb * 1024) / 1e6))),
    bundleRequireMs: r1(median(loads.map(l => l.requireMs))),
    nodeBootToScriptMs: r1(median(loads.map(l => l.bootMs))),
    rssAfterLoadMB: r1(median(loads.map(l => l.rssMB))),
    bundleBytes: Number((await import('node:fs')).statSync(BUNDLE).size),
    dependencyImport: deps
  }
}

// ---------------------------------------------------------------- 2. traced runs

interface Segment {
  kind: string
  count: number
  start: number
  end: number
  /** Client-side time before this segment: since the previous segment ended (or since spawn). */
  gapBefore: number
  busyMs?: number
}

/** Consecutive calls of one kind make a segment; what lies between segments is the client's own time. */
function segments(calls: Call[], profile?: ProfileSummary, originMs?: number): Segment[] {
  const out: Segment[] = []
  for (const c of calls) {
    const last = out[out.length - 1]
    if (last && last.kind === c.kind && c.start <= last.end + 50) {
      last.count++
      last.end = Math.max(last.end, c.end)
      continue
    }
    if (last && c.kind.startsWith('GET /containers/json') && last.kind === 'GET /images/json' && c.start < last.end) {
      last.kind += ' + containers'
      last.end = Math.max(last.end, c.end)
      continue
    }
    out.push({ kind: c.kind, count: 1, start: c.start, end: c.end, gapBefore: c.start - (last ? last.end : 0) })
  }
  if (profile && originMs !== undefined) for (const s of out) s.busyMs = r1(profile.busyBetween(originMs + s.start, originMs + s.end))
  return out.map(s => ({ ...s, start: r1(s.start), end: r1(s.end), gapBefore: r1(s.gapBefore) }))
}

interface Traced {
  label: string
  totalMs: number
  maxRssMB: number
  code: number
  outputs?: Record<string, string>
  /** spawn -> first API call. */
  startupMs: number
  /** last API answer -> exit. */
  tailMs: number
  kinds: Array<Omit<KindStats, 'firstAt' | 'lastEnd'>>
  segments: Segment[]
  profile?: Omit<ProfileSummary, 'busyBetween'>
}

function traced(label: string, sample: Sample, calls: Call[], profile?: ProfileSummary, outputs?: Record<string, string>): Traced {
  const kinds = summarise(calls).map(k => ({
    kind: k.kind,
    count: k.count,
    sumMs: r1(k.sumMs),
    medianMs: r1(k.medianMs),
    p90Ms: r1(k.p90Ms),
    maxMs: r1(k.maxMs),
    spanMs: r1(k.spanMs),
    bytes: k.bytes,
    concurrency: k.concurrency
  }))
  const first = calls.length ? calls[0].start : sample.ms
  const lastEnd = calls.length ? Math.max(...calls.map(c => c.end)) : 0
  const out: Traced = {
    label,
    totalMs: r1(sample.ms),
    maxRssMB: r1((sample.maxRssKb * 1024) / 1e6),
    code: sample.code,
    startupMs: r1(first),
    tailMs: r1(sample.ms - lastEnd),
    kinds,
    segments: segments(calls, profile, sample.startedAtMs)
  }
  if (outputs) out.outputs = { 'deleted-count': outputs['deleted-count'], 'reclaimed-bytes': outputs['reclaimed-bytes'] }
  if (profile) {
    const { busyBetween: _unused, ...rest } = profile
    void _unused
    out.profile = rest
  }
  return out
}

async function profiled(inputs: Record<string, string>, host: string): Promise<{ sample: Sample & { outputs: Record<string, string> }; profile: ProfileSummary }> {
  const dir = await mkdtemp(join(tmpdir(), 'dirb-bench-prof-'))
  try {
    const sample = await runAction(inputs, host, { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] })
    const file = (await readdir(dir)).find(f => f.endsWith('.cpuprofile'))
    if (!file) throw new Error('no .cpuprofile written')
    return { sample, profile: await readProfile(join(dir, file)) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function tracedRuns(b: Bed, scenes: Scenes, proxy: TraceProxy): Promise<Traced[]> {
  const host = `unix://${proxy.socket}`
  const snap = scenes.snapshotDir(N)
  const out: Traced[] = []
  const take = (label: string, s: Sample & { outputs?: Record<string, string> }, p?: ProfileSummary): void => {
    const t = traced(label, s, proxy.take(s.startedAtMs), p, s.outputs)
    out.push(t)
    log(`  ${label}: ${t.totalMs} ms, ${t.maxRssMB} MB, ${t.kinds.map(k => `${k.count} x ${k.kind}`).join(', ')}`)
  }
  log('traced runs on an empty engine')
  await b.reset()
  {
    const { sample, profile } = await profiled({}, host)
    take('action, nothing to do, empty engine (--cpu-prof)', sample, profile)
    take('action, nothing to do, empty engine', await runAction({}, host))
  }
  log(`traced runs on the scene of ${N}`)
  await b.restore(snap)
  take(`action, nothing to do, N=${N}`, await runAction({}, host))
  {
    const dry = { refs: `${REPO}:*`, 'dry-run': 'true' }
    take(`action, dry run refs ${REPO}:*, N=${N}`, await runAction(dry, host))
    const { sample, profile } = await profiled(dry, host)
    take(`action, dry run refs ${REPO}:*, N=${N} (--cpu-prof)`, sample, profile)
  }
  const cliEnv = { ...b.cliEnv(), DOCKER_HOST: host }
  const cli = (cmd: string): Promise<Sample> => timed('/bin/sh', ['-c', cmd], { env: cliEnv })
  const destructive: Array<[string, () => Promise<Sample & { outputs?: Record<string, string> }>]> = [
    [`action, refs ${REPO}:*, N=${N}`, () => runAction({ refs: `${REPO}:*` }, host)],
    [`CLI, docker rmi $(docker images -q ${REPO}), N=${N}`, () => cli(`/usr/bin/docker rmi $(/usr/bin/docker images -q ${REPO}) >/dev/null`)],
    [`action, prune: all, N=${N}`, () => runAction({ prune: 'all' }, host)],
    [`CLI, docker image prune -a -f, N=${N}`, () => cli('/usr/bin/docker image prune -a -f >/dev/null')]
  ]
  for (const [label, go] of destructive) {
    await b.restore(snap)
    take(label, await go())
  }
  {
    await b.restore(snap)
    const { sample, profile } = await profiled({ refs: `${REPO}:*` }, host)
    take(`action, refs ${REPO}:*, N=${N} (--cpu-prof)`, sample, profile)
  }
  return out
}

// ---------------------------------------------------------------- 3. the engine alone

async function timesOf(times: number, work: () => Promise<unknown>): Promise<number> {
  const ms: number[] = []
  for (let i = 0; i < times; i++) ms.push((await timeIt(work)).ms)
  return r1(median(ms))
}

async function wide<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<number> {
  let next = 0
  const { ms } = await timeIt(() =>
    Promise.all(
      Array.from({ length: width }, async () => {
        while (next < items.length) await work(items[next++])
      })
    )
  )
  return ms
}

async function ok(socket: string, method: string, path: string): Promise<void> {
  const res = await api(socket, method, path, 600_000)
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.body.slice(0, 200)}`)
}

async function engineAlone(b: Bed, scenes: Scenes) {
  log(`the engine alone, scene of ${N}`)
  await b.restore(scenes.snapshotDir(N))
  const s = b.socket
  const images = await apiJson<Array<{ Id: string; RepoTags: string[] | null }>>(s, 'GET', '/images/json?all=1')
  const ids = images.map(i => i.Id)
  const listMs = await timesOf(5, () => api(s, 'GET', '/images/json?all=1'))
  const listBytes = (await api(s, 'GET', '/images/json?all=1')).body.length
  const containersMs = await timesOf(5, () => api(s, 'GET', '/containers/json?all=1'))
  const dfMs = await timesOf(5, () => api(s, 'GET', '/system/df', 600_000))
  // The list again, timed alone, while /system/df is computed beside it (as when a step asks both at once).
  const besideDf: number[] = []
  for (let i = 0; i < 5; i++) {
    const df = api(s, 'GET', '/system/df', 600_000)
    besideDf.push((await timeIt(() => api(s, 'GET', '/images/json?all=1'))).ms)
    await df
  }
  const listBesideDfMs = r1(median(besideDf))
  const versionMs = await timesOf(5, () => api(s, 'GET', '/version'))
  const pingMs = await timesOf(5, () => api(s, 'GET', '/_ping'))
  const infoMs = await timesOf(5, () => api(s, 'GET', '/info'))
  const seqIds = ids.slice(0, 300)
  const inspectSeqMs = await wide(seqIds, 1, id => ok(s, 'GET', `/images/${id}/json`))
  const inspectWideMs = await wide(ids, 8, id => ok(s, 'GET', `/images/${id}/json`))
  const historyMs = await wide(ids.slice(0, 100), 1, id => ok(s, 'GET', `/images/${id}/history`))
  // Deletions as the action sends them (by ID, noprune=1), on disjoint slices of small images,
  // widths interleaved in rounds (rotating which goes first): deletions wait on fsync, and the
  // machine's other I/O moves that by a factor of 2 or more within minutes.
  const small = images.filter(i => (i.RepoTags ?? []).some(t => /^bench:\d+$/.test(t))).map(i => i.Id)
  const widths = [1, 2, 4, 8]
  const rounds = 4
  const slice = Math.min(40, Math.floor(small.length / (widths.length * rounds + 1)))
  const del = (id: string): Promise<void> => ok(s, 'DELETE', `/images/${id}?noprune=1`)
  const perWidth: Record<number, number[]> = {}
  let taken = 0
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < widths.length; k++) {
      const width = widths[(k + round) % widths.length]
      const part = small.slice(taken, (taken += slice))
      ;(perWidth[width] ??= []).push((await wide(part, width, del)) / part.length)
    }
  }
  const deletes = Object.fromEntries(widths.map(w => [`width ${w}`, r1(median(perWidth[w]))]))
  const deleteSpeedup = Object.fromEntries(widths.map(w => [`width ${w}`, r1(median(perWidth[1]) / median(perWidth[w]))]))
  const left = (await apiJson<unknown[]>(s, 'GET', '/images/json?all=1')).length
  // The engine's own prune next to a sequential sample of the same kind, taken just before it.
  const before = small.slice(taken, (taken += slice))
  const seqJustBefore = (await wide(before, 1, del)) / before.length
  const filters = encodeURIComponent(JSON.stringify({ dangling: { false: true } }))
  const { ms: pruneMs } = await timeIt(() => ok(s, 'POST', `/images/prune?filters=${filters}`))
  const pruned = left - before.length
  return {
    n: N,
    listMs,
    listBytes,
    containersMs,
    systemDfMs: dfMs,
    listBesideDfMs,
    versionMs,
    pingMs,
    infoMs,
    inspectSequentialPerCallMs: r1(inspectSeqMs / seqIds.length),
    inspectAll8WideMs: r1(inspectWideMs),
    inspect8WidePerImageMs: r1(inspectWideMs / ids.length),
    historyPerCallMs: r1(historyMs / 100),
    deletePerImageMs: deletes,
    deleteSpeedupOverSequential: deleteSpeedup,
    deleteSliceSize: slice,
    deleteRounds: rounds,
    sequentialDeleteJustBeforePruneMs: r1(seqJustBefore),
    prunePerImageMs: r1(pruneMs / pruned),
    pruneImages: pruned,
    pruneMs: r1(pruneMs),
    loadAverage: loadAverage()
  }
}

// ---------------------------------------------------------------- 4. report

type Startup = Awaited<ReturnType<typeof startup>>
type Alone = Awaited<ReturnType<typeof engineAlone>>

function find(runs: Traced[], prefix: string): Traced | undefined {
  return runs.find(r => r.label.startsWith(prefix) && !r.label.includes('--cpu-prof')) ?? runs.find(r => r.label.startsWith(prefix))
}

function kind(t: Traced | undefined, k: string): { count: number; spanMs: number; sumMs: number; medianMs: number } {
  const found = t?.kinds.find(x => x.kind === k)
  return found ?? { count: 0, spanMs: 0, sumMs: 0, medianMs: 0 }
}

/** What each change would save on one run, from measured parts; ranked by the gain at N. */
function projections(st: Startup, runs: Traced[], alone: Alone) {
  const remove = find(runs, `action, refs ${REPO}:*`)
  const prune = find(runs, 'action, prune: all')
  const dry = find(runs, 'action, dry run')
  const nothing0 = find(runs, 'action, nothing to do, empty engine')
  const cliRm = find(runs, 'CLI, docker rmi')
  const cliPrune = find(runs, 'CLI, docker image prune')
  const df = (t?: Traced): number => kind(t, 'GET /system/df').sumMs
  const inspect = (t?: Traced): number => kind(t, 'GET /images/{id}/json').spanMs
  const deletes = (t?: Traced): number => kind(t, 'DELETE /images/{id}').spanMs
  // Parallel deletes: the in-situ sequential DELETE phase divided by the speed-up measured on the
  // engine alone (widths interleaved), so that the machine's drift between the two cancels.
  const [bestWidth, speedup] = Object.entries(alone.deleteSpeedupOverSequential).sort((a, b) => b[1] - a[1])[0]
  // One prune call: the CLI's POST /images/prune over the same scene, as traced.
  const enginePrune = kind(cliPrune, 'POST /images/prune').spanMs
  const coreOnly = st.dependencyImport['@actions/core']?.ms ?? 0
  const lazyGain = Math.max(0, st.bundleRequireMs - coreOnly)
  const nothingN = find(runs, `action, nothing to do, N=`)
  const rows = [
    {
      change: 'No per-image inspect: price layers from one /system/df (Images[].Size and SharedSize: an image with SharedSize 0 frees its Size) and inspect only images that share layers',
      saves: { remove: inspect(remove), prune: inspect(prune), dryRun: inspect(dry), nothing: 0 }
    },
    {
      change: `Parallel DELETEs, bounded (${bestWidth}: x${speedup} over one at a time on this engine), keeping a child before its parent and one image's untags in order`,
      saves: { remove: deletes(remove) * (1 - 1 / speedup), prune: deletes(prune) * (1 - 1 / speedup), dryRun: 0, nothing: 0 }
    },
    {
      change: "prune: one POST /images/prune when the selection is exactly the engine's (no keep, keep-duration, or filters it cannot apply), pricing the Deleted layer IDs it answers with",
      saves: { remove: 0, prune: Math.max(0, deletes(prune) - enginePrune), dryRun: 0, nothing: 0 }
    },
    {
      change: 'Ask /system/df once, not before and after (after = before - freed), and not at all when nothing is deleted; on API < 1.42 it sizes every container too',
      saves: { remove: kind(remove, 'GET /system/df').medianMs, prune: kind(prune, 'GET /system/df').medianMs, dryRun: df(dry), nothing: df(nothingN) }
    },
    {
      change: `Load less at start-up: dockerode (with ssh2, grpc, protobufjs) for ~6 endpoints, and @actions/core's eager http-client/undici; require() of the bundle takes ${st.bundleRequireMs} ms, import of @actions/core alone ${coreOnly} ms, bare node ${st.bareNodeMs} ms`,
      saves: { remove: lazyGain, prune: lazyGain, dryRun: lazyGain, nothing: lazyGain }
    }
  ].map(r => ({ ...r, saves: Object.fromEntries(Object.entries(r.saves).map(([k, v]) => [k, Math.round(v)])) as Record<string, number> }))
  rows.sort((a, b) => b.saves.remove + b.saves.prune + b.saves.dryRun - (a.saves.remove + a.saves.prune + a.saves.dryRun))
  const sum = (k: string): number => rows.reduce((a, r) => a + r.saves[k], 0)
  const nothingNow = nothingN ?? nothing0
  return {
    deletePerImageSequentialMs: alone.deletePerImageMs['width 1'],
    rows,
    projected: {
      remove: { now: remove?.totalMs, after: remove ? Math.round(remove.totalMs - sum('remove')) : undefined, cli: cliRm?.totalMs },
      prune: {
        now: prune?.totalMs,
        // the prune rows overlap (parallel deletes or one prune call): count the larger one only
        after: prune
          ? Math.round(
              prune.totalMs -
                sum('prune') +
                Math.min(
                  rows.find(r => r.change.startsWith('Parallel'))?.saves.prune ?? 0,
                  rows.find(r => r.change.startsWith('prune:'))?.saves.prune ?? 0
                )
            )
          : undefined,
        cli: cliPrune?.totalMs
      },
      dryRun: { now: dry?.totalMs, after: dry ? Math.round(dry.totalMs - sum('dryRun')) : undefined },
      nothing: { n: nothingNow?.label, now: nothingNow?.totalMs, after: nothingNow ? Math.round(nothingNow.totalMs - sum('nothing')) : undefined }
    }
  }
}

function print(st: Startup, runs: Traced[], alone: Alone, proj: ReturnType<typeof projections>): string {
  const L: string[] = []
  L.push(`== 1. Start-up (empty engine) ==`)
  L.push(`bare node (node -e 0): ${st.bareNodeMs} ms, ${st.bareNodeRssMB} MB RSS`)
  L.push(`action with an unreachable docker-host (spawn -> exit): ${st.unreachableRunMs} ms, ${st.unreachableRunRssMB} MB RSS`)
  L.push(`require() of dist/index.js (${(st.bundleBytes / 1e6).toFixed(1)} MB) inside such a run: ${st.bundleRequireMs} ms; node boot before it: ${st.nodeBootToScriptMs} ms; RSS after load: ${st.rssAfterLoadMB} MB`)
  L.push(`import() of each dependency from node_modules (fresh node each, includes its own deps): ${Object.entries(st.dependencyImport).map(([d, v]) => `${d} ${v.ms} ms / ${v.rssMB} MB`).join('; ')}`)
  L.push('')
  L.push(`== 2. Traced runs (through a recording proxy: each call pays ~0.1-0.3 ms more than in bench/run.ts) ==`)
  for (const t of runs) {
    L.push(`-- ${t.label}: ${t.totalMs} ms, peak ${t.maxRssMB} MB, exit ${t.code}${t.outputs ? `, deleted-count ${t.outputs['deleted-count']}` : ''}`)
    L.push(`   spawn -> first API call ${t.startupMs} ms; last answer -> exit ${t.tailMs} ms`)
    for (const s of t.segments) {
      L.push(`   ${String(s.start).padStart(8)} ms  +${String(s.gapBefore).padStart(7)} ms client gap, then ${s.count} x ${s.kind} for ${r1(s.end - s.start)} ms${s.busyMs !== undefined ? ` (client CPU busy ${s.busyMs} ms)` : ''}`)
    }
    for (const k of t.kinds) L.push(`   ${k.kind}: ${k.count} calls, median ${k.medianMs} ms, p90 ${k.p90Ms} ms, span ${k.spanMs} ms, ${k.concurrency} at once, ${(k.bytes / 1e3).toFixed(0)} kB`)
    if (t.profile) {
      L.push(`   CPU profile: ${Object.entries(t.profile.categories).map(([c, ms]) => `${c} ${ms} ms`).join(', ')}; bundle top-level eval ${t.profile.bundleEvalMs?.toFixed(0)} ms`)
      L.push(`   top self time: ${t.profile.top.slice(0, 10).map(f => `${f.fn} (${f.where}) ${f.selfMs} ms`).join('; ')}`)
    }
  }
  L.push('')
  L.push(`== 3. The engine alone (N=${alone.n}, testbed api(), one connection per call) ==`)
  L.push(`GET /images/json?all=1 ${alone.listMs} ms (${(alone.listBytes / 1e3).toFixed(0)} kB); /containers/json ${alone.containersMs} ms; /system/df ${alone.systemDfMs} ms; /version ${alone.versionMs} ms; /_ping ${alone.pingMs} ms; /info ${alone.infoMs} ms`)
  L.push(`GET /images/json?all=1 while /system/df is computed beside it: ${alone.listBesideDfMs} ms`)
  L.push(`GET /images/{id}/json: ${alone.inspectSequentialPerCallMs} ms a call one at a time; all ${alone.n} 8 wide ${alone.inspectAll8WideMs} ms (${alone.inspect8WidePerImageMs} ms an image); /history ${alone.historyPerCallMs} ms a call`)
  L.push(`DELETE /images/{id}?noprune=1, ms per image (median of ${alone.deleteRounds} interleaved rounds of ${alone.deleteSliceSize}): ${Object.entries(alone.deletePerImageMs).map(([w, ms]) => `${w}: ${ms} (x${alone.deleteSpeedupOverSequential[w]})`).join(', ')}`)
  L.push(`POST /images/prune (dangling=false) over ${alone.pruneImages} images: ${alone.pruneMs} ms, ${alone.prunePerImageMs} ms an image (sequential DELETE just before: ${alone.sequentialDeleteJustBeforePruneMs} ms an image); load average ${alone.loadAverage}`)
  L.push('')
  L.push(`== 4. Changes to src/, ranked by what they save at N=${N} (ms, from the measurements above) ==`)
  for (const [i, r] of proj.rows.entries()) L.push(`${i + 1}. ${r.change}\n   saves: remove ${r.saves.remove}, prune ${r.saves.prune}, dry run ${r.saves.dryRun}, nothing-to-do ${r.saves.nothing}`)
  const p = proj.projected
  L.push(`projected: remove ${p.remove.now} -> ${p.remove.after} ms (CLI ${p.remove.cli}); prune ${p.prune.now} -> ${p.prune.after} ms (CLI ${p.prune.cli}); dry run ${p.dryRun.now} -> ${p.dryRun.after} ms; ${p.nothing.n} ${p.nothing.now} -> ${p.nothing.after} ms (each row measured alone; the sums assume they add up)`)
  return L.join('\n')
}

async function main(): Promise<void> {
  const started = Date.now()
  await ensureGnuTime()
  const m = await machine()
  stopOnSignals(() => [bed])
  bed = await Bed.start()
  log(`private engine pid ${bed.pid}; analysing N=${N}`)
  const scenes = new Scenes(bed)
  await scenes.init()
  await scenes.ensure([N])
  const proxy = new TraceProxy(join(bed.root, 'proxy.sock'), bed.socket)
  await proxy.listen()
  try {
    await bed.reset()
    for (let i = 0; i < 2; i++) await runAction({}, bed.host)
    const st = await startup(bed)
    const runs = await tracedRuns(bed, scenes, proxy)
    const alone = await engineAlone(bed, scenes)
    const proj = projections(st, runs, alone)
    const text = print(st, runs, alone, proj)
    const version = await bed.engineVersion()
    m.engineVersion = version.Version
    m.engineApi = version.ApiVersion
    await writeFile(join(BENCH_DIR, QUICK ? 'analysis-quick.json' : 'analysis.json'), `${JSON.stringify({ n: N, machine: m, startup: st, runs, engineAlone: alone, projections: proj, report: text }, null, 2)}\n`)
    process.stdout.write(`${text}\n\n${((Date.now() - started) / 1000).toFixed(0)} s in all\n`)
  } finally {
    await proxy.close()
    await bed.stop()
    bed = undefined
  }
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
  await bed?.stop().catch(e => process.stderr.write(`stopping the engine: ${String(e)}\n`))
})
