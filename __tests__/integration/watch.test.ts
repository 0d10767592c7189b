import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from '@jest/globals'
import { removeRoot } from '../../testbed/bed'
import { makeRoot, startEngine } from '../../testbed/engine'
import { BUSYBOX, Scene } from '../../testbed/scene'
import { expectLayerBytes, expectReclaimed, layerBytes, storage, tagsOf } from './checks'
import { bed, REPO_ROOT } from './harness'

/**
 * The host daemon against the bed's engine, as a service manager runs it: a child process that
 * follows the engine's events, stopped with SIGTERM, started again. One story, in order: what it
 * records, a clean stop, the events it missed while down caught up with `since`, and a one-shot
 * run that chooses by the ledger.
 */

const { scene } = bed()
const CLI = join(REPO_ROOT, 'dist', 'cli', 'index.js')
const WAIT_MS = 20_000
const MB = 1_000_000

interface Watcher {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

interface EngineLedger {
  lastEvent: number
  images: Record<string, number>
}

let stateDir: string

beforeAll(async () => {
  await scene.wipe({ keepBusybox: true })
  stateDir = await mkdtemp(join(tmpdir(), 'dirb-watch-'))
})

afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true })
})

/** The environment without DOCKER_HOST: the engine comes from --docker-host. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const copy = { ...process.env }
  delete copy.DOCKER_HOST
  delete copy.DOCKER_IMAGE_RECLAIM_STATE_DIR
  return { ...copy, ...extra }
}

async function startWatcher(args: string[] = [], where = { host: bed().host, dir: stateDir }): Promise<Watcher> {
  const child = spawn(
    process.execPath,
    [CLI, 'watch', '--state-dir', where.dir, '--docker-host', where.host, '--verbose', ...args],
    {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe']
    }
  )
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', chunk => (stdout += String(chunk)))
  child.stderr?.on('data', chunk => (stderr += String(chunk)))
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const watcher = { child, stdout: () => stdout, stderr: () => stderr, exited }
  await until(
    () => /Following /.test(stderr),
    () => `the watcher never followed the engine: ${stderr}`
  )
  return watcher
}

async function stop(watcher: Watcher): Promise<number | null> {
  watcher.child.kill('SIGTERM')
  const timeout = new Promise<'hung'>(resolve => setTimeout(() => resolve('hung'), WAIT_MS).unref())
  const code = await Promise.race([watcher.exited, timeout])
  if (code === 'hung') {
    watcher.child.kill('SIGKILL')
    throw new Error(`the watcher did not stop on SIGTERM: ${watcher.stderr()}`)
  }
  return code
}

async function until(check: () => boolean | Promise<boolean>, why: () => string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(why())
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** The ledger's only engine: the bed's. */
async function ledger(): Promise<EngineLedger | undefined> {
  const text = await readFile(join(stateDir, 'ledger.json'), 'utf8').catch(() => undefined)
  if (!text) return undefined
  const engines = Object.values((JSON.parse(text) as { engines: Record<string, EngineLedger> }).engines)
  expect(engines).toHaveLength(1)
  return engines[0]
}

const recorded = async (id: string): Promise<number | undefined> => (await ledger())?.images[id]

function cli(args: string[], extra: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(
      process.execPath,
      [CLI, ...args, '--docker-host', bed().host],
      { env: env(extra), timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr })
    )
  })
}

let legacy1: string
let legacy2: string

test('the watcher records a build and a container made from an older image, and SIGTERM saves the ledger', async () => {
  legacy1 = await scene.old('legacy:1', '2018-01-01T00:00:00Z')
  legacy2 = await scene.old('legacy:2', '2019-01-01T00:00:00Z')
  // The watcher asks for events since the second it starts in (Podman keeps no finer time), so a
  // load in that same second would count as a use: it starts in a later one.
  await new Promise(resolve => setTimeout(resolve, 1100))
  const watcher = await startWatcher()
  const built = await scene.build('fresh:1', { bytes: 10_000 })
  const container = await scene.createContainer('legacy:1')
  await scene.removeContainer(container)
  // Podman 4.3 logs no event for a build through its compat API: there the image's creation, which
  // the engine's own figures give, stands for it.
  const buildSeen = bed().engine.imageStore !== 'podman'
  await until(
    async () => (!buildSeen || (await recorded(built)) !== undefined) && (await recorded(legacy1)) !== undefined,
    () => `the ledger lacks the build or the container: ${watcher.stderr()}`
  )
  expect(await recorded(legacy2)).toBeUndefined()
  expect(await stop(watcher)).toBe(0)
  expect(watcher.stderr()).toMatch(/Stopped; the ledger is saved/)
  expect(watcher.stderr()).not.toMatch(/warning:/)
  expect((await ledger())?.lastEvent).toBeGreaterThanOrEqual((await recorded(legacy1)) as number)
})

