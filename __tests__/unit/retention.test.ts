import { describe, expect, test } from '@jest/globals'
import fc from 'fast-check'
import { InputError } from '../../src/common/errors'
import { INPUT_NAMES, parseSettings, type RawInputs } from '../../src/settings/settings'
import { NO_FILTERS } from '../../src/plan/filters'
import { plan, type Plan, type Selection } from '../../src/plan/plan'
import { parseRefSpec } from '../../src/plan/reference'
import { parseSize } from '../../src/common/units'
import { lastUse, newestPerRepository } from '../../src/plan/usage'
import { missed, shortfall, type TargetResult } from '../../src/run/reclaim'
import type { Container, EngineState, Image } from '../../src/plan/model'

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0)
const DAY = 86_400_000
const MB = 1_000_000

const id = (c: string): string => `sha256:${c.repeat(64)}`

interface Spec {
  id: string
  tags?: string[]
  parent?: string
  /** Days before NOW. */
  age: number
  /** Bottom first; a child repeats its parent's layers. */
  layers: [string, number][]
}

function state(specs: Spec[], containers: Container[] = [], extra: Partial<EngineState> = {}): EngineState {
  const images: Image[] = specs.map(s => ({
    id: s.id,
    parentId: s.parent ?? '',
    tags: s.tags ?? [],
    digests: [],
    created: NOW - s.age * DAY,
    size: s.layers.reduce((sum, [, size]) => sum + size, 0),
    labels: {}
  }))
  const layers = new Map(specs.map(s => [s.id, s.layers.map(([chainId, size]) => ({ chainId, size }))]))
  return { images, containers, layers, ...extra }
}

function container(imageId: string, daysAgo: number, running = false): Container {
  return { id: `c${imageId.slice(-8)}${daysAgo}`.padEnd(64, '0'), imageId, running, created: NOW - daysAgo * DAY }
}

function selection(extra: Partial<Selection>): Selection {
  return { refs: [], keep: [], filters: NO_FILTERS, prune: 'none', force: false, noPrune: false, ...extra }
}

const deleted = (p: Plan): string[] => p.steps.filter(s => s.deleted).map(s => s.imageId)

/** Three unrelated images of 1, 2 and 3 MB, used 30, 20 and 10 days ago. */
const THREE: Spec[] = [
  { id: id('a'), tags: ['a:1'], age: 30, layers: [['La', MB]] },
  { id: id('b'), tags: ['b:1'], age: 20, layers: [['Lb', 2 * MB]] },
  { id: id('c'), tags: ['c:1'], age: 10, layers: [['Lc', 3 * MB]] }
]

describe('sizes as users write them', () => {
  test.each<[string, number]>([
    ['20GB', 20e9],
    ['20gb', 20e9],
    ['20g', 20e9],
    ['18.5GiB', 18.5 * 2 ** 30],
    ['18Gi', 18 * 2 ** 30],
    ['500MB', 500e6],
    ['500 MB', 500e6],
    ['1.5kB', 1500],
    ['1024', 1024],
    ['0', 0],
    ['2TB', 2e12]
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes)
  })

  test.each(['', 'GB', '20 G B', '-1GB', '20XB', '20i', 'twenty', '1e9', '20GBs'])('%j is no size', text => {
    expect(parseSize(text)).toBeUndefined()
  })
})

