import { beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { statfs } from 'node:fs/promises'
import { removeRoot } from '../../testbed/bed'
import { loopMountUnavailable, smallFilesystem } from '../../testbed/disk'
import { makeRoot, startEngine } from '../../testbed/engine'
import { runBundle } from '../../testbed/runner'
import { BUSYBOX, Scene } from '../../testbed/scene'
import { dryThenReal, expectLayerBytes, expectReclaimed, layerBytes, storage, store, succeeded } from './checks'
import { bed, runAction, type ActionRun } from './harness'

const { scene } = bed()
const MB = 1_000_000

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** The retention outputs of a finished run. */
function retention(run: ActionRun): { before: number; after: number; met: string } {
  return {
    before: Number(run.outputs['storage-before']),
    after: Number(run.outputs['storage-after']),
    met: run.outputs['target-met']
  }
}

const idsByTag = async (s: Scene): Promise<Map<string, string>> =>
  new Map((await s.images()).flatMap(image => image.tags.map(tag => [tag, image.id] as const)))

/**
 * Known sizes, uses in a known order, a shared base and a container:
 * built oldest first, then `first:1` is tagged again, which makes it the
 * most recently used image although it was built first.
 */
async function usedInOrder(): Promise<void> {
  await scene.build('first:1', { bytes: MB })
  await scene.build('base:1', { bytes: 3 * MB })
  await scene.build('kid:1', { from: 'base:1', bytes: MB })
  await scene.build('mid:1', { bytes: 2 * MB })
  await scene.build('served:1', { from: BUSYBOX, bytes: MB })
  await scene.runContainer('served:1', { running: false })
  await scene.build('late:1', { bytes: MB })
  // Podman records no tag time: there a container made from it is the use that makes it recent.
  if (store === 'podman') await scene.createContainer('first:1')
  else await scene.tag('first:1', 'first:again')
}

describe('max-storage', () => {
  test(`removes exactly the least recently used images needed to reach the target, as the dry run predicted${store === 'podman' ? ' (first:1 used by a container on Podman)' : ''}`, async () => {
    await usedInOrder()
    const ids = await idsByTag(scene)
    const survey = retention(await runAction({ 'dry-run': 'true', 'max-storage': '1TB', keep: BUSYBOX }))
    // Freeing 5 MB of layers takes kid (1 MB), then base, whose layer kid no longer holds (3 MB), then
    // mid (2 MB). What a layer takes depends on the store (layerBytes): the target is in its terms.
    const inputs = { 'max-storage': String(survey.before - layerBytes(MB, 3 * MB, MB).min), keep: BUSYBOX }
    const { dry, run, out, before, after } = await dryThenReal(inputs)
    expect(out.deleted.sort()).toEqual(['kid:1', 'base:1', 'mid:1'].map(tag => ids.get(tag)).sort())
    expectLayerBytes(out.bytes, MB, 3 * MB, 2 * MB)
    expect(succeeded(dry).deleted.sort()).toEqual(out.deleted)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expect(retention(dry)).toEqual(retention(run))
    expect(retention(run)).toEqual({ before: survey.before, after: survey.before - out.bytes, met: 'true' })
    expectReclaimed(out.bytes, before, after, out.deleted.length)
    for (const tag of ['first:1', 'late:1', 'served:1', BUSYBOX]) expect(await scene.exists(tag)).toBe(true)
    expect(run.summary).toMatch(/Target: image storage at most <b>[^<]+<\/b>: <b>met<\/b>/)
    expect(run.summary.match(/Deleted \(storage target: least recently used first\)/g)).toHaveLength(3)
  })

  // On overlay2 the engine's LayersSize counts the same layers; the other stores count otherwise
  // (snapshots only, or nothing), so there the data directory alone is the judge.
  const overlay2 = store === 'overlay2'
  const storageTitle = overlay2
    ? "storage-before equals the engine's LayersSize, and storage-after what is left"
    : `storage-before and storage-after on the ${bed().engine.imageStore} store: the data directory loses their difference`

  test(storageTitle, async () => {
    await usedInOrder()
    const disk = await storage(scene)
    const run = await runAction({ 'max-storage': '0', keep: BUSYBOX })
    const out = succeeded(run)
    const { before, after } = retention(run)
    expect(before - after).toBe(out.bytes)
    if (overlay2) {
      expect(before).toBe(disk.layers)
      expect(after).toBe(await scene.layersSize())
    }
    expectReclaimed(out.bytes, disk, await storage(scene), out.deleted.length, { containerKeepsLayers: !overlay2 })
  })

  test(`keep rules and containers win: the target is reported as not met, with a warning, and the step succeeds${overlay2 ? ' (storage-after is LayersSize)' : ''}`, async () => {
    await usedInOrder()
    const run = await runAction({ 'max-storage': '0', keep: `${BUSYBOX}\nlate:1` })
    const out = succeeded(run)
    expect(retention(run).met).toBe('false')
    expect(run.stdout).toMatch(/::warning::Storage target not met: image storage ends at \S+ \(max-storage 0B\)/)
    const left = (await scene.images()).flatMap(image => image.tags).sort()
    expect(left).toEqual([BUSYBOX, 'late:1', 'served:1', ...(store === 'podman' ? ['first:1'] : [])].sort())
    expect(out.skipped).toEqual([])
    if (overlay2) expect(retention(run).after).toBe(await scene.layersSize())
  })
})

describe('headroom', () => {
  test('nothing goes while the target holds; once it is crossed, images go until the headroom is spare', async () => {
    await usedInOrder()
    const ids = await idsByTag(scene)
    const { before } = retention(await runAction({ 'dry-run': 'true', 'max-storage': '1TB', keep: BUSYBOX }))
    const holds = await runAction({ 'max-storage': String(before), headroom: '1TB', keep: BUSYBOX })
    expect(succeeded(holds).deleted).toEqual([])
    expect(holds.summary).toMatch(/No target was crossed, so nothing was evicted/)
    // Crossed by one byte: the exact target takes kid alone; a headroom worth two of its layers takes base too.
    const crossed = { 'max-storage': String(before - 1), keep: BUSYBOX }
    expect(succeeded(await runAction({ ...crossed, 'dry-run': 'true' })).deleted).toEqual([ids.get('kid:1')])
    const disk = await storage(scene)
    const run = await runAction({ ...crossed, headroom: String(layerBytes(MB, 2 * MB).min) })
    const out = succeeded(run)
    expect(out.deleted.sort()).toEqual(['kid:1', 'base:1'].map(tag => ids.get(tag)).sort())
    expect(retention(run)).toEqual({ before, after: before - out.bytes, met: 'true' })
    expect(run.summary).toMatch(/A target was crossed, so images went until it held with \S+ to spare/)
    expectReclaimed(out.bytes, disk, await storage(scene), out.deleted.length)
  })
})

describe('keep-last and age-basis', () => {
  /** app:3 is the newest build; app:1, the oldest, is the one a container was made from last. */
  async function threeBuilds(): Promise<Map<string, string>> {
    await scene.old('app:1', '2024-01-01T00:00:00Z')
    await scene.old('app:2', '2024-02-01T00:00:00Z')
    await scene.old('app:3', '2024-03-01T00:00:00Z')
    // The container list gives Created in whole seconds, tag times in nanoseconds: a container made
    // within the second of app:3's tag would count as older than that tag.
    await new Promise(resolve => setTimeout(resolve, 1000 - (Date.now() % 1000) + 10))
    await scene.createContainer('app:1')
    return idsByTag(scene)
  }

  test('keep-last 1 keeps the newest build under created, and the image used last under last-used', async () => {
    const ids = await threeBuilds()
    const byCreated = succeeded(await runAction({ refs: 'app:*', 'keep-last': '1', 'dry-run': 'true' }))
    expect(byCreated.deleted).toEqual([ids.get('app:2')])
    expect(byCreated.skipped).toContainEqual(expect.objectContaining({ ref: 'app:3', reason: 'kept' }))
    const byUse = succeeded(await runAction({ refs: 'app:*', 'keep-last': '1', 'age-basis': 'last-used' }))
    expect(byUse.deleted.sort()).toEqual([ids.get('app:2'), ids.get('app:3')].sort())
    expect(await scene.exists('app:1')).toBe(true)
  })

  // Podman records no tag time (LastTagTime is Go's zero time): there a tag is no use, and both bases agree.
  const tagTimes = bed().engine.imageStore !== 'podman'
  const title = tagTimes
    ? 'keep-duration under last-used keeps an old build tagged again just now, which created would delete'
    : 'keep-duration under last-used on Podman, which records no tag time: an old build tagged again is still old'

  test(title, async () => {
    await scene.old('vintage:1', '2020-01-01T00:00:00Z')
    await scene.tag('vintage:1', 'vintage:rerun')
    const vintage = await scene.imageId('vintage:1')
    const byCreated = succeeded(
      await runAction({ prune: 'all', 'keep-duration': '1h', keep: BUSYBOX, 'dry-run': 'true' })
    )
    expect(byCreated.deleted).toEqual([vintage])
    const byUse = succeeded(
      await runAction({ prune: 'all', 'keep-duration': '1h', keep: BUSYBOX, 'age-basis': 'last-used' })
    )
    expect(byUse.deleted).toEqual(tagTimes ? [] : [vintage])
    if (tagTimes) expect(byUse.skipped.map(s => s.message)).toContain('used within input "keep-duration"')
  })
})

/** An engine of its own on a small filesystem of its own, whose free space the test reads; removed after. */
async function onSmallFilesystem(
  work: (own: Scene, host: string, free: () => Promise<number>, path: string) => Promise<void>
): Promise<void> {
  const root = await makeRoot()
  const fs = await smallFilesystem(root, 256 * 1024 * 1024)
  const engine = await startEngine(root)
  try {
    const free = async (): Promise<number> => {
      const s = await statfs(fs.path)
      return s.bavail * s.bsize
    }
    await work(new Scene(engine), engine.host, free, fs.path)
  } finally {
    await engine.stop()
    await fs.unmount()
    await removeRoot(root)
  }
}

describe('min-free, on a filesystem of its own', () => {
  let unavailable: string | undefined
  beforeAll(async () => {
    unavailable = await loopMountUnavailable()
  })

  test('frees just enough for the data root filesystem to reach the floor, measured after the run', async () => {
    if (unavailable) {
      process.stdout.write(`min-free test skipped: ${unavailable}\n`)
      return
    }
    await onSmallFilesystem(async (own, host, free, path) => {
      for (const name of ['one', 'two', 'three']) await own.build(`${name}:1`, { bytes: 10 * MB })
      const ids = await idsByTag(own)
      await own.layersSize()
      // One 10 MB image is not enough, two are (in the store's terms: layerBytes).
      const floor = (await free()) + layerBytes(10 * MB, 5 * MB).min
      const dry = await runBundle({ 'min-free': String(floor), 'dry-run': 'true' }, { host })
      // The same floor as a share of the disk, rounded up to a hundredth of a percent.
      const { blocks, bsize } = await statfs(path)
      const percent = Math.ceil((floor / (blocks * bsize)) * 10_000) / 100
      const share = await runBundle({ 'min-free': `${percent}%`, 'dry-run': 'true' }, { host })
      expect(succeeded(share).deleted.sort()).toEqual(succeeded(dry).deleted.sort())
      expect(share.summary).toContain(`(${percent}% of the disk) free`)
      const run = await runBundle({ 'min-free': String(floor) }, { host })
      const out = succeeded(run)
      expect(out.deleted.sort()).toEqual([ids.get('one:1'), ids.get('two:1')].sort())
      expect(succeeded(dry).deleted.sort()).toEqual(out.deleted)
      expect(run.outputs['target-met']).toBe('true')
      expect(await free()).toBeGreaterThanOrEqual(floor)
      expect(run.summary).toContain('free on the engine')
    })
  }, 300_000)

  test('with build-cache: the cache counts, least recently used first, before the images and no more than needed', async () => {
    if (unavailable || !bed().engine.buildkit) {
      process.stdout.write(`min-free with build-cache skipped: ${unavailable ?? 'no BuildKit on this engine'}\n`)
      return
    }
    await onSmallFilesystem(async (own, host, free) => {
      // The records of a build whose image is gone, held by the cache alone: the oldest use here.
      await own.build('old:1', { bytes: 10 * MB, builder: 'buildkit' })
      await own.rmi('old:1')
      await own.build('newer:1', { bytes: 10 * MB })
      const newer = await own.imageId('newer:1')
      await own.diskBytes()
      // 5 MB: one of the old build's 10 MB records is enough (on overlay2 the context's and the
      // COPY step's), and the newer image stays.
      const floor = (await free()) + 5 * MB
      const inputs = { 'min-free': String(floor), 'build-cache': 'all' }
      const dry = await runBundle({ ...inputs, 'dry-run': 'true' }, { host })
      const run = await runBundle(inputs, { host })
      const out = succeeded(run)
      expect(out.deleted).toEqual([])
      expect(await own.exists('newer:1')).toBe(true)
      expect(Number(run.outputs['build-cache-reclaimed-bytes'])).toBe(out.bytes)
      expect(out.bytes).toBeGreaterThanOrEqual(5 * MB)
      expect(succeeded(dry).bytes).toBe(out.bytes)
      expect(run.outputs['target-met']).toBe('true')
      expect(await free()).toBeGreaterThanOrEqual(floor)
      // No more than needed: some of the cache is left.
      const rest = (await own.buildCache()).reduce((sum, record) => sum + record.Size, 0)
      expect(rest).toBeGreaterThan(0)
      // A floor the rest of the cache cannot reach: the image goes too, after the records.
      const higher = (await free()) + rest + layerBytes(5 * MB).min
      const second = await runBundle({ 'min-free': String(higher), 'build-cache': 'all' }, { host })
      expect(succeeded(second).deleted).toEqual([newer])
      // A record of 0 bytes frees nothing, and stays.
      expect((await own.buildCache()).filter(record => record.Size > 0)).toEqual([])
      expect(second.outputs['target-met']).toBe('true')
      expect(await free()).toBeGreaterThanOrEqual(higher)
    })
  }, 300_000)

  test('a remote engine is refused in one sentence before anything is touched', async () => {
    const run = await runAction({ 'min-free': '1GB', 'docker-host': 'tcp://127.0.0.1:9' })
    expect(run.code).not.toBe(0)
    expect(run.stdout).toContain('::error::Input "min-free" needs an engine on this machine')
  })
})
