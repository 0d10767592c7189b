import { beforeEach, describe, expect, test } from '@jest/globals'
import { BUSYBOX } from '../../testbed/scene'
import { dryThenReal, expectLayerBytes, storage, store, succeeded, type Storage } from './checks'
import { bed, runAction, type ActionRun } from './harness'

/**
 * `max-storage` with `build-cache`: images and build cache records in one least-recently-used
 * order, against the fall of the data directory (`du -sbx`). Needs the engine's own BuildKit (every
 * Docker flavour). On overlay2 a record an image shares is that image's layer; on the containerd
 * store it holds the layer's blob with the image and a snapshot of its own, which leaves with it
 * whatever the images (docs/build-cache.md).
 */

const { scene, engine } = bed()
const MB = 1_000_000
/**
 * Metadata the disk gives back (or grows by) beside the sizes, per record on the engine, per image
 * removed and once more: BuildKit's bolt database and the image's metadata (build-cache.test.ts).
 */
const SLACK = 64 * 1024
const slack = (removed: number): number => SLACK * (removed + 1)
const withBuildKit = engine.buildkit ? test : test.skip

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** A record as GET /system/df lists it, with the times the bed's type leaves out. */
interface Listed {
  ID: string
  Size: number
  Shared: boolean
  CreatedAt: string
  LastUsedAt?: string | null
}

const listed = async (): Promise<Listed[]> => (await scene.buildCache()) as unknown as Listed[]
const ids = (records: Listed[]): string[] => records.map(r => r.ID).sort()
const cacheBytes = (run: ActionRun): number => Number(run.outputs['build-cache-reclaimed-bytes'])
const storageBefore = (run: ActionRun): number => Number(run.outputs['storage-before'])
const storageAfter = (run: ActionRun): number => Number(run.outputs['storage-after'])
const diskFall = (before: Storage, after: Storage): number => before.disk - after.disk

/** The records of a BuildKit build whose image is gone again: all of them unshared, held by the cache alone. */
async function cacheOnly(tag: string): Promise<Listed[]> {
  const before = new Set(ids(await listed()))
  await scene.build(tag, { bytes: MB, builder: 'buildkit' })
  await scene.rmi(tag)
  return (await listed()).filter(r => !before.has(r.ID))
}

