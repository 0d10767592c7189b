import { describe, expect, test } from '@jest/globals'
import { applyCacheHolds, cacheHeldLayers, matchCacheRecords, unsharedBy } from '../../src/plan/cache-holds'
import type { Engine } from '../../src/engine/engine'
import { Ledger } from '../../src/plan/ledger'
import { cacheShares, readCacheHolds } from '../../src/run/cache-holds'
import type { CacheRecord, EngineState, HistoryEntry, Image } from '../../src/plan/model'

const T0 = Date.UTC(2026, 11, 3, 9, 0, 0)

function image(id: string, created: number): Image {
  return { id, parentId: '', tags: [`${id}:1`], digests: [], created, size: 0, labels: {} }
}

function record(id: string, size: number, createdAt: number, shared = true): CacheRecord {
  return { id, type: 'regular', description: `[1/1] COPY ${id} /`, inUse: false, shared, size, createdAt, parents: [] }
}

/** Layers' history entries by ChainID: their snapshots' sizes, each made by `createdBy`. */
function stepsOf(sizes: [string, number][], createdBy = 'COPY a.bin / # buildkit'): Map<string, HistoryEntry> {
  return new Map(sizes.map(([chainId, size]) => [chainId, { size, createdBy }]))
}

function state(layers: Record<string, [string, number][]>, created: Record<string, number>): EngineState {
  return {
    images: Object.keys(layers).map(id => image(id, created[id])),
    containers: [],
    layers: new Map(
      Object.entries(layers).map(([id, chain]) => [id, chain.map(([chainId, size]) => ({ chainId, size }))])
    ),
    createdAt: new Map(Object.entries(created))
  }
}

describe('cacheHeldLayers: the layers a shared build cache record holds too', () => {
  test('a shared record holds the layer of its size; an unshared one holds none', () => {
    const s = state(
      {
        a: [
          ['l1', 100],
          ['l2', 200]
        ],
        b: [['l3', 300]]
      },
      { a: T0, b: T0 }
    )
    expect(cacheHeldLayers([record('r1', 200, T0), record('r2', 300, T0, false)], s)).toEqual(new Set(['l2']))
  })

  test('among layers of one size, the one of the image made closest to the record', () => {
    const s = state({ old: [['lo', 100]], fresh: [['lf', 100]] }, { old: T0 - 3_600_000, fresh: T0 + 2_000 })
    expect(cacheHeldLayers([record('r', 100, T0)], s)).toEqual(new Set(['lf']))
  })

  test('a base layer in an app image too was made with the oldest image that has it', () => {
    // An app BuildKit built FROM a base a minute later, both layers of one size; the list names the app first.
    const s = state(
      {
        app: [
          ['base', 100],
          ['own', 100]
        ],
        base: [['base', 100]]
      },
      { app: T0 + 60_000, base: T0 }
    )
    const holds = matchCacheRecords([record('rApp', 100, T0 + 60_500), record('rBase', 100, T0 + 500)], s)
    expect(holds.map(hold => [hold.recordId, hold.chainId])).toEqual([
      ['rApp', 'own'],
      ['rBase', 'base']
    ])
  })

  test('records of no size, or of a size no layer has, hold nothing', () => {
    const s = state({ a: [['l1', 100]] }, { a: T0 })
    expect(cacheHeldLayers([record('r0', 0, T0), record('r9', 999, T0)], s).size).toBe(0)
  })

  test('the ledger counts the cache as one more holder: removing the image frees only the rest', () => {
    const s = state(
      {
        a: [
          ['l1', 100],
          ['l2', 200]
        ]
      },
      { a: T0 }
    )
    s.cacheHeld = cacheHeldLayers([record('r', 200, T0)], s)
    const ledger = new Ledger(s)
    expect(ledger.bytes(ledger.release('a'))).toBe(100)
    expect(ledger.held()).toBe(200)
  })
})

/**
 * The containerd store, as measured on docker26-containerd and docker28-containerd: a 1 MB COPY
 * built by BuildKit gives an image of Size 2,009,053 (blob 1,000,499, snapshot 1,007,616, manifest
 * and config) and a shared record of 2,008,115 (the same blob, a snapshot of its own).
 */
