/**
 * Where (2)'s time goes: the removal phase alone, next to the action and the CLI, every run from
 * a restored copy of the same cached scene (bench/run.ts makes it).
 *
 *   npx tsx bench/removals.ts                      N = 300, 6 rounds (BENCH_SCENE, BENCH_REPS)
 *   BENCH_SIDES=action,cli npx tsx bench/removals.ts A/index.js B/index.js   bundles side by side
 *
 * Sides, in an order that rotates each round:
 * - `action`: each bundle (default dist/index.js) with `prune: all`, timed whole, and when its
 *   "Removing" group began and ended, from its stdout as it comes;
 * - `cli`: `docker image prune -a -f`;
 * - `<client>:<width>[:<order>]`: bench/removals-child.cjs in a fresh Node process sends
 *   `DELETE /images/{id}?noprune=1` for every listed image, <width> at a time, through
 *   `dockerode`, docker-modem's `dial` or `http` (node:http); in list order (newest first), or by
 *   `id`, `reverse` or `shuffle`. It times the phase alone.
 * Writes bench/removals.json and prints medians.
 */
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { apiJson } from '../testbed/api'
import { BENCH_DIR, BUNDLE, Bed, actionEnv, loadAverage, log, median, runCli, runnerEnv, stopOnSignals, withRunnerFiles } from './lib'
import { Scenes } from './scenes'

const N = Number(process.env.BENCH_SCENE || 300)
const REPS = Number(process.env.BENCH_REPS || 6)
const BUNDLES = process.argv.slice(2).map(b => resolve(b))
const SIDES = (process.env.BENCH_SIDES || 'action,cli,dockerode:6,dial:6,http:6,dockerode:10,dockerode:16,dockerode:6:id,dockerode:6:reverse,dockerode:6:shuffle').split(',')

let bed: Bed | undefined

/** One figure per name and run: whole-process times, phase times, CPU. */
type Figures = Record<string, number>

/** The bundle's run, with the moments its stdout showed the "Removing" group open and close. */
async function action(b: Bed, bundle: string): Promise<Figures> {
  const inputsEnv = await actionEnv({ prune: 'all' }, b.host)
  return withRunnerFiles(async files => {
    const start = performance.now()
    const child = spawn(process.execPath, [bundle], { env: { ...inputsEnv, ...files }, stdio: ['ignore', 'pipe', 'inherit'] })
    const marks: Figures = {}
    let pending = ''
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split('\n')
      pending = lines.pop() ?? ''
      const at = performance.now() - start
      for (const line of lines) {
        if (line.startsWith('::group::Removing')) marks.removingFrom = at
        else if (line.startsWith('::endgroup::') && marks.removingFrom !== undefined) marks.removingTo ??= at
      }
    })
    const code = await new Promise<number | null>(done => child.on('exit', done))
    if (code !== 0 || marks.removingTo === undefined) throw new Error(`${bundle} exited ${code} without a removal phase`)
    return { ms: performance.now() - start, removingFromMs: marks.removingFrom, removalsMs: marks.removingTo - marks.removingFrom }
  })
}

function order(ids: string[], how: string | undefined): string[] {
  if (how === 'id') return [...ids].sort()
  if (how === 'reverse') return [...ids].reverse()
  if (how !== 'shuffle') return ids
  const shuffled = [...ids]
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]
  }
  return shuffled
}

async function removals(b: Bed, side: string): Promise<Figures> {
  const [client, width, how] = side.split(':')
  const listed = await apiJson<{ Id: string }[]>(b.socket, 'GET', '/images/json')
  const idsFile = join(b.root, 'removal-ids')
  await writeFile(idsFile, order(listed.map(i => i.Id), how).join('\n'))
  const child = spawn(process.execPath, [join(BENCH_DIR, 'removals-child.cjs'), client, width, b.socket, idsFile], { env: runnerEnv(), stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const code = await new Promise<number | null>(done => child.on('exit', done))
  if (code !== 0) throw new Error(`${side}: the removal phase exited ${code}`)
  const { ms, cpuMs } = JSON.parse(out) as { ms: number; cpuMs: number }
  return { removalsMs: ms, cpuMs }
}

/** `action <bundle>`, `cli` or `<client>:<width>[:<order>]`. */
async function runSide(b: Bed, side: string): Promise<Figures> {
  if (side.startsWith('action ')) return action(b, side.slice('action '.length))
  if (side === 'cli') return { ms: (await runCli(b, '/usr/bin/docker image prune -a -f >/dev/null')).ms }
  return removals(b, side)
}

async function main(): Promise<void> {
  stopOnSignals(() => [bed])
  bed = await Bed.start()
  const scenes = new Scenes(bed)
  await scenes.init()
  await scenes.ensure([N])
  const bundles = BUNDLES.length > 0 ? BUNDLES : [BUNDLE]
  const sides = SIDES.flatMap(side => (side === 'action' ? bundles.map(bundle => `action ${bundle}`) : [side]))
  const runs: Record<string, Figures[]> = {}
  for (let round = 0; round < REPS; round++) {
    const load = loadAverage()
    for (const side of sides.map((_, i) => sides[(i + round) % sides.length])) {
      await bed.restore(scenes.snapshotDir(N))
      const figures = await runSide(bed, side)
      ;(runs[side] ??= []).push({ ...figures, load })
    }
    log(`round ${round + 1} of ${REPS}`)
  }
  const medians = Object.fromEntries(
    Object.entries(runs).map(([side, all]) => [side, Object.fromEntries(Object.keys(all[0]).map(key => [key, Math.round(median(all.map(f => f[key])))]))])
  )
  for (const [side, figures] of Object.entries(medians)) {
    process.stdout.write(`${side}: ${Object.entries(figures).map(([k, v]) => `${k} ${v}`).join(', ')}\n`)
  }
  await writeFile(join(BENCH_DIR, 'removals.json'), JSON.stringify({ n: N, reps: REPS, date: new Date().toISOString(), medians, runs }, null, 2))
  await bed.stop()
  bed = undefined
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
  await bed?.stop().catch(() => undefined)
})
