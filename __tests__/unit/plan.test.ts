import fc from 'fast-check'
import { parseFilters, NO_FILTERS } from '../../src/plan/filters'
import { Ledger } from '../../src/plan/ledger'
import {
  namedRef,
  plan,
  price,
  prunesDanglingOnly,
  type Cause,
  type Plan,
  type Selection,
  type Step
} from '../../src/plan/plan'
import { parseRefSpec, type RefSpec } from '../../src/plan/reference'
import { isSingleReference } from '../../src/plan/simulation'
import type { Container, EngineState, Image, Layer, SkipReason } from '../../src/plan/model'

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const HOUR = 3_600_000
const DAY = 24 * HOUR
const OLD = NOW - 30 * DAY

/** A full image ID whose hex starts with the given prefix. */
const id = (prefix: string): string => `sha256:${prefix.padEnd(64, '0')}`
const hex = (fullId: string): string => fullId.replace(/^sha256:/, '')
const digest = (c: string): string => `sha256:${c.repeat(64)}`
const FULL_ID = /^sha256:[0-9a-f]{64}$/

interface ImageSpec {
  id: string
  parent?: string
  tags?: string[]
  digests?: string[]
  created?: number
  labels?: Record<string, string>
  /** Bottom first: [chainId, size]; a child repeats its parent's chain first. */
  layers: [string, number][]
}

function engine(specs: ImageSpec[], containers: Container[] = []): EngineState {
  const images: Image[] = specs.map(s => ({
    id: s.id,
    parentId: s.parent ?? '',
    tags: s.tags ?? [],
    digests: s.digests ?? [],
    created: s.created ?? OLD,
    size: s.layers.reduce((sum, [, size]) => sum + size, 0),
    labels: s.labels ?? {}
  }))
  const layers = new Map<string, Layer[]>(
    specs.map(s => [s.id, s.layers.map(([chainId, size]) => ({ chainId, size }))])
  )
  return { images, containers, layers }
}

const stopped = (imageId: string, cid = 'c0ffee'): Container => ({
  id: cid.padEnd(64, '0'),
  imageId,
  running: false,
  created: OLD
})
const running = (imageId: string, cid = 'beef'): Container => ({
  id: cid.padEnd(64, '0'),
  imageId,
  running: true,
  created: OLD
})

function spec(text: string): RefSpec {
  const parsed = parseRefSpec(text)
  if (!parsed) throw new Error(`test fixture: ${text} is not a ref`)
  return parsed
}

interface Options {
  refs?: string[]
  keep?: string[]
  filters?: string[]
  prune?: Selection['prune']
  force?: boolean
  noPrune?: boolean
  keepDuration?: number
}

function selection(options: Options = {}): Selection {
  return {
    refs: (options.refs ?? []).map(spec),
    keep: (options.keep ?? []).map(spec),
    filters: options.filters ? parseFilters(options.filters, NOW) : NO_FILTERS,
    prune: options.prune ?? 'none',
    force: options.force ?? false,
    noPrune: options.noPrune ?? false,
    keepDuration: options.keepDuration
  }
}

function run(state: EngineState, options: Options = {}): Plan {
  return plan(state, selection(options), NOW)
}

/** The parts of a step these tests pin, with freed layers sorted. */
function brief(step: Step) {
  return {
    target: step.target,
    imageId: step.imageId,
    cause: step.cause,
    untagged: [...step.untagged].sort(),
    deleted: step.deleted,
    freed: [...step.freed].sort(),
    bytes: step.bytes
  }
}

const skips = (result: Plan): [string, string, SkipReason, boolean][] =>
  result.skipped.map(s => [s.ref, s.id, s.reason, s.named])

/** The cause of a step for a ref the user wrote. */
const named = (ref: string): Cause => ({ kind: 'ref', ref, named: true })
const BY_PRUNE: Cause = { kind: 'prune' }
const BY_PARENT: Cause = { kind: 'parent' }

const deletedIds = (result: Plan): string[] => result.steps.filter(s => s.deleted).map(s => s.imageId)
const untaggedRefs = (result: Plan): string[] => result.steps.flatMap(s => s.untagged)

// ---------------------------------------------------------------------------

const BASE = id('b1')
const MID = id('c1')
const APP = id('a1')
const OTHER = id('e1')

/** app:1 and app:2 on one image of two layers. */
const twoTagged = (): ImageSpec => ({
  id: APP,
  tags: ['app:1', 'app:2'],
  layers: [
    ['L0', 100],
    ['L1', 50]
  ]
})

/** A tagged base of one layer and app on top of it, adding a layer of 50 bytes. */
function baseAndApp({ baseTags = ['base:1'], appTags = ['app:1'], base = 1000 } = {}): ImageSpec[] {
  return [
    { id: BASE, tags: baseTags, layers: [['L0', base]] },
    {
      id: APP,
      parent: BASE,
      tags: appTags,
      layers: [
        ['L0', base],
        ['L1', 50]
      ]
    }
  ]
}

/** app:1 on top of an untagged parent, MID. */
const appOnUntaggedParent = (): ImageSpec[] => [
  { id: MID, layers: [['M', 100]] },
  {
    id: APP,
    parent: MID,
    tags: ['app:1'],
    layers: [
      ['M', 100],
      ['A', 5]
    ]
  }
]

/** base:1, the untagged MID on it and app (with the given tags) on MID: three layers. */
const baseMidApp = (appTags: string[]): ImageSpec[] => [
  { id: BASE, tags: ['base:1'], layers: [['B', 1000]] },
  {
    id: MID,
    parent: BASE,
    layers: [
      ['B', 1000],
      ['M', 200]
    ]
  },
  {
    id: APP,
    parent: MID,
    tags: appTags,
    layers: [
      ['B', 1000],
      ['M', 200],
      ['A', 30]
    ]
  }
]

describe('isSingleReference (moby)', () => {
  test.each<[string[], boolean]>([
    [[], false],
    [['app:1'], true],
    [[`app@${digest('d')}`], true],
    [['app:1', `app@${digest('d')}`], true],
    [['app:1', `docker.io/library/app@${digest('d')}`], true],
    [['app:1', 'app:2'], false],
    [['app:1', `other@${digest('d')}`], false],
    [[`app@${digest('d')}`, `app@${digest('e')}`], true],
    [[`app@${digest('d')}`, `other@${digest('e')}`], false]
  ])('%j → %s', (refs, expected) => {
    expect(isSingleReference(refs)).toBe(expected)
  })
})

