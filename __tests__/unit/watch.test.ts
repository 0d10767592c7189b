import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { run } from '../../src/cli/run'
import { runWatch } from '../../src/cli/watch'
import type { LastUseLedger } from '../../src/plan/last-use-ledger'
import type { Log } from '../../src/run/log'
import { CheckSchedule } from '../../src/run/schedule'
import { watch } from '../../src/run/watch'
import { FakeEngine } from '../fakes/engine'

/** The host daemon's loop against an engine in memory, whose event log is what its changes emitted. */

let dir: string
let clock: number

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'watch-unit-'))
  clock = Date.parse('2025-01-01T00:00:00Z')
})

/** Watchers a test left running when it failed: stopped, so that the run ends. */
const running: AbortController[] = []

afterEach(async () => {
  for (const stopping of running.splice(0)) stopping.abort()
  await rm(dir, { recursive: true, force: true })
})

function engineAt(): FakeEngine {
  const engine = new FakeEngine()
  engine.now = () => clock
  return engine
}

const later = (ms = 1000): number => (clock += ms)

function sink(): { stream: Writable; text: () => string } {
  let text = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8')
      done()
    }
  })
  return { stream, text: () => text }
}

async function until(check: () => boolean | Promise<boolean>, why: () => string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(why())
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

async function ledger(): Promise<LastUseLedger> {
  return JSON.parse(await readFile(join(dir, 'ledger.json'), 'utf8')) as LastUseLedger
}

/** Until the ledger on disk has read every event the engine sent: the loop writes at most once a second. */
async function caughtUp(engine: FakeEngine): Promise<void> {
  const last = engine.eventLog[engine.eventLog.length - 1].time
  await until(
    async () => (await ledger().catch(() => undefined))?.engines[engine.id]?.lastEvent === last,
    () => 'the ledger never caught up'
  )
}

/** `watch` through the command line, stopped by the returned function. */
async function started(engine: FakeEngine, argv: string[] = []) {
  const stderr = sink()
  const stdout = sink()
  const stopping = new AbortController()
  running.push(stopping)
  const code = runWatch(
    ['--state-dir', dir, ...argv],
    { stdout: stdout.stream, stderr: stderr.stream },
    engine.open,
    stopping.signal
  )
  await until(() => /Following /.test(stderr.text()), stderr.text)
  return { stderr: stderr.text, stdout: stdout.text, stop: () => (stopping.abort(), code) }
}

describe('watch', () => {
  test('a build, a tag and a container become last uses; exec and health events are dropped', async () => {
    const engine = engineAt()
    const old = engine.build('old:1')
    const watcher = await started(engine, ['--verbose'])
    later()
    const built = engine.build('app:1')
    const builtAt = clock
    later()
    const container = engine.run('old:1', { running: false })
    const usedAt = clock
    later()
    engine.emit('container', 'exec_start: sh -c true', 'old:1')
    engine.emit('container', 'health_status: healthy', 'old:1')
    engine.removeContainer(container)
    await caughtUp(engine)
    expect(await watcher.stop()).toBe(0)
    expect((await ledger()).engines[engine.id]).toEqual({
      lastEvent: clock,
      images: { [built]: builtAt, [old]: usedAt }
    })
    expect(watcher.stderr()).toMatch(/used: container create/)
    expect(watcher.stderr()).not.toMatch(/exec_start|health_status|warning/)
  })

  test('a container named by another spelling or a short ID is mapped to its image', async () => {
    const engine = engineAt()
    const id = engine.build('app:1')
    const other = engine.build('docker.io/library/tool')
    const watcher = await started(engine)
    later()
    engine.emit('container', 'create', 'docker.io/library/app:1')
    later()
    engine.emit('container', 'start', other.slice(7, 19))
    await caughtUp(engine)
    expect(await watcher.stop()).toBe(0)
    expect((await ledger()).engines[engine.id].images).toEqual({ [id]: clock - 1000, [other]: clock })
  })

  test('a tag moves one name without reading the image list again; a container then counts for the new image', async () => {
    const engine = engineAt()
    const first = engine.build('app:1')
    const watcher = await started(engine)
    const lists = engine.listed
    later()
    const second = engine.build('app:next')
    for (let i = 0; i < 20; i++) {
      later()
      engine.tag(i % 2 === 0 ? 'app:next' : first, 'app:1')
      engine.emit('container', 'create', 'app:1')
    }
    await caughtUp(engine)
    expect(await watcher.stop()).toBe(0)
    expect(engine.listed).toBe(lists)
    // The last tag put app:1 back on the first image, and the container after it used that one.
    expect((await ledger()).engines[engine.id].images[first]).toBe(clock)
    expect((await ledger()).engines[engine.id].images[second]).toBe(clock - 1000)
  })

  test('a deletion event for an image the engine still has (Podman, one of several names) keeps its use', async () => {
    const engine = engineAt()
    const id = engine.build(['app:1', 'app:2'])
    const watcher = await started(engine)
    later()
    engine.emit('container', 'create', 'app:1')
    const usedAt = clock
    later()
    engine.emit('image', 'delete', id)
    await caughtUp(engine)
    expect(await watcher.stop()).toBe(0)
    expect((await ledger()).engines[engine.id].images[id]).toBe(usedAt)
  })

  test('started again, it asks for the events since the last one it saw, and catches up', async () => {
    const engine = engineAt()
    const first = await started(engine)
    later()
    engine.build('a:1')
    await caughtUp(engine)
    expect(await first.stop()).toBe(0)
    const seen = (await ledger()).engines[engine.id].lastEvent
    later()
    const whileDown = engine.build('b:1')
    const builtAt = clock
    const second = await started(engine)
    await caughtUp(engine)
    expect(await second.stop()).toBe(0)
    // The first from the engine's clock at the start, the second from the ledger.
    expect(engine.eventRequests).toEqual([clock - 2000, seen])
    expect((await ledger()).engines[engine.id].images[whileDown]).toBe(builtAt)
  })

  test('SIGTERM ends it with the ledger saved and exit 0', async () => {
    const engine = engineAt()
    const stderr = sink()
    const code = runWatch(
      ['--state-dir', dir, '--verbose'],
      { stdout: sink().stream, stderr: stderr.stream },
      engine.open
    )
    await until(() => /Following /.test(stderr.text()), stderr.text)
    later()
    const id = engine.build('app:1')
    await until(() => /used: image tag/.test(stderr.text()), stderr.text)
    process.emit('SIGTERM')
    expect(await code).toBe(0)
    expect((await ledger()).engines[engine.id].images[id]).toBe(clock)
    expect(process.listenerCount('SIGTERM')).toBe(0)
  })

  test('a lost engine is logged once, tried again with a growing wait, and once when back', async () => {
    const engine = engineAt()
    const lines: string[] = []
    const log: Log = {
      info: message => lines.push(`info ${message}`),
      warning: message => lines.push(`warning ${message}`),
      group: (_name, work) => work()
    }
    const stopping = new AbortController()
    let attempts = 0
    const done = watch({
      stateDir: dir,
      open: () => {
        attempts++
        return engine.open({} as never, log)
      },
      log,
      signal: stopping.signal,
      flushMs: 10,
      retry: { firstMs: 5, maxMs: 20 }
    })
    await until(
      () => lines.some(line => line.includes('Following')),
      () => lines.join('\n')
    )
    engine.goAway()
    const before = attempts
    await new Promise(resolve => setTimeout(resolve, 200))
    // Waits of 5, 10, then 20 ms: about ten attempts in 200 ms, where a fixed 5 ms would make forty.
    expect(attempts - before).toBeGreaterThanOrEqual(2)
    expect(attempts - before).toBeLessThanOrEqual(15)
    engine.comeBack()
    await until(
      () => lines.some(line => line.includes('is back')),
      () => lines.join('\n')
    )
    later()
    const id = engine.build('app:1')
    await until(
      async () => (await ledger().catch(() => undefined))?.engines[engine.id]?.images[id] === clock,
      () => 'not recorded'
    )
    stopping.abort()
    await done
    expect(lines.filter(line => line.startsWith('warning'))).toEqual([
      expect.stringMatching(/^warning Lost the engine/)
    ])
    expect(lines.filter(line => line.includes('is back'))).toHaveLength(1)
  })

  test('a damaged ledger is moved aside with a warning, and a new one is kept', async () => {
    await writeFile(join(dir, 'ledger.json'), '{"version": 1, "engines": ')
    const engine = engineAt()
    const watcher = await started(engine)
    later()
    const id = engine.build('app:1')
    await caughtUp(engine)
    expect(await watcher.stop()).toBe(0)
    expect(watcher.stderr()).toMatch(
      /warning: The ledger .* is damaged \(it is not JSON.*moved to .*ledger\.json\.damaged-/
    )
    expect((await readdir(dir)).filter(name => name.startsWith('ledger.json.damaged-'))).toHaveLength(1)
    expect((await ledger()).engines[engine.id].images[id]).toBe(clock)
  })

  test('bad usage exits 2 and never reaches the engine', async () => {
    const engine = engineAt()
    const stderr = sink()
    const code = await runWatch(['--every', '5m'], { stdout: sink().stream, stderr: stderr.stream }, engine.open)
    expect(code).toBe(2)
    expect(stderr.text()).toMatch(/Unknown option '--every'/)
    expect(engine.opened).toBe(0)
  })

  test.each([
    [['--interval', 'often', '--max-storage', '1GB'], /--interval must be a duration of a second or more/],
    [['--interval', '10ms', '--max-storage', '1GB'], /--interval must be a duration of a second or more/],
    [['--headroom', '1GB'], /--headroom needs max-storage or min-free/],
    [['--max-storage', 'lots'], /--max-storage must be a size/]
  ])('%j exits 2, naming the flag, and never reaches the engine', async (argv, message) => {
    const engine = engineAt()
    const stderr = sink()
    expect(await runWatch(argv, { stdout: sink().stream, stderr: stderr.stream }, engine.open)).toBe(2)
    expect(stderr.text()).toMatch(message)
    expect(engine.opened).toBe(0)
  })
})

describe('watch with storage targets', () => {
  const MB = 1_000_000

  /** Four images of 1 MB built in order, the oldest of which the ledger says was used last. */
  async function fourImages(engine: FakeEngine): Promise<Record<string, string>> {
    const ids = Object.fromEntries(
      ['a', 'b', 'c', 'd'].map((name, i) => [name, engine.build(`${name}:1`, { bytes: MB, created: clock + i })])
    )
    later(60_000)
    const ledgerText: LastUseLedger = {
      version: 1,
      engines: { [engine.id]: { lastEvent: clock, images: { [ids.a]: clock } } }
    }
    await writeFile(join(dir, 'ledger.json'), JSON.stringify(ledgerText))
    return ids
  }

  test('a crossed target is checked at the start: least recently used by the ledger, down to the headroom', async () => {
    const engine = engineAt()
    const ids = await fourImages(engine)
    const watcher = await started(engine, ['--max-storage', String(3.5 * MB), '--headroom', String(MB)])
    await until(() => /Reclaimed/.test(watcher.stdout()), watcher.stderr)
    expect(await watcher.stop()).toBe(0)
    // The engine alone would take a, the oldest build: the ledger's later use of it keeps it.
    expect(engine.idsNow().sort()).toEqual([ids.a, ids.d].sort())
    expect(watcher.stdout()).toMatch(/^Reclaimed 2MB \(2000000 bytes\) on \S+: 2 deleted, 2 untagged, 0 skipped$/m)
    expect(watcher.stdout()).toMatch(/deleted\s+b:1 /)
    expect(watcher.stdout()).toMatch(/Storage target met\./)
  })

  test('a target that holds removes nothing and prints nothing; the next check at --interval does', async () => {
    const engine = engineAt()
    await fourImages(engine)
    const watcher = await started(engine, ['--max-storage', String(4 * MB), '--interval', '1s', '--verbose'])
    await until(() => /they hold, nothing to remove/.test(watcher.stderr()), watcher.stderr)
    expect(watcher.stdout()).toBe('')
    later()
    const e = engine.build('e:1', { bytes: MB })
    await until(() => /Reclaimed/.test(watcher.stdout()), watcher.stderr)
    expect(await watcher.stop()).toBe(0)
    expect(engine.idsNow()).toContain(e)
    expect(engine.idsNow()).toHaveLength(4)
  })

  test('image events are followed by one check once they pause; container events by none', async () => {
    const engine = engineAt()
    engine.build('base:1')
    later()
    const stopping = new AbortController()
    const checked: number[] = []
    const silent: Log = { info: () => undefined, warning: () => undefined, group: (_name, work) => work() }
    const done = watch({
      stateDir: dir,
      open: () => engine.open({} as never, silent),
      log: silent,
      signal: stopping.signal,
      checks: { run: async () => void checked.push(engine.idsNow().length), everyMs: 60_000, quietMs: 50 }
    })
    await until(
      () => checked.length === 1,
      () => 'no check at the start'
    )
    for (let i = 0; i < 20; i++) engine.run('base:1', { running: false })
    await new Promise(resolve => setTimeout(resolve, 150))
    expect(checked).toHaveLength(1)
    for (let i = 0; i < 20; i++) engine.build(`burst:${i}`)
    await until(
      () => checked.length === 2,
      () => `checks: ${checked.join(', ')}`
    )
    await new Promise(resolve => setTimeout(resolve, 150))
    stopping.abort()
    await done
    // One check after the burst, and it saw the whole burst.
    expect(checked).toEqual([1, 21])
  })

  test('--build-cache counts the cache in the target: an old record goes before a newer image', async () => {
    const engine = engineAt()
    const ids = await fourImages(engine)
    engine.cache.push({
      id: 'stale',
      type: 'regular',
      description: 'COPY . /',
      inUse: false,
      shared: false,
      size: MB,
      createdAt: clock - 10 * 86_400_000,
      lastUsedAt: clock - 9 * 86_400_000,
      parents: []
    })
    const watcher = await started(engine, ['--max-storage', String(4.5 * MB), '--build-cache', 'all'])
    await until(() => /Build cache/.test(watcher.stdout()), watcher.stderr)
    expect(await watcher.stop()).toBe(0)
    expect(engine.cache).toEqual([])
    expect(engine.idsNow()).toHaveLength(Object.keys(ids).length)
    expect(watcher.stdout()).toMatch(/^Reclaimed 1MB \(1000000 bytes\)/m)
  })

  test('--build-cache without a target is refused, naming it', async () => {
    const engine = engineAt()
    const stderr = sink()
    const code = await runWatch(['--build-cache', 'all'], { stdout: sink().stream, stderr: stderr.stream }, engine.open)
    expect(code).toBe(2)
    expect(stderr.text()).toMatch(/--build-cache needs --max-storage or --min-free in watch mode/)
    expect(engine.opened).toBe(0)
  })

  test('--dry-run removes nothing and says at each check what would go', async () => {
    const engine = engineAt()
    const ids = await fourImages(engine)
    const watcher = await started(engine, ['--max-storage', String(3 * MB), '--dry-run'])
    await until(() => /Would reclaim/.test(watcher.stdout()), watcher.stderr)
    expect(await watcher.stop()).toBe(0)
    expect(engine.idsNow()).toHaveLength(4)
    expect(watcher.stdout()).toMatch(/^Would reclaim 1MB \(1000000 bytes\)/m)
    expect(watcher.stdout()).toMatch(new RegExp(`b:1\\s+${ids.b.slice(7, 19)}`))
  })
})

describe('the check schedule', () => {
  test('checks at the start, once after a burst of nudges has paused, and never two at once', async () => {
    let running = 0
    let most = 0
    let checks = 0
    const schedule = new CheckSchedule(
      async () => {
        checks++
        running++
        most = Math.max(most, running)
        await new Promise(resolve => setTimeout(resolve, 30))
        running--
      },
      60_000,
      40
    )
    schedule.start()
    for (let i = 0; i < 50; i++) {
      schedule.nudge()
      await new Promise(resolve => setTimeout(resolve, 2))
    }
    await new Promise(resolve => setTimeout(resolve, 200))
    await schedule.stop()
    expect(checks).toBe(2)
    expect(most).toBe(1)
    schedule.nudge()
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(checks).toBe(2)
  })
})

describe('--age-basis last-used and the ledger', () => {
  const saved = process.env.DOCKER_IMAGE_RECLAIM_STATE_DIR
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_IMAGE_RECLAIM_STATE_DIR
    else process.env.DOCKER_IMAGE_RECLAIM_STATE_DIR = saved
  })

  async function keepLastOne(engine: FakeEngine): Promise<{ deleted: string[]; stderr: string }> {
    const stdout = sink()
    const stderr = sink()
    const argv = ['--refs', 'app:*', '--age-basis', 'last-used', '--keep-last', '1', '--json', '--verbose']
    expect(await run(argv, { stdout: stdout.stream, stderr: stderr.stream }, engine.open)).toBe(0)
    return { deleted: (JSON.parse(stdout.text()) as { deleted: string[] }).deleted, stderr: stderr.text() }
  }

  test('the latest of the engine and the ledger decides; without a ledger, the engine alone', async () => {
    process.env.DOCKER_IMAGE_RECLAIM_STATE_DIR = dir
    const engine = engineAt()
    const older = engine.build('app:1', { created: clock - 10_000 })
    later()
    const newer = engine.build('app:2')
    const none = await keepLastOne(engine)
    expect(none.deleted).toEqual([older])
    expect(none.stderr).toMatch(/Last use: the engine's own figures \(no ledger/)

    const again = engineAt()
    const olderAgain = again.build('app:1', { created: clock - 10_000 })
    const newerAgain = again.build('app:2')
    const ledgerText: LastUseLedger = {
      version: 1,
      engines: { [again.id]: { lastEvent: clock + 5000, images: { [olderAgain]: clock + 5000 } } }
    }
    await writeFile(join(dir, 'ledger.json'), JSON.stringify(ledgerText))
    const withLedger = await keepLastOne(again)
    expect(withLedger.deleted).toEqual([newerAgain])
    expect(withLedger.stderr).toMatch(/Last use: the engine's own figures and the host daemon's ledger/)
    expect(newer).not.toBe(older)
  })

  test("another engine's entry is not this engine's", async () => {
    process.env.DOCKER_IMAGE_RECLAIM_STATE_DIR = dir
    const engine = engineAt()
    const older = engine.build('app:1', { created: clock - 10_000 })
    engine.build('app:2')
    const other: LastUseLedger = {
      version: 1,
      engines: { OTHER: { lastEvent: clock, images: { [older]: clock + 5000 } } }
    }
    await writeFile(join(dir, 'ledger.json'), JSON.stringify(other))
    const out = await keepLastOne(engine)
    expect(out.deleted).toEqual([older])
    expect(out.stderr).toMatch(/has nothing of this engine/)
  })
})
