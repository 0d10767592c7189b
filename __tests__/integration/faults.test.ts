import { createServer, type Socket } from 'node:net'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeEach, describe, expect, test } from '@jest/globals'
import { flavourFromEnv, makeRoot, startEngine } from '../../testbed/engine'
import { removeRoot } from '../../testbed/bed'
import type { Fault, Hook, Proxy } from '../../testbed/proxy'
import { runBundle } from '../../testbed/runner'
import { Scene } from '../../testbed/scene'
import { BUSYBOX } from '../../testbed/scene'
import {
  expectLayerBytes,
  expectReclaimed,
  idsOf,
  layerBytes,
  parsed,
  storage,
  store,
  succeeded,
  tagsOf,
  times
} from './checks'
import { bed, proxiesPerTest, runAction } from './harness'

const { scene } = bed()
const MB = 1_000_000
/** The removals the action has in flight at once (src/run/remove.ts PARALLEL_REMOVALS). */
const IN_FLIGHT = 6
const proxy = proxiesPerTest()

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** A proxy in front of the bed's engine, on a socket of its own. */
function throughProxy(hook: Hook): Promise<Proxy> {
  return proxy(join(bed().root, 'proxy.sock'), hook)
}

/** A loopback port nobody listens on: taken, then let go. */
async function refusedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

/** A SIGKILLed dockerd leaves its mounts under its own root; they are this test's to undo. */
async function unmountLeftovers(root: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  const points = mountinfo
    .split('\n')
    .map(line => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && point.startsWith(`${root}/`))
  for (const point of points.sort().reverse()) await promisify(execFile)('umount', ['-l', point])
}

const isDelete = (r: { method: string; url: string }): boolean => r.method === 'DELETE' && r.url.includes('/images/')