describe('removing by tag (DELETE /images/name:tag)', () => {
  test('a tag of a multi-tagged image only untags it and frees nothing', () => {
    const state = engine([twoTagged()])
    const result = run(state, { refs: ['app:1'] })
    expect(result.steps.map(brief)).toEqual([
      { target: 'app:1', imageId: APP, cause: named('app:1'), untagged: ['app:1'], deleted: false, freed: [], bytes: 0 }
    ])
    expect(namedRef(result.steps[0].cause)).toBe('app:1')
    expect(result.bytes).toBe(0)
    expect(result.skipped).toEqual([])
  })

  test('the last tag going deletes the image and frees only the layers no other image holds', () => {
    const state = engine(baseAndApp())
    const result = run(state, { refs: ['app:1'] })
    expect(result.steps.map(brief)).toEqual([
      {
        target: 'app:1',
        imageId: APP,
        cause: named('app:1'),
        untagged: ['app:1'],
        deleted: true,
        freed: ['L1'],
        bytes: 50
      }
    ])
    expect(result.bytes).toBe(50)
  })

  test('both tags of an image, one after the other: the second request deletes it', () => {
    const state = engine([twoTagged()])
    const result = run(state, { refs: ['app:1', 'app:2'] })
    expect(result.steps.map(s => [s.target, s.deleted, s.bytes])).toEqual([
      ['app:1', false, 0],
      ['app:2', true, 150]
    ])
    expect(result.bytes).toBe(150)
  })

  test("removing the last tag of a repository also untags that repository's digest references", () => {
    const state = engine([
      {
        id: APP,
        tags: ['app:1', 'other:1'],
        digests: [`app@${digest('d')}`, `other@${digest('e')}`],
        layers: [['L0', 100]]
      }
    ])
    const result = run(state, { refs: ['app:1', 'other:1'] })
    expect(result.steps.map(brief)).toEqual([
      {
        target: 'app:1',
        imageId: APP,
        cause: named('app:1'),
        untagged: ['app:1', `app@${digest('d')}`],
        deleted: false,
        freed: [],
        bytes: 0
      },
      {
        target: 'other:1',
        imageId: APP,
        cause: named('other:1'),
        untagged: ['other:1', `other@${digest('e')}`],
        deleted: true,
        freed: ['L0'],
        bytes: 100
      }
    ])
  })

  test("a repository's digests stay while another tag of that repository remains", () => {
    const state = engine([
      { id: APP, tags: ['app:1', 'app:2'], digests: [`app@${digest('d')}`], layers: [['L0', 100]] }
    ])
    const result = run(state, { refs: ['app:1'] })
    expect(result.steps.map(s => [s.untagged, s.deleted])).toEqual([[['app:1'], false]])
  })

  test('a single tag with its repository digest: removing the tag deletes the image', () => {
    const state = engine([{ id: APP, tags: ['app:1'], digests: [`app@${digest('d')}`], layers: [['L0', 100]] }])
    const result = run(state, { refs: ['app:1'] })
    expect(result.steps.map(brief)).toEqual([
      {
        target: 'app:1',
        imageId: APP,
        cause: named('app:1'),
        untagged: ['app:1', `app@${digest('d')}`],
        deleted: true,
        freed: ['L0'],
        bytes: 100
      }
    ])
  })

  test('a digest reference removes only that reference', () => {
    const state = engine([{ id: APP, tags: ['app:1'], digests: [`app@${digest('d')}`], layers: [['L0', 100]] }])
    const result = run(state, { refs: [`app@${digest('d')}`] })
    expect(result.steps.map(brief)).toEqual([
      {
        target: `app@${digest('d')}`,
        imageId: APP,
        cause: named(`app@${digest('d')}`),
        untagged: [`app@${digest('d')}`],
        deleted: false,
        freed: [],
        bytes: 0
      }
    ])
  })

  test('a name without a tag means name:latest', () => {
    const state = engine([
      { id: APP, tags: ['app:latest'], layers: [['L0', 100]] },
      { id: OTHER, tags: ['db:1'], layers: [['L9', 100]] }
    ])
    const result = run(state, { refs: ['app', 'db'] })
    expect(result.steps.map(s => [s.target, s.imageId])).toEqual([['app:latest', APP]])
    expect(skips(result)).toEqual([['db', '', 'not-found', true]])
  })

  test.each([
    ['docker.io/library/alpine:3'],
    ['library/alpine:3'],
    ['index.docker.io/library/alpine:3'],
    ['docker.io/alpine:3']
  ])('%s is sent as the reference the engine lists', text => {
    const state = engine([{ id: APP, tags: ['alpine:3'], layers: [['L0', 100]] }])
    const result = run(state, { refs: [text] })
    expect(result.steps.map(s => [s.target, s.cause, s.deleted])).toEqual([['alpine:3', named(text), true]])
  })

  test('a tag on an image that has children only untags it', () => {
    const state = engine(baseAndApp())
    const result = run(state, { refs: ['base:1'] })
    expect(result.steps.map(brief)).toEqual([
      {
        target: 'base:1',
        imageId: BASE,
        cause: named('base:1'),
        untagged: ['base:1'],
        deleted: false,
        freed: [],
        bytes: 0
      }
    ])
    expect(result.bytes).toBe(0)
  })
})

