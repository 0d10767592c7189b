import { describe, expect, test } from '@jest/globals'
import { NO_FILTERS } from '../../src/plan/filters'
import { plan, type Plan, type Selection } from '../../src/plan/plan'
import { CacheBudget, cacheBudget, recordFirst, type LayerHolds } from '../../src/plan/cache-budget'
import { applyCacheHolds } from '../../src/plan/cache-holds'
import { parseRefSpec } from '../../src/plan/reference'
import type { CacheRecord, EngineState, Image } from '../../src/plan/model'

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0)
const DAY = 86_400_000
const MB = 1_000_000

const id = (c: string): string => `sha256:${c.repeat(64)}`

function record(recordId: string, daysAgo: number, fields: Partial<CacheRecord> = {}): CacheRecord {
  return {
    id: recordId,
    type: 'regular',
    description: '',
    inUse: false,
    shared: false,
    size: MB,
    createdAt: NOW - (daysAgo + 1) * DAY,
    lastUsedAt: NOW - daysAgo * DAY,
    parents: [],
    ...fields
  }
}

/** Unrelated images, each one layer: [letter, days since made, bytes]. */
function state(images: [string, number, number][], buildCache?: CacheRecord[], extra: Partial<EngineState> = {}) {
  const list: Image[] = images.map(([c, age, size]) => ({
    id: id(c),
    parentId: '',
    tags: [`${c}:1`],
    digests: [],
    created: NOW - age * DAY,
    size,
    labels: {}
  }))
  const layers = new Map(images.map(([c, , size]) => [id(c), [{ chainId: `L${c}`, size }]]))
  return { images: list, containers: [], layers, ...(buildCache ? { buildCache } : {}), ...extra }
}

function selection(extra: Partial<Selection>): Selection {
  return { refs: [], keep: [], filters: NO_FILTERS, prune: 'none', force: false, noPrune: false, ...extra }
}

const deleted = (p: Plan): string[] => p.steps.filter(s => s.deleted).map(s => s.imageId)
const evicted = (p: Plan): string[] => (p.cache ?? []).map(e => e.id)

/** Holds as a ledger would keep them when no image holds the layers: every release frees the layer. */
const free: LayerHolds = { heldAlone: () => 0, releaseHold: () => 0 }

describe('recordFirst: a record against the image at the head of the queue', () => {
  test.each<[string, { used: number; bytes: number }, { used: number; bytes: number } | undefined, boolean]>([
    ['no image left', { used: 5, bytes: 1 }, undefined, true],
    ['the record was used first', { used: 1, bytes: 1 }, { used: 2, bytes: 1 }, true],
    ['the image was used first', { used: 2, bytes: 1 }, { used: 1, bytes: 1 }, false],
    ['used at once: the larger first', { used: 1, bytes: 2 }, { used: 1, bytes: 1 }, true],
    ['used at once, the same size: the image first', { used: 1, bytes: 1 }, { used: 1, bytes: 1 }, false],
    [
      'an older record that frees nothing waits for an image that frees',
      { used: 1, bytes: 0 },
      { used: 2, bytes: 1 },
      false
    ],
    [
      'an older image that frees nothing waits for a record that frees',
      { used: 2, bytes: 1 },
      { used: 1, bytes: 0 },
      true
    ]
  ])('%s', (_, rec, image, first) => {
    expect(recordFirst(rec, image)).toBe(first)
  })
})

