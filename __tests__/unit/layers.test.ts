import { createHash } from 'node:crypto'
import { jest } from '@jest/globals'
import { chainIds, sizeLayers, unsharedLayers, type Stack } from '../../src/engine/layers'
import type { HistoryEntry } from '../../src/plan/model'
import type { Image, Share } from '../../src/plan/model'

const diff = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`
const sha256 = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`

describe('chainIds (OCI image-spec ChainID)', () => {
  test('no layers, no chain', () => {
    expect(chainIds([])).toEqual([])
  })

  test('the first ChainID is the first DiffID', () => {
    expect(chainIds([diff(1)])).toEqual([diff(1)])
  })

  test('each next ChainID is sha256 of "<previous ChainID> <DiffID>"', () => {
    const [a, b, c] = [diff(1), diff(2), diff(3)]
    const ab = sha256(`${a} ${b}`)
    const abc = sha256(`${ab} ${c}`)
    expect(chainIds([a, b, c])).toEqual([a, ab, abc])
  })

  test('a known vector (printf "<L0> <L1>" | sha256sum)', () => {
    expect(chainIds([diff(1), diff(2)])[1]).toBe(
      'sha256:e0213565073dd272477933ef550455db21856966e444074f1492aef0939305ac'
    )
  })

  test('a chain depends on everything below: the same DiffID over different bases gets different ChainIDs', () => {
    const over1 = chainIds([diff(1), diff(9)])
    const over2 = chainIds([diff(2), diff(9)])
    expect(over1[1]).not.toBe(over2[1])
  })

  test('two images with the same bottom layers share those ChainIDs', () => {
    const base = chainIds([diff(1), diff(2)])
    const child = chainIds([diff(1), diff(2), diff(3)])
    expect(child.slice(0, 2)).toEqual(base)
  })

  test('an identical DiffID repeated in one image gets distinct ChainIDs', () => {
    const chain = chainIds([diff(1), diff(5), diff(5)])
    expect(new Set(chain).size).toBe(3)
  })
})

type History = (id: string) => Promise<HistoryEntry[]>

function historyOf(entries: Record<string, HistoryEntry[]>) {
  return jest.fn<History>(async (id: string) => {
    const found = entries[id]
    if (!found) throw new Error(`no history for ${id}`)
    return found
  })
}

const sizes = (map: Map<string, { chainId: string; size: number }[]>, id: string): number[] =>
  (map.get(id) ?? []).map(layer => layer.size)

