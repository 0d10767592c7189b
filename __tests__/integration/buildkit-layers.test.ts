import { beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { apiJson } from '../../testbed/api'
import { BUSYBOX } from '../../testbed/scene'
import { dryThenReal, expectReclaimed, firstBuildKitBuild, store, succeeded } from './checks'
import { bed, runAction, type ActionRun } from './harness'

/**
 * Images of several layers that BuildKit built, one COPY step each, while the build cache keeps
 * a record per step: on overlay2 the record is the layer's directory; on the containerd store each
 * record holds its layer's blob with the image and a snapshot of its own, and the image its own
 * snapshots. Removing, pruning and evicting them must report what left the data directory
 * (`du -sbx`), and a dry run must say as much.
 */

const { scene, engine } = bed()
const withBuildKit = engine.buildkit ? test : test.skip
const MB = 1_000_000
const LAYERS = [MB, 500_000, 250_000]
/** Metadata the disk gives back beside the sizes, per record or image removed and once more (build-cache.test.ts). */
const slack = (removed: number): number => 64 * 1024 * (removed + 1)
const cacheBytes = (run: ActionRun): number => Number(run.outputs['build-cache-reclaimed-bytes'])

beforeAll(firstBuildKitBuild)

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** A BuildKit image of LAYERS, checked to have one layer per COPY step. */
async function layered(tag: string): Promise<string> {
  const id = await scene.build(tag, { builder: 'buildkit', layers: LAYERS })
  const inspected = await apiJson<{ RootFS: { Layers: string[] } }>(scene.socket, 'GET', `/images/${id}/json`)
  expect(inspected.RootFS.Layers).toHaveLength(LAYERS.length)
  return id
}

describe('an image of several layers BuildKit built (needs BuildKit: skipped on Podman)', () => {
  withBuildKit('refs: the image alone goes, the records keep their layers, and the dry run said as much', async () => {
    await layered('bl/app:1')
    const records = (await scene.buildCache()).filter(r => r.Type === 'regular')
    expect(records).toHaveLength(LAYERS.length)
    expect(records.every(r => r.Shared)).toBe(true)
    const { dry, out, before, after } = await dryThenReal({ refs: 'bl/app:1' })
    expect(out.deleted).toHaveLength(1)
    // overlay2: the image's metadata; the containerd store: its snapshots, not the blobs the records hold.
    const total = LAYERS.reduce((a, b) => a + b, 0)
    expect(out.bytes).toBeLessThan(store === 'overlay2' ? 64 * 1024 : total + slack(LAYERS.length))
    if (store === 'containerd') expect(out.bytes).toBeGreaterThanOrEqual(total)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, after, 1, { containerKeepsLayers: true })
  })

  withBuildKit.each(['dangling', 'all'])(
    'refs and build-cache %s: the records the removal unshares count, images and cache are what left the disk',
    async mode => {
      await layered('bl/app:1')
      await scene.build('bl/other:1', { builder: 'buildkit', bytes: 200_000 })
      const records = (await scene.buildCache()).length
      const { dry, run, out, before, after } = await dryThenReal({ refs: 'bl/app:1', 'build-cache': mode })
      expect(out.deleted).toHaveLength(1)
      expect(await scene.exists('bl/other:1')).toBe(true)
      // Every step of app's build: no image holds its layers any more.
      const left = await scene.buildCache()
      expect(left.filter(r => r.Description.includes('COPY') && !r.Shared)).toEqual([])
      expect(cacheBytes(run)).toBeGreaterThanOrEqual(2 * LAYERS.reduce((a, b) => a + b, 0))
      expect(cacheBytes(dry)).toBe(cacheBytes(run))
      expect(succeeded(dry).bytes).toBe(out.bytes)
      expect(Math.abs(before.disk - after.disk - out.bytes)).toBeLessThanOrEqual(slack(records + 1))
    }
  )

  withBuildKit('prune: all, then build-cache: all in the same step: each share is what left the disk', async () => {
    await layered('bl/app:1')
    await scene.build('bl/lib:1', { builder: 'buildkit', layers: [300_000, 300_000] })
    const records = (await scene.buildCache()).length
    const { dry, run, out, before, after } = await dryThenReal({ prune: 'all', keep: BUSYBOX, 'build-cache': 'all' })
    expect(out.deleted).toHaveLength(2)
    expect(await scene.buildCache()).toEqual([])
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expect(cacheBytes(dry)).toBe(cacheBytes(run))
    expectReclaimed(out.bytes, before, after, 2 + records, { containerKeepsLayers: true })
  })

  withBuildKit(
    'prune: all alone: the images go, their records stay with the blobs, and the dry run said as much',
    async () => {
      await layered('bl/app:1')
      await scene.build('bl/lib:1', { builder: 'buildkit', layers: [300_000, 300_000] })
      const { dry, out, before, after } = await dryThenReal({ prune: 'all', keep: BUSYBOX })
      expect(out.deleted).toHaveLength(2)
      expect(succeeded(dry).bytes).toBe(out.bytes)
      expectReclaimed(out.bytes, before, after, 2, { containerKeepsLayers: true })
    }
  )

  withBuildKit(
    'max-storage with build-cache: all, taking everything but busybox: dry run, real run and the disk agree',
    async () => {
      await layered('bl/app:1')
      const records = (await scene.buildCache()).length
      const { dry, run, out, before, after } = await dryThenReal({
        'build-cache': 'all',
        'max-storage': '0',
        keep: BUSYBOX
      })
      expect(out.deleted).toHaveLength(1)
      expect(await scene.buildCache()).toEqual([])
      expect(succeeded(dry).bytes).toBe(out.bytes)
      expect(run.outputs['storage-before']).toBe(dry.outputs['storage-before'])
      expect(Math.abs(before.disk - after.disk - out.bytes)).toBeLessThanOrEqual(slack(records + 1))
      const left = await runAction({ 'build-cache': 'all', 'max-storage': '1TB', 'dry-run': 'true' })
      expect(run.outputs['storage-after']).toBe(left.outputs['storage-before'])
    }
  )
})
