import { beforeEach, describe, expect, test } from '@jest/globals'
import { apiAtLeast, expectLayerBytes, expectReclaimed, idsOf, storage, store, succeeded } from './checks'
import { join } from 'node:path'
import { bed, proxiesPerTest, runAction } from './harness'

const { scene } = bed()
const MB = 1_000_000
const proxy = proxiesPerTest()

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
    expectLayerBytes(out.bytes, MB)
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  // Docker keeps a base with children when its tag goes, and it goes with its last child; Podman
  // deletes it with its tag.
  test('the shared layer is counted once when its last holder goes (with the untagged base, which Podman deleted with its tag)', async () => {
    await sharedBase()
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'left:1 right:1' }))
    expectLayerBytes(out.bytes, MB, 2 * MB, 3 * MB)
    expect(out.deleted).toHaveLength(store === 'podman' ? 2 : 3)
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

  // The containerd store's LayersSize leaves out the blobs a removal frees, and Podman's is 0: no storage line there.
  test('the summary shows the total first, a row per image, and storage before and after (overlay2 only)', async () => {
    await scene.build('summary:1', { bytes: 1_230_000 })
    const run = await runAction({ refs: 'summary:1 missing:1' })
    const out = succeeded(run)
    expectLayerBytes(out.bytes, 1_230_000)
    const reclaimed = run.outputs.reclaimed
    if (store === 'overlay2') expect(reclaimed).toBe('1.23MB')
    expect(run.outputs['deleted-count']).toBe(String(out.deleted.length))
    const lines = run.summary.trim().split('\n')
    expect(lines[0]).toBe(`<h2>Docker images: reclaimed ${reclaimed}</h2>`)
    expect(lines[1]).toContain(`Exactly <b>${out.bytes.toLocaleString('en-US')} bytes</b> of image storage freed`)
    expect(run.summary).toContain(`<tr><td>summary:1</td><td><code>${out.deleted[0].slice(7, 19)}</code></td>`)
    expect(run.summary).toMatch(new RegExp(`<td align="right">${reclaimed}</td><td>Deleted</td></tr>`))
    expect(run.summary).toMatch(/<tr><td>missing:1<\/td>.*<td>Not found: no image has this name or ID<\/td><\/tr>/)
    const storageLine = /Image storage on the engine: <b>[\d.]+[kMG]?B<\/b> before → <b>[\d.]+[kMG]?B<\/b> after\./
    if (store === 'overlay2') expect(run.summary).toMatch(storageLine)
    else expect(run.summary).not.toContain('Image storage')
  })
})

// Overlay2's disk usage says which images share no layer, and such an image frees its whole size:
// only the others are inspected. Its count leaves out images with children, so a build's family is.
// Before API 1.42 disk usage cannot leave containers out, and the scene has one: no disk usage then.
const imagesOnlyUsage = store === 'overlay2' && apiAtLeast('1.42')

describe('what is inspected to price a removal', () => {
  const title = imagesOnlyUsage
    ? 'only the images that share layers or have parents or children: the dry run and the real run agree with the disk'
    : store === 'overlay2'
      ? `every image on API ${bed().engine.apiVersion} with a container on the engine, where disk usage would size the container too: the dry run and the real run agree with the disk`
      : `every image on the ${store} store, whose disk usage figures are not what removals free: the dry run and the real run agree with the disk`

  test(title, async () => {
    await sharedBase()
    const lone = await scene.many('lone', 3, 200_000)
    await scene.createContainer('lone:0')
    const all = (await scene.images()).map(image => image.id)
    const recorder = await proxy(join(bed().root, 'accounting.sock'), () => 'forward')
    const inputs = { refs: 'lone:* left:1 right:1' }
    const dry = succeeded(await runAction({ ...inputs, 'dry-run': 'true' }, { host: recorder.host }))
    const inspected = recorder.seen
      .flatMap(request => /^GET \/v[\d.]+\/images\/([^/]+)\/json$/.exec(request)?.[1] ?? [])
      .map(decodeURIComponent)
    const expected = imagesOnlyUsage ? all.filter(id => !lone.includes(id)) : all
    expect(new Set(inspected)).toEqual(new Set(expected))
    expect(inspected).toHaveLength(expected.length)
    const before = await storage(scene)
    const real = succeeded(await runAction(inputs))
    expect(real.deleted.sort()).toEqual(dry.deleted.sort())
    expect(real.deleted).toEqual(expect.arrayContaining([lone[1], lone[2]]))
    expect(real.bytes).toBe(dry.bytes)
    expectReclaimed(real.bytes, before, await storage(scene), real.deleted.length)
  })
})