describe('sizeLayers', () => {
  test('a one-layer image: its layer is its size, no history read', async () => {
    const history = historyOf({})
    const result = await sizeLayers([{ id: 'base', size: 100, chain: ['c0'] }], history)
    expect(result.get('base')).toEqual([{ chainId: 'c0', size: 100 }])
    expect(history).not.toHaveBeenCalled()
  })

  test('images adding one layer each over known ones are deduced from their sizes, in any input order', async () => {
    const history = historyOf({})
    const stacks: Stack[] = [
      { id: 'grandchild', size: 175, chain: ['c0', 'c1', 'c2'] },
      { id: 'child', size: 150, chain: ['c0', 'c1'] },
      { id: 'base', size: 100, chain: ['c0'] },
      { id: 'sibling', size: 130, chain: ['c0', 's1'] }
    ]
    const result = await sizeLayers(stacks, history)
    expect(sizes(result, 'base')).toEqual([100])
    expect(sizes(result, 'child')).toEqual([100, 50])
    expect(sizes(result, 'grandchild')).toEqual([100, 50, 25])
    expect(sizes(result, 'sibling')).toEqual([100, 30])
    expect(history).not.toHaveBeenCalled()
  })

  test('a zero-size layer is deduced as 0', async () => {
    const history = historyOf({})
    const result = await sizeLayers(
      [
        { id: 'base', size: 100, chain: ['c0'] },
        { id: 'child', size: 100, chain: ['c0', 'c1'] }
      ],
      history
    )
    expect(sizes(result, 'child')).toEqual([100, 0])
    expect(history).not.toHaveBeenCalled()
  })

  test('an image adding several unknown layers is sized from its history, skipping #(nop) steps', async () => {
    const history = historyOf({
      app: [
        { size: 100, createdBy: '/bin/sh -c #(nop) ADD file:abc in / ' },
        { size: 0, createdBy: '/bin/sh -c #(nop)  CMD ["sh"]' },
        { size: 150, createdBy: '/bin/sh -c apk add curl' },
        { size: 0, createdBy: '/bin/sh -c #(nop)  ENV A=1' },
        { size: 50, createdBy: '/bin/sh -c #(nop) COPY file:def in /app ' },
        { size: 0, createdBy: '/bin/sh -c #(nop)  LABEL x=y' }
      ]
    })
    const result = await sizeLayers([{ id: 'app', size: 300, chain: ['c0', 'c1', 'c2'] }], history)
    expect(result.get('app')).toEqual([
      { chainId: 'c0', size: 100 },
      { chainId: 'c1', size: 150 },
      { chainId: 'c2', size: 50 }
    ])
    expect(history).toHaveBeenCalledTimes(1)
    expect(history).toHaveBeenCalledWith('app')
  })

  test('a sizeless step that made a layer (not #(nop)) keeps its place', async () => {
    const history = historyOf({
      app: [
        { size: 100, createdBy: '/bin/sh -c #(nop) ADD file:abc in / ' },
        { size: 0, createdBy: '/bin/sh -c #(nop)  CMD ["sh"]' },
        { size: 0, createdBy: '/bin/sh -c mkdir -p /x' },
        { size: 40, createdBy: '/bin/sh -c apk add curl' }
      ]
    })
    const result = await sizeLayers([{ id: 'app', size: 140, chain: ['c0', 'c1', 'c2'] }], history)
    expect(sizes(result, 'app')).toEqual([100, 0, 40])
  })

  test("history says how the image's own bytes split, its size how many there are (containerd: snapshots in history, blob and snapshot in Size)", async () => {
    const history = historyOf({
      app: [
        { size: 250, createdBy: '/bin/sh -c #(nop) COPY file:base in / ' },
        { size: 1000, createdBy: '/bin/sh -c #(nop) COPY file:a in /a ' },
        { size: 0, createdBy: '/bin/sh -c #(nop)  CMD ["sh"]' },
        { size: 3000, createdBy: '/bin/sh -c #(nop) COPY file:b in /b ' }
      ]
    })
    const stacks = [
      { id: 'base', size: 500, chain: ['c0'] },
      { id: 'app', size: 8500, chain: ['c0', 'c1', 'c2'] }
    ]
    const result = await sizeLayers(stacks, history)
    expect(sizes(result, 'app')).toEqual([500, 2000, 6000])
  })

  test('history is read only for the images that still need it after the others are deduced', async () => {
    const history = historyOf({
      a: [
        { size: 100, createdBy: 'ADD rootfs' },
        { size: 60, createdBy: 'RUN build' },
        { size: 40, createdBy: 'COPY app' }
      ]
    })
    const stacks: Stack[] = [
      { id: 'a', size: 200, chain: ['c0', 'c1', 'c2'] },
      // Shares c0 and c1 with a; once a is sized from its history, b's only new layer follows from its size.
      { id: 'b', size: 185, chain: ['c0', 'c1', 'b2'] }
    ]
    const result = await sizeLayers(stacks, history)
    expect(sizes(result, 'a')).toEqual([100, 60, 40])
    expect(sizes(result, 'b')).toEqual([100, 60, 25])
    expect(history).toHaveBeenCalledTimes(1)
    expect(history).toHaveBeenCalledWith('a')
  })

  test('an image whose layers become known through a shorter one is not asked for history', async () => {
    const history = historyOf({})
    const stacks: Stack[] = [
      { id: 'long', size: 320, chain: ['c0', 'c1', 'c2'] },
      { id: 'mid', size: 250, chain: ['c0', 'c1'] },
      { id: 'base', size: 100, chain: ['c0'] }
    ]
    const result = await sizeLayers(stacks, history)
    expect(sizes(result, 'long')).toEqual([100, 150, 70])
    expect(history).not.toHaveBeenCalled()
  })

  test('when history cannot tell sizeless layers apart, the image total still adds up', async () => {
    const history = historyOf({
      app: [
        { size: 100, createdBy: 'ADD rootfs' },
        { size: 0, createdBy: 'ENV A=1' },
        { size: 0, createdBy: 'RUN true' },
        { size: 50, createdBy: 'COPY app' }
      ]
    })
    const result = await sizeLayers([{ id: 'app', size: 150, chain: ['c0', 'c1', 'c2'] }], history)
    expect(sizes(result, 'app').reduce((a, b) => a + b, 0)).toBe(150)
    expect(history).toHaveBeenCalledTimes(1)
  })

  test('every stack is in the result, layers bottom first, shared layers with one size', async () => {
    const history = historyOf({})
    const result = await sizeLayers(
      [
        { id: 'x', size: 110, chain: ['c0', 'x1'] },
        { id: 'y', size: 120, chain: ['c0', 'y1'] },
        { id: 'base', size: 100, chain: ['c0'] }
      ],
      history
    )
    expect([...result.keys()].sort()).toEqual(['base', 'x', 'y'])
    expect(result.get('x')?.map(l => l.chainId)).toEqual(['c0', 'x1'])
    expect(result.get('x')?.[0].size).toBe(result.get('y')?.[0].size)
    expect(sizes(result, 'y')).toEqual([100, 20])
  })
})

describe('unsharedLayers', () => {
  const image = (n: number, size: number, parent = 0): Image => ({
    id: diff(n),
    parentId: parent ? diff(parent) : '',
    tags: [],
    digests: [],
    created: 0,
    size,
    labels: {}
  })
  const shares = (...entries: [number, number, number][]): Map<string, Share> =>
    new Map(entries.map(([n, size, shared]) => [diff(n), { size, shared }]))

  test('an image that shares nothing is sized whole, as one layer of its own', () => {
    const layers = unsharedLayers([image(1, 500)], shares([1, 500, 0]))
    expect(layers).toEqual(new Map([[diff(1), [{ chainId: `${diff(1)} layers`, size: 500 }]]]))
  })

  test('images that share layers, that the engine did not count, or that it counted at another size are left to the inspect', () => {
    const images = [image(1, 500), image(2, 600), image(3, 700), image(4, 800)]
    const layers = unsharedLayers(images, shares([1, 500, 0], [2, 600, 100], [4, 801, 0]))
    expect([...layers.keys()]).toEqual([diff(1)])
  })

  test('a parent and its child are left to the inspect, whatever the count says: it leaves out images with children', () => {
    const images = [image(1, 500), image(2, 600, 1), image(3, 50)]
    const layers = unsharedLayers(images, shares([1, 500, 0], [2, 600, 0], [3, 50, 0]))
    expect([...layers.keys()]).toEqual([diff(3)])
  })
})
