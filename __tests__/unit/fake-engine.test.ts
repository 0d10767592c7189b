import { describe, expect, test } from '@jest/globals'
import { EngineError } from '../../src/engine/engine'
import type { ImageStore } from '../../src/plan/model'
import { FakeEngine } from '../fakes/engine'

/**
 * The in-memory engine the entry points are tested on answers DELETE /images as testbed/ENGINES.md
 * records each store answering ("what Deleted lists"), and what it deletes leaves its lists.
 */
function baseWithChild(store: ImageStore): { engine: FakeEngine; base: string; child: string } {
  const engine = new FakeEngine(store)
  const base = engine.build('base:1', { bytes: 1000 })
  const child = engine.build('child:1', { from: 'base:1', bytes: 500 })
  return { engine, base, child }
}

async function layersOf(engine: FakeEngine, id: string): Promise<string[]> {
  const details = await engine.details(await engine.images())
  return (details.layers.get(id) ?? []).map(layer => layer.chainId)
}

describe('the fake engine answers DELETE as each store does', () => {
  test('overlay2, last tag of a one-layer image: Untagged, Deleted image, Deleted each layer that left', async () => {
    const engine = new FakeEngine('graphdriver')
    const id = engine.build('app:1')
    const [layer] = await layersOf(engine, id)
    expect(await engine.remove('app:1', false)).toEqual([{ untagged: 'app:1' }, { deleted: id }, { deleted: layer }])
    expect(await engine.images()).toEqual([])
  })

  test('overlay2, a base with children by ID: 409, and nothing changes', async () => {
    const { engine, base } = baseWithChild('graphdriver')
    const refused = engine.remove(base, true)
    await expect(refused).rejects.toThrow(EngineError)
    await expect(refused).rejects.toMatchObject({
      statusCode: 409,
      message: expect.stringContaining('dependent child images')
    })
    expect(engine.tagsNow()).toEqual(['base:1', 'child:1'])
  })

  test('containerd, last tag of a base with children: Untagged and Deleted, yet the image stays, untagged', async () => {
    const { engine, base } = baseWithChild('containerd')
    expect(await engine.remove('base:1', false)).toEqual([{ untagged: 'base:1' }, { deleted: base }])
    expect(await engine.exists(base)).toBe(true)
    expect(engine.tagsNow()).toEqual(['child:1'])
  })

  test('podman, last tag of a base with children: Untagged only, yet the image is gone', async () => {
    const { engine, base } = baseWithChild('podman')
    expect(await engine.remove('base:1', false)).toEqual([{ untagged: 'base:1' }])
    expect(await engine.exists(base)).toBe(false)
  })

  test('podman, an image by ID: the images it deleted, its untagged parent too, before the tags', async () => {
    const engine = new FakeEngine('podman')
    const parent = engine.dangling('parent')
    const child = engine.build('child:1', { from: parent })
    expect(await engine.remove(child, false)).toEqual([
      { deleted: child },
      { deleted: parent },
      { untagged: 'child:1' }
    ])
    expect(engine.tagsNow()).toEqual(['parent:tmp'])
    expect(await engine.exists(parent)).toBe(false)
  })

  test('a stopped container holds its image unless forced, and its layers even then', async () => {
    const engine = new FakeEngine('graphdriver')
    const id = engine.build('app:1', { bytes: 1000 })
    engine.run('app:1', { running: false })
    await expect(engine.remove('app:1', false)).rejects.toMatchObject({ statusCode: 409 })
    await engine.remove('app:1', true)
    expect(await engine.exists(id)).toBe(false)
    expect(engine.storedBytes()).toBe(1000)
    expect((await engine.usage())?.layersSize).toBe(0)
  })
})