describe('max-storage with build-cache: all (needs BuildKit: skipped on Podman)', () => {
  withBuildKit('an old build cache record goes before a newer image, and no more than the target needs', async () => {
    const old = await cacheOnly('cb/old:1')
    const newer = await scene.build('cb/newer:1', { bytes: MB })
    const recent = await cacheOnly('cb/recent:1')
    const survey = await runAction({ 'build-cache': 'all', 'max-storage': '1TB', keep: BUSYBOX, 'dry-run': 'true' })
    const inputs = { 'build-cache': 'all', 'max-storage': String(storageBefore(survey) - 1), keep: BUSYBOX }
    const { dry, run, out, before, after } = await dryThenReal(inputs)
    const left = ids(await listed())
    expect(out.deleted).toEqual([])
    expect(await scene.imageId('cb/newer:1')).toBe(newer)
    // One byte over the target: records of the oldest build go, and only those.
    const gone = ids(old).filter(id => !left.includes(id))
    expect(gone.length).toBeGreaterThan(0)
    for (const record of recent) expect(left).toContain(record.ID)
    expect(run.outputs['target-met']).toBe('true')
    expect(cacheBytes(run)).toBe(out.bytes)
    expect(out.bytes).toBeGreaterThanOrEqual(1)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expect(Number(run.outputs['storage-after'])).toBe(storageBefore(survey) - out.bytes)
    expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(old.length + recent.length))
    expect(run.summary).toContain('(storage target: least recently used first)')
  })

  withBuildKit(
    'an old image goes before newer build cache records, which stay, and the bytes are what left the disk',
    async () => {
      const old = await scene.build('cb/old:1', { bytes: MB })
      const records = await cacheOnly('cb/recent:1')
      expect(records.length).toBeGreaterThan(0)
      const survey = await runAction({ 'build-cache': 'all', 'max-storage': '1TB', keep: BUSYBOX, 'dry-run': 'true' })
      const inputs = { 'build-cache': 'all', 'max-storage': String(storageBefore(survey) - 1), keep: BUSYBOX }
      const before = await storage(scene)
      const run = await runAction(inputs)
      const out = succeeded(run)
      const after = await storage(scene)
      expect(out.deleted).toEqual([old])
      expect(ids(await listed())).toEqual(ids(records))
      expect(cacheBytes(run)).toBe(0)
      // The old image's one layer: on the containerd store its blob and its snapshot.
      expectLayerBytes(out.bytes, MB)
      expect(run.outputs['target-met']).toBe('true')
      expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(records.length + 1))
    }
  )

  withBuildKit(
    "the measure is the images' bytes and what of the records no image holds: each part is what its removal frees",
    async () => {
      await scene.build('cb/newer:1', { bytes: MB })
      await cacheOnly('cb/recent:1')
      await scene.build('cb/shares:1', { bytes: MB, builder: 'buildkit' })
      const records = await listed()
      const shared = records.filter(r => r.Shared)
      expect(shared.length).toBeGreaterThan(0)
      const sizes = (list: Listed[]): number => list.reduce((sum, r) => sum + r.Size, 0)
      const imagesOnly = storageBefore(await runAction({ 'max-storage': '1TB', 'dry-run': 'true' }))
      const both = storageBefore(await runAction({ 'build-cache': 'all', 'max-storage': '1TB', 'dry-run': 'true' }))
      if (store === 'overlay2') {
        // LayersSize is the images' layers; a shared record's layer is the cache's too, which images alone leave out.
        expect(imagesOnly).toBe((await storage(scene)).layers - sizes(shared))
        expect(both - imagesOnly).toBe(sizes(records))
      }
      // The images' part, all but busybox's, leaves when they go while the cache stays.
      const before = await storage(scene)
      const run = await runAction({ 'max-storage': '0', keep: BUSYBOX })
      const out = succeeded(run)
      const between = await storage(scene)
      expect(out.deleted).toHaveLength(2)
      expect(storageBefore(run)).toBe(imagesOnly)
      expect(Math.abs(diskFall(before, between) - out.bytes)).toBeLessThanOrEqual(slack(out.deleted.length))
      const left = storageBefore(await runAction({ 'max-storage': '1TB', 'dry-run': 'true' }))
      expect(storageAfter(run)).toBe(left)
      // The cache's part leaves when the whole cache goes.
      succeeded(await runAction({ 'build-cache': 'all' }))
      const after = await storage(scene)
      expect(await listed()).toEqual([])
      expect(Math.abs(diskFall(between, after) - (both - imagesOnly))).toBeLessThanOrEqual(slack(records.length))
    }
  )

  withBuildKit(
    'a target that takes every image but one and the whole cache: dry run, real run and the disk agree, the record an image shared included',
    async () => {
      await cacheOnly('cb/old:1')
      await scene.build('cb/newer:1', { bytes: MB })
      await scene.build('cb/shares:1', { bytes: MB, builder: 'buildkit' })
      const records = await listed()
      expect(records.some(r => r.Shared)).toBe(true)
      const { dry, run, out, before, after } = await dryThenReal({
        'build-cache': 'all',
        'max-storage': '0',
        keep: BUSYBOX
      })
      expect(out.deleted).toHaveLength(2)
      expect(await listed()).toEqual([])
      expect(succeeded(dry).bytes).toBe(out.bytes)
      expect(cacheBytes(dry)).toBe(cacheBytes(run))
      expect(storageBefore(dry)).toBe(storageBefore(run))
      expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(records.length + 2))
      // What is left is busybox alone, as a survey now measures it.
      const left = storageBefore(await runAction({ 'build-cache': 'all', 'max-storage': '1TB', 'dry-run': 'true' }))
      expect(storageAfter(run)).toBe(left)
      expect(run.outputs['target-met']).toBe('false')
    }
  )

  withBuildKit(
    'an image kept and the record that shares its layer evicted: what leaves is what the store frees of the record',
    async () => {
      await scene.build('cb/shares:1', { bytes: MB, builder: 'buildkit' })
      const records = await listed()
      const shared = records.filter(r => r.Shared)
      expect(shared).toHaveLength(1)
      const unshared = records.filter(r => !r.Shared).reduce((sum, r) => sum + r.Size, 0)
      const keep = `${BUSYBOX}\ncb/shares:1`
      const survey = await runAction({ 'build-cache': 'all', 'max-storage': '1TB', keep, 'dry-run': 'true' })
      // One byte more than the records no image shares: the shared one must go too.
      const inputs = { 'build-cache': 'all', 'max-storage': String(storageBefore(survey) - unshared - 1), keep }
      const { dry, run, out, before, after } = await dryThenReal(inputs)
      expect(out.deleted).toEqual([])
      expect(await scene.exists('cb/shares:1')).toBe(true)
      expect(ids(await listed())).not.toContain(shared[0].ID)
      expect(succeeded(dry).bytes).toBe(out.bytes)
      for (const step of [dry, run]) expect(step.stdout).toMatch(/1 of them hold data an image still uses/)
      expect(Math.abs(diskFall(before, after) - out.bytes)).toBeLessThanOrEqual(slack(records.length))
      const left = storageBefore(
        await runAction({ 'build-cache': 'all', 'max-storage': '1TB', keep, 'dry-run': 'true' })
      )
      expect(storageAfter(run)).toBe(left)
      // overlay2: the record is the kept image's layer, and nothing of it leaves. The containerd
      // store: its own snapshot leaves, and the blob stays with the image.
      expect(run.outputs['target-met']).toBe(store === 'overlay2' ? 'false' : 'true')
    }
  )
})