test('started again, it catches up with what happened while it was down', async () => {
  const before = await ledger()
  const busybox = await scene.imageId(BUSYBOX)
  const usedBefore = before?.images[busybox] ?? 0
  const container = await scene.createContainer(BUSYBOX)
  await scene.removeContainer(container)
  const watcher = await startWatcher()
  expect(watcher.stderr()).toMatch(/Following .* from \d{4}-/)
  await until(
    async () => ((await recorded(busybox)) ?? 0) > usedBefore,
    () => `the ledger missed the container made while it was down: ${watcher.stderr()}`
  )
  expect(await stop(watcher)).toBe(0)
})

test('a name moved by a tag counts for its new image, and an image that loses one of two names keeps its use', async () => {
  const x = await scene.build('moved:1', { bytes: 10_000 })
  const y = await scene.build('moved:other', { bytes: 10_000 })
  await scene.tag('moved:other', 'moved:two')
  const busybox = await scene.imageId(BUSYBOX)
  const watcher = await startWatcher()
  /** Runs `change`, then a container of busybox, and waits until the ledger has read that far. */
  const settled = async (change: () => Promise<void>): Promise<void> => {
    await change()
    const before = (await recorded(busybox)) ?? 0
    await new Promise(resolve => setTimeout(resolve, 10))
    await scene.removeContainer(await scene.createContainer(BUSYBOX))
    await until(
      async () => ((await recorded(busybox)) ?? 0) > before,
      () => `the ledger did not catch up: ${watcher.stderr()}`
    )
  }
  await settled(async () => scene.removeContainer(await scene.createContainer('moved:1')))
  const usedX = await recorded(x)
  expect(usedX).toBeDefined()
  await settled(async () => {
    await scene.tag('moved:other', 'moved:1')
    await scene.removeContainer(await scene.createContainer('moved:1'))
  })
  // The container made by the moved name is the new image's use, not the old one's. On Podman the old
  // image is seen used again here too, which this run does not explain yet (docs/host-daemon.md).
  if (bed().engine.imageStore !== 'podman') expect(await recorded(x)).toBe(usedX)
  const usedY = await recorded(y)
  expect(usedY).toBeGreaterThan(usedX as number)
  // Podman reports this untag as a deletion of the image, which is still there.
  await settled(() => scene.rmi('moved:two'))
  expect(await scene.exists('moved:other')).toBe(true)
  expect(await recorded(y)).toBe(usedY)
  expect(await stop(watcher)).toBe(0)
})