describe('removing by ID (DELETE /images/sha256:<id>)', () => {
  const single = (): EngineState =>
    engine([
      {
        id: APP,
        tags: ['app:1'],
        layers: [
          ['L0', 100],
          ['L1', 50]
        ]
      }
    ])

  test.each([[hex(APP).slice(0, 12)], [hex(APP).slice(0, 2)], [hex(APP)], [APP], [`sha256:${hex(APP).slice(0, 12)}`]])(
    'an ID with one tag (%s) untags and deletes it unforced; the step targets the full ID',
    text => {
      const result = run(single(), { refs: [text] })
      expect(result.steps.map(brief)).toEqual([
        {
          target: APP,
          imageId: APP,
          cause: named(text),
          untagged: ['app:1'],
          deleted: true,
          freed: ['L0', 'L1'],
          bytes: 150
        }
      ])
      expect(namedRef(result.steps[0].cause)).toBe(text)
      expect(result.steps[0].force).toBe(false)
    }
  )

  test('a tag and a digest of one repository count as a single reference', () => {
    const state = engine([{ id: APP, tags: ['app:1'], digests: [`app@${digest('d')}`], layers: [['L0', 100]] }])
    const result = run(state, { refs: [APP] })
    expect(result.steps.map(s => [s.target, [...s.untagged].sort(), s.deleted])).toEqual([
      [APP, ['app:1', `app@${digest('d')}`], true]
    ])
  })

  test.each<[string[], string[]]>([
    [['app:1', 'app:2'], []],
    [['app:1', 'other:1'], []],
    [['app:1'], [`other@${digest('d')}`]]
  ])('an ID with several references (tags %j, digests %j) is skipped without force', (tags, digests) => {
    const state = engine([{ id: APP, tags, digests, layers: [['L0', 100]] }])
    const result = run(state, { refs: [APP] })
    expect(result.steps).toEqual([])
    expect(skips(result)).toEqual([[APP, APP, 'multiple-references', true]])
    expect(result.bytes).toBe(0)
  })

  test('an ID with several tags is deleted with force, untagging all of them', () => {
    const state = engine([
      { id: APP, tags: ['app:1', 'app:2', 'other:1'], digests: [`app@${digest('d')}`], layers: [['L0', 100]] }
    ])
    const result = run(state, { refs: [hex(APP).slice(0, 12)], force: true })
    expect(result.steps.map(brief)).toEqual([
      {
        target: APP,
        imageId: APP,
        cause: named(hex(APP).slice(0, 12)),
        untagged: ['app:1', 'app:2', `app@${digest('d')}`, 'other:1'],
        deleted: true,
        freed: ['L0'],
        bytes: 100
      }
    ])
    expect(result.steps[0].force).toBe(true)
    expect(result.skipped).toEqual([])
  })

  test('an untagged image is deleted by ID', () => {
    const state = engine([{ id: APP, layers: [['L0', 100]] }])
    const result = run(state, { refs: [hex(APP).slice(0, 12)] })
    expect(result.steps.map(brief)).toEqual([
      {
        target: APP,
        imageId: APP,
        cause: named(hex(APP).slice(0, 12)),
        untagged: [],
        deleted: true,
        freed: ['L0'],
        bytes: 100
      }
    ])
  })

  test.each([[false], [true]])('an untagged parent named by ID is skipped has-children (force %s)', force => {
    const state = engine([
      { id: MID, layers: [['L0', 100]] },
      {
        id: APP,
        parent: MID,
        tags: ['app:1'],
        layers: [
          ['L0', 100],
          ['L1', 50]
        ]
      }
    ])
    const result = run(state, { refs: [MID], force })
    expect(result.steps).toEqual([])
    expect(skips(result)).toEqual([[MID, MID, 'has-children', true]])
  })

  test.each([[false], [true]])(
    'a tagged parent named by ID is skipped has-children, checked before its tags (force %s)',
    force => {
      const state = engine(baseAndApp({ baseTags: ['base:1', 'base:latest'], base: 100 }))
      const result = run(state, { refs: [BASE], force })
      expect(result.steps).toEqual([])
      expect(result.skipped.map(s => s.reason)).toEqual(['has-children'])
      const single = engine(baseAndApp({ base: 100 }))
      expect(run(single, { refs: [BASE], force }).skipped.map(s => s.reason)).toEqual(['has-children'])
    }
  )
})

describe('resolving what a ref names', () => {
  test('an ambiguous short ID is skipped ambiguous', () => {
    const state = engine([
      { id: id('ab1'), layers: [['L1', 10]] },
      { id: id('ab2'), layers: [['L2', 10]] }
    ])
    const result = run(state, { refs: ['ab'] })
    expect(result.steps).toEqual([])
    expect(skips(result)).toEqual([['ab', '', 'ambiguous', true]])
    expect(run(state, { refs: ['ab2'] }).steps.map(s => s.target)).toEqual([id('ab2')])
  })

  test.each([['nothere:1'], ['ghcr.io/org/nothere'], [id('fff')], ['fff'], ['sha256:fff']])(
    'an unknown ref %s is not-found, named',
    text => {
      const state = engine([{ id: APP, tags: ['app:1'], layers: [['L0', 100]] }])
      const result = run(state, { refs: [text] })
      expect(result.steps).toEqual([])
      expect(skips(result)).toEqual([[text, '', 'not-found', true]])
    }
  )

  test('a hex-looking name is looked up as a name first, as the engine does', () => {
    const tagged = id('f1')
    const state = engine([
      { id: id('abc'), layers: [['L1', 10]] },
      { id: tagged, tags: ['abc:latest'], layers: [['L2', 20]] }
    ])
    const result = run(state, { refs: ['abc'] })
    expect(result.steps.map(s => [s.target, s.imageId])).toEqual([['abc:latest', tagged]])
  })

  test("a name that is also a prefix of its own image's ID is removed as an ID", () => {
    const state = engine([{ id: id('abc'), tags: ['abc:latest'], layers: [['L1', 10]] }])
    const result = run(state, { refs: ['abc'] })
    expect(result.steps.map(s => [s.target, s.deleted])).toEqual([[id('abc'), true]])
  })

  test('refs are played in the order given, then the prune', () => {
    const state = engine([
      { id: id('d1'), layers: [['D1', 10]] },
      { id: id('a1'), tags: ['a:1'], layers: [['A', 10]] },
      { id: id('b1'), tags: ['b:1'], layers: [['B', 10]] }
    ])
    const result = run(state, { refs: ['b:1', 'a:1'], prune: 'dangling' })
    expect(result.steps.map(s => [s.target, s.cause])).toEqual([
      ['b:1', named('b:1')],
      ['a:1', named('a:1')],
      [id('d1'), BY_PRUNE]
    ])
  })
})

