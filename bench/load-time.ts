/**
 * How long `docker load -i` of the cached scene archive takes on an empty private engine:
 *
 *   npx tsx bench/load-time.ts [N]      (N = 3000 by default; bench/run.ts must have made the archive)
 *
 * bench/run.ts makes each scene once and restores a data-root snapshot between runs instead, so
 * this is the cost it avoids. The result is added to the engine's setup-N.json in the cache, which
 * run.ts reports.
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Bed, CACHE_DIR, loadAverage, log, run, stopOnSignals, timeIt } from './lib'
import { Scenes } from './scenes'

let bed: Bed | undefined

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 3000)
  const archive = join(CACHE_DIR, `archive-${n}.tar`)
  if (!existsSync(archive)) throw new Error(`${archive} is missing: run bench/run.ts first`)
  stopOnSignals(() => [bed])
  bed = await Bed.start()
  const scenes = new Scenes(bed)
  await scenes.init()
  const load = loadAverage()
  log(`docker load -q -i ${archive} into an empty engine (pid ${bed.pid}); load average ${load}`)
  const { ms } = await timeIt(() => run('/usr/bin/docker', ['load', '-q', '-i', archive], bed?.cliEnv()))
  const images = await bed.imageCount()
  await bed.stop()
  bed = undefined
  const setupFile = scenes.setupFile(n)
  const setup = JSON.parse(await readFile(setupFile, 'utf8').catch(() => '{}')) as Record<string, unknown>
  const measured = { loadMs: Math.round(ms), loadImages: images, loadMeasuredAt: new Date().toISOString(), loadAverageBefore: load }
  await mkdir(dirname(setupFile), { recursive: true })
  await writeFile(setupFile, JSON.stringify({ ...setup, ...measured }, null, 2))
  process.stdout.write(`docker load of ${images} images: ${(ms / 1000).toFixed(1)} s (${(ms / images).toFixed(0)} ms an image); recorded in ${setupFile}\n`)
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
  await bed?.stop().catch(() => undefined)
})
