/**
 * Target (3)'s floor: a step with nothing to do, timed as a whole process, for one or more builds
 * of the bundle side by side.
 *
 *   npx tsx bench/startup.ts [bundle ...]     default: dist/index.js; 20 rounds (BENCH_REPS)
 *   BENCH_SCENE=1000 npx tsx bench/startup.ts [bundle ...]   on the cached scene of 1,000 images
 *
 * Each round runs every bundle once, in an order that rotates each round: a step with nothing to
 * do (summary on) on an empty private engine, or with BENCH_SCENE=n on bench/run.ts's cached
 * scene of n images, and a step against an engine that cannot be reached (module load, settings
 * and exit only); a bare `node -e 0` each round gives the floor. The machine is shared, so bundles are compared within a round, never
 * across runs of this script; the load average is recorded before each run.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { Bed, BUNDLE, ensureGnuTime, loadAverage, log, median, runAction, runnerEnv, stopOnSignals, timed, type Sample } from './lib'
import { Scenes } from './scenes'

const REPS = Number(process.env.BENCH_REPS || 20)
const UNREACHABLE = 'unix:///nonexistent/docker.sock'
const RUNNER_ENV = runnerEnv()
const MACHINE_ONLY = Object.keys(process.env).filter(k => !(k in RUNNER_ENV)).join(', ')

interface Cell {
  ms: number[]
  rssMB: number[]
  load: number[]
}

const cell = (): Cell => ({ ms: [], rssMB: [], load: [] })

function record(into: Cell, sample: Sample, load: number): void {
  into.ms.push(sample.ms)
  into.rssMB.push((sample.maxRssKb * 1024) / 1e6)
  into.load.push(load)
}

/** The nothing-to-do run must succeed and delete nothing; the unreachable one must fail on the engine, not before. */
function check(sample: Awaited<ReturnType<typeof runAction>>, bundle: string, reachable: boolean): void {
  const ok = reachable ? sample.code === 0 && sample.outputs['deleted-count'] === '0' : sample.code === 1 && /Cannot reach/.test(sample.stdout)
  if (!ok) throw new Error(`${bundle}: unexpected run (exit ${sample.code}): ${sample.stdout.slice(-400)} ${sample.stderr.slice(-400)}`)
}

const fmt = (c: Cell): string =>
  `${Math.round(median(c.ms))} ms (${Math.round(Math.min(...c.ms))}-${Math.round(Math.max(...c.ms))}), ` +
  `${Math.round(median(c.rssMB))} MB, load ${median(c.load).toFixed(1)}`

async function main(): Promise<void> {
  const bundles = process.argv.slice(2).map(b => resolve(b))
  if (bundles.length === 0) bundles.push(BUNDLE)
  for (const b of bundles) if (!existsSync(b)) throw new Error(`no bundle at ${b}`)
  await ensureGnuTime()
  const bed = await Bed.start()
  stopOnSignals(() => [bed])
  try {
    const scene = Number(process.env.BENCH_SCENE ?? 0)
    if (scene > 0) {
      const scenes = new Scenes(bed)
      await scenes.init()
      await scenes.ensure([scene])
      await bed.restore(scenes.snapshotDir(scene))
    }
    const empty = new Map(bundles.map(b => [b, cell()]))
    const unreachable = new Map(bundles.map(b => [b, cell()]))
    const bare = cell()
    // The environment this script was started in, where it has what a runner would not pass on.
    const machineBare = MACHINE_ONLY ? cell() : undefined
    for (let round = 0; round < REPS; round++) {
      record(bare, await timed(process.execPath, ['-e', '0'], { env: RUNNER_ENV }), loadAverage())
      if (machineBare) record(machineBare, await timed(process.execPath, ['-e', '0'], { env: process.env }), loadAverage())
      const order = bundles.map((_, i) => bundles[(i + round) % bundles.length])
      for (const bundle of order) {
        const load = loadAverage()
        const run = await runAction({}, bed.host, { bundle })
        check(run, bundle, true)
        record(empty.get(bundle) as Cell, run, load)
        const down = await runAction({ 'docker-host': UNREACHABLE }, bed.host, { bundle })
        check(down, bundle, false)
        record(unreachable.get(bundle) as Cell, down, loadAverage())
      }
      log(`round ${round + 1} of ${REPS}`)
    }
    console.log(`\nmedian (range) of ${REPS} whole processes each, spawn to exit; peak RSS; 1-minute load average`)
    console.log(`\nbare node -e 0: ${fmt(bare)}`)
    if (machineBare) console.log(`bare node -e 0 with this machine's ${MACHINE_ONLY}: ${fmt(machineBare)}`)
    for (const b of bundles) {
      console.log(`\n${b}`)
      console.log(`  nothing to do, ${scene > 0 ? `${scene} images` : 'empty engine'}: ${fmt(empty.get(b) as Cell)}`)
      console.log(`  engine unreachable:          ${fmt(unreachable.get(b) as Cell)}`)
    }
  } finally {
    await bed.stop()
  }
}

main().catch(error => {
  console.error(error)
  process.exitCode = 1
})
