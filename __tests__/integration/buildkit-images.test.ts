import { beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { dryThenReal, expectLayerBytes, expectReclaimed, firstBuildKitBuild, store, succeeded } from './checks'
import { bed } from './harness'
import { BUSYBOX } from '../../testbed/scene'

/**
 * Images as CI builds them, with BuildKit: its build cache keeps the layers it built, on overlay2
 * in the very directories the images use, so removing such an image alone frees next to nothing;
 * on the containerd store the layer's blob, so removing the image frees its own snapshot only.
 * The bytes reported must be what left the data directory, in a real run and in a dry run.
 */

const { scene, engine } = bed()
const MB = 1_000_000
const withBuildKit = engine.buildkit ? test : test.skip

beforeAll(firstBuildKitBuild)

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

describe('an image BuildKit built, while its build cache holds its layers', () => {
  withBuildKit('removing it reports what left the disk, and the dry run predicted as much', async () => {
    await scene.build('bk/app:1', { builder: 'buildkit', bytes: 3 * MB })
    const { dry, out, before, after } = await dryThenReal({ refs: 'bk/app:1' })
    expect(out.deleted).toHaveLength(1)
    // overlay2: the image's metadata; the containerd store: its snapshot, not the blob the cache holds.
    expect(out.bytes).toBeLessThan(store === 'overlay2' ? MB : 3 * MB + 64 * 1024)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, after, 1, { containerKeepsLayers: true })
  })

  withBuildKit('beside an image of the legacy builder: only the legacy image’s layer counts', async () => {
    await scene.build('bk/app:1', { builder: 'buildkit', bytes: 2 * MB })
    await scene.build('legacy/app:1', { bytes: MB })
    const { dry, out, before, after } = await dryThenReal({ refs: 'bk/app:1 legacy/app:1' })
    expect(out.deleted).toHaveLength(2)
    if (store === 'overlay2') expectLayerBytes(out.bytes, MB)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, after, 2, { containerKeepsLayers: true })
  })

  withBuildKit('two BuildKit images of the same size: each is matched to its own cache record', async () => {
    await scene.build('bk/one:1', { builder: 'buildkit', bytes: MB })
    await scene.build('bk/two:1', { builder: 'buildkit', bytes: MB })
    await scene.pruneBuildCache()
    await scene.build('bk/three:1', { builder: 'buildkit', bytes: MB })
    const { dry, out, before, after } = await dryThenReal({ refs: 'bk/*' })
    expect(out.deleted).toHaveLength(3)
    // one and two lost their records to the prune: their layers go; three's record keeps its own
    // (on the containerd store its blob: three's snapshot goes).
    if (store === 'overlay2') expectLayerBytes(out.bytes, MB, MB)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, after, 3, { containerKeepsLayers: true })
  })

  withBuildKit('prune: all, then the build cache in the same step: each share is what left the disk', async () => {
    await scene.build('bk/app:1', { builder: 'buildkit', bytes: 2 * MB })
    await scene.build('bk/lib:1', { builder: 'buildkit', bytes: MB })
    const records = (await scene.buildCache()).length
    const { dry, run, out, before, after } = await dryThenReal({ prune: 'all', keep: BUSYBOX, 'build-cache': 'all' })
    expect(out.deleted).toHaveLength(2)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expect(dry.outputs['build-cache-reclaimed-bytes']).toBe(run.outputs['build-cache-reclaimed-bytes'])
    // Each removed record leaves metadata behind, as each image does.
    expectReclaimed(out.bytes, before, after, 2 + records, { containerKeepsLayers: true })
  })
})

/**
 * BuildKit lists a layer's record unshared, for the daemon's life, when its disk usage was read
 * during the build (testbed/ENGINES.md): its own garbage collector does so on real hosts, and so
 * does anyone's `docker system df`. The image still holds the record's blob.
 */
describe('the containerd store, where BuildKit lists the layer’s record unshared although the image holds its blob', () => {
  const onContainerd = engine.buildkit && store === 'containerd' ? test : test.skip

  /** Builds while reading the build cache over and over, as a collector or `docker system df` may. */
  async function buildWhileReading(tag: string, bytes: number): Promise<void> {
    let building = true
    const reads = (async () => {
      while (building) await scene.buildCache()
    })()
    try {
      await scene.build(tag, { builder: 'buildkit', bytes })
    } finally {
      building = false
      await reads
    }
    const layerRecord = (await scene.buildCache()).find(r => r.Type === 'regular' && r.Size > bytes)
    // The case these tests are about: should an engine list it shared, they would prove nothing.
    expect(layerRecord).toEqual(expect.objectContaining({ Shared: false }))
  }

  onContainerd('removing the image reports its snapshot, not the blob the record keeps', async () => {
    await buildWhileReading('bk/misread:1', 2 * MB)
    const { dry, out, before, after } = await dryThenReal({ refs: 'bk/misread:1' })
    expect(out.deleted).toHaveLength(1)
    expect(out.bytes).toBeLessThan(2 * MB + 64 * 1024)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, after, 1, { containerKeepsLayers: true })
  })

  onContainerd(
    'build-cache: dangling removes the record and reports its snapshot, the image keeping the blob',
    async () => {
      await buildWhileReading('bk/misread:1', 2 * MB)
      const records = (await scene.buildCache()).length
      const { dry, run, out, before, after } = await dryThenReal({ 'build-cache': 'dangling' })
      expect(await scene.exists('bk/misread:1')).toBe(true)
      expect((await scene.buildCache()).filter(r => r.Type === 'regular' && r.Size > 2 * MB)).toEqual([])
      expect(dry.outputs['build-cache-reclaimed-bytes']).toBe(run.outputs['build-cache-reclaimed-bytes'])
      expectReclaimed(out.bytes, before, after, records, { containerKeepsLayers: true })
    }
  )
})
