import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { run } from '../../src/cli/run'
import { runWatch } from '../../src/cli/watch'
import type { LastUseLedger } from '../../src/plan/last-use-ledger'
import type { Log } from '../../src/run/log'
import { watch } from '../../src/run/watch'
import { FakeEngine } from '../fakes/engine'

/** The host daemon's loop against an engine in memory, whose event log is what its changes emitted. */

let dir: string
let clock: number

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'watch-unit-'))
  clock = Date.parse('2025-01-01T00:00:00Z')
})

afterEach(async () => {
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
  const stopping = new AbortController()
  const code = runWatch(
    ['--state-dir', dir, ...argv],
    { stdout: sink().stream, stderr: stderr.stream },
    engine.open,
    stopping.signal
  )
  await until(() => /Following /.test(stderr.text()), stderr.text)
  return { stderr: stderr.text, stop: () => (stopping.abort(), code) }
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
    const code = await runWatch(['--interval', '5m'], { stdout: sink().stream, stderr: stderr.stream }, engine.open)
    expect(code).toBe(2)
    expect(stderr.text()).toMatch(/Unknown option '--interval'/)
    expect(engine.opened).toBe(0)
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