describe("the containerd store: a shared record holds the layer's blob, not the image's snapshot", () => {
  const snapshots = stepsOf([
    ['l1', 1_007_616],
    ['l2', 2_007_040]
  ])

  test('a record matches the layer of its size give or take the metadata, and holds its size less the snapshot', () => {
    const s = state({ app: [['l1', 2_009_053]], two: [['l2', 4_008_801]] }, { app: T0, two: T0 + 5_000 })
    const holds = matchCacheRecords([record('r1', 2_008_115, T0), record('r2', 4_007_863, T0 + 5_000)], s, snapshots)
    expect(holds).toEqual([
      { recordId: 'r1', chainId: 'l1', bytes: 1_000_499 },
      { recordId: 'r2', chainId: 'l2', bytes: 2_000_823 }
    ])
  })

  test("without the layer's snapshot, or far from its size, a record holds nothing", () => {
    const s = state({ app: [['l1', 2_009_053]], other: [['l3', 2_009_053]] }, { app: T0, other: T0 })
    expect(matchCacheRecords([record('r', 2_008_115, T0)], s, stepsOf([['l3', 1_007_616]]))).toEqual([
      { recordId: 'r', chainId: 'l3', bytes: 1_000_499 }
    ])
    expect(matchCacheRecords([record('r', 3_008_115, T0)], s, snapshots)).toEqual([])
  })

  test('two records of one size hold two layers, each that of the image made closest to it', () => {
    const s = state({ one: [['l1', 2_009_053]], two: [['l3', 2_009_060]] }, { one: T0, two: T0 + 60_000 })
    const both = new Map([...snapshots, ...stepsOf([['l3', 1_007_616]])])
    const holds = matchCacheRecords([record('r2', 2_008_120, T0 + 60_500), record('r1', 2_008_115, T0 + 500)], s, both)
    expect(holds.map(hold => [hold.recordId, hold.chainId])).toEqual([
      ['r2', 'l3'],
      ['r1', 'l1']
    ])
  })

  test("the blob becomes a layer the cache holds: removing the image frees the rest, then the blob is the cache's", () => {
    const s = state(
      {
        app: [['l1', 2_009_053]],
        child: [
          ['l1', 2_009_053],
          ['l9', 500]
        ]
      },
      { app: T0, child: T0 }
    )
    const { layers, cacheHeld } = applyCacheHolds(s.layers, [{ recordId: 'r1', chainId: 'l1', bytes: 1_000_499 }])
    expect(layers.get('child')).toEqual([
      { chainId: 'l1', size: 1_008_554 },
      { chainId: 'l1 blob', size: 1_000_499 },
      { chainId: 'l9', size: 500 }
    ])
    const ledger = new Ledger({ ...s, layers, cacheHeld })
    expect(ledger.bytes(ledger.release('child'))).toBe(500)
    expect(ledger.bytes(ledger.release('app'))).toBe(1_008_554)
    expect(ledger.held()).toBe(1_000_499)
  })

  test('an unshared layer record holds the blob of a layer BuildKit made that no shared record holds', () => {
    // A disk usage read during the build leaves BuildKit listing the layer's record unshared (docker28-containerd).
    const s = state({ app: [['l1', 2_009_053]] }, { app: T0 })
    expect(matchCacheRecords([record('r', 2_008_115, T0, false)], s, snapshots)).toEqual([
      { recordId: 'r', chainId: 'l1', bytes: 1_000_499 }
    ])
  })

  test("an unshared record takes no legacy build's layer, none a shared record holds, and none without the history", () => {
    const s = state({ app: [['l1', 2_009_053]], legacy: [['l3', 2_009_053]] }, { app: T0, legacy: T0 })
    const legacy = stepsOf([['l3', 1_007_616]], '/bin/sh -c #(nop) COPY file:0f3c in / ')
    expect(matchCacheRecords([record('u', 2_008_115, T0, false)], s, legacy)).toEqual([])
    const both = new Map([...snapshots, ...legacy])
    expect(
      matchCacheRecords([record('u', 2_008_115, T0, false), record('r', 2_008_115, T0)], s, both).map(hold => [
        hold.recordId,
        hold.chainId
      ])
    ).toEqual([['r', 'l1']])
    expect(matchCacheRecords([record('u', 2_009_053, T0, false)], s)).toEqual([])
  })

  test('a hold of the whole layer (overlay2) holds the layer itself', () => {
    const s = state({ a: [['l1', 100]] }, { a: T0 })
    const { layers, cacheHeld } = applyCacheHolds(s.layers, [{ recordId: 'r', chainId: 'l1', bytes: 100 }])
    expect(layers).toBe(s.layers)
    expect(cacheHeld).toEqual(new Set(['l1']))
  })
})

