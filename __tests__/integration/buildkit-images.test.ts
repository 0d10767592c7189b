import { beforeEach, describe, expect, test } from '@jest/globals'
import { expectLayerBytes, expectReclaimed, storage, store, succeeded } from './checks'
import { bed, runAction } from './harness'

/**
 * Images as CI builds them, with BuildKit: its build cache keeps the layers it built, on overlay2
 * in the very directories the images use, so removing such an image alone frees next to nothing.
 * The bytes reported must be what left the data directory, in a real run and in a dry run.
 */

const { scene, engine } = bed()
const MB = 1_000_000
// Exact on overlay2; the containerd store's cache holds a layer's blob but not the image's own
// snapshot, which the action does not yet tell apart (docs/reclaimed-bytes.md).
const exactStore = engine.buildkit && store === 'overlay2' ? test : test.skip

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

describe('an image BuildKit built, while its build cache holds its layers', () => {
  exactStore('removing it reports what left the disk, and the dry run predicted as much', async () => {
    await scene.build('bk/app:1', { builder: 'buildkit', bytes: 3 * MB })
    const dry = succeeded(await runAction({ refs: 'bk/app:1', 'dry-run': 'true' }))
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'bk/app:1' }))
    expect(out.deleted).toHaveLength(1)
    expect(out.bytes).toBeLessThan(MB)
    expect(dry.bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, await storage(scene), 1, { containerKeepsLayers: true })
  })

  exactStore('beside an image of the legacy builder: only the legacy image’s layer counts', async () => {
    await scene.build('bk/app:1', { builder: 'buildkit', bytes: 2 * MB })
    await scene.build('legacy/app:1', { bytes: MB })
    const dry = succeeded(await runAction({ refs: 'bk/app:1 legacy/app:1', 'dry-run': 'true' }))
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'bk/app:1 legacy/app:1' }))
    expect(out.deleted).toHaveLength(2)
    expectLayerBytes(out.bytes, MB)
    expect(dry.bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, await storage(scene), 2, { containerKeepsLayers: true })
  })

  exactStore('two BuildKit images of the same size: each is matched to its own cache record', async () => {
    await scene.build('bk/one:1', { builder: 'buildkit', bytes: MB })
    await scene.build('bk/two:1', { builder: 'buildkit', bytes: MB })
    await scene.pruneBuildCache()
    await scene.build('bk/three:1', { builder: 'buildkit', bytes: MB })
    const dry = succeeded(await runAction({ refs: 'bk/*', 'dry-run': 'true' }))
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'bk/*' }))
    expect(out.deleted).toHaveLength(3)
    // one and two lost their records to the prune: their layers go; three's record keeps its own.
    expectLayerBytes(out.bytes, MB, MB)
    expect(dry.bytes).toBe(out.bytes)
    expectReclaimed(out.bytes, before, await storage(scene), 3, { containerKeepsLayers: true })
  })
})
