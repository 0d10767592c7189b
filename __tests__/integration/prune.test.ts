import { beforeEach, describe, expect, test } from '@jest/globals'
import { join } from 'node:path'
import { BUSYBOX } from '../../testbed/scene'
import { expectLayerBytes, expectReclaimed, idsOf, storage, store, succeeded, tagsOf } from './checks'
import { bed, proxiesPerTest, runAction } from './harness'

const { scene } = bed()
const MB = 1_000_000
const YEARS_AGO = '2019-03-01T00:00:00Z'

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

describe('prune, keep rules and filters', () => {
  test('with neither refs nor prune, the step prunes dangling images only', async () => {
    const dangling = await scene.dangling('rebuilt')
    await scene.build('tagged:1', { bytes: MB })
    const before = await storage(scene)
    const out = succeeded(await runAction({}))
    expect(out.deleted).toContain(dangling)
    expect(await tagsOf(scene)).toEqual(['rebuilt:tmp', 'tagged:1', BUSYBOX].sort())
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
    expect(out.bytes).toBeGreaterThan(0)
  })

  test('prune all removes every image no container uses, tagged bases after their children', async () => {
    await scene.build('base:1', { bytes: MB })
    await scene.build('child:1', { from: 'base:1', bytes: MB })
    await scene.build(['used:1', 'used:2'], { from: BUSYBOX, bytes: MB })
    await scene.runContainer('used:1', { running: false })
    const before = await storage(scene)
    const out = succeeded(await runAction({ prune: 'all' }))
    expect(out.untagged).not.toContain('used:1')
    expect(await tagsOf(scene)).toEqual(['used:1', 'used:2', BUSYBOX].sort())
    expectLayerBytes(out.bytes, MB, MB)
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  test('keep wins over refs, prune and force', async () => {
    const precious = await scene.build(['precious:1', 'precious:2'], { bytes: MB })
    await scene.build('other:1', { bytes: MB })
    const out = succeeded(
      await runAction({ refs: `precious:1\n${precious}`, prune: 'all', force: 'true', keep: 'precious:*' })
    )
    expect(out.skipped.filter(s => s.id === precious).map(s => s.reason)).toEqual(['kept', 'kept', 'kept'])
    expect(await tagsOf(scene)).toEqual(['precious:1', 'precious:2'])
  })

  test('keep-duration keeps what is younger and lets the old go', async () => {
    const old = await scene.old('ancient:1', YEARS_AGO, MB)
    await scene.build('fresh:1', { bytes: MB })
    const out = succeeded(await runAction({ prune: 'all', 'keep-duration': '7d' }))
    expect(out.deleted).toEqual([old])
    expect(out.skipped.map(s => s.reason)).toContain('too-recent')
    expect(await tagsOf(scene)).toEqual(['fresh:1', BUSYBOX].sort())
  })

  test('filters narrow what prune selects: labels, until, reference', async () => {
    await scene.build('labelled:1', { bytes: 1000, labels: { team: 'ci' } })
    await scene.build('labelled:2', { bytes: 1000, labels: { team: 'web' } })
    await scene.old('ancient:1', YEARS_AGO, 1000)
    await scene.build('refd:1', { bytes: 1000 })
    succeeded(await runAction({ prune: 'all', filters: 'label=team=ci' }))
    expect(await tagsOf(scene)).not.toContain('labelled:1')
    expect(await tagsOf(scene)).toContain('labelled:2')
    succeeded(await runAction({ prune: 'all', filters: 'until=24h' }))
    expect(await tagsOf(scene)).not.toContain('ancient:1')
    expect(await tagsOf(scene)).toContain('refd:1')
    succeeded(await runAction({ prune: 'all', filters: 'reference=refd:*\nlabel!=team' }))
    expect(await tagsOf(scene)).toEqual(['labelled:2', BUSYBOX].sort())
  })

  test('filters narrow named refs too', async () => {
    await scene.build('narrow:1', { bytes: 1000, labels: { keep: 'no' } })
    await scene.build('narrow:2', { bytes: 1000 })
    const out = succeeded(await runAction({ refs: 'narrow:*', filters: 'label=keep=no' }))
    expect(out.untagged).toEqual(['narrow:1'])
    expect(await tagsOf(scene)).toEqual(['narrow:2', BUSYBOX].sort())
  })

  test('refs are removed first, then the prune runs (the untagged base stays for its child; Podman deletes it with its tag)', async () => {
    const base = await scene.build('stage:1', { bytes: MB })
    await scene.build('stage:2', { from: 'stage:1', bytes: MB })
    const dangling = await scene.dangling('stray')
    const out = succeeded(await runAction({ refs: 'stage:1', prune: 'dangling' }))
    expect(out.untagged).toEqual(['stage:1'])
    expect(out.deleted).toEqual(store === 'podman' ? [base, dangling] : [dangling])
    expect((await idsOf(scene)).includes(base)).toBe(store !== 'podman')
  })
})

// On thousands of images the whole list takes the engine and the action far longer than the
// dangling images alone (bench/README.md). Only overlay2's dangling filter is known to list every
// image the plan could prune; Docker's containerd store is told apart only after the first list
// is asked, and Podman before.
describe('with dangling images alone to prune, the engine is asked for those first', () => {
  const proxy = proxiesPerTest()
  const DANGLING = 'filters={"dangling":["true"]}'
  const WHOLE = 'all=true'
  const imageLists = (seen: string[]): string[] =>
    seen.flatMap(request => {
      const list = /^GET \/v[\d.]+\/images\/json\??(.*)$/.exec(request)
      return list ? [decodeURIComponent(list[1])] : []
    })

  test('none there (an untagged base under a tagged child is not dangling): the whole list is never read on overlay2', async () => {
    const base = await scene.build('first-base:tmp', { bytes: 100_000 })
    await scene.build('first-child:1', { from: 'first-base:tmp', bytes: 100_000 })
    await scene.rmi('first-base:tmp')
    const images = await idsOf(scene)
    const recorder = await proxy(join(bed().root, 'dangling-first.sock'), () => 'forward')
    const out = succeeded(await runAction({}, { host: recorder.host }))
    expect(out.deleted).toEqual([])
    expect(await idsOf(scene)).toEqual(images)
    // Podman deleted the base with its tag.
    expect(images.includes(base)).toBe(store !== 'podman')
    expect(imageLists(recorder.seen)).toEqual(
      store === 'overlay2' ? [DANGLING] : store === 'containerd' ? [DANGLING, WHOLE] : [WHOLE]
    )
  })

  test('some there: the whole list is read after them, and they go as before', async () => {
    const dangling = await scene.dangling('first-rebuilt')
    const before = await storage(scene)
    const recorder = await proxy(join(bed().root, 'dangling-first.sock'), () => 'forward')
    const out = succeeded(await runAction({}, { host: recorder.host }))
    expect(out.deleted).toContain(dangling)
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
    expect(imageLists(recorder.seen)).toEqual(store === 'podman' ? [WHOLE] : [DANGLING, WHOLE])
  })

  test('with refs the whole list is read at once', async () => {
    await scene.build('first-named:1', { bytes: 100_000 })
    const recorder = await proxy(join(bed().root, 'dangling-first.sock'), () => 'forward')
    succeeded(await runAction({ refs: 'first-named:1' }, { host: recorder.host }))
    expect(imageLists(recorder.seen)).toEqual([WHOLE])
  })
})