describe('an engine that cannot be reached ends the step in bounded time, naming it', () => {
  test('a refused TCP port', async () => {
    const port = await refusedPort()
    const run = await runAction({}, { env: { DOCKER_HOST: `tcp://127.0.0.1:${port}` } })
    expect(run.code).not.toBe(0)
    expect(run.stdout).toContain(`::error::Cannot reach the Docker engine at tcp://127.0.0.1:${port}`)
  })

  test('a socket that accepts and never answers: the timeout input bounds the wait', async () => {
    const { host } = await throughProxy(() => 'hang')
    const started = Date.now()
    const run = await runAction({ timeout: '2s' }, { env: { DOCKER_HOST: host } })
    expect(run.code).not.toBe(0)
    expect(run.stdout).toContain(`::error::Cannot reach the Docker engine at ${host}: no answer within 2 s.`)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  // Nothing of the engine takes part: one flavour's run is enough for the 10 s it takes.
  const onceForAllFlavours = flavourFromEnv() === 'docker20' ? test : test.skip
  onceForAllFlavours('a socket that accepts and never answers: by default the first contact waits 10 s', async () => {
    // It never reads, so it never sees the client go: its sockets are closed by hand.
    const connections = new Set<Socket>()
    const silent = createServer(connection => void connections.add(connection))
    const socket = join(bed().root, 'silent.sock')
    await new Promise<void>(resolve => silent.listen(socket, resolve))
    try {
      const started = Date.now()
      const run = await runAction({}, { env: { DOCKER_HOST: `unix://${socket}` } })
      expect(run.stdout).toContain('no answer within 10 s')
      expect(Date.now() - started).toBeLessThan(20_000)
    } finally {
      for (const connection of connections) connection.destroy()
      await new Promise<void>(resolve => silent.close(() => resolve()))
    }
  })
})

describe('requests share connections, as the docker CLI does, rather than opening one each', () => {
  test('over a unix socket', async () => {
    for (let i = 1; i <= 12; i++) await scene.build(`shared:${i}`, { bytes: 1_000 })
    const counted = await throughProxy(() => 'forward')
    const out = succeeded(await runAction({ refs: 'shared:*' }, { env: { DOCKER_HOST: counted.host } }))
    expect(out.deleted).toHaveLength(12)
    // No more connections than requests were ever in flight at once: six removals, and two more.
    expect(counted.seen.length).toBeGreaterThan(16)
    expect(counted.connections).toBeLessThanOrEqual(IN_FLIGHT + 2)
  })
})

describe('a step asks for the lists without waiting for /version or /info', () => {
  test('the API version comes from /_ping, and /info is still unanswered when the image list is asked', async () => {
    await scene.build('early:1', { bytes: 1_000 })
    let infoAnsweredAt = 0
    let listAskedAt = 0
    const recorder = await throughProxy(async ({ method, url }): Promise<Fault> => {
      if (method === 'GET' && /\/images\/json/.test(url)) listAskedAt ||= Date.now()
      if (!/\/info$/.test(url)) return 'forward'
      await new Promise(resolve => setTimeout(resolve, 1_000))
      infoAnsweredAt = Date.now()
      return 'forward'
    })
    const out = succeeded(await runAction({ refs: 'early:1' }, { env: { DOCKER_HOST: recorder.host } }))
    expect(out.deleted).toHaveLength(1)
    expect(recorder.seen[0]).toBe('GET /_ping')
    expect(recorder.seen.filter(line => /\/version$/.test(line))).toEqual([])
    expect(listAskedAt).toBeGreaterThan(0)
    expect(listAskedAt).toBeLessThan(infoAnsweredAt)
  })
})

describe('transient failures are retried, and one image failing never stops the rest', () => {
  test('HTTP 500 and dropped connections on removals are asked again', async () => {
    await scene.build('flaky:1', { bytes: MB })
    await scene.build('flaky:2', { bytes: MB })
    const tries = new Map<string, number>()
    const { host } = await throughProxy(r => {
      if (!isDelete(r)) return 'forward'
      const n = (tries.get(r.url) ?? 0) + 1
      tries.set(r.url, n)
      if (n === 1) return { status: 500, message: 'injected server error' }
      return n === 2 ? 'reset' : 'forward'
    })
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'flaky:1 flaky:2' }, { env: { DOCKER_HOST: host } }))
    expectLayerBytes(out.bytes, MB, MB)
    expect([...tries.values()]).toEqual([3, 3])
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  test('an image list that met an image removed meanwhile is asked again', async () => {
    await scene.build('listed:1', { bytes: MB })
    let lists = 0
    // Podman 4.3 answers so when another process removes an image while it builds the list.
    const gone = 'a'.repeat(64)
    const { host } = await throughProxy(r => {
      if (r.method !== 'GET' || !/\/images\/json/.test(r.url)) return 'forward'
      lists++
      return lists === 1
        ? {
            status: 500,
            message: `retrieving parent of image "${gone}": you may need to remove the image to resolve the error: locating image with ID "${gone}": image not known`
          }
        : 'forward'
    })
    const out = succeeded(await runAction({ refs: 'listed:1' }, { env: { DOCKER_HOST: host } }))
    expect(out.deleted).toHaveLength(1)
    expect(lists).toBeGreaterThanOrEqual(2)
  })

  test('an image that keeps failing is skipped with reason error after bounded retries', async () => {
    await scene.build('broken:1', { bytes: MB })
    await scene.build('fine:1', { bytes: MB })
    const flaky = await throughProxy(r =>
      isDelete(r) && r.url.includes('broken') ? { status: 500, message: 'disk on fire' } : 'forward'
    )
    const host = flaky.host
    const out = succeeded(await runAction({ refs: 'broken:1 fine:1' }, { env: { DOCKER_HOST: host } }))
    expect(out.skipped).toEqual([
      expect.objectContaining({ ref: 'broken:1', reason: 'error', message: expect.stringContaining('disk on fire') })
    ])
    expect(flaky.seen.filter(line => line.startsWith('DELETE') && line.includes('broken'))).toHaveLength(4)
    expect(await tagsOf(scene)).toContain('broken:1')
    expect(await tagsOf(scene)).not.toContain('fine:1')
  })
})

describe('other processes acting between the listing and the removals', () => {
  test('an image someone else deleted first is not an error and not counted', async () => {
    await scene.build('mine:1', { bytes: MB })
    await scene.build('theirs:1', { bytes: 2 * MB })
    // Removals go out side by side, so the race is staged at the request it concerns.
    let raced = false
    const { host } = await throughProxy(async (r): Promise<Fault> => {
      if (isDelete(r) && r.url.includes('theirs') && !raced) {
        raced = true
        await scene.rmi('theirs:1')
      }
      return 'forward'
    })
    const before = await storage(scene)
    const run = await runAction({ refs: 'mine:1 theirs:1', 'fail-on-error': 'true' }, { env: { DOCKER_HOST: host } })
    const out = succeeded(run)
    expectLayerBytes(out.bytes, MB)
    expect(out.skipped).toEqual([
      expect.objectContaining({
        ref: 'theirs:1',
        reason: 'not-found',
        message: expect.stringContaining('already removed')
      })
    ])
    expect(await tagsOf(scene)).toEqual([BUSYBOX])
    // overlay2's LayersSize shows both went; the disk shows it on every store.
    const after = await storage(scene)
    if (store === 'overlay2') expect(before.layers - after.layers).toBe(3 * MB)
    expect(before.disk - after.disk).toBeGreaterThanOrEqual(layerBytes(MB, 2 * MB).min)
  })

  test('an image that gains a container or a tag meanwhile is not removed, even with force', async () => {
    await scene.build('first:1', { bytes: MB })
    const contained = await scene.build('contained:1', { from: 'testbed/busybox:static', bytes: MB })
    const retagged = await scene.build('retagged:1', { bytes: MB })
    // Removals go out side by side, so each race is staged at the request it concerns.
    const raced = new Set<string>()
    const { host } = await throughProxy(async (r): Promise<Fault> => {
      if (!isDelete(r)) return 'forward'
      if (r.url.includes('contained') && !raced.has('contained')) {
        raced.add('contained')
        await scene.runContainer('contained:1', { running: false })
      }
      if (r.url.includes('retagged') && !raced.has('retagged')) {
        raced.add('retagged')
        await scene.tag('retagged:1', 'precious:1')
      }
      return 'forward'
    })
    const out = parsed(
      await runAction({ refs: 'first:1 contained:1 retagged:1', force: 'true' }, { env: { DOCKER_HOST: host } })
    )
    expect(out.skipped).toEqual([expect.objectContaining({ ref: 'contained:1', reason: 'in-use-stopped' })])
    expect(out.untagged).toContain('retagged:1')
    expect(await idsOf(scene)).toEqual(expect.arrayContaining([contained, retagged]))
  })

  // Podman takes an image that is gone by the time it deletes it for removed, and says Deleted:
  // when both copies remove one image at once, both are told they deleted it.
  test('two copies of the action on one engine at once: no crash, no double counting (but on Podman, which tells both copies it deleted an image they removed at once, such an image counts twice)', async () => {
    await scene.many('shared', 80, 20_000)
    const before = await storage(scene)
    const [a, b] = await Promise.all([runAction({ refs: 'shared:*' }), runAction({ refs: 'shared:*' })])
    const [outA, outB] = [succeeded(a), succeeded(b)]
    const deleted = [...outA.deleted, ...outB.deleted]
    expect(new Set(deleted).size).toBe(80)
    expect(await tagsOf(scene)).toEqual([BUSYBOX])
    if (store === 'podman') {
      const twice = deleted.length - 80
      expectLayerBytes(outA.bytes + outB.bytes, ...times(80 + twice, 20_000))
      return
    }
    expect(deleted).toHaveLength(80)
    // The engine deletes a layer in whichever request lets go of it last. When that is one copy's
    // listing, which holds each layer a moment to size it, while the other copy deletes the image,
    // no answer names the layer: its bytes are freed, and neither copy can count them. With
    // removals side by side that happens to a layer now and then; counting one twice never does.
    const after = await storage(scene)
    const total = outA.bytes + outB.bytes
    expect(total).toBeLessThanOrEqual(layerBytes(...times(80, 20_000)).max)
    expect(total).toBeGreaterThanOrEqual(layerBytes(...times(80 - IN_FLIGHT, 20_000)).min)
    expectReclaimed(total, before, after, 80, { containerKeepsLayers: true })
    if (store !== 'overlay2') return
    expect(before.layers - after.layers).toBe(80 * 20_000)
    expect((80 * 20_000 - total) % 20_000).toBe(0)
  })
})

/**
 * dockerd's own containerd, started again on a root whose containerd was killed, now and then
 * misses dockerd's start-up deadline on a loaded machine ("timeout waiting for containerd to
 * start"); the bed stops what it left, and a second start finds it at rest.
 */
async function restart(root: string): Promise<Awaited<ReturnType<typeof startEngine>>> {
  try {
    return await startEngine(root)
  } catch (error) {
    process.stdout.write(`engine restart failed once, trying again: ${String(error).split('\n')[0]}\n`)
    return startEngine(root)
  }
}

describe('an engine killed in the middle of a long removal', () => {
  test('the step reports what it deleted, fails in one sentence, and a second run finishes', async () => {
    const root = await makeRoot()
    let engine = await startEngine(root)
    try {
      const own = new Scene(engine)
      const ids = (await own.many('doomed', 200, 10_000)).sort()
      const run = runBundle({ refs: 'doomed:*' }, { host: engine.host })
      // Any 40 gone means at least 40 deleted. Those first in the action's order (by ID) are
      // asked one by one: the containerd store's and Podman's lists fail while removals run.
      const firstForty = ids.slice(0, 40)
      const gone = async (): Promise<boolean> => {
        for (const id of firstForty) if (await own.exists(id).catch(() => true)) return false
        return true
      }
      while (!(await gone())) await new Promise(resolve => setTimeout(resolve, 100))
      process.kill(engine.pid, 'SIGKILL')
      const first = await run
      expect(first.code).not.toBe(0)
      expect(first.stdout).toMatch(/::error::The engine at unix:\/\/\S+ stopped answering after \d+ of \d+ requests/)
      const partial = parsed(first)
      // 40 were gone when the kill came; the answers to those in flight may never have arrived.
      expect(partial.deleted.length).toBeGreaterThanOrEqual(40 - IN_FLIGHT)
      expect(partial.deleted.length).toBeLessThan(200)
      expectLayerBytes(partial.bytes, ...times(partial.deleted.length, 10_000))
      expect(first.summary).toContain(first.outputs.reclaimed)
      expect(first.summary).toMatch(new RegExp(`\\b${partial.deleted.length}\\b`))

      await engine.stop()
      engine = await restart(root)
      const second = succeeded(await runBundle({ refs: 'doomed:*' }, { host: engine.host }))
      // The engine untags, then deletes: a request in flight when it died may have finished
      // unseen, or only untagged its image, which no run that names doomed:* finds again.
      const left = await new Scene(engine).images()
      expect(left.filter(image => image.tags.length > 0)).toEqual([])
      expect(left.length).toBeLessThanOrEqual(IN_FLIGHT)
      expect(partial.deleted.length + second.deleted.length).toBeGreaterThanOrEqual(200 - IN_FLIGHT)
    } finally {
      await engine.stop()
      await unmountLeftovers(root)
      await removeRoot(root)
    }
  }, 300_000)
})
