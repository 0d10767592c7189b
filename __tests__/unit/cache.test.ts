import { describe, expect, test } from '@jest/globals'
import { cacheRules, eligible, freedBytes, predictPrune, type CacheRules } from '../../src/plan/cache'
import type { CacheRecord } from '../../src/plan/model'

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const HOUR = 3_600_000

function record(id: string, fields: Partial<CacheRecord> = {}): CacheRecord {
  return {
    id,
    type: 'regular',
    description: '',
    inUse: false,
    shared: false,
    size: 1000,
    createdAt: NOW - 10 * HOUR,
    lastUsedAt: NOW - 5 * HOUR,
    parents: [],
    ...fields
  }
}

const dangling: CacheRules = { mode: 'dangling' }
const all: CacheRules = { mode: 'all' }

describe('eligible: the rules of POST /build/prune for one record', () => {
  test.each<[string, Partial<CacheRecord>, CacheRules, boolean]>([
    ['an unused, unshared regular record', {}, dangling, true],
    ['a record a build uses', { inUse: true }, all, false],
    ['a record a build uses, dangling', { inUse: true }, dangling, false],
    ['a shared record without all', { shared: true }, dangling, false],
    ['a shared record with all', { shared: true }, all, true],
    ['an internal record without all', { type: 'internal' }, dangling, false],
    ['a frontend record without all', { type: 'frontend' }, dangling, false],
    ['a frontend record with all', { type: 'frontend' }, all, true],
    ['a build context without all', { type: 'source.local' }, dangling, true],
    ['a cache mount without all', { type: 'exec.cachemount' }, dangling, true],
    ['used before the cut-off', { lastUsedAt: NOW - 5 * HOUR }, { mode: 'all', cutoff: NOW - 2 * HOUR }, true],
    ['used at the cut-off', { lastUsedAt: NOW - 2 * HOUR }, { mode: 'all', cutoff: NOW - 2 * HOUR }, true],
    ['used after the cut-off', { lastUsedAt: NOW - HOUR }, { mode: 'all', cutoff: NOW - 2 * HOUR }, false],
    ['never used since made, whatever the cut-off', { lastUsedAt: undefined }, { mode: 'all', cutoff: NOW - 1 }, true]
  ])('%s: %j under %j goes: %s', (_, fields, rules, goes) => {
    expect(eligible(record('r', fields), rules)).toBe(goes)
  })
})

describe('cacheRules: keep-duration and until judge a record by its last use', () => {
  test.each<[string, number | undefined, number[], number | undefined]>([
    ['neither', undefined, [], undefined],
    ['keep-duration 2h', 2 * HOUR, [], NOW - 2 * HOUR],
    ['until, one value', undefined, [NOW - 3 * HOUR], NOW - 3 * HOUR],
    [
      'until, two values: either lets a record go, so the later one',
      undefined,
      [NOW - 3 * HOUR, NOW - HOUR],
      NOW - HOUR
    ],
    ['both: what either keeps stays', 2 * HOUR, [NOW - HOUR], NOW - 2 * HOUR],
    ['both, the other way round', HOUR, [NOW - 3 * HOUR], NOW - 3 * HOUR]
  ])('%s', (_, keepDuration, until, cutoff) => {
    expect(cacheRules('all', { keepDuration, filters: { until } }, NOW)).toEqual({ mode: 'all', cutoff })
  })
})

describe('predictPrune: what one POST /build/prune removes', () => {
  const base = record('base', { shared: true })
  const copy = record('copy', { parents: ['base'] })
  const context = record('context', { type: 'source.local' })

  test.each<[string, CacheRecord[], CacheRules, string[]]>([
    ['nothing in the cache', [], all, []],
    ['all: children first, then the parent they held', [base, copy, context], all, ['copy', 'context', 'base']],
    ['dangling: a shared parent stays, its unshared child goes', [base, copy, context], dangling, ['copy', 'context']],
    [
      'a parent stays while a child a build uses holds it',
      [record('p'), record('c', { parents: ['p'], inUse: true })],
      all,
      []
    ],
    [
      'a parent stays while a child too recent holds it',
      [record('p', { lastUsedAt: NOW - 9 * HOUR }), record('c', { parents: ['p'], lastUsedAt: NOW })],
      { mode: 'all', cutoff: NOW - HOUR },
      []
    ],
    [
      'a chain of three goes leaf-first',
      [record('a'), record('b', { parents: ['a'] }), record('c', { parents: ['b'] })],
      all,
      ['c', 'b', 'a']
    ],
    [
      'a record with two parents frees both',
      [record('a'), record('b'), record('m', { parents: ['a', 'b'] })],
      all,
      ['m', 'a', 'b']
    ]
  ])('%s', (_, records, rules, removed) => {
    expect(predictPrune(records, rules).map(r => r.id)).toEqual(removed)
  })

  test('among: only the candidates named, a parent outside them stays', () => {
    const records = [record('old'), record('new', { parents: ['old'] }), record('other')]
    expect(predictPrune(records, all, new Set(['new'])).map(r => r.id)).toEqual(['new'])
  })
})

describe('freedBytes: the sizes of removed records no image shares', () => {
  const listing = [record('a', { size: 100 }), record('b', { size: 20, shared: true }), record('c', { size: 3 })]

  test.each<[string, string[], { bytes: number; held: number }]>([
    ['none removed', [], { bytes: 0, held: 0 }],
    ['unshared records count their size', ['a', 'c'], { bytes: 103, held: 0 }],
    ['a shared record counts 0: an image keeps its data', ['a', 'b'], { bytes: 100, held: 1 }],
    ['a record the listing does not know counts 0', ['a', 'ghost'], { bytes: 100, held: 0 }]
  ])('%s', (_, removed, expected) => {
    expect(freedBytes(listing, removed)).toEqual(expected)
  })
})

describe('freedBytes with what images hold of each shared record', () => {
  // The containerd store: a record of blob 1,000,499 and snapshot 1,007,616 (docker26-containerd, 1 MB COPY).
  const listing = [record('shared', { size: 2_008_115, shared: true }), record('context', { size: 1_007_616 })]

  test('a shared record counts what the image does not hold of it: its own snapshot', () => {
    const held = new Map([['shared', 1_000_499]])
    expect(freedBytes(listing, ['shared', 'context'], held)).toEqual({ bytes: 1_007_616 + 1_007_616, held: 1 })
  })

  test('a shared record the image holds whole (overlay2) or that no hold names counts 0', () => {
    expect(freedBytes(listing, ['shared'], new Map([['shared', 2_008_115]]))).toEqual({ bytes: 0, held: 1 })
    expect(freedBytes(listing, ['shared'], new Map())).toEqual({ bytes: 0, held: 1 })
  })

  test('an unshared record counts its whole size, unless an image holds some of it all the same', () => {
    expect(freedBytes(listing, ['context'], new Map([['shared', 1_000_499]]))).toEqual({ bytes: 1_007_616, held: 0 })
    // BuildKit lists a layer's record unshared after a disk usage read during its build (cache-holds.ts).
    const misread = [record('layer', { size: 2_008_115 })]
    expect(freedBytes(misread, ['layer'], new Map([['layer', 1_000_499]]))).toEqual({ bytes: 1_007_616, held: 1 })
  })
})