describe('inputs', () => {
  const raw = (overrides: Partial<RawInputs>): RawInputs => ({
    ...(Object.fromEntries(INPUT_NAMES.map(n => [n, ''])) as RawInputs),
    ...overrides
  })
  const settings = (overrides: Partial<RawInputs>) => parseSettings(raw(overrides), NOW)
  const error = (overrides: Partial<RawInputs>): string => {
    try {
      settings(overrides)
    } catch (e) {
      if (e instanceof InputError) return e.message
      throw e
    }
    throw new Error('accepted')
  }

  test('targets, keep-last and age-basis are read into the settings', () => {
    const s = settings({ 'max-storage': '20GB', 'min-free': '15GiB', 'keep-last': '3', 'age-basis': 'last-used' })
    expect(s.targets).toEqual({ maxStorage: 20e9, minFree: 15 * 2 ** 30 })
    expect(s.keepLast).toBe(3)
    expect(s.ageBasis).toBe('last-used')
  })

  test('no target means no eviction at all', () => {
    expect(settings({}).targets).toBeUndefined()
  })

  const F = 'must be a size such as 20GB, 18.5GiB, 500MB or a number of bytes, or a share of the disk such as 20%,'
  test.each<[Partial<RawInputs>, string]>([
    [
      { 'max-storage': '20 gigs' },
      'Input "max-storage" must be a size such as 20GB, 18.5GiB, 500MB or a number of bytes, or a share of the disk such as 20%, not "20 gigs".'
    ],
    [
      { 'min-free': '-5GB' },
      'Input "min-free" must be a size such as 20GB, 18.5GiB, 500MB or a number of bytes, or a share of the disk such as 20%, not "-5GB".'
    ],
    [{ 'keep-last': 'two' }, 'Input "keep-last" must be a whole number of images such as 3 (0 keeps none), not "two".'],
    [{ 'keep-last': '-1' }, 'Input "keep-last" must be a whole number of images such as 3 (0 keeps none), not "-1".'],
    [{ 'age-basis': 'used' }, 'Input "age-basis" must be created or last-used, not "used".'],
    [
      { 'min-free': '1GB', 'docker-host': 'tcp://user:secret@build-host:2376' },
      'Input "min-free" needs an engine on this machine (a unix:// or npipe:// endpoint), not tcp://: use max-storage for a remote engine.'
    ],
    [{ 'max-storage': '0%' }, `Input "max-storage" ${F} not "0%".`],
    [{ 'min-free': '120%' }, `Input "min-free" ${F} not "120%".`],
    [{ 'min-free': '-5%' }, `Input "min-free" ${F} not "-5%".`],
    [
      { headroom: '2GB' },
      'Input "headroom" needs max-storage or min-free: it is what eviction frees beyond a target once crossed.'
    ],
    [{ 'max-storage': '10GB', headroom: 'lots' }, `Input "headroom" ${F} not "lots".`],
    [
      { 'max-storage': '10GB', headroom: '5%', 'docker-host': 'tcp://build-host:2376' },
      'Input "headroom" needs an engine on this machine as a percentage (a unix:// or npipe:// endpoint), not tcp://: give a size such as 20GB for a remote engine.'
    ],
    [
      { 'max-storage': '50%', 'docker-host': 'ssh://build-host' },
      'Input "max-storage" needs an engine on this machine as a percentage (a unix:// or npipe:// endpoint), not ssh://: give a size such as 20GB for a remote engine.'
    ]
  ])('%j is refused in one sentence', (overrides, message) => {
    expect(error(overrides)).toBe(message)
  })

  test.each([
    ['50%', '20%', { maxStoragePercent: 50, minFreePercent: 20 }],
    ['12.5 %', '', { maxStoragePercent: 12.5 }],
    ['100%', '10GB', { maxStoragePercent: 100, minFree: 10e9 }]
  ])('max-storage %s and min-free %s: a share of the disk, measured at run time', (max, free, wanted) => {
    expect(settings({ 'max-storage': max, 'min-free': free }).targets).toEqual({
      maxStorage: undefined,
      minFree: undefined,
      ...wanted
    })
  })

  test.each([
    ['2GB', { headroom: 2e9 }],
    ['5%', { headroomPercent: 5 }]
  ])('headroom %s goes with the targets', (headroom, wanted) => {
    expect(settings({ 'max-storage': '10GB', headroom }).targets).toEqual({
      maxStorage: 10e9,
      minFree: undefined,
      ...wanted
    })
  })

  test('max-storage works with a remote engine', () => {
    expect(settings({ 'max-storage': '1GB', 'docker-host': 'tcp://build-host:2376' }).targets).toEqual({
      maxStorage: 1e9,
      minFree: undefined
    })
  })
})