describe('CacheBudget', () => {
  test('children go before their parents, whatever their last use', () => {
    const budget = new CacheBudget(
      [record('parent', 10), record('child', 1, { parents: ['parent'] })],
      { mode: 'all' },
      undefined,
      new Map(),
      free
    )
    expect(budget.next()?.id).toBe('child')
    budget.evict('child')
    expect(budget.next()?.id).toBe('parent')
    budget.evict('parent')
    expect(budget.next()).toBeUndefined()
    expect(budget.evictions().map(e => e.id)).toEqual(['child', 'parent'])
  })

  test('a record a running build uses, or one a child that stays is built on, never goes', () => {
    const records = [
      record('busy', 9, { inUse: true }),
      record('base', 8),
      record('kid', 1, { inUse: true, parents: ['base'] })
    ]
    const budget = new CacheBudget(records, { mode: 'all' }, undefined, new Map(), free)
    expect(budget.next()).toBeUndefined()
  })

  test('the measure is the records no image shares; dangling leaves shared and internal records out', () => {
    const records = [
      record('own', 9),
      record('img', 8, { shared: true, size: 5 * MB }),
      record('int', 7, { type: 'internal' })
    ]
    const budget = new CacheBudget(records, { mode: 'dangling' }, undefined, new Map(), free)
    expect(budget.ownBytes()).toBe(2 * MB)
    expect(budget.next()?.id).toBe('own')
    budget.evict('own')
    expect(budget.next()).toBeUndefined()
  })

  test('keep-duration keeps what was used within it; a record without a last use goes by its creation', () => {
    const records = [record('recent', 1), record('old', 9), record('made', 3, { lastUsedAt: undefined })]
    const budget = new CacheBudget(records, { mode: 'all', cutoff: NOW - 2 * DAY }, undefined, new Map(), free)
    expect(budget.next()).toMatchObject({ id: 'old', used: NOW - 9 * DAY })
    budget.evict('old')
    expect(budget.next()).toMatchObject({ id: 'made', used: NOW - 4 * DAY })
    budget.evict('made')
    expect(budget.next()).toBeUndefined()
  })
})

describe('cacheBudget: when the cache counts', () => {
  const records = [record('mine', 1), record('theirs', 2)]
  const at = state([], records)
  test('not without build-cache', () => {
    expect(cacheBudget(at, { filters: NO_FILTERS, buildCache: 'none' }, free, NOW)).toBeUndefined()
    expect(cacheBudget(at, { filters: NO_FILTERS }, free, NOW)).toBeUndefined()
  })
  test('not where the engine keeps no cache', () => {
    expect(cacheBudget(state([]), { filters: NO_FILTERS, buildCache: 'all' }, free, NOW)).toBeUndefined()
  })
  const ids = (budget: CacheBudget | undefined): string[] => {
    const out: string[] = []
    for (let next = budget?.next(); next; next = budget?.next()) {
      out.push(next.id)
      budget?.evict(next.id)
    }
    return out
  }
  test('job scope: only the records the main step did not find', () => {
    const job = {
      filters: NO_FILTERS,
      buildCache: 'all' as const,
      preexisting: new Map(),
      preexistingCache: ['theirs']
    }
    expect(ids(cacheBudget(at, job, free, NOW))).toEqual(['mine'])
  })
  test('job scope: none without the main step list, nor while other jobs run', () => {
    const job = { filters: NO_FILTERS, buildCache: 'all' as const, preexisting: new Map() }
    expect(ids(cacheBudget(at, job, free, NOW))).toEqual([])
    expect(ids(cacheBudget(at, { ...job, preexistingCache: [], otherJobs: [{}] }, free, NOW))).toEqual([])
  })
})