describe('containers', () => {
  const withContainer = (container: (imageId: string) => Container, tags = ['app:1']): EngineState =>
    engine(baseAndApp({ appTags: tags }), [container(APP)])

  test.each([['app:1'], [APP]])(
    'an image used by a stopped container is skipped in-use-stopped without force (%s)',
    ref => {
      const result = run(withContainer(stopped), { refs: [ref] })
      expect(result.steps).toEqual([])
      expect(skips(result)).toEqual([[ref, APP, 'in-use-stopped', true]])
    }
  )

  test.each([['app:1'], [APP]])(
    'with force it is deleted but frees nothing: the container still holds its layers (%s)',
    ref => {
      const result = run(withContainer(stopped), { refs: [ref], force: true })
      expect(result.steps.map(brief)).toEqual([
        {
          target: ref === APP ? APP : 'app:1',
          imageId: APP,
          cause: named(ref),
          untagged: ['app:1'],
          deleted: true,
          freed: [],
          bytes: 0
        }
      ])
      expect(result.bytes).toBe(0)
    }
  )

  test('after a forced delete, the layers the container holds stay held for everyone else', () => {
    const result = run(withContainer(stopped), { refs: ['app:1', 'base:1'], force: true })
    expect(result.steps.map(s => [s.target, s.deleted, s.freed])).toEqual([
      ['app:1', true, []],
      ['base:1', true, []]
    ])
    expect(result.bytes).toBe(0)
  })

  test('a multi-tagged image of a stopped container, by ID: multiple-references without force; with force deleted, freeing nothing', () => {
    const state = withContainer(stopped, ['app:1', 'app:2'])
    expect(skips(run(state, { refs: [APP] }))).toEqual([[APP, APP, 'multiple-references', true]])
    const forced = run(state, { refs: [APP], force: true })
    expect(forced.steps.map(brief)).toEqual([
      { target: APP, imageId: APP, cause: named(APP), untagged: ['app:1', 'app:2'], deleted: true, freed: [], bytes: 0 }
    ])
  })

  test('a stopped container does not stop a tag of a multi-tagged image from going', () => {
    const result = run(withContainer(stopped, ['app:1', 'app:2']), { refs: ['app:1'] })
    expect(result.steps.map(brief)).toEqual([
      { target: 'app:1', imageId: APP, cause: named('app:1'), untagged: ['app:1'], deleted: false, freed: [], bytes: 0 }
    ])
  })

  test.each<[string, boolean, string[]]>([
    ['app:1', false, ['app:1']],
    ['app:1', true, ['app:1']],
    [APP, false, ['app:1']],
    [APP, true, ['app:1']],
    ['app:1', true, ['app:1', 'app:2']],
    [APP, true, ['app:1', 'app:2']],
    ['app:*', true, ['app:1', 'app:2']]
  ])(
    'an image used by a RUNNING container is never deleted nor untagged (ref %s, force %s, tags %j)',
    (ref, force, tags) => {
      const result = run(withContainer(running, tags), { refs: [ref], force })
      expect(result.steps).toEqual([])
      expect(result.skipped.length).toBeGreaterThan(0)
      expect(result.skipped.every(s => s.reason === 'in-use' && s.id === APP)).toBe(true)
      expect(result.bytes).toBe(0)
    }
  )

  test("a running container's image is never pruned either", () => {
    const state = engine(
      [
        { id: APP, layers: [['L0', 100]] },
        { id: OTHER, tags: ['x:1'], layers: [['L1', 100]] }
      ],
      [running(APP), running(OTHER, 'cafe')]
    )
    for (const prune of ['dangling', 'all'] as const) {
      const result = run(state, { prune })
      expect(result.steps).toEqual([])
      expect(result.skipped.map(s => s.reason)).toEqual(prune === 'all' ? ['in-use', 'in-use'] : ['in-use'])
    }
  })
})

describe('parents', () => {
  const family = (): EngineState =>
    engine([
      { id: id('0a'), layers: [['G', 1000]] },
      {
        id: MID,
        parent: id('0a'),
        layers: [
          ['G', 1000],
          ['M', 200]
        ]
      },
      {
        id: APP,
        parent: MID,
        tags: ['app:1'],
        layers: [
          ['G', 1000],
          ['M', 200],
          ['A', 30]
        ]
      }
    ])

  test('untagged parents are deleted as separate steps (cause parent), after the child', () => {
    const result = run(family(), { refs: ['app:1'] })
    expect(result.steps.map(brief)).toEqual([
      {
        target: 'app:1',
        imageId: APP,
        cause: named('app:1'),
        untagged: ['app:1'],
        deleted: true,
        freed: ['A'],
        bytes: 30
      },
      { target: MID, imageId: MID, cause: BY_PARENT, untagged: [], deleted: true, freed: ['M'], bytes: 200 },
      { target: id('0a'), imageId: id('0a'), cause: BY_PARENT, untagged: [], deleted: true, freed: ['G'], bytes: 1000 }
    ])
    expect(result.steps.slice(1).every(s => namedRef(s.cause) === undefined && !s.force)).toBe(true)
    expect(result.bytes).toBe(1230)
  })

  test('noPrune keeps the untagged parents', () => {
    const result = run(family(), { refs: ['app:1'], noPrune: true })
    expect(result.steps.map(s => [s.target, s.deleted, s.bytes])).toEqual([['app:1', true, 30]])
    expect(result.bytes).toBe(30)
  })

  test("a parent pruned after a forced delete of a stopped container's image frees nothing", () => {
    const state = family()
    state.containers.push(stopped(APP))
    const result = run(state, { refs: ['app:1'], force: true })
    expect(result.steps.map(s => [s.imageId, s.deleted, s.bytes])).toEqual([
      [APP, true, 0],
      [MID, true, 0],
      [id('0a'), true, 0]
    ])
  })

  test.each<[string, (state: EngineState) => void]>([
    ['tagged', state => state.images[1].tags.push('mid:1')],
    ['digested', state => state.images[1].digests.push(`mid@${digest('d')}`)],
    ['used by a stopped container', state => state.containers.push(stopped(MID))],
    ['used by a running container', state => state.containers.push(running(MID))],
    [
      'parent of another image too',
      state => {
        state.images.push({ ...state.images[2], id: OTHER, tags: ['other:1'] })
        state.layers.set(OTHER, [
          { chainId: 'G', size: 1000 },
          { chainId: 'M', size: 200 },
          { chainId: 'O', size: 7 }
        ])
      }
    ]
  ])('a parent that is %s stays, and so does everything above it', (_, change) => {
    const state = family()
    change(state)
    const result = run(state, { refs: ['app:1'] })
    expect(deletedIds(result)).toEqual([APP])
    expect(result.bytes).toBe(30)
  })

  test('a kept parent is not deleted (keep by ID)', () => {
    const result = run(family(), { refs: ['app:1'], keep: [MID] })
    expect(deletedIds(result)).toEqual([APP])
    expect(result.bytes).toBe(30)
  })

  test('a kept grandparent stops the pruning at it', () => {
    const result = run(family(), { refs: ['app:1'], keep: [hex(id('0a')).slice(0, 12)] })
    expect(deletedIds(result)).toEqual([APP, MID])
    expect(result.bytes).toBe(230)
  })

  test('a parent younger than keep-duration is not deleted', () => {
    const state = family()
    state.images[1].created = NOW - HOUR
    const result = run(state, { refs: ['app:1'], keepDuration: DAY })
    expect(deletedIds(result)).toEqual([APP])
    expect(result.bytes).toBe(30)
  })
})

