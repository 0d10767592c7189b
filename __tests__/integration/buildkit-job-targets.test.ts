import { beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { BUSYBOX } from '../../testbed/scene'
import { dryThenReal, expectReclaimed, firstBuildKitBuild, layerBytes, storage, store, succeeded } from './checks'
import { bed, runAction, type ActionRun } from './harness'

/**
 * `scope: job` and the storage targets on images BuildKit built, whose build cache keeps their
 * layers (see buildkit-images.test.ts): the bytes reported, the storage measure and the choice
 * of what to evict must follow what leaves the data directory, not the images' own sizes.
 */

const { scene, engine } = bed()
const MB = 1_000_000
const withBuildKit = engine.buildkit ? test : test.skip

function retention(run: ActionRun): { before: number; after: number; met: string } {
  return {
    before: Number(run.outputs['storage-before']),
    after: Number(run.outputs['storage-after']),
    met: run.outputs['target-met']
  }
}

beforeAll(firstBuildKitBuild)

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

describe('images BuildKit built, while its build cache holds their layers', () => {
  withBuildKit('scope: job: the post step reports what left the disk, and the storage it left', async () => {
    const main = await runAction({ scope: 'job' })
    await scene.build('bk/job:1', { builder: 'buildkit', bytes: 2 * MB })
    await scene.build('legacy/job:1', { bytes: MB })
    const state = Object.fromEntries(Object.entries(main.state).map(([name, value]) => [`STATE_${name}`, value]))
    const before = await storage(scene)
    const post = await runAction({ scope: 'job' }, { env: state })
    const out = succeeded(post)
    expect(out.deleted).toHaveLength(2)
    expect(await scene.exists('bk/job:1')).toBe(false)
    // overlay2: the legacy image's layer alone (the cache keeps the other); the containerd store
    // adds the BuildKit image's snapshot, its blob staying with the cache.
    if (store === 'overlay2') expect(out.bytes).toBeLessThan(MB + 64 * 1024)
    else expect(out.bytes).toBeGreaterThan(layerBytes(MB).min + 2 * MB)
    expectReclaimed(out.bytes, before, await storage(scene), 2, { containerKeepsLayers: true })
  })

  withBuildKit('max-storage: the measure counts what would leave, and eviction frees what it reports', async () => {
    await scene.build('bk/old:1', { builder: 'buildkit', bytes: 2 * MB })
    await scene.build('legacy/new:1', { bytes: MB })
    const survey = retention(await runAction({ 'max-storage': '1TB', keep: BUSYBOX, 'dry-run': 'true' }))
    const inputs = { 'max-storage': String(survey.before - MB / 2), keep: BUSYBOX }
    const { dry, run, out, before, after } = await dryThenReal(inputs)
    expect(succeeded(dry).deleted).toEqual(out.deleted)
    expect(succeeded(dry).bytes).toBe(out.bytes)
    expect(retention(dry)).toEqual(retention(run))
    expect(retention(run)).toEqual({ before: survey.before, after: survey.before - out.bytes, met: 'true' })
    expectReclaimed(out.bytes, before, after, out.deleted.length, { containerKeepsLayers: true })
    // overlay2: removing the older BuildKit image would free nothing while the cache holds its
    // layer, so the newer legacy image goes. The containerd store: the older image's snapshot leaves.
    const gone = store === 'overlay2' ? 'legacy/new:1' : 'bk/old:1'
    const stays = store === 'overlay2' ? 'bk/old:1' : 'legacy/new:1'
    expect(await scene.exists(gone)).toBe(false)
    expect(await scene.exists(stays)).toBe(true)
  })
})
