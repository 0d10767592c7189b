import { describe, expect, test } from '@jest/globals'
import { cacheHeldLayers } from '../../src/plan/cache-holds'
import { Ledger } from '../../src/plan/ledger'
import type { CacheRecord, EngineState, Image } from '../../src/plan/model'

const T0 = Date.UTC(2026, 11, 3, 9, 0, 0)

function image(id: string, created: number): Image {
  return { id, parentId: '', tags: [`${id}:1`], digests: [], created, size: 0, labels: {} }
}

function record(id: string, size: number, createdAt: number, shared = true): CacheRecord {
  return { id, type: 'regular', description: `[1/1] COPY ${id} /`, inUse: false, shared, size, createdAt, parents: [] }
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
