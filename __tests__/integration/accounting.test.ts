import { beforeEach, describe, expect, test } from '@jest/globals'
import { expectReclaimed, idsOf, storage, succeeded } from './checks'
import { bed, runAction } from './harness'

const { scene } = bed()
const MB = 1_000_000

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** Two children on one untagged base: the base's layer belongs to whoever goes last. */
async function sharedBase(): Promise<void> {
  await scene.build('shared-base:tmp', { bytes: 3 * MB })
  await scene.build('left:1', { from: 'shared-base:tmp', bytes: MB })
  await scene.build('right:1', { from: 'shared-base:tmp', bytes: 2 * MB })
  await scene.rmi('shared-base:tmp')
}

describe('reclaimed-bytes is what left the engine', () => {
  test('a shared layer is not counted while another image holds it', async () => {
    await sharedBase()
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'left:1' }))
    expect(out.bytes).toBe(MB)
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  test('the shared layer is counted once when its last holder goes', async () => {
    await sharedBase()
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'left:1 right:1' }))
    expect(out.bytes).toBe(6 * MB)
    expect(out.deleted).toHaveLength(3)
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  test('a dry run changes nothing and predicts exactly what the real run then frees', async () => {
    await sharedBase()
    await scene.dangling('scratchpad')
    const ids = await idsOf(scene)
    const before = await storage(scene)
    const dry = await runAction({ refs: 'right:1', prune: 'all', 'dry-run': 'true' })
    const predicted = succeeded(dry)
    expect(await idsOf(scene)).toEqual(ids)
    expect((await storage(scene)).layers).toBe(before.layers)
    const real = succeeded(await runAction({ refs: 'right:1', prune: 'all' }))
    expect(real.bytes).toBe(predicted.bytes)
    expect(real.deleted.sort()).toEqual(predicted.deleted.sort())
    expect(real.untagged.sort()).toEqual(predicted.untagged.sort())
    expectReclaimed(real.bytes, before, await storage(scene), real.deleted.length)
    expect(dry.summary).toContain('would reclaim')
  })

  test('the summary shows the total first, a row per image, and storage before and after', async () => {
    await scene.build('summary:1', { bytes: 1_230_000 })
    const run = await runAction({ refs: 'summary:1 missing:1' })
    const out = succeeded(run)
    expect(run.outputs.reclaimed).toBe('1.23MB')
    expect(run.outputs['deleted-count']).toBe(String(out.deleted.length))
    const lines = run.summary.trim().split('\n')
    expect(lines[0]).toBe('<h2>Docker images: reclaimed 1.23MB</h2>')
    expect(lines[1]).toContain('Exactly <b>1,230,000 bytes</b> of image storage freed')
    expect(run.summary).toMatch(
      /<tr><td>summary:1<\/td><td><code>[0-9a-f]{12}<\/code><\/td><td>[^<]+<\/td><td align="right">1.23MB<\/td><td>Deleted<\/td><\/tr>/
    )
    expect(run.summary).toMatch(/<tr><td>missing:1<\/td>.*<td>Not found: no image has this name or ID<\/td><\/tr>/)
    expect(run.summary).toMatch(/Image storage on the engine: <b>[\d.]+[kMG]?B<\/b> before → <b>[\d.]+[kMG]?B<\/b> after\./)
  })
})