describe('keep and keep-duration win over refs, prune and force', () => {
  const two = (): EngineState =>
    engine([
      { id: APP, tags: ['app:1', 'app:2'], layers: [['L0', 100]] },
      { id: OTHER, tags: ['other:1'], layers: [['L1', 100]] }
    ])

  test.each<[string[], string[], boolean]>([
    [['app:1'], ['app:1'], false],
    [['app:1'], ['app:1'], true],
    [['app:2'], ['app:1'], true],
    [[APP], ['app:1'], true],
    [['app:1'], [APP], true],
    [['app:1'], [hex(APP).slice(0, 12)], true],
    [['app:1'], ['app:*'], true],
    [['app:*'], ['app:2'], true]
  ])('refs %j with keep %j (force %s) → kept, nothing untagged', (refs, keep, force) => {
    const result = run(two(), { refs, keep, force })
    expect(result.steps).toEqual([])
    expect(result.skipped.length).toBeGreaterThan(0)
    expect(result.skipped.every(s => s.reason === 'kept' && s.id === APP)).toBe(true)
  })

  test('a named ref that is kept is reported as named', () => {
    expect(skips(run(two(), { refs: ['app:1'], keep: ['app:2'] }))).toEqual([['app:1', APP, 'kept', true]])
  })

  test('keep by name means name:latest, as for refs', () => {
    const result = run(two(), { refs: ['app:1'], keep: ['app'] })
    expect(result.steps.map(s => s.target)).toEqual(['app:1'])
  })

  test('keep patterns hold against prune all', () => {
    const state = engine([
      { id: id('1a'), tags: ['ci/a:1'], layers: [['A', 10]] },
      { id: id('1b'), tags: ['ci/b:1'], layers: [['B', 10]] },
      { id: id('1c'), tags: ['web/c:1'], layers: [['C', 10]] }
    ])
    const result = run(state, { prune: 'all', keep: ['ci/*:*'] })
    expect(deletedIds(result)).toEqual([id('1c')])
    expect(result.skipped.map(s => [s.id, s.reason, s.named]).sort()).toEqual([
      [id('1a'), 'kept', false],
      [id('1b'), 'kept', false]
    ])
  })

  test('keep holds against prune dangling', () => {
    const state = engine([
      { id: id('d1'), layers: [['D1', 10]] },
      { id: id('d2'), layers: [['D2', 10]] }
    ])
    const result = run(state, { prune: 'dangling', keep: ['d1'] })
    expect(deletedIds(result)).toEqual([id('d2')])
    expect(skips(result)).toEqual([[expect.any(String), id('d1'), 'kept', false]])
  })

  test('an ambiguous short ID in keep keeps every image it matches', () => {
    const state = engine([
      { id: id('ab1'), layers: [['D1', 10]] },
      { id: id('ab2'), layers: [['D2', 10]] }
    ])
    const result = run(state, { prune: 'dangling', keep: ['ab'] })
    expect(result.steps).toEqual([])
    expect(result.skipped.map(s => s.reason)).toEqual(['kept', 'kept'])
  })

  test('keep-duration: images younger than it stay, older ones go, for refs and prune alike', () => {
    const state = engine([
      { id: id('1a'), tags: ['new:1'], created: NOW - HOUR, layers: [['N', 10]] },
      { id: id('1b'), tags: ['old:1'], created: NOW - 2 * DAY, layers: [['O', 10]] },
      { id: id('d1'), created: NOW - HOUR, layers: [['DN', 10]] },
      { id: id('d2'), created: NOW - 2 * DAY, layers: [['DO', 10]] }
    ])
    const result = run(state, { refs: ['new:1', 'old:1'], prune: 'dangling', keepDuration: DAY, force: true })
    expect(deletedIds(result)).toEqual([id('1b'), id('d2')])
    expect(skips(result)).toEqual([
      ['new:1', id('1a'), 'too-recent', true],
      [expect.any(String), id('d1'), 'too-recent', false]
    ])
  })
})

