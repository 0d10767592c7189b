import { NO_FILTERS } from '../../src/plan/filters'
import { plan, type Plan, type Selection } from '../../src/plan/plan'
import { parseRefSpec, type RefSpec } from '../../src/plan/reference'
import type { Container, EngineState, ImageStore } from '../../src/plan/model'

// Each store's delete rules, as testbed/ENGINES.md measured them; the integration suite proves
// them against the real engines, these pin the planner's simulation of them.

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const id = (prefix: string): string => `sha256:${prefix.padEnd(64, '0')}`
const BASE = id('ba5e')
const KID = id('c1d')
const STEP = id('57e9')
const REG = '127.0.0.1:5000/pushed'

interface Spec {
  id: string
  parent?: string
  tags?: string[]
  digests?: string[]
  layers: [string, number][]
}

function state(store: ImageStore, specs: Spec[], containers: Container[] = []): EngineState {
  const images = specs.map(s => ({
    id: s.id,
    parentId: s.parent ?? '',
    tags: s.tags ?? [],
    digests: s.digests ?? [],
    created: NOW - 86_400_000,
    size: s.layers.reduce((sum, [, size]) => sum + size, 0),
    labels: {}
  }))
  return {
    images,
    containers,
    layers: new Map(specs.map(s => [s.id, s.layers.map(([chainId, size]) => ({ chainId, size }))])),
    store
  }
}

const spec = (text: string): RefSpec => parseRefSpec(text) as RefSpec

function run(engine: EngineState, options: Partial<Omit<Selection, 'refs'>> & { refs?: string[] } = {}): Plan {
  const selection: Selection = {
    keep: [],
    filters: NO_FILTERS,
    prune: 'none',
    force: false,
    noPrune: false,
    ...options,
    refs: (options.refs ?? []).map(spec)
  }
  return plan(engine, selection, NOW)
}

const outcome = (p: Plan) => ({
  steps: p.steps.map(s => ({
    target: s.target,
    untagged: s.untagged,
    deleted: s.deleted,
    pruned: s.pruned,
    bytes: s.bytes
  })),
  skipped: p.skipped.map(s => s.reason)
})

/** A tagged base with a tagged child. */
const family = (store: ImageStore, containers: Container[] = []): EngineState =>
  state(
    store,
    [
      { id: BASE, tags: ['base:1'], layers: [['B', 3000]] },
      {
        id: KID,
        parent: BASE,
        tags: ['kid:1'],
        layers: [
          ['B', 3000],
          ['K', 1000]
        ]
      }
    ],
    containers
  )

/** kid:1 is a LABEL over an untagged COPY step, as the legacy builder leaves them. */
const layered = (store: ImageStore): EngineState =>
  state(store, [
    { id: STEP, layers: [['S', 1000]] },
    { id: KID, parent: STEP, tags: ['kid:1'], layers: [['S', 1000]] }
  ])

describe('an image other images are built on', () => {
  test.each<[ImageStore, ReturnType<typeof outcome>]>([
    [
      'graphdriver',
      { steps: [{ target: 'base:1', untagged: ['base:1'], deleted: false, pruned: [], bytes: 0 }], skipped: [] }
    ],
    [
      'containerd',
      { steps: [{ target: 'base:1', untagged: ['base:1'], deleted: false, pruned: [], bytes: 0 }], skipped: [] }
    ],
    [
      'podman',
      { steps: [{ target: 'base:1', untagged: ['base:1'], deleted: true, pruned: [], bytes: 0 }], skipped: [] }
    ]
  ])(
    '%s: its last tag going untags it (Docker keeps it dangling) or deletes it (Podman), freeing nothing its children hold',
    (store, expected) => {
      expect(outcome(run(family(store), { refs: ['base:1'] }))).toEqual(expected)
    }
  )

  test.each<[ImageStore, string[]]>([
    ['graphdriver', ['has-children']],
    ['containerd', []],
    ['podman', []]
  ])('%s: by ID it is refused only on graph drivers', (store, skipped) => {
    expect(outcome(run(family(store), { refs: [BASE], force: true })).skipped).toEqual(skipped)
  })

  test.each<ImageStore>(['graphdriver', 'containerd', 'podman'])(
    '%s: prune all leaves it while its children stay',
    store => {
      const planned = run(family(store, [{ id: 'c'.repeat(64), imageId: KID, running: false, created: NOW }]), {
        prune: 'all'
      })
      expect(planned.steps).toEqual([])
      expect(planned.skipped.map(s => [s.id, s.reason])).toEqual([
        [KID, 'in-use-stopped'],
        [BASE, 'has-children']
      ])
    }
  )
})

describe('untagged parents', () => {
  test.each<[ImageStore, boolean, string[], number]>([
    ['graphdriver', false, [KID, STEP], 1000],
    ['graphdriver', true, [KID], 0],
    ['containerd', false, [KID, STEP], 1000],
    ['containerd', true, [KID], 0],
    ['podman', false, [KID, STEP], 1000],
    ['podman', true, [KID, STEP], 1000]
  ])(
    '%s, no-prune %s: the parent goes with its child unless no-prune, and always on Podman',
    (store, noPrune, deleted, bytes) => {
      const planned = run(layered(store), { refs: ['kid:1'], noPrune })
      expect(planned.steps.flatMap(s => (s.deleted ? [s.imageId, ...s.pruned] : []))).toEqual(deleted)
      expect(planned.bytes).toBe(bytes)
    }
  )

  test('containerd: a prune takes the parent its deletion leaves dangling', () => {
    const planned = run(layered('containerd'), { prune: 'all' })
    expect(planned.steps.map(s => [s.imageId, s.cause])).toEqual([
      [KID, { kind: 'prune' }],
      [STEP, { kind: 'parent' }]
    ])
    expect(planned.bytes).toBe(1000)
  })
})