test('--age-basis last-used with --keep-last 1 chooses by the ledger where the engine alone would choose otherwise', async () => {
  const args = ['--refs', 'legacy:*', '--age-basis', 'last-used', '--keep-last', '1', '--json', '--verbose']
  const empty = await mkdtemp(join(tmpdir(), 'dirb-watch-none-'))
  try {
    // The engine no longer knows the container: by its figures legacy:2 is the more recent.
    const engineOnly = await cli([...args, '--dry-run'], { DOCKER_IMAGE_RECLAIM_STATE_DIR: empty })
    expect(engineOnly.code).toBe(0)
    expect((JSON.parse(engineOnly.stdout) as { deleted: string[] }).deleted).toEqual([legacy1])
    expect(engineOnly.stderr).toMatch(/Last use: the engine's own figures \(no ledger/)
  } finally {
    await rm(empty, { recursive: true, force: true })
  }
  const withLedger = await cli(args, { DOCKER_IMAGE_RECLAIM_STATE_DIR: stateDir })
  expect(withLedger.code).toBe(0)
  expect((JSON.parse(withLedger.stdout) as { deleted: string[] }).deleted).toEqual([legacy2])
  expect(withLedger.stderr).toMatch(/Last use: the engine's own figures and the host daemon's ledger/)
  expect(await tagsOf(scene)).toContain('legacy:1')
  expect(await tagsOf(scene)).not.toContain('legacy:2')
})

test('with --max-storage and --headroom it evicts by the ledger once the target is crossed, then holds', async () => {
  const lru = [1, 2, 3].map(n => `lru:${n}`)
  const ids: string[] = []
  for (const tag of lru) ids.push(await scene.build(tag, { bytes: MB }))
  // The oldest build is used last, as only the ledger knows once its container is gone.
  const recorder = await startWatcher()
  const container = await scene.createContainer('lru:1')
  await scene.removeContainer(container)
  await until(
    async () => (await recorded(ids[0])) !== undefined,
    () => `the ledger lacks the container: ${recorder.stderr()}`
  )
  expect(await stop(recorder)).toBe(0)
  const only = ['--filter', 'reference=lru:*']
  const survey = await cli([...only, '--max-storage', '1TB', '--dry-run', '--json'], {})
  const before = (JSON.parse(survey.stdout) as { storageBefore: number }).storageBefore
  // Crossed by one byte: exactly to the target, lru:2 alone would go; the headroom takes lru:3 too.
  const headroom = layerBytes(MB).max + 1
  const disk = await storage(scene)
  const watcher = await startWatcher([
    ...only,
    '--max-storage',
    String(before - 1),
    '--headroom',
    String(headroom),
    '--interval',
    '1s'
  ])
  await until(
    () => /^Reclaimed/m.test(watcher.stdout()),
    () => `no eviction: ${watcher.stderr()}`
  )
  // Two more checks at the interval find the target holding: they remove nothing and print nothing.
  await until(
    () => (watcher.stderr().match(/they hold, nothing to remove/g) ?? []).length >= 2,
    () => `no later checks: ${watcher.stderr()}`
  )
  expect(await stop(watcher)).toBe(0)
  expect(watcher.stdout().match(/^Reclaimed/gm)).toHaveLength(1)
  const reclaimed = Number(/^Reclaimed \S+ \((\d+) bytes\)/m.exec(watcher.stdout())?.[1])
  expect(await tagsOf(scene)).toContain('lru:1')
  expect(await tagsOf(scene)).not.toContain('lru:2')
  expect(await tagsOf(scene)).not.toContain('lru:3')
  expectLayerBytes(reclaimed, MB, MB)
  expectReclaimed(reclaimed, disk, await storage(scene), 2)
  expect(watcher.stderr()).not.toMatch(/warning:/)
})

test('an engine restarted under it is reached again, and what happened since its restart is caught up with', async () => {
  const root = await makeRoot()
  const dir = await mkdtemp(join(tmpdir(), 'dirb-watch-restart-'))
  let engine = await startEngine(root)
  try {
    const id = await new Scene(engine).build('restart:1', { bytes: 10_000 })
    await new Promise(resolve => setTimeout(resolve, 1100))
    const watcher = await startWatcher([], { host: engine.host, dir })
    await engine.stop()
    await until(
      () => /Lost the engine/.test(watcher.stderr()),
      () => `the watcher did not notice: ${watcher.stderr()}`
    )
    engine = await startEngine(root)
    // Made before the watcher is back (it waits a second or more between attempts): only `since` finds it.
    const own = new Scene(engine)
    await own.removeContainer(await own.createContainer('restart:1'))
    const usedOf = async (): Promise<number | undefined> => {
      const text = await readFile(join(dir, 'ledger.json'), 'utf8').catch(() => '{"engines":{}}')
      const engines = Object.values((JSON.parse(text) as { engines: Record<string, EngineLedger> }).engines)
      return engines[0]?.images[id]
    }
    await until(
      async () => (await usedOf()) !== undefined,
      () => `the ledger missed the container made after the restart: ${watcher.stderr()}`
    )
    expect(await stop(watcher)).toBe(0)
    expect(watcher.stderr().match(/Lost the engine/g)).toHaveLength(1)
    expect(watcher.stderr()).toMatch(/is back/)
  } finally {
    await engine.stop()
    await rm(dir, { recursive: true, force: true })
    await removeRoot(root)
  }
})
