import { beforeEach, describe, expect, test } from '@jest/globals'
import { BUSYBOX } from '../../testbed/scene'
import { expectLayerBytes, expectReclaimed, idsOf, storage, store, succeeded, tagsOf } from './checks'
import { bed, runAction } from './harness'

const { scene } = bed()
const MB = 1_000_000

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

describe('refs follow docker image rm to the letter', () => {
  test('a tag of a multi-tagged image is only untagged, and frees nothing', async () => {
    const id = await scene.build(['app:1', 'app:2'], { bytes: MB })
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'app:1' }))
    expect(out.untagged).toEqual(['app:1'])
    expect(out.deleted).toEqual([])
    expect(out.bytes).toBe(0)
    expect(await tagsOf(scene)).toEqual(['app:2', BUSYBOX].sort())
    expect((await scene.images()).some(image => image.id === id)).toBe(true)
    expectReclaimed(0, before, await storage(scene), 0)
  })

  test('the last tag going deletes the image and only the layers nothing else holds', async () => {
    await scene.build('base:1', { bytes: MB })
    const app = await scene.build('app:1', { from: 'base:1', bytes: 2 * MB })
    await scene.build('other:1', { from: 'base:1', bytes: 1.5 * MB })
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'app:1' }))
    expect(out.untagged).toEqual(['app:1'])
    expect(out.deleted).toEqual([app])
    expectLayerBytes(out.bytes, 2 * MB)
    expect(await tagsOf(scene)).toEqual(['base:1', 'other:1', BUSYBOX].sort())
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  test('name alone means name:latest', async () => {
    await scene.build(['web:latest', 'web:2'], { bytes: MB })
    const out = succeeded(await runAction({ refs: 'web' }))
    expect(out.untagged).toEqual(['web:latest'])
    expect(await tagsOf(scene)).toEqual(['web:2', BUSYBOX].sort())
  })

  test('an ID with several tags needs force; with force it loses every tag and goes', async () => {
    const id = await scene.build(['multi:1', 'multi:2'], { bytes: MB })
    const refused = succeeded(await runAction({ refs: id.slice(7, 19) }))
    expect(refused.skipped).toEqual([expect.objectContaining({ id, reason: 'multiple-references' })])
    expect(refused.deleted).toEqual([])
    const before = await storage(scene)
    const forced = succeeded(await runAction({ refs: id.slice(7, 19), force: 'true' }))
    expect(forced.untagged.sort()).toEqual(['multi:1', 'multi:2'])
    expect(forced.deleted).toContain(id)
    expectLayerBytes(forced.bytes, MB)
    expectReclaimed(forced.bytes, before, await storage(scene), forced.deleted.length)
  })

  test('full ID and sha256:<id> name the image exactly', async () => {
    const a = await scene.build('full:1', { bytes: MB })
    const b = await scene.build('full:2', { bytes: MB })
    const out = succeeded(await runAction({ refs: `${a}\n${b.slice(7)}` }))
    expect(out.deleted).toEqual(expect.arrayContaining([a, b]))
    expect(await tagsOf(scene)).toEqual([BUSYBOX])
  })

  // overlay2 keeps a pushed digest as a name of its own; the containerd store and Podman list one
  // for each tagged name, a view of the image's own digest that stands for the repository's tags.
  ;(store === 'overlay2' ? test : test.skip)('a digest reference untags that digest only (overlay2)', async () => {
    const repo = `${bed().registry}/pushed`
    await scene.build(`${repo}:1`, { bytes: MB })
    const digestRef = await scene.push(`${repo}:1`)
    const out = succeeded(await runAction({ refs: digestRef }))
    expect(out.untagged).toEqual([digestRef])
    expect(out.deleted).toEqual([])
    const image = (await scene.images()).find(i => i.tags.includes(`${repo}:1`))
    expect(image?.digests).toEqual([])
  })

  ;(store === 'overlay2' ? test.skip : test)(
    "a digest reference names its repository's tags: alone it deletes the image; beside another repository containerd untags them and Podman refuses",
    async () => {
      const shared = `${bed().registry}/shared`
      const both = await scene.build([`${shared}:1`, 'elsewhere:1'], { bytes: MB })
      const sharedDigest = await scene.push(`${shared}:1`)
      const beside = succeeded(await runAction({ refs: sharedDigest }))
      if (store === 'containerd') {
        expect(beside).toMatchObject({ untagged: [`${shared}:1`], skipped: [] })
      } else {
        expect(beside.untagged).toEqual([])
        expect(beside.skipped).toEqual([
          expect.objectContaining({
            ref: sharedDigest,
            reason: 'error',
            message: expect.stringContaining('tag not known')
          })
        ])
      }
      expect(beside.deleted).toEqual([])
      expect(await idsOf(scene)).toContain(both)

      const repo = `${bed().registry}/pushed`
      const id = await scene.build(`${repo}:1`, { bytes: MB })
      const digestRef = await scene.push(`${repo}:1`)
      const before = await storage(scene)
      const out = succeeded(await runAction({ refs: digestRef }))
      expect(out.untagged).toEqual([`${repo}:1`])
      expect(out.deleted).toEqual([id])
      expectLayerBytes(out.bytes, MB)
      expectReclaimed(out.bytes, before, await storage(scene), 1)
    }
  )

  test('the last tag of a repository takes its digest references with it (reported on overlay2, where they are names of their own)', async () => {
    const repo = `${bed().registry}/digested`
    const id = await scene.build(`${repo}:1`, { bytes: MB })
    const digestRef = await scene.push(`${repo}:1`)
    const out = succeeded(await runAction({ refs: `${repo}:1` }))
    expect(out.untagged.sort()).toEqual((store === 'overlay2' ? [`${repo}:1`, digestRef] : [`${repo}:1`]).sort())
    expect(out.deleted).toContain(id)
    expect(await idsOf(scene)).not.toContain(id)
  })

  const onPodman = bed().engine.flavour === 'podman'

  ;(onPodman ? test.skip : test)(
    'an image of a stopped container needs force, and then frees nothing: overlay2 deletes it while the container holds its layers, the containerd store only untags it',
    async () => {
      const id = await scene.build('stopped:1', { from: BUSYBOX, bytes: MB })
      await scene.runContainer('stopped:1', { running: false })
      const refused = succeeded(await runAction({ refs: 'stopped:1' }))
      expect(refused.skipped).toEqual([expect.objectContaining({ ref: 'stopped:1', reason: 'in-use-stopped' })])
      const before = await storage(scene)
      const forced = succeeded(await runAction({ refs: 'stopped:1', force: 'true' }))
      expect(forced.untagged).toEqual(['stopped:1'])
      expect(forced.bytes).toBe(0)
      const after = await storage(scene)
      if (store === 'overlay2') {
        expect(forced.deleted).toEqual([id])
        expect(before.layers - after.layers).toBe(MB)
      } else {
        expect(forced.deleted).toEqual([])
        expect((await scene.images()).find(image => image.id === id)?.tags).toEqual([])
        expect(after.layers).toBe(before.layers)
      }
      expectReclaimed(0, before, after, forced.deleted.length, { containerKeepsLayers: true })
    }
  )

  ;(onPodman ? test : test.skip)(
    "on Podman, force never removes a stopped container's image: Podman would delete the container with it",
    async () => {
      const id = await scene.build('stopped:1', { from: BUSYBOX, bytes: MB })
      const container = await scene.runContainer('stopped:1', { running: false })
      const out = succeeded(await runAction({ refs: 'stopped:1', force: 'true' }))
      expect(out.skipped).toEqual([
        expect.objectContaining({
          ref: 'stopped:1',
          reason: 'in-use-stopped',
          message: expect.stringContaining('Podman')
        })
      ])
      expect(await idsOf(scene)).toContain(id)
      expect((await scene.containers()).map(c => c.id)).toContain(container)
    }
  )

  test('an image of a running container is neither deleted nor untagged, even with force (docker rmi -f untags it)', async () => {
    const id = await scene.build(['running:1', 'running:2'], { from: BUSYBOX, bytes: MB })
    await scene.runContainer('running:1', { running: true })
    const out = succeeded(await runAction({ refs: `running:1\n${id}`, force: 'true' }))
    expect(out.untagged).toEqual([])
    expect(out.deleted).toEqual([])
    expect(out.skipped.map(s => s.reason)).toEqual(['in-use', 'in-use'])
    expect(await tagsOf(scene)).toEqual(['running:1', 'running:2', BUSYBOX].sort())
  })

  // Podman ignores noprune: it always prunes untagged parents.
  test('untagged parents go with their child unless no-prune (on Podman, even with no-prune)', async () => {
    const child = await scene.build('layered:1', { bytes: MB, labels: { stage: 'final' } })
    const parent = (await scene.images()).find(image => image.id === child)?.parent as string
    expect(parent).toMatch(/^sha256:/)
    const kept = succeeded(await runAction({ refs: 'layered:1', 'no-prune': 'true' }))
    expect(kept.deleted).toEqual(store === 'podman' ? [child, parent] : [child])
    if (store === 'podman') expectLayerBytes(kept.bytes, MB)
    else expect(kept.bytes).toBe(0)
    expect((await idsOf(scene)).includes(parent)).toBe(store !== 'podman')
    await scene.wipe({ keepBusybox: true })
    const again = await scene.build('layered:1', { bytes: MB, labels: { stage: 'final' } })
    const before = await storage(scene)
    const pruned = succeeded(await runAction({ refs: 'layered:1' }))
    expect(pruned.deleted[0]).toBe(again)
    expect(pruned.deleted).toHaveLength(2)
    expectLayerBytes(pruned.bytes, MB)
    expectReclaimed(pruned.bytes, before, await storage(scene), pruned.deleted.length)
  })

  // Only overlay2 refuses to delete an image others are built on; the children keep its layers.
  test('an untagged parent named by ID is refused while it has children (overlay2); the other stores delete it and free nothing', async () => {
    const child = await scene.build('kid:1', { bytes: MB, labels: { x: 'y' } })
    const parent = (await scene.images()).find(image => image.id === child)?.parent as string
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: parent, force: 'true' }))
    if (store === 'overlay2') {
      expect(out.skipped).toEqual([expect.objectContaining({ id: parent, reason: 'has-children' })])
      expect(await idsOf(scene)).toContain(parent)
    } else {
      expect(out.deleted).toEqual([parent])
      expect(out.bytes).toBe(0)
      expect(await idsOf(scene)).toContain(child)
      expect(await idsOf(scene)).not.toContain(parent)
    }
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  // Docker keeps it, untagged (the containerd store answers Deleted all the same); Podman deletes it.
  test('the last tag of an image with children is only untagged (on Podman it is deleted, freeing nothing)', async () => {
    const base = await scene.build('parentbase:1', { bytes: MB })
    const kid = await scene.build('kid:2', { from: 'parentbase:1', bytes: MB })
    const before = await storage(scene)
    const out = succeeded(await runAction({ refs: 'parentbase:1' }))
    expect(out.untagged).toEqual(['parentbase:1'])
    expect(out.deleted).toEqual(store === 'podman' ? [base] : [])
    expect(out.bytes).toBe(0)
    expect((await idsOf(scene)).includes(base)).toBe(store !== 'podman')
    expect(await idsOf(scene)).toContain(kid)
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
  })

  test('an ambiguous short ID is refused, and a unique one is enough', async () => {
    let prefix = ''
    for (let n = 0; n < 20 && !prefix; n++) {
      await scene.build(`amb:${n}`, { bytes: 1000 })
      const firsts = (await scene.images()).map(image => image.id.slice(7, 8))
      prefix = firsts.find((c, i) => firsts.indexOf(c) !== i) ?? ''
    }
    expect(prefix).not.toBe('')
    const before = await idsOf(scene)
    const out = succeeded(await runAction({ refs: prefix }))
    expect(out.skipped).toEqual([expect.objectContaining({ ref: prefix, reason: 'ambiguous' })])
    expect(await idsOf(scene)).toEqual(before)
    const unique = (await scene.images()).find(image => image.tags.includes('amb:0'))?.id as string
    expect(succeeded(await runAction({ refs: unique.slice(7, 19) })).deleted).toContain(unique)
  })

  test('an unknown ref is a warning, or fails the step with fail-on-error after doing the rest', async () => {
    await scene.build('real:1', { bytes: MB })
    const warned = await runAction({ refs: 'ghost:1' })
    expect(succeeded(warned).skipped).toEqual([expect.objectContaining({ ref: 'ghost:1', reason: 'not-found' })])
    expect(warned.stdout).toContain('::warning::ghost:1')
    const failed = await runAction({ refs: 'ghost:1 real:1', 'fail-on-error': 'true' })
    expect(failed.code).not.toBe(0)
    expect(failed.stdout).toMatch(/::error::.*ghost:1/)
    expect(await tagsOf(scene)).toEqual([BUSYBOX])
  })

  test('patterns match name:tag as the reference filter does', async () => {
    await scene.build(['app:1', 'app:2'], { bytes: 1000 })
    await scene.build('org/cache:pr-12', { bytes: 1000 })
    await scene.build('org/cache:main', { bytes: 1000 })
    await scene.build('appendix:1', { bytes: 1000 })
    const out = succeeded(await runAction({ refs: 'app:*, */cache:pr-*' }))
    expect(out.untagged.sort()).toEqual(['app:1', 'app:2', 'org/cache:pr-12'])
    expect(await tagsOf(scene)).toEqual(['appendix:1', 'org/cache:main', BUSYBOX].sort())
  })

  test('running the same step twice is harmless: the second reclaims 0', async () => {
    await scene.build('twice:1', { bytes: MB })
    expectLayerBytes(succeeded(await runAction({ refs: 'twice:1' })).bytes, MB)
    const second = await runAction({ refs: 'twice:1' })
    expect(second.code).toBe(0)
    expect(succeeded(second).bytes).toBe(0)
  })
})