describe("a stopped container's image, forced", () => {
  const used = (store: ImageStore): EngineState =>
    state(
      store,
      [{ id: KID, tags: ['used:1'], layers: [['U', 1000]] }],
      [{ id: 'c'.repeat(64), imageId: KID, running: false, created: NOW }]
    )

  test.each<[ImageStore, ReturnType<typeof outcome>]>([
    [
      'graphdriver',
      { steps: [{ target: 'used:1', untagged: ['used:1'], deleted: true, pruned: [], bytes: 0 }], skipped: [] }
    ],
    [
      'containerd',
      { steps: [{ target: 'used:1', untagged: ['used:1'], deleted: false, pruned: [], bytes: 0 }], skipped: [] }
    ],
    ['podman', { steps: [], skipped: ['in-use-stopped'] }]
  ])(
    '%s: deleted (the container keeps the layers), only untagged, or never sent (Podman would delete the container)',
    (store, expected) => {
      expect(outcome(run(used(store), { refs: ['used:1'], force: true }))).toEqual(expected)
    }
  )

  test.each<[ImageStore, string]>([
    [
      'graphdriver',
      'unable to remove repository reference "used:1" (must force) - container cccccccccccc is using its referenced image c1d000000000'
    ],
    [
      'containerd',
      'unable to delete used:1 (must be forced) - container cccccccccccc is using its referenced image c1d000000000'
    ],
    ['podman', `image used:1 is in use: image used by ${'c'.repeat(64)}: image is in use by a container`]
  ])("%s: unforced, refused in the engine's words", (store, message) => {
    expect(run(used(store), { refs: ['used:1'] }).skipped[0].message).toContain(message)
  })
})

describe('digest references', () => {
  const pushed = (store: ImageStore, tags: string[]): EngineState =>
    state(store, [
      {
        id: KID,
        tags,
        digests: [...new Set(tags.map(t => t.replace(/:[^:/]+$/, '')))].map(
          repo => `${repo}@${'sha256:' + 'd'.repeat(64)}`
        ),
        layers: [['P', 1000]]
      }
    ])
  const digestRef = `${REG}@sha256:${'d'.repeat(64)}`

  test.each<[ImageStore, ReturnType<typeof outcome>]>([
    [
      'graphdriver',
      {
        steps: [{ target: `${REG}:1`, untagged: [`${REG}:1`, digestRef], deleted: true, pruned: [], bytes: 1000 }],
        skipped: []
      }
    ],
    [
      'containerd',
      { steps: [{ target: `${REG}:1`, untagged: [`${REG}:1`], deleted: true, pruned: [], bytes: 1000 }], skipped: [] }
    ],
    [
      'podman',
      { steps: [{ target: `${REG}:1`, untagged: [`${REG}:1`], deleted: true, pruned: [], bytes: 1000 }], skipped: [] }
    ]
  ])(
    "%s: the last tag takes the repository's digests, reported only where they are names of their own",
    (store, expected) => {
      expect(outcome(run(pushed(store, [`${REG}:1`]), { refs: [`${REG}:1`] }))).toEqual(expected)
    }
  )

  test.each<[ImageStore, ReturnType<typeof outcome>]>([
    [
      'graphdriver',
      { steps: [{ target: digestRef, untagged: [digestRef], deleted: false, pruned: [], bytes: 0 }], skipped: [] }
    ],
    [
      'containerd',
      {
        steps: [{ target: digestRef, untagged: [`${REG}:1`, `${REG}:2`], deleted: false, pruned: [], bytes: 0 }],
        skipped: []
      }
    ],
    ['podman', { steps: [], skipped: ['error'] }]
  ])(
    '%s: a digest untags only itself, every tag of its repository, or is refused beside other names',
    (store, expected) => {
      expect(outcome(run(pushed(store, [`${REG}:1`, `${REG}:2`, 'other:1']), { refs: [digestRef] }))).toEqual(expected)
    }
  )

  test.each<ImageStore>(['containerd', 'podman'])(
    '%s: a digest view is no reference of its own: one tag and its digest go by ID unforced',
    store => {
      const planned = run(pushed(store, [`${REG}:1`]), { refs: [KID] })
      expect(planned.steps.map(s => [s.force, s.untagged, s.deleted])).toEqual([[false, [`${REG}:1`], true]])
    }
  )
})

test('Podman refuses an ID with several tags in its own words', () => {
  const engine = state('podman', [{ id: KID, tags: ['a:1', 'b:1'], layers: [['A', 10]] }])
  expect(run(engine, { refs: [KID] }).skipped[0]).toMatchObject({
    reason: 'multiple-references',
    message: expect.stringContaining('by ID with more than one tag')
  })
})