describe('unsharedBy: the listing as the real run will see it, once the planned images are gone', () => {
  const s = state({ a: [['l1', 100]], b: [['l2', 200]], c: [['l2', 200]] }, { a: T0, b: T0, c: T0 })
  const holds = [
    { recordId: 'ra', chainId: 'l1', bytes: 100 },
    { recordId: 'rb', chainId: 'l2', bytes: 200 }
  ]
  const records = [record('ra', 100, T0), record('rb', 200, T0), record('rx', 300, T0)]

  test('a record whose layer only deleted images held is no longer shared; one another image holds stays shared', () => {
    const after = unsharedBy(records, holds, s, new Set(['a', 'b']))
    expect(after.map(r => [r.id, r.shared])).toEqual([
      ['ra', false],
      ['rb', true],
      ['rx', true]
    ])
  })

  test('a container of a deleted image keeps its record shared', () => {
    const withContainer = { ...s, containers: [{ id: 'k', imageId: 'a', running: false, created: T0 }] }
    expect(unsharedBy(records, holds, withContainer, new Set(['a']))[0].shared).toBe(true)
  })

  test('nothing deleted: the listing as it is', () => {
    expect(unsharedBy(records, holds, s, new Set())).toBe(records)
  })

  test('cacheShares: a record whose image the run deleted holds its data alone again, whatever the listing says', async () => {
    const prior = { state: { ...s, cacheHolds: holds }, deleted: ['a'] }
    const engine = { store: 'containerd' } as unknown as Engine
    const real = await cacheShares(engine, records, false, prior)
    expect(real.listing).toBe(records)
    expect(real.held).toEqual(new Map([['rb', 200]]))
    const dry = await cacheShares(engine, records, true, prior)
    expect(dry.listing.map(r => [r.id, r.shared])).toEqual([
      ['ra', false],
      ['rb', true],
      ['rx', true]
    ])
    expect(dry.held).toEqual(new Map([['rb', 200]]))
  })
})

describe('readCacheHolds: the history is read only where it can tell a blob from a snapshot', () => {
  const s = state({ app: [['l1', 2_009_053]], big: [['l7', 9_000_000]] }, { app: T0, big: T0 })

  function engineOf(store: Engine['store']): { engine: Engine; asked: string[][] } {
    const asked: string[][] = []
    const layerHistory = async (stacks: { id: string; chain: string[] }[]): Promise<Map<string, HistoryEntry>> => {
      asked.push(stacks.map(stack => stack.id))
      return stepsOf([
        ['l1', 1_007_616],
        ['l7', 4_500_000]
      ])
    }
    return { engine: { store, layerHistory } as unknown as Engine, asked }
  }

  test('the containerd store: one history, of the image with a layer near a shared record', async () => {
    const { engine, asked } = engineOf('containerd')
    const holds = await readCacheHolds(engine, [record('r', 2_008_115, T0), record('x', 50, T0, false)], s)
    expect(asked).toEqual([['app']])
    expect(holds).toEqual([{ recordId: 'r', chainId: 'l1', bytes: 1_000_499 }])
  })

  test('the containerd store: an unshared layer record near a layer has its image read too', async () => {
    const { engine, asked } = engineOf('containerd')
    expect(await readCacheHolds(engine, [record('u', 2_008_115, T0, false)], s)).toEqual([
      { recordId: 'u', chainId: 'l1', bytes: 1_000_499 }
    ])
    expect(asked).toEqual([['app']])
  })

  test('overlay2: no history, a record holds the layer of its size', async () => {
    const { engine, asked } = engineOf('graphdriver')
    expect(await readCacheHolds(engine, [record('r', 9_000_000, T0)], s)).toEqual([
      { recordId: 'r', chainId: 'l7', bytes: 9_000_000 }
    ])
    expect(asked).toEqual([])
  })
})