describe('last use', () => {
  test('is the latest of creation, last tag and the newest container', () => {
    const s = state(THREE, [container(id('a'), 5), container(id('a'), 12)], {
      lastTagged: new Map([[id('b'), NOW - 2 * DAY]])
    })
    const used = lastUse(s)
    expect(used.get(id('a'))).toBe(NOW - 5 * DAY)
    expect(used.get(id('b'))).toBe(NOW - 2 * DAY)
    expect(used.get(id('c'))).toBe(NOW - 10 * DAY)
  })

  test('reads creation to the millisecond where inspect gives it, so images built within one second do not tie', () => {
    const s = state(THREE, [], { createdAt: new Map([[id('c'), NOW - 10 * DAY + 400]]) })
    expect(lastUse(s).get(id('c'))).toBe(NOW - 10 * DAY + 400)
    expect(lastUse(s).get(id('b'))).toBe(s.images.find(i => i.id === id('b'))?.created)
  })

  test('keep-last keeps the newest N of every repository, by the given recency', () => {
    const images = state([
      { id: id('1'), tags: ['app:1'], age: 3, layers: [] },
      { id: id('2'), tags: ['app:2', 'other:x'], age: 2, layers: [] },
      { id: id('3'), tags: ['app:3'], age: 1, layers: [] },
      { id: id('4'), tags: ['other:y'], age: 9, layers: [] }
    ]).images
    const created = new Map(images.map(i => [i.id, i.created]))
    const kept = newestPerRepository(images, 2, i => created.get(i) ?? 0)
    expect([...kept.keys()].sort()).toEqual([id('2'), id('3'), id('4')])
    expect(kept.get(id('3'))).toBe('app')
  })
})