describe('filters narrow refs and prune candidates', () => {
  test('a named ref the filters leave out is listed in filteredOut, not removed', () => {
    const state = engine([
      { id: APP, tags: ['app:1'], layers: [['A', 10]] },
      { id: OTHER, tags: ['db:1'], labels: { team: 'ci' }, layers: [['D', 10]] }
    ])
    const result = run(state, { refs: ['app:1', 'db:1'], filters: ['label=team=ci'] })
    expect(result.steps.map(s => s.target)).toEqual(['db:1'])
    expect(result.filteredOut).toEqual([{ ref: 'app:1', id: APP }])
    expect(result.skipped).toEqual([])
  })

  test('pattern matches are filtered one by one', () => {
    const state = engine([
      { id: id('1a'), tags: ['app:new'], created: NOW - HOUR, layers: [['N', 10]] },
      { id: id('1b'), tags: ['app:old'], created: NOW - 3 * DAY, layers: [['O', 10]] },
      { id: id('1c'), tags: ['db:old'], created: NOW - 3 * DAY, layers: [['D', 10]] }
    ])
    const result = run(state, { refs: ['app:*'], filters: ['until=24h'] })
    expect(result.steps.map(s => [s.target, s.cause])).toEqual([
      ['app:old', { kind: 'ref', ref: 'app:old', named: false }]
    ])
    expect(result.filteredOut).toEqual([{ ref: 'app:new', id: id('1a') }])
  })

  test('prune dangling with until takes only the old dangling images', () => {
    const state = engine([
      { id: id('d1'), created: NOW - HOUR, layers: [['N', 10]] },
      { id: id('d2'), created: NOW - 3 * DAY, layers: [['O', 10]] }
    ])
    const result = run(state, { prune: 'dangling', filters: ['until=24h'] })
    expect(deletedIds(result)).toEqual([id('d2')])
    expect(result.filteredOut).toEqual([])
  })

  test('prune all with label! spares the labelled images', () => {
    const state = engine([
      { id: id('1a'), tags: ['a:1'], labels: { pin: 'yes' }, layers: [['A', 10]] },
      { id: id('1b'), tags: ['b:1'], labels: { pin: 'no' }, layers: [['B', 10]] },
      { id: id('1c'), tags: ['c:1'], layers: [['C', 10]] }
    ])
    const result = run(state, { prune: 'all', filters: ['label!=pin=yes'] })
    expect(deletedIds(result).sort()).toEqual([id('1b'), id('1c')])
  })

  test('prune all with reference= takes only the matching images', () => {
    const state = engine([
      { id: id('1a'), tags: ['org/cache:pr-1'], layers: [['A', 10]] },
      { id: id('1b'), tags: ['org/cache:main'], layers: [['B', 10]] },
      { id: id('1c'), tags: ['a/b/cache:pr-2'], layers: [['C', 10]] }
    ])
    const result = run(state, { prune: 'all', filters: ['reference=*/cache:pr-*'] })
    expect(deletedIds(result)).toEqual([id('1a')])
  })

  test('before= and since= compare with the creation time of the image they name', () => {
    const state = engine([
      { id: id('1a'), tags: ['anchor:1'], created: NOW - 10 * DAY, layers: [['A', 10]] },
      { id: id('1b'), tags: ['older:1'], created: NOW - 20 * DAY, layers: [['B', 10]] },
      { id: id('1c'), tags: ['newer:1'], created: NOW - 5 * DAY, layers: [['C', 10]] }
    ])
    expect(deletedIds(run(state, { prune: 'all', filters: ['before=anchor:1'] }))).toEqual([id('1b')])
    expect(deletedIds(run(state, { prune: 'all', filters: [`since=${hex(id('1a')).slice(0, 12)}`] }))).toEqual([
      id('1c')
    ])
  })

  test('a before= naming no image makes the plan fail', () => {
    const state = engine([{ id: APP, tags: ['app:1'], layers: [['A', 10]] }])
    expect(() => run(state, { prune: 'all', filters: ['before=nothere:1'] })).toThrow(/before/)
  })
})

describe('prune dangling', () => {
  test('takes untagged leaf images only (digest-only images count as untagged)', () => {
    const state = engine([
      { id: id('d1'), layers: [['D', 10]] },
      { id: id('e1'), digests: [`x@${digest('d')}`], layers: [['X', 20]] },
      ...appOnUntaggedParent(),
      { id: id('f1'), tags: ['t:1'], layers: [['T', 7]] }
    ])
    const result = run(state, { prune: 'dangling' })
    expect(result.steps.map(brief)).toEqual([
      { target: id('d1'), imageId: id('d1'), cause: BY_PRUNE, untagged: [], deleted: true, freed: ['D'], bytes: 10 },
      {
        target: id('e1'),
        imageId: id('e1'),
        cause: BY_PRUNE,
        untagged: [`x@${digest('d')}`],
        deleted: true,
        freed: ['X'],
        bytes: 20
      }
    ])
    expect(result.steps.every(s => namedRef(s.cause) === undefined && !s.force)).toBe(true)
    expect(result.bytes).toBe(30)
    // The intermediate and the tagged images are no candidates at all: nothing to report about them.
    expect(result.skipped).toEqual([])
  })

  test("a dangling image's untagged parents go with it", () => {
    const state = engine([
      { id: MID, layers: [['M', 100]] },
      {
        id: id('d1'),
        parent: MID,
        layers: [
          ['M', 100],
          ['D', 10]
        ]
      }
    ])
    const result = run(state, { prune: 'dangling' })
    expect(result.steps.map(s => [s.target, s.cause, s.bytes])).toEqual([
      [id('d1'), BY_PRUNE, 10],
      [MID, BY_PARENT, 100]
    ])
    expect(result.bytes).toBe(110)
  })

  test('a dangling image of a stopped container stays', () => {
    const state = engine([{ id: id('d1'), layers: [['D', 10]] }], [stopped(id('d1'))])
    const result = run(state, { prune: 'dangling' })
    expect(result.steps).toEqual([])
    expect(result.skipped.map(s => [s.id, s.reason, s.named])).toEqual([[id('d1'), 'in-use-stopped', false]])
  })
})

