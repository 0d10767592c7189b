import { beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { apiJson } from '../../testbed/api'
import { BUSYBOX } from '../../testbed/scene'
import { dryThenReal, expectReclaimed, firstBuildKitBuild, storage, store, succeeded, type Storage } from './checks'
import { bed, runAction, type ActionRun } from './harness'

/**
 * Images BuildKit built FROM a base image BuildKit built before, as CI builds an app on a locally
 * built base: the base's layer is in every image and in one build cache record, each app's own
 * layer in its image and its record. Removing, pruning and evicting them must report what left
 * the data directory (`du -sbx`), and a dry run must say as much.
 */

const { scene, engine } = bed()
const withBuildKit = engine.buildkit ? test : test.skip
const BASE = 1_000_000
const APP = 500_000
const APP2 = 300_000
/** Metadata the disk gives back beside the sizes, per record or image removed and once more (build-cache.test.ts). */
const slack = (removed: number): number => 64 * 1024 * (removed + 1)
const cacheBytes = (run: ActionRun): number => Number(run.outputs['build-cache-reclaimed-bytes'])

beforeAll(firstBuildKitBuild)

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/**
 * bs/base:1, then bs/app:1 and, with `two`, bs/app2:1 FROM it, each checked to sit on the base's
 * layer.
 */
async function family(two = false): Promise<void> {
  await scene.build('bs/base:1', { builder: 'buildkit', bytes: BASE })
  const [baseLayer] = await layersOf('bs/base:1')
  const apps: [string, number][] = two
    ? [
        ['bs/app:1', APP],
        ['bs/app2:1', APP2]
      ]
    : [['bs/app:1', APP]]
  for (const [tag, bytes] of apps) {
    await scene.build(tag, { builder: 'buildkit', bytes, from: 'bs/base:1' })
    const layers = await layersOf(tag)
    expect(layers).toHaveLength(2)
    expect(layers[0]).toBe(baseLayer)
  }
}

async function layersOf(ref: string): Promise<string[]> {
  return (await apiJson<{ RootFS: { Layers: string[] } }>(scene.socket, 'GET', `/images/${ref}/json`)).RootFS.Layers
}

/**
 * A dry run, then the real run between two measures of the disk; `settled` is the disk once
 * BuildKit's temporary lease on the base's snapshot is gone (containerd store: see
 * Scene.dropBuildLeases), and `leased` what that lease kept until then.
 */
async function measured(inputs: Record<string, string>): Promise<{
  dry: ActionRun
  run: ActionRun
  before: Storage
  settled: Storage
  leased: number
}> {
  const { dry, run, before, after } = await dryThenReal(inputs)
  if (store !== 'containerd') return { dry, run, before, settled: after, leased: 0 }
  await scene.dropBuildLeases()
  const settled = await storage(scene)
  return { dry, run, before, settled, leased: after.disk - settled.disk }
}

/**
 * On the containerd store BuildKit holds the base it resolved for five minutes after a build; the
 * run ends that hold itself (src/run/reclaim.ts), so a prune after it frees nothing more.
 */
function expectNothingHeld(leased: number): void {
  expect(Math.abs(leased)).toBeLessThanOrEqual(64 * 1024)
}

/** The records of the COPY steps (docker20's BuildKit describes them as `fileop target`), not those of size 0. */
const copyRecords = async (): Promise<{ Shared: boolean }[]> =>
  (await scene.buildCache()).filter(r => r.Type === 'regular' && r.Size > 0)

describe('BuildKit images FROM a base BuildKit built (needs BuildKit: skipped on Podman)', () => {
  withBuildKit('refs: an app alone goes; the base layer stays with the base, the other app and the cache', async () => {
    await family(true)
    expect((await copyRecords()).map(r => r.Shared)).toEqual([true, true, true])
    const { dry, run, before, settled, leased } = await measured({ refs: 'bs/app:1' })
    const out = succeeded(run)
    expect(out.deleted).toHaveLength(1)
    expect(await scene.exists('bs/base:1')).toBe(true)
    expect(await scene.exists('bs/app2:1')).toBe(true)
    // overlay2: the image's metadata; the containerd store: its own layer's snapshot, the blob staying with the cache.
    if (store === 'overlay2') expect(out.bytes).toBeLessThan(64 * 1024)
    else {
      expect(out.bytes).toBeGreaterThanOrEqual(APP)
      expect(out.bytes).toBeLessThan(APP + slack(1))
    }
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectNothingHeld(leased)
    expectReclaimed(out.bytes, before, settled, 1, { containerKeepsLayers: true })
  })

  withBuildKit('refs: the base and its app go; the cache keeps both layers', async () => {
    await family()
    const { dry, run, before, settled, leased } = await measured({ refs: 'bs/base:1 bs/app:1' })
    const out = succeeded(run)
    expect(out.deleted).toHaveLength(2)
    // overlay2: metadata; the containerd store: both snapshots, the blobs staying with the cache.
    if (store === 'overlay2') expect(out.bytes).toBeLessThan(2 * 64 * 1024)
    else {
      expect(out.bytes).toBeGreaterThanOrEqual(BASE + APP)
      expect(out.bytes).toBeLessThan(BASE + APP + slack(2))
    }
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectNothingHeld(leased)
    expectReclaimed(out.bytes, before, settled, 2, { containerKeepsLayers: true })
  })

  withBuildKit('prune: all alone: the three images go, the records keep their layers', async () => {
    await family(true)
    const { dry, run, before, settled, leased } = await measured({ prune: 'all', keep: BUSYBOX })
    const out = succeeded(run)
    expect(out.deleted).toHaveLength(3)
    expect((await copyRecords()).length).toBe(3)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectNothingHeld(leased)
    expectReclaimed(out.bytes, before, settled, 3, { containerKeepsLayers: true })
  })

  withBuildKit('prune: all with build-cache: all: images and cache are what left the disk', async () => {
    await family(true)
    const records = (await scene.buildCache()).length
    const inputs = { prune: 'all', keep: BUSYBOX, 'build-cache': 'all' }
    const { dry, run, before, settled, leased } = await measured(inputs)
    const out = succeeded(run)
    expect(out.deleted).toHaveLength(3)
    expect(await scene.buildCache()).toEqual([])
    // Every byte of the three layers leaves, once in the images' share or the cache's.
    expect(out.bytes).toBeGreaterThanOrEqual(BASE + APP + APP2)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expect(cacheBytes(dry)).toBe(cacheBytes(run))
    expectNothingHeld(leased)
    expect(Math.abs(before.disk - settled.disk - out.bytes)).toBeLessThanOrEqual(slack(records + 3))
  })

  withBuildKit.each([
    ['with build-cache: all', { 'build-cache': 'all' }],
    ['without build-cache', {}]
  ])('max-storage taking everything but busybox, %s: dry run, real run, storage and disk agree', async (_, extra) => {
    await family(true)
    const records = (await scene.buildCache()).length
    const withCache = 'build-cache' in extra
    const { dry, run, before, settled, leased } = await measured({ 'max-storage': '0', keep: BUSYBOX, ...extra })
    const out = succeeded(run)
    expect(out.deleted).toHaveLength(3)
    if (withCache) expect(await scene.buildCache()).toEqual([])
    else expect((await copyRecords()).length).toBe(3)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expect(run.outputs['storage-before']).toBe(dry.outputs['storage-before'])
    expect(Number(run.outputs['storage-before']) - Number(run.outputs['storage-after'])).toBe(out.bytes)
    expectNothingHeld(leased)
    expect(Math.abs(before.disk - settled.disk - out.bytes)).toBeLessThanOrEqual(slack(withCache ? records + 3 : 3))
    const left = await runAction({ ...extra, 'max-storage': '1TB', 'dry-run': 'true' })
    expect(run.outputs['storage-after']).toBe(left.outputs['storage-before'])
  })
})