describe('max-storage and min-free with build-cache: images and records, least recently used first', () => {
  // Images a (30 days), b (10 days) of 1 MB; records old (20 days) and new (5 days) of 1 MB each.
  const cache = [record('old', 20), record('new', 5)]
  const images: [string, number, number][] = [
    ['a', 30, MB],
    ['b', 10, MB]
  ]

  test('the measure counts the records no image shares; the older record goes before the newer image', () => {
    const p = plan(state(images, cache), selection({ buildCache: 'all', targets: { maxStorage: 2 * MB } }), NOW)
    expect(p.storage.before).toBe(4 * MB)
    expect(deleted(p)).toEqual([id('a')])
    expect(evicted(p)).toEqual(['old'])
    expect(p.bytes).toBe(MB)
    expect(p.cache).toEqual([{ id: 'old', bytes: MB, shared: false, held: false, used: NOW - 20 * DAY }])
    expect(p.storage).toMatchObject({ after: 2 * MB, met: true })
  })

  test('no more than the target needs: a newer image goes before a newer record, and nothing after', () => {
    const p = plan(state(images, cache), selection({ buildCache: 'all', targets: { maxStorage: MB } }), NOW)
    expect(deleted(p)).toEqual([id('a'), id('b')])
    expect(evicted(p)).toEqual(['old'])
    expect(p.storage.after).toBe(MB)
  })

  test('without build-cache the targets are images only, and the cache stays out of the measure', () => {
    const p = plan(state(images, cache), selection({ targets: { maxStorage: MB } }), NOW)
    expect(p.storage.before).toBe(2 * MB)
    expect(deleted(p)).toEqual([id('a')])
    expect(p.cache).toBeUndefined()
  })

  test('min-free counts what the records free', () => {
    const at = state(images, cache, { freeBytes: 0 })
    const p = plan(at, selection({ buildCache: 'all', targets: { minFree: 2 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('a')])
    expect(evicted(p)).toEqual(['old'])
    expect(p.storage).toMatchObject({ freeAfter: 2 * MB, met: true })
  })

  test('keep rules win for images and running builds for records: the target is then not met', () => {
    const busy = [record('old', 20, { inUse: true }), record('new', 5)]
    const keep = [parseRefSpec('a:1')].filter(s => s !== undefined)
    const p = plan(state(images, busy), selection({ buildCache: 'all', keep, targets: { maxStorage: 0 } }), NOW)
    expect(deleted(p)).toEqual([id('b')])
    expect(evicted(p)).toEqual(['new'])
    expect(p.storage).toMatchObject({ after: 2 * MB, met: false })
  })

  test('keep-duration keeps recently used records as it keeps recent images', () => {
    const p = plan(
      state(images, cache),
      selection({ buildCache: 'all', keepDuration: 15 * DAY, targets: { maxStorage: 0 } }),
      NOW
    )
    expect(deleted(p)).toEqual([id('a')])
    expect(evicted(p)).toEqual(['old'])
  })

  test('a record an image shares frees its layer only once the image is gone too (overlay2)', () => {
    // The image's layer is the record's data: the ledger counts the cache as one more holder.
    const shared = [record('step', 20, { shared: true, size: 3 * MB, createdAt: NOW - 30 * DAY })]
    const at = state(
      [
        ['s', 30, 3 * MB],
        ['k', 10, MB]
      ],
      shared,
      { cacheHeld: new Set(['Ls']) }
    )
    const keep = [parseRefSpec('k:1')].filter(s => s !== undefined)
    const p = plan(at, selection({ buildCache: 'all', keep, targets: { maxStorage: MB } }), NOW)
    expect(p.storage.before).toBe(4 * MB)
    // Neither frees anything alone: s, used first, goes first, and then the record frees the layer.
    expect(deleted(p)).toEqual([id('s')])
    expect(p.steps[0].bytes).toBe(0)
    expect(p.cache).toEqual([{ id: 'step', bytes: 3 * MB, shared: true, held: false, used: NOW - 20 * DAY }])
    expect(p.storage).toMatchObject({ after: MB, met: true })
  })

  /**
   * The containerd store: image s's layer is its blob and its snapshot, 1 MB each; the record of
   * the step that made it holds the same blob and a snapshot of its own, which no image holds.
   */
  function containerd(images: [string, number, number][], step: CacheRecord): EngineState {
    const at = state(images, [step])
    const cacheHolds = [{ recordId: step.id, chainId: 'Ls', bytes: MB }]
    return { ...at, ...applyCacheHolds(at.layers, cacheHolds), cacheHolds }
  }
  const step = (daysAgo: number): CacheRecord => record('step', daysAgo, { shared: true, size: 2 * MB })

  test("containerd store: the measure counts a shared record's own snapshot, and its removal frees it and then the blob", () => {
    const keep = [parseRefSpec('k:1')].filter(s => s !== undefined)
    const at = containerd(
      [
        ['s', 30, 2 * MB],
        ['k', 10, MB]
      ],
      step(20)
    )
    const p = plan(at, selection({ buildCache: 'all', keep, targets: { maxStorage: 0 } }), NOW)
    expect(p.storage.before).toBe(4 * MB)
    expect(deleted(p)).toEqual([id('s')])
    // s frees its snapshot; the record its own snapshot and the blob no image holds any more.
    expect(p.bytes).toBe(MB)
    expect(p.cache).toEqual([{ id: 'step', bytes: 2 * MB, shared: true, held: false, used: NOW - 20 * DAY }])
    expect(p.storage).toMatchObject({ after: MB, met: false })
  })

  test('containerd store: an old shared record frees its own snapshot while its image stays, so it goes first', () => {
    const at = containerd(
      [
        ['s', 10, 2 * MB],
        ['k', 5, MB]
      ],
      step(20)
    )
    const p = plan(at, selection({ buildCache: 'all', targets: { maxStorage: 4 * MB - 1 } }), NOW)
    expect(deleted(p)).toEqual([])
    expect(p.cache).toEqual([{ id: 'step', bytes: MB, shared: true, held: true, used: NOW - 20 * DAY }])
    expect(p.storage).toMatchObject({ before: 4 * MB, after: 3 * MB, met: true })
  })

  test('containerd store: a record BuildKit lists unshared while the image holds its blob counts as held', () => {
    const misread = (daysAgo: number): CacheRecord => record('step', daysAgo, { shared: false, size: 2 * MB })
    const at = containerd(
      [
        ['s', 10, 2 * MB],
        ['k', 5, MB]
      ],
      misread(20)
    )
    const p = plan(at, selection({ buildCache: 'all', targets: { maxStorage: 4 * MB - 1 } }), NOW)
    expect(deleted(p)).toEqual([])
    expect(p.cache).toEqual([{ id: 'step', bytes: MB, shared: false, held: true, used: NOW - 20 * DAY }])
    expect(p.storage).toMatchObject({ before: 4 * MB, after: 3 * MB, met: true })
  })

  test('dangling leaves a shared record alone: its image then frees nothing', () => {
    const shared = [record('step', 20, { shared: true, size: 3 * MB })]
    const at = state([['s', 30, 3 * MB]], shared, { cacheHeld: new Set(['Ls']) })
    const p = plan(at, selection({ buildCache: 'dangling', targets: { maxStorage: 0 } }), NOW)
    expect(evicted(p)).toEqual([])
    expect(p.storage).toMatchObject({ before: 3 * MB, after: 3 * MB, met: false })
  })
})

describe('a storage target without build-cache measures the images alone', () => {
  test('overlay2: a layer the cache holds too is not in the measure, and its image frees nothing', () => {
    const shared = [record('step', 20, { shared: true, size: 3 * MB })]
    const at = state(
      [
        ['s', 30, 3 * MB],
        ['k', 10, MB]
      ],
      shared,
      { cacheHeld: new Set(['Ls']) }
    )
    const p = plan(at, selection({ targets: { maxStorage: 0 } }), NOW)
    // The measure after equals the next run's before: the cache's layer counts in neither.
    expect(p.storage).toMatchObject({ before: MB, after: 0, met: true })
    expect(deleted(p)).toEqual([id('k')])
    expect(p.cache).toBeUndefined()
  })

  test("containerd store: the blob the cache holds is not in the measure, the image's snapshot is", () => {
    const at = state([['s', 30, 2 * MB]], [record('step', 20, { shared: true, size: 2 * MB })])
    const split = { ...at, ...applyCacheHolds(at.layers, [{ recordId: 'step', chainId: 'Ls', bytes: MB }]) }
    const p = plan(split, selection({ targets: { maxStorage: 0 } }), NOW)
    expect(p.storage).toMatchObject({ before: MB, after: 0, met: true })
    expect(deleted(p)).toEqual([id('s')])
  })
})