describe('eviction to max-storage', () => {
  test('removes the least recently used images until storage is at most the target, and no more', () => {
    const p = plan(state(THREE), selection({ targets: { maxStorage: 4 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('a'), id('b')])
    expect(p.storage).toEqual({ before: 6 * MB, after: 3 * MB, met: true, crossed: true })
  })

  test('a target already met removes nothing', () => {
    const p = plan(state(THREE), selection({ targets: { maxStorage: 6 * MB } }), NOW)
    expect(p.steps).toEqual([])
    expect(p.storage.met).toBe(true)
  })

  test('a container, running or stopped, makes its image the most recently used and never a candidate', () => {
    const p = plan(state(THREE, [container(id('a'), 1)]), selection({ targets: { maxStorage: 2 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('b'), id('c')])
    expect(p.storage).toMatchObject({ after: MB, met: true, crossed: true })
  })

  test('keep and keep-duration win: the target is then reported as not met', () => {
    const keep = [parseRefSpec('c:1')].filter(s => s !== undefined)
    const p = plan(state(THREE), selection({ targets: { maxStorage: MB }, keep, keepDuration: 25 * DAY }), NOW)
    expect(deleted(p)).toEqual([id('a')])
    expect(p.storage).toMatchObject({ before: 6 * MB, after: 5 * MB, met: false })
  })

  test('images used at the same time go larger first', () => {
    const same = THREE.map(s => ({ ...s, age: 7 }))
    const p = plan(state(same), selection({ targets: { maxStorage: 3 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('c')])
  })

  test('a base waits for its children, and a shared layer counts once, when its last holder goes', () => {
    const specs: Spec[] = [
      { id: id('b'), tags: ['base:1'], age: 40, layers: [['Lbase', 4 * MB]] },
      {
        id: id('k'),
        tags: ['kid:1'],
        parent: id('b'),
        age: 30,
        layers: [
          ['Lbase', 4 * MB],
          ['Lkid', MB]
        ]
      },
      { id: id('n'), tags: ['new:1'], age: 1, layers: [['Lnew', 2 * MB]] }
    ]
    const p = plan(state(specs), selection({ targets: { maxStorage: 2 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('k'), id('b')])
    expect(p.steps.filter(s => s.deleted).map(s => s.bytes)).toEqual([MB, 4 * MB])
  })

  test('an image that would free nothing yet waits while another frees something', () => {
    const specs: Spec[] = [
      { id: id('1'), tags: ['twin:1'], age: 50, layers: [['Lshared', 5 * MB]] },
      { id: id('2'), tags: ['twin:2'], age: 40, layers: [['Lshared', 5 * MB]] },
      { id: id('3'), tags: ['solo:1'], age: 30, layers: [['Lsolo', 2 * MB]] }
    ]
    expect(deleted(plan(state(specs), selection({ targets: { maxStorage: 5 * MB } }), NOW))).toEqual([id('3')])
    const both = plan(state(specs), selection({ targets: { maxStorage: MB } }), NOW)
    expect(deleted(both)).toEqual([id('3'), id('1'), id('2')])
    expect(both.storage).toMatchObject({ after: 0, met: true, crossed: true })
  })

  test('an untagged parent goes with its last child (unless no-prune), never on its own', () => {
    const specs: Spec[] = [
      { id: id('p'), age: 40, layers: [['Lp', 3 * MB]] },
      {
        id: id('k'),
        tags: ['kid:1'],
        parent: id('p'),
        age: 30,
        layers: [
          ['Lp', 3 * MB],
          ['Lk', MB]
        ]
      }
    ]
    expect(deleted(plan(state(specs), selection({ targets: { maxStorage: 0 } }), NOW))).toEqual([id('k'), id('p')])
    const kept = plan(state(specs), selection({ targets: { maxStorage: 0 }, noPrune: true }), NOW)
    expect(deleted(kept)).toEqual([id('k')])
    expect(kept.storage).toMatchObject({ after: 3 * MB, met: false })
  })

  test('an image with several tags loses all of them without force', () => {
    const specs: Spec[] = [{ id: id('m'), tags: ['m:1', 'm:2'], age: 9, layers: [['Lm', MB]] }]
    const p = plan(state(specs), selection({ targets: { maxStorage: 0 } }), NOW)
    expect(p.steps.map(s => [s.target, s.force, s.deleted])).toEqual([
      ['m:1', false, false],
      ['m:2', false, true]
    ])
  })

  test('refs and prune count towards the target first', () => {
    const p = plan(state(THREE), selection({ refs: [parseRefSpec('c:1')!], targets: { maxStorage: 2 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('c'), id('a')])
    expect(p.steps.map(s => s.cause)).toEqual([{ kind: 'ref', ref: 'c:1', named: true }, { kind: 'storage-target' }])
  })

  test('filters narrow the candidates', () => {
    const s = state(THREE)
    s.images[0].labels = { keep: 'yes' }
    const p = plan(s, selection({ targets: { maxStorage: 0 }, filters: { ...NO_FILTERS, notLabel: ['keep'] } }), NOW)
    expect(deleted(p)).toEqual([id('b'), id('c')])
  })
})

describe('headroom', () => {
  test('nothing goes while every target holds, however little is left to spare', () => {
    const p = plan(state(THREE), selection({ targets: { maxStorage: 6 * MB, headroom: 5 * MB } }), NOW)
    expect(p.steps).toEqual([])
    expect(p.storage).toMatchObject({ met: true, crossed: false })
  })

  test('once max-storage is crossed, images go until storage is the headroom below it', () => {
    const exact = plan(state(THREE), selection({ targets: { maxStorage: 5 * MB } }), NOW)
    expect(deleted(exact)).toEqual([id('a')])
    const spare = plan(state(THREE), selection({ targets: { maxStorage: 5 * MB, headroom: 2 * MB } }), NOW)
    expect(deleted(spare)).toEqual([id('a'), id('b')])
    expect(spare.storage).toMatchObject({ after: 3 * MB, met: true, crossed: true })
  })

  test('once min-free is crossed, images go until the headroom is free above it', () => {
    const s = state(THREE, [], { freeBytes: 10 * MB })
    const p = plan(s, selection({ targets: { minFree: 11 * MB, headroom: 2 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('a'), id('b')])
    expect(p.storage).toMatchObject({ freeAfter: 13 * MB, met: true, crossed: true })
  })

  test('a headroom the rules leave no room for still meets the target itself', () => {
    const keep = [parseRefSpec('c:1')].filter(s => s !== undefined)
    const p = plan(state(THREE), selection({ targets: { maxStorage: 5 * MB, headroom: 4 * MB }, keep }), NOW)
    expect(deleted(p)).toEqual([id('a'), id('b')])
    expect(p.storage).toMatchObject({ after: 3 * MB, met: true })
  })

  test('refs and prune that bring storage under the target leave nothing to evict', () => {
    const refs = [parseRefSpec('c:1')].filter(s => s !== undefined)
    const p = plan(state(THREE), selection({ refs, targets: { maxStorage: 5 * MB, headroom: 3 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('c')])
    expect(p.storage).toMatchObject({ crossed: false, met: true })
  })
})

describe('eviction to min-free', () => {
  test('frees just enough for the filesystem to reach the floor', () => {
    const p = plan(state(THREE, [], { freeBytes: 10 * MB }), selection({ targets: { minFree: 12 * MB } }), NOW)
    expect(deleted(p)).toEqual([id('a'), id('b')])
    expect(p.storage).toEqual({
      before: 6 * MB,
      after: 3 * MB,
      freeBefore: 10 * MB,
      freeAfter: 13 * MB,
      met: true,
      crossed: true
    })
  })

  test('both targets: whichever needs more wins', () => {
    const p = plan(
      state(THREE, [], { freeBytes: 10 * MB }),
      selection({ targets: { minFree: 11 * MB, maxStorage: 3 * MB } }),
      NOW
    )
    expect(deleted(p)).toEqual([id('a'), id('b')])
  })
})

describe('age-basis and keep-last', () => {
  // Built long ago but tagged again yesterday, against built recently and not touched since.
  const specs: Spec[] = [
    { id: id('o'), tags: ['app:old'], age: 60, layers: [['Lo', MB]] },
    { id: id('n'), tags: ['app:new'], age: 2, layers: [['Ln', MB]] }
  ]

  test('keep-last 1 keeps the newest build under created, the most recently tagged under last-used', () => {
    const s = state(specs)
    s.lastTagged = new Map([[id('o'), NOW - DAY]])
    const byCreated = plan(s, selection({ prune: 'all', keepLast: 1 }), NOW)
    expect(deleted(byCreated)).toEqual([id('o')])
    const byUse = plan(s, selection({ prune: 'all', keepLast: 1, ageBasis: 'last-used' }), NOW)
    expect(deleted(byUse)).toEqual([id('n')])
    expect(byUse.skipped).toEqual([
      {
        ref: 'app:old',
        id: id('o'),
        reason: 'kept',
        message: 'one of the 1 most recent images of app (input "keep-last")',
        named: false
      }
    ])
  })

  test('keep-duration follows the basis: an old image tagged yesterday is recent under last-used', () => {
    const s = state(specs)
    s.lastTagged = new Map([[id('o'), NOW - DAY]])
    const refs = [parseRefSpec('app:*')!]
    expect(deleted(plan(s, selection({ refs, keepDuration: 7 * DAY }), NOW))).toEqual([id('o')])
    const used = plan(s, selection({ refs, keepDuration: 7 * DAY, ageBasis: 'last-used' }), NOW)
    expect(deleted(used)).toEqual([])
    expect(used.skipped.map(s => s.message)).toEqual([
      'used within input "keep-duration"',
      'used within input "keep-duration"'
    ])
  })

  test('keep-last protects against refs too, like keep', () => {
    const p = plan(state(specs), selection({ refs: [parseRefSpec('app:new')!], keepLast: 1 }), NOW)
    expect(deleted(p)).toEqual([])
    expect(p.skipped[0]).toMatchObject({ ref: 'app:new', reason: 'kept', named: true })
  })
})

describe('eviction on random engines (fast-check)', () => {
  /** Up to 12 images, each on top of an earlier one or on nothing, with one own layer and sometimes a shared one. */
  const engines = fc
    .array(
      fc.record({
        parent: fc.nat(),
        onParent: fc.boolean(),
        size: fc.integer({ min: 0, max: 5 }),
        shared: fc.boolean(),
        tags: fc.integer({ min: 0, max: 2 }),
        age: fc.integer({ min: 1, max: 9 }),
        container: fc.constantFrom('none', 'none', 'stopped', 'running'),
        kept: fc.boolean()
      }),
      { minLength: 1, maxLength: 12 }
    )
    .map(rows => {
      const specs: Spec[] = []
      const containers: Container[] = []
      const keep: string[] = []
      rows.forEach((row, n) => {
        const parent = row.onParent && n > 0 ? specs[row.parent % n] : undefined
        const own: [string, number][] = [
          [`L${n}`, row.size * MB],
          ...(row.shared ? [['Lshared', MB] as [string, number]] : [])
        ]
        const tags = Array.from({ length: row.tags }, (_, t) => `r${n % 3}:${n}-${t}`)
        specs.push({
          id: id(n.toString(16)),
          tags,
          parent: parent?.id,
          age: row.age,
          layers: [...(parent?.layers ?? []), ...own]
        })
        if (row.container !== 'none')
          containers.push(container(id(n.toString(16)), row.age, row.container === 'running'))
        if (row.kept && tags.length > 0 && keep.length < 2) keep.push(tags[0])
      })
      return { specs, containers, keep }
    })

  test('the target holds after the plan exactly when the plan says so, no protected image goes, and the last eviction was needed', () => {
    fc.assert(
      fc.property(engines, fc.integer({ min: 0, max: 40 }), ({ specs, containers, keep }, budget) => {
        const s = state(specs, containers)
        const maxStorage = budget * MB
        const p = plan(
          s,
          selection({ targets: { maxStorage }, keep: keep.map(k => parseRefSpec(k)!), keepLast: 1 }),
          NOW
        )
        const used = new Set(containers.map(c => c.imageId))
        const keptIds = new Set(specs.filter(sp => sp.tags?.some(t => keep.includes(t))).map(sp => sp.id))
        for (const gone of deleted(p)) {
          expect(used.has(gone)).toBe(false)
          expect(keptIds.has(gone)).toBe(false)
        }
        expect(p.storage.after).toBe(p.storage.before - p.steps.reduce((sum, step) => sum + step.bytes, 0))
        expect(p.storage.met).toBe(p.storage.after <= maxStorage)
        const evictions = p.steps.filter(step => step.cause.kind === 'storage-target')
        if (evictions.length === 0) return
        const last = evictions[evictions.length - 1].imageId
        const firstOfLast = p.steps.findIndex(step => step.cause.kind === 'storage-target' && step.imageId === last)
        const freedBefore = p.steps.slice(0, firstOfLast).reduce((sum, step) => sum + step.bytes, 0)
        expect(p.storage.before - freedBefore).toBeGreaterThan(maxStorage)
      }),
      { numRuns: 3000 }
    )
  })
})

describe('min-free missed after a run', () => {
  const target = (extra: Partial<TargetResult>): TargetResult => ({
    minFree: 216_409_755,
    storageAfter: 20_000_000,
    freeAfter: 216_409_088,
    met: false,
    crossed: true,
    ...extra
  })

  test('the run freed what the floor needed and the filesystem still fell short: the shortfall, not the keep rules', () => {
    expect(shortfall(216_409_755, 216_409_782, 216_409_088)).toBe(667)
    expect(missed(target({ shortBy: 667 }))).toBe(
      'Storage target not met: 216.4MB free (min-free 216.4MB), 667B (667 bytes) short. The run freed what the plan ' +
        "counted on, but something else wrote to that filesystem meanwhile (the engine's own records, or other work on " +
        'the machine); input headroom frees more than the floor asks.'
    )
  })

  test('a plan that could not reach the floor: what is kept is why', () => {
    expect(shortfall(216_409_755, 216_000_000, 216_000_000)).toBeUndefined()
    expect(shortfall(216_409_755, 216_409_782, 216_409_800)).toBeUndefined()
    expect(shortfall(undefined, 1, 0)).toBeUndefined()
    expect(missed(target({}))).toMatch(/216.4MB free \(min-free 216.4MB\)\. The rest is kept by keep, keep-last/)
  })

  test('max-storage missed too: the keep rules still explain it', () => {
    expect(missed(target({ shortBy: 667, maxStorage: 10_000_000 }))).toMatch(/\. The rest is kept by keep/)
  })
})
