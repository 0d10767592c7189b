import { beforeEach, describe, expect, test } from '@jest/globals'
import { dryThenReal, storage, store, succeeded, type Storage } from './checks'
import { bed, runAction, type ActionRun } from './harness'

/**
 * `build-cache` against the engine's own BuildKit: the bytes the action reports against the fall
 * of the data directory (`du -sbx`). Only where the engine has BuildKit (every Docker flavour);
 * Podman keeps no build cache and gets a notice instead.
 */

const { scene, engine } = bed()
const MB = 1_000_000
/**
 * Metadata the disk gives back (or grows by) beside the records' sizes, per removed record or
 * image and once more: BuildKit's and containerd's bolt databases, snapshot directories, configs.
 * The same allowance as checks.ts gives each deleted image.
 */
const SLACK = 64 * 1024
const slack = (removed: number): number => SLACK * (removed + 1)
const withBuildKit = engine.buildkit ? test : test.skip
const withoutBuildKit = engine.buildkit ? test.skip : test

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

function cacheBytes(run: ActionRun): number {
  return Number(run.outputs['build-cache-reclaimed-bytes'])
}

const diskFall = (before: Storage, after: Storage): number => before.disk - after.disk

describe('build-cache (needs BuildKit: skipped on engines without it)', () => {
  withBuildKit(
    'dangling: the records no image shares go, the shared step stays, and the bytes are what left the disk',
    async () => {
      await scene.build('bc/app:1', { bytes: MB, builder: 'buildkit' })
      const records = (await scene.buildCache()).length
      const { dry, run, out, before, after } = await dryThenReal({ 'build-cache': 'dangling' }, { measureFirst: true })
      const left = await scene.buildCache()
      expect(left.filter(r => r.Type === 'regular')).toEqual([expect.objectContaining({ Shared: true })])
      expect(out.deleted).toEqual([])
      // The build context (a copy of the 1 MB file as the engine received it) is the bulk of it.
      expect(cacheBytes(run)).toBeGreaterThanOrEqual(MB)
      expect(out.bytes).toBe(cacheBytes(run))
      expect(succeeded(dry).bytes).toBe(out.bytes)
      expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(records))
    }
  )

  withBuildKit('all, with the image still there: a record the image shares counts what leaves of it', async () => {
    await scene.build('bc/app:1', { bytes: MB, builder: 'buildkit' })
    const records = (await scene.buildCache()).length
    const { dry, run, out, before, after } = await dryThenReal({ 'build-cache': 'all' }, { measureFirst: true })
    expect(await scene.buildCache()).toEqual([])
    expect(await scene.exists('bc/app:1')).toBe(true)
    expect(cacheBytes(dry)).toBe(cacheBytes(run))
    expect(out.bytes).toBe(cacheBytes(run))
    expect(run.stdout).toMatch(/1 of them hold data an image still uses/)
    // overlay2: the shared record's data is the image's layer itself, nothing of it leaves. The
    // containerd store: the record's own snapshot leaves (about the layer's size), the blob stays.
    expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(records))
  })

  withBuildKit(
    'all, after refs removed the image: the record the image shared now counts, and the disk agrees',
    async () => {
      await scene.build('bc/app:1', { bytes: MB, builder: 'buildkit' })
      const records = (await scene.buildCache()).length
      const before = await storage(scene)
      const run = await runAction({ refs: 'bc/app:1', 'build-cache': 'all' })
      const out = succeeded(run)
      const after = await storage(scene)
      expect(out.deleted).toHaveLength(1)
      expect(await scene.buildCache()).toEqual([])
      // The cache's share alone: on overlay2 the image's own removal frees only its metadata; on the
      // containerd store its unpacked snapshot, about the layer's size.
      const imageFrees = store === 'overlay2' ? 0 : MB
      expect(Math.abs(diskFall(before, after) - imageFrees - cacheBytes(run))).toBeLessThanOrEqual(slack(records + 1))
      expect(run.stdout).not.toMatch(/of them hold data an image still uses/)
    }
  )

  // The image's share leaves out what the build cache held of its layer (overlay2: the layer; the
  // containerd store: its blob), which the cache's share then counts once.
  withBuildKit(
    'all, after refs removed the image: reclaimed-bytes, images and cache together, is the fall of the disk',
    async () => {
      await scene.build('bc/app:1', { bytes: MB, builder: 'buildkit' })
      const records = (await scene.buildCache()).length
      const before = await storage(scene)
      const out = succeeded(await runAction({ refs: 'bc/app:1', 'build-cache': 'all' }))
      const after = await storage(scene)
      expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(records + 1))
    }
  )

  // The dry run sees the record the image's removal unshares as unshared, as the real run's listing shows it.
  withBuildKit.each(['dangling', 'all'])(
    'refs and %s: the dry run predicts the real run, images and cache, and the disk agrees',
    async mode => {
      await scene.build('bc/app:1', { bytes: MB, builder: 'buildkit' })
      await scene.build('bc/other:1', { bytes: 500_000, builder: 'buildkit' })
      const records = (await scene.buildCache()).length
      const { dry, run, out, before, after } = await dryThenReal({ refs: 'bc/app:1', 'build-cache': mode })
      expect(out.deleted).toHaveLength(1)
      expect(await scene.exists('bc/other:1')).toBe(true)
      expect(cacheBytes(dry)).toBe(cacheBytes(run))
      expect(succeeded(dry).bytes).toBe(out.bytes)
      // The COPY record app's removal unshares, besides the build contexts.
      expect(cacheBytes(run)).toBeGreaterThanOrEqual(2 * MB)
      expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(records + 1))
    }
  )

  withBuildKit(
    'the cache step alone after the image went earlier: dry run and real run agree, and the disk with both',
    async () => {
      await scene.build('bc/app:1', { bytes: MB, builder: 'buildkit' })
      await scene.rmi('bc/app:1')
      const records = (await scene.buildCache()).length
      const { dry, run, before, after } = await dryThenReal({ 'build-cache': 'all' }, { measureFirst: true })
      expect(cacheBytes(dry)).toBe(cacheBytes(run))
      // The COPY step (its layer) and the build context, each about 1 MB; on the containerd store
      // the step holds blob and snapshot.
      expect(cacheBytes(run)).toBeGreaterThanOrEqual(store === 'overlay2' ? 2 * MB : 3 * MB)
      expect(Math.abs(diskFall(before, after) - cacheBytes(run))).toBeLessThanOrEqual(slack(records))
    }
  )

  withBuildKit('scope: job removes only the records the job made', async () => {
    await scene.build('bc/old:1', { bytes: 200_000, builder: 'buildkit' })
    await scene.rmi('bc/old:1')
    const older = (await scene.buildCache()).map(r => r.ID).sort()
    const mainRun = await runAction({ scope: 'job', 'build-cache': 'all' })
    expect(succeeded(mainRun).deleted).toEqual([])
    await scene.build('bc/new:1', { bytes: MB, builder: 'buildkit' })
    await scene.rmi('bc/new:1')
    const records = (await scene.buildCache()).length
    const before = await storage(scene)
    const state = Object.fromEntries(Object.entries(mainRun.state).map(([name, value]) => [`STATE_${name}`, value]))
    const post = await runAction({ scope: 'job', 'build-cache': 'all' }, { env: state })
    succeeded(post)
    const after = await storage(scene)
    const left = (await scene.buildCache()).map(r => r.ID).sort()
    // A build may reuse a record of the older one (the Dockerfile's), which the job did not make.
    expect(older.every(id => left.includes(id))).toBe(true)
    expect(left.every(id => older.includes(id))).toBe(true)
    expect(cacheBytes(post)).toBeGreaterThanOrEqual(MB)
    expect(Math.abs(diskFall(before, after) - cacheBytes(post))).toBeLessThanOrEqual(slack(records - older.length))
  })
})

describe('build-cache where the engine keeps none', () => {
  withoutBuildKit('a notice, not an error: images are left alone and the cache share is 0', async () => {
    await scene.dangling('bc/loose')
    const run = await runAction({ 'build-cache': 'all' })
    const out = succeeded(run)
    expect(out.deleted).toEqual([])
    expect(cacheBytes(run)).toBe(0)
    expect(run.stdout).toContain('This engine keeps no build cache')
    expect(run.stdout).not.toContain('::warning::')
    expect(run.summary).toContain('Build cache: this engine keeps none')
  })
})