// The action skips the whole list when prunesDanglingOnly holds and the engine's dangling filter
// (untagged images without children, and untagged images with a digest) lists nothing.
describe('prunesDanglingOnly: the settings for which an engine with no dangling image has nothing to remove', () => {
  const noDangling = engine(
    [
      ...appOnUntaggedParent(),
      { id: OTHER, tags: ['other:1', 'other:2'], labels: { keep: 'no' }, layers: [['O', 7]] },
      { id: id('f1'), tags: ['stopped:1'], layers: [['F', 3]] }
    ],
    [stopped(id('f1')), running(APP)]
  )

  test.each<[string, Options]>([
    ['the default prune of dangling images', { prune: 'dangling' }],
    ['with keep and keep-duration', { prune: 'dangling', keep: ['app:1'], keepDuration: DAY }],
    [
      'with label, reference and until filters',
      { prune: 'dangling', filters: ['label=keep=no', 'reference=other', 'until=1h'] }
    ],
    ['with force and no-prune', { prune: 'dangling', force: true, noPrune: true }]
  ])('holds %s, and then such an engine gets an empty plan', (_, options) => {
    expect(prunesDanglingOnly(selection(options))).toBe(true)
    const result = run(noDangling, options)
    expect([result.steps, result.skipped, result.filteredOut]).toEqual([[], [], []])
  })

  // Engines of up to 8 images in random trees, tagged at random, where every image the dangling
  // filter would list has been given a tag; containers on any of them, and keep rules and filters.
  const image = fc.record({
    parent: fc.nat(7),
    hasParent: fc.boolean(),
    tags: fc.subarray(['a:1', 'a:2', 'b:1', 'c:latest']),
    digest: fc.boolean(),
    daysOld: fc.nat(60),
    label: fc.boolean()
  })
  const scene = fc.record({
    images: fc.array(image, { minLength: 1, maxLength: 8 }),
    containers: fc.array(fc.tuple(fc.nat(7), fc.boolean()), { maxLength: 3 }),
    options: fc.record({
      keep: fc.subarray(['a:1', 'b:*']),
      filters: fc.subarray(['label=l=1', 'label!=l=1', 'reference=a', 'until=240h']),
      keepDuration: fc.option(fc.constantFrom(DAY, 30 * DAY), { nil: undefined }),
      force: fc.boolean(),
      noPrune: fc.boolean()
    })
  })

  test('on random engines with no image the dangling filter lists, the plan is empty whenever it holds', () => {
    fc.assert(
      fc.property(scene, ({ images, containers, options }) => {
        const ids = images.map((_, i) => id(`9${i}`))
        const specs: ImageSpec[] = images.map((img, i) => ({
          id: ids[i],
          parent: img.hasParent && i > 0 ? ids[img.parent % i] : undefined,
          tags: img.tags,
          digests: img.digest ? [`r${i}@${digest(String(i))}`] : [],
          created: NOW - img.daysOld * DAY,
          labels: img.label ? { l: '1' } : ({} as Record<string, string>),
          layers: [[`L${i}`, i + 1]]
        }))
        const parents = new Set(specs.map(s => s.parent))
        for (const s of specs)
          if (s.tags?.length === 0 && (!parents.has(s.id) || s.digests?.length)) s.tags = [`fix${s.id.slice(8, 10)}:1`]
        const state = engine(
          specs,
          containers.map(([i, up], n) => (up ? running : stopped)(ids[i % ids.length], `c${n}`))
        )
        const given = { prune: 'dangling' as const, ...options }
        expect(prunesDanglingOnly(selection(given))).toBe(true)
        const result = run(state, given)
        expect([result.steps, result.skipped, result.filteredOut]).toEqual([[], [], []])
      }),
      { numRuns: 500 }
    )
  })

  test.each<[string, Selection]>([
    ['refs', selection({ prune: 'dangling', refs: ['app:1'] })],
    ['prune all', selection({ prune: 'all' })],
    ['no prune', selection({ refs: ['app:1'] })],
    ['a storage target', { ...selection({ prune: 'dangling' }), targets: { maxStorage: 0 } }],
    ['job scope', { ...selection({ prune: 'dangling' }), preexisting: new Map() }],
    ['job scope untagging what the job tagged', { ...selection({ prune: 'dangling' }), untagAdded: true }],
    ['a before filter, whose image must be there', selection({ prune: 'dangling', filters: ['before=app:1'] })],
    ['a since filter, whose image must be there', selection({ prune: 'dangling', filters: ['since=app:1'] })]
  ])('does not hold with %s', (_, given) => {
    expect(prunesDanglingOnly(given)).toBe(false)
  })
})

describe('prune all', () => {
  test('takes children before their tagged parents so a tagged base goes too, and untagged intermediates only as parents', () => {
    const state = engine(
      [
        ...baseMidApp(['app:1']),
        { id: id('5a'), tags: ['stopped:1'], layers: [['S', 4]] },
        { id: id('6a'), tags: ['running:1'], layers: [['R', 5]] }
      ],
      [stopped(id('5a')), running(id('6a'))]
    )
    const result = run(state, { prune: 'all' })
    expect(result.steps.map(s => [s.target, s.cause, s.deleted, s.bytes])).toEqual([
      [APP, BY_PRUNE, true, 30],
      [MID, BY_PARENT, true, 200],
      [BASE, BY_PRUNE, true, 1000]
    ])
    expect(result.bytes).toBe(1230)
    expect(result.steps.some(s => s.imageId === MID && s.cause.kind === 'prune')).toBe(false)
    expect(result.skipped.map(s => [s.id, s.reason]).sort()).toEqual([
      [id('5a'), 'in-use-stopped'],
      [id('6a'), 'in-use']
    ])
  })

  test('an untagged intermediate is never a candidate of its own, even when it cannot go as a parent', () => {
    const state = engine(
      [
        { id: MID, layers: [['M', 200]] },
        {
          id: APP,
          parent: MID,
          tags: ['app:1'],
          layers: [
            ['M', 200],
            ['A', 30]
          ]
        }
      ],
      [stopped(APP)]
    )
    const result = run(state, { prune: 'all' })
    expect(result.steps).toEqual([])
    expect(result.skipped.map(s => [s.id, s.reason])).toEqual([[APP, 'in-use-stopped']])
  })

  test('a base with two tagged children goes after both', () => {
    const state = engine([
      { id: BASE, tags: ['base:1'], layers: [['B', 100]] },
      {
        id: id('1a'),
        parent: BASE,
        tags: ['x:1'],
        layers: [
          ['B', 100],
          ['X', 1]
        ]
      },
      {
        id: id('1b'),
        parent: BASE,
        tags: ['y:1'],
        layers: [
          ['B', 100],
          ['Y', 2]
        ]
      }
    ])
    const result = run(state, { prune: 'all' })
    expect(result.steps.map(s => s.imageId)).toEqual([id('1a'), id('1b'), BASE])
    expect(result.bytes).toBe(103)
  })

  test('a multi-tagged image is untagged ref by ref, the last request deleting it', () => {
    const state = engine([{ id: APP, tags: ['app:1', 'app:2'], layers: [['A', 10]] }])
    const result = run(state, { prune: 'all' })
    expect(result.steps.map(s => [s.target, s.deleted, s.bytes])).toEqual([
      ['app:1', false, 0],
      ['app:2', true, 10]
    ])
  })

  test('a multi-tagged image a stopped container uses is not touched', () => {
    const state = engine([{ id: APP, tags: ['app:1', 'app:2'], layers: [['A', 10]] }], [stopped(APP)])
    const result = run(state, { prune: 'all' })
    expect(result.steps).toEqual([])
    expect(untaggedRefs(result)).toEqual([])
  })

  test('the tagged base of an image a container uses stays', () => {
    const state = engine(
      [
        { id: BASE, tags: ['base:1'], layers: [['B', 100]] },
        {
          id: APP,
          parent: BASE,
          tags: ['app:1'],
          layers: [
            ['B', 100],
            ['A', 1]
          ]
        }
      ],
      [stopped(APP)]
    )
    const result = run(state, { prune: 'all' })
    expect(deletedIds(result)).toEqual([])
    expect(untaggedRefs(result)).toEqual([])
  })
})