// /system/df without type=image walks every container's filesystem, which a runner with many
// containers pays for in seconds; type=image came with API 1.42.
const diskUsageCalls = (seen: string[]): string[] => seen.filter(request => /^GET \/v[\d.]+\/system\/df/.test(request))

describe('disk usage is asked about images only', () => {
  const title = imagesOnlyUsage
    ? 'with type=image, before and after a removal'
    : store === 'overlay2'
      ? `on API ${bed().engine.apiVersion} only while the engine has no container, since it cannot leave containers out`
      : `never on the ${store} store, whose disk usage figures are not what removals free`

  test(title, async () => {
    await scene.build('df-used:1', { bytes: 200_000 })
    await scene.build('df-gone:1', { bytes: 300_000 })
    const container = await scene.createContainer('df-used:1')
    const recorder = await proxy(join(bed().root, 'df.sock'), () => 'forward')
    const before = await storage(scene)
    const run = await runAction({ refs: 'df-gone:1' }, { host: recorder.host })
    expectLayerBytes(succeeded(run).bytes, 300_000)
    // The build cache is asked apart (type=build-cache), to know whether it holds image layers.
    const cacheCalls = diskUsageCalls(recorder.seen).filter(call => /[?&]type=build-cache(&|$)/.test(call))
    const calls = diskUsageCalls(recorder.seen).filter(call => !cacheCalls.includes(call))
    expect(cacheCalls.length).toBeLessThanOrEqual(1)
    if (imagesOnlyUsage) {
      expect(calls).toHaveLength(2)
      for (const call of calls) expect(call).toMatch(/[?&]type=image(&|$)/)
    } else expect(calls).toEqual([])
    if (store !== 'overlay2') return expect(run.outputs['storage-before']).toBe('')
    // Without disk usage, the layers the plan read for the removal measure the storage instead.
    expect(Number(run.outputs['storage-before'])).toBe(before.layers)
    expect(Number(run.outputs['storage-before']) - Number(run.outputs['storage-after'])).toBe(
      Number(run.outputs['reclaimed-bytes'])
    )
    if (imagesOnlyUsage) return
    await scene.removeContainer(container)
    recorder.seen.length = 0
    const alone = await runAction({ refs: 'df-used:1' }, { host: recorder.host })
    expectLayerBytes(succeeded(alone).bytes, 200_000)
    expect(diskUsageCalls(recorder.seen)).toHaveLength(2)
    expect(Number(alone.outputs['storage-before']) - Number(alone.outputs['storage-after'])).toBe(200_000)
  })
})

// Disk usage gives storage-before. At thousands of images the engine takes longer over
// /system/df than the step over everything else, and working on it beside the list delays the
// list (bench/README.md): a step that deletes nothing never waits for it.
describe('a step that deletes nothing does not wait for disk usage', () => {
  test('dangling images, none there: disk usage is not even asked', async () => {
    await scene.build('df-kept:1', { bytes: 100_000 })
    const recorder = await proxy(join(bed().root, 'df-hang.sock'), ({ url }) =>
      /\/system\/df/.test(url) ? 'hang' : 'forward'
    )
    const run = await runAction({ prune: 'dangling', timeout: '5m' }, { host: recorder.host })
    expect(succeeded(run).deleted).toEqual([])
    expect(diskUsageCalls(recorder.seen)).toEqual([])
    expect(run.outputs['storage-before']).toBe('')
    expect(run.outputs['storage-after']).toBe('')
    expect(run.summary).not.toContain('Image storage on the engine')
  })

  test('refs that end up deleting nothing: disk usage, asked beside the lists, is given up on', async () => {
    await scene.build('df-kept:1', { bytes: 100_000 })
    const recorder = await proxy(join(bed().root, 'df-hang.sock'), ({ url }) =>
      /\/system\/df/.test(url) ? 'hang' : 'forward'
    )
    const run = await runAction({ refs: 'df-kept:1', keep: 'df-kept:1', timeout: '5m' }, { host: recorder.host })
    expect(succeeded(run).deleted).toEqual([])
    // Asked beside lists that are already in, it may be given up on before it goes out.
    expect(diskUsageCalls(recorder.seen).length).toBeLessThanOrEqual(store === 'overlay2' ? 1 : 0)
    expect(run.outputs['storage-before']).toBe('')
    expect(run.summary).not.toContain('Image storage on the engine')
  })
})
