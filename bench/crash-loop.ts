/**
 * Runs the bundle's deleting path over and over and counts how each run ended: the exit-time
 * SIGSEGV seen by the benchmark came in about one destructive run in twelve, so only a loop of
 * many runs can show it, or show that it is gone.
 *
 *   npx tsx bench/crash-loop.ts [runs=60] [images=40] [-- node options...]
 *   BENCH_SCENE=300 npx tsx bench/crash-loop.ts [runs] [-- node options...]
 *
 * Each run gets a fresh scene of `images` small images (`loop:0` ...), then `node dist/index.js`
 * with `refs: loop:*` in the environment testbed/runner.ts gives it. With BENCH_SCENE=n, each run
 * instead starts from the benchmark's cached scene of n images (bench/scenes.ts), as run.ts's
 * scenario (1) does, and removes `bench:*`. A run is spawned through
 * `sh -c 'ulimit -c unlimited; exec ...'` in a directory of its own, so a crash leaves its core
 * there (with the kernel's default core_pattern) for gdb; the directories of clean runs are removed.
 * BENCH_BUNDLE=path runs another build of the bundle (a copy of dist/ elsewhere).
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Scene } from '../testbed/scene'
import { BUNDLE, Bed, actionEnv, log, stopOnSignals } from './lib'
import { REPO, Scenes } from './scenes'

interface Ending {
  code: number | null
  signal: NodeJS.Signals | null
  deleted: string
  dir: string
}

const RUNNER_FILES = ['GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY', 'GITHUB_STATE']

function args(): { runs: number; images: number; nodeArgs: string[] } {
  const argv = process.argv.slice(2)
  const dash = argv.indexOf('--')
  const own = dash < 0 ? argv : argv.slice(0, dash)
  return { runs: Number(own[0] ?? 60), images: Number(own[1] ?? 40), nodeArgs: dash < 0 ? [] : argv.slice(dash + 1) }
}

async function runOnce(env: NodeJS.ProcessEnv, nodeArgs: string[]): Promise<Ending> {
  const dir = await mkdtemp(join(tmpdir(), 'dirb-crash-'))
  const files = Object.fromEntries(RUNNER_FILES.map(name => [name, join(dir, name.toLowerCase())]))
  for (const file of Object.values(files)) await writeFile(file, '')
  const command = [process.execPath, ...nodeArgs, process.env.BENCH_BUNDLE || BUNDLE]
  const child = spawn('/bin/sh', ['-c', 'ulimit -c unlimited; exec "$@"', 'sh', ...command], {
    cwd: dir,
    env: { ...env, ...files },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const out: Buffer[] = []
  child.stdout.on('data', (c: Buffer) => out.push(c))
  child.stderr.on('data', (c: Buffer) => out.push(c))
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.on('close', (c, s) => resolve([c, s])))
  await writeFile(join(dir, 'log'), Buffer.concat(out))
  const outputs = await readFile(files.GITHUB_OUTPUT, 'utf8')
  const deleted = /^deleted-count(?:=|<<(.+)\n)(\d+)$/m.exec(outputs)?.[2] ?? '?'
  return { code, signal, deleted, dir }
}

/** What each run starts from: the cached benchmark scene, or a fresh small one. */
async function preparer(bed: Bed, images: number): Promise<{ repo: string; count: number; scene: () => Promise<unknown> }> {
  const cached = Number(process.env.BENCH_SCENE ?? 0)
  if (cached > 0) {
    const scenes = new Scenes(bed)
    await scenes.init()
    await scenes.ensure([cached])
    return { repo: REPO, count: cached, scene: () => bed.restore(scenes.snapshotDir(cached)) }
  }
  const scene = new Scene({ host: bed.host, dataRoot: bed.dataRoot })
  return { repo: 'loop', count: images, scene: () => scene.many('loop', images) }
}

async function main(): Promise<void> {
  const { runs, images, nodeArgs } = args()
  let bed: Bed | undefined
  stopOnSignals(() => [bed])
  bed = await Bed.start()
  try {
    const prepare = await preparer(bed, images)
    const env = await actionEnv({ refs: `${prepare.repo}:*` }, bed.host)
    const tally = new Map<string, number>()
    for (let n = 1; n <= runs; n++) {
      await prepare.scene()
      const end = await runOnce(env, nodeArgs)
      const key = end.signal ?? `exit ${end.code}`
      tally.set(key, (tally.get(key) ?? 0) + 1)
      const clean = end.code === 0 && end.deleted === String(prepare.count)
      if (clean) await rm(end.dir, { recursive: true, force: true })
      else log(`run ${n}: ${key}, deleted-count ${end.deleted}; kept ${end.dir} (${(await readdir(end.dir)).join(' ')})`)
      if (n % 10 === 0) log(`${n}/${runs}: ${[...tally].map(([k, v]) => `${k} x${v}`).join(', ')}`)
    }
    process.stdout.write(`${runs} runs of ${prepare.count} deletions, node ${process.version} ${nodeArgs.join(' ')}: ${[...tally].map(([k, v]) => `${k} x${v}`).join(', ')}\n`)
  } finally {
    await bed.stop()
  }
}

main().catch(error => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
  process.exitCode = 1
})