describe('accounting', () => {
  /** Layers still held once the plan ran: those of surviving images and of every container's image. */
  function expectedFreed(state: EngineState, result: Plan): Set<string> {
    const deleted = new Set(deletedIds(result))
    const held = new Set<string>()
    for (const image of state.images) {
      if (!deleted.has(image.id)) state.layers.get(image.id)?.forEach(l => held.add(l.chainId))
    }
    for (const container of state.containers) state.layers.get(container.imageId)?.forEach(l => held.add(l.chainId))
    const all = new Set([...state.layers.values()].flat().map(l => l.chainId))
    return new Set([...all].filter(c => !held.has(c)))
  }

  const busy = (): EngineState =>
    engine(
      [
        ...baseMidApp(['app:1', 'app:2']),
        {
          id: id('1a'),
          parent: MID,
          tags: ['sib:1'],
          layers: [
            ['B', 1000],
            ['M', 200],
            ['S', 3]
          ]
        },
        {
          id: id('1b'),
          tags: ['twin:1'],
          layers: [
            ['B', 1000],
            ['T', 4]
          ]
        },
        {
          id: id('d1'),
          layers: [
            ['B', 1000],
            ['D', 5]
          ]
        },
        {
          id: id('d2'),
          parent: id('1b'),
          layers: [
            ['B', 1000],
            ['T', 4],
            ['E', 6]
          ]
        },
        {
          id: id('5c'),
          tags: ['held:1'],
          layers: [
            ['B', 1000],
            ['H', 7]
          ]
        }
      ],
      [stopped(id('5c'))]
    )

  const SELECTIONS: [string, Options][] = [
    ['refs', { refs: ['app:1', 'app:2', 'sib:1'] }],
    ['refs forced', { refs: ['app:2', hex(id('5c')).slice(0, 6), 'base:1'], force: true }],
    ['prune dangling', { prune: 'dangling' }],
    ['prune all', { prune: 'all' }],
    ['refs then prune all, no parents', { refs: ['sib:1'], prune: 'all', noPrune: true }]
  ]

  test.each(SELECTIONS)('%s: every layer freed exactly once, when its last holder goes; bytes add up', (_, options) => {
    const state = busy()
    const result = run(state, options)
    const freed = result.steps.flatMap(s => s.freed)
    expect(new Set(freed).size).toBe(freed.length)
    expect(new Set(freed)).toEqual(expectedFreed(state, result))
    const ledger = new Ledger(result.state)
    const known = new Set([...result.state.layers.values()].flat().map(layer => layer.chainId))
    const sizeOf = (c: string): number => (known.has(c) ? ledger.size(c) : NaN)
    for (const step of result.steps) expect(step.bytes).toBe(step.freed.reduce((sum, c) => sum + sizeOf(c), 0))
    expect(result.bytes).toBe(freed.reduce((sum, c) => sum + sizeOf(c), 0))
    expect(result.bytes).toBe(result.steps.reduce((sum, s) => sum + s.bytes, 0))
  })

  // The action plans on the lists alone and reads layers only once something is to be deleted.
  test.each(SELECTIONS)(
    '%s: pricing the plan made without layers gives the plan made with them, on every store',
    (_, options) => {
      for (const store of ['graphdriver', 'containerd', 'podman'] as const) {
        const withLayers: EngineState = { ...busy(), store }
        const expected = run(withLayers, options)
        const unpriced = run({ ...withLayers, layers: new Map() }, options)
        expect(unpriced.bytes).toBe(0)
        const priced = price(unpriced, withLayers.layers)
        expect(priced.steps).toEqual(expected.steps)
        expect(priced.bytes).toBe(expected.bytes)
        expect(priced.storage).toEqual(expected.storage)
        expect(priced.state.layers).toBe(withLayers.layers)
      }
    }
  )

  test("prune all on the busy engine frees everything but the stopped container's layers", () => {
    const result = run(busy(), { prune: 'all' })
    expect(result.bytes).toBe(200 + 30 + 3 + 4 + 5 + 6)
  })

  test("the ledger of the plan's state prices every known layer, and frees each once its last holder goes", () => {
    const ledger = new Ledger(run(busy(), {}).state)
    expect(ledger.size('B')).toBe(1000)
    expect(ledger.size('H')).toBe(7)
    expect(['B', 'M', 'A', 'S', 'T', 'D', 'E', 'H'].every(c => ledger.size(c) > 0)).toBe(true)
    expect(ledger.isImage(APP) && !ledger.isImage('B')).toBe(true)
    expect(ledger.release(APP)).toEqual(['A'])
    expect(ledger.release(APP)).toEqual([])
    expect(ledger.release(id('5c'))).toEqual([])
  })

  test("every step targets a full ID or a reference the engine listed, never the user's raw text for IDs", () => {
    const state = busy()
    const listed = new Set(state.images.flatMap(i => [...i.tags, ...i.digests]))
    const result = run(state, {
      refs: ['app:1', hex(APP).slice(0, 4), `sha256:${hex(id('1a')).slice(0, 8)}`, 'docker.io/library/twin:1'],
      prune: 'all',
      force: true
    })
    expect(result.steps.length).toBeGreaterThan(3)
    for (const step of result.steps) expect(FULL_ID.test(step.target) || listed.has(step.target)).toBe(true)
    expect(result.steps.map(s => s.target)).toContain('twin:1')
  })
})
