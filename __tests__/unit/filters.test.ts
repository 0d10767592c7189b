import {
  FilterError,
  NO_FILTERS,
  imageRefs,
  parseFilters,
  passes,
  type Anchors,
  type Filters
} from '../../src/plan/filters'
import type { Image } from '../../src/plan/model'

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const HOUR = 3_600_000
const DAY = 24 * HOUR
const NO_ANCHORS: Anchors = { before: [], since: [] }

function image(overrides: Partial<Image> = {}): Image {
  return {
    id: `sha256:${'1'.repeat(64)}`,
    parentId: '',
    tags: ['app:1'],
    digests: [],
    created: NOW - 2 * DAY,
    size: 1000,
    labels: {},
    ...overrides
  }
}

function filters(overrides: Partial<Filters> = {}): Filters {
  return { ...NO_FILTERS, label: [], notLabel: [], before: [], since: [], reference: [], until: [], ...overrides }
}

function parsed(...lines: string[]): Filters {
  return parseFilters(lines, NOW)
}

describe('parseFilters: accepted forms', () => {
  test('no lines give no filters', () => {
    expect(parsed()).toEqual(NO_FILTERS)
  })

  test.each([
    ['dangling=true', true],
    ['dangling=1', true],
    ['dangling=false', false],
    ['dangling=0', false],
    ['dangling=TRUE', true],
    ['dangling=False', false]
  ])('%s → dangling %s', (line, value) => {
    expect(parsed(line).dangling).toBe(value)
  })

  test('repeating the same dangling value is fine', () => {
    expect(parsed('dangling=true', 'dangling=1').dangling).toBe(true)
  })

  test('label and label! keep their values in order', () => {
    const result = parsed('label=a', 'label=b=2', 'label!=c', 'label!=d=4', 'label=e=x=y')
    expect(result.label).toEqual(['a', 'b=2', 'e=x=y'])
    expect(result.notLabel).toEqual(['c', 'd=4'])
  })

  test('before and since take IDs and references', () => {
    const full = `sha256:${'a'.repeat(64)}`
    const result = parsed('before=app:1', `before=${full}`, 'since=4f2a9c1b', 'since=ghcr.io/org/app:2')
    expect(result.before).toEqual(['app:1', full])
    expect(result.since).toEqual(['4f2a9c1b', 'ghcr.io/org/app:2'])
  })

  test('reference takes glob patterns', () => {
    const result = parsed('reference=app:*', 'reference=*/cache:pr-*')
    expect(result.reference).toHaveLength(2)
    expect(result.reference[0].test('app:1')).toBe(true)
    expect(result.reference[0].test('org/app:1')).toBe(false)
    expect(result.reference[1].test('org/cache:pr-1')).toBe(true)
  })

  test.each([
    ['until=24h', NOW - DAY],
    ['until=7d', NOW - 7 * DAY],
    ['until=1700000000', 1_700_000_000_000],
    ['until=2024-01-15T10:00:00Z', Date.UTC(2024, 0, 15, 10)]
  ])('%s → cut-off %d', (line, cutoff) => {
    expect(parsed(line).until).toEqual([cutoff])
  })

  test('every other list stays empty when one key is given', () => {
    expect(parsed('label=a')).toEqual(filters({ label: ['a'] }))
  })
})

describe('parseFilters: rejected forms', () => {
  test.each([
    ['colour=red'],
    ['Label=a'],
    ['labels=a'],
    ['=a'],
    ['label'],
    ['label='],
    ['label!='],
    ['label!'],
    ['label==v'],
    ['dangling'],
    ['dangling='],
    ['dangling=maybe'],
    ['dangling=yes'],
    ['before='],
    ['before=app:*'],
    ['since=ap?'],
    ['before=App:1'],
    ['since=../x'],
    ['reference='],
    ['reference=a b'],
    ['reference=x#'],
    ['until='],
    ['until=banana'],
    ['until=-1h']
  ])('%j throws', line => {
    expect(() => parsed(line)).toThrow(FilterError)
  })

  test('dangling=true together with dangling=false throws', () => {
    expect(() => parsed('dangling=true', 'dangling=false')).toThrow(/dangling/)
    expect(() => parsed('dangling=0', 'dangling=1')).toThrow(/dangling/)
  })

  test('the message names the offending line, and the first bad line wins', () => {
    expect(() => parsed('label=ok', 'colour=red', 'until=banana')).toThrow('"colour=red"')
  })

  test('the message for an unknown key lists the accepted keys', () => {
    expect(() => parsed('colour=red')).toThrow(/dangling, label, label!, before, since, reference, until/)
  })
})

describe('passes', () => {
  test('no filters pass every image', () => {
    expect(passes(image(), NO_FILTERS, NO_ANCHORS)).toBe(true)
  })

  test.each<[boolean, string[], boolean]>([
    [true, [], true],
    [true, ['app:1'], false],
    [false, [], false],
    [false, ['app:1'], true]
  ])('dangling=%s with tags %j → %s', (dangling, tags, expected) => {
    expect(passes(image({ tags }), filters({ dangling }), NO_ANCHORS)).toBe(expected)
  })

  test('an image with only digest references is dangling (it has no tag)', () => {
    const digestOnly = image({ tags: [], digests: [`app@sha256:${'d'.repeat(64)}`] })
    expect(passes(digestOnly, filters({ dangling: true }), NO_ANCHORS)).toBe(true)
    expect(passes(digestOnly, filters({ dangling: false }), NO_ANCHORS)).toBe(false)
  })

  describe('label: every value must match (AND)', () => {
    test.each<[string[], Record<string, string>, boolean]>([
      [['a'], { a: '' }, true],
      [['a'], { b: '1' }, false],
      [['a=1'], { a: '1' }, true],
      [['a=1'], { a: '2' }, false],
      [['a='], { a: '' }, true],
      [['a='], { a: 'x' }, false],
      [['a', 'b=2'], { a: 'x', b: '2' }, true],
      [['a', 'b=2'], { a: 'x' }, false],
      [['a', 'b=2'], { a: 'x', b: '3' }, false],
      [['x=a=b'], { x: 'a=b' }, true],
      [['toString'], {}, false],
      [['constructor'], {}, false]
    ])('%j on %j → %s', (label, labels, expected) => {
      expect(passes(image({ labels }), filters({ label }), NO_ANCHORS)).toBe(expected)
    })
  })

  describe('label!: an image is out only when it matches every value (engine prune semantics)', () => {
    test.each<[string[], Record<string, string>, boolean]>([
      [['keep'], {}, true],
      [['keep'], { keep: '' }, false],
      [['keep=yes'], { keep: 'no' }, true],
      [['keep=yes'], { keep: 'yes' }, false],
      [['a', 'b'], { a: '1' }, true],
      [['a', 'b'], { b: '1' }, true],
      [['a', 'b'], { a: '1', b: '1' }, false],
      [['a=1', 'b=2'], { a: '1', b: '3' }, true]
    ])('%j on %j → %s', (notLabel, labels, expected) => {
      expect(passes(image({ labels }), filters({ notLabel }), NO_ANCHORS)).toBe(expected)
    })
  })

  test('label and label! combine', () => {
    const f = filters({ label: ['team=ci'], notLabel: ['pin'] })
    expect(passes(image({ labels: { team: 'ci' } }), f, NO_ANCHORS)).toBe(true)
    expect(passes(image({ labels: { team: 'ci', pin: '' } }), f, NO_ANCHORS)).toBe(false)
    expect(passes(image({ labels: { team: 'web' } }), f, NO_ANCHORS)).toBe(false)
  })

  describe('until: created before a cut-off; several cut-offs are ORed', () => {
    test.each<[number[], number, boolean]>([
      [[NOW - DAY], NOW - 2 * DAY, true],
      [[NOW - DAY], NOW - HOUR, false],
      [[NOW - 3 * DAY, NOW - DAY], NOW - 2 * DAY, true],
      [[NOW - 3 * DAY, NOW - 2.5 * DAY], NOW - 2 * DAY, false]
    ])('until %j, created %d → %s', (until, created, expected) => {
      expect(passes(image({ created }), filters({ until }), NO_ANCHORS)).toBe(expected)
    })
  })

  describe('before / since compare creation times with the anchors', () => {
    const t = NOW - 5 * DAY
    test.each<[Anchors, number, boolean]>([
      [{ before: [t], since: [] }, t - HOUR, true],
      [{ before: [t], since: [] }, t + HOUR, false],
      [{ before: [t], since: [] }, t, false],
      [{ before: [], since: [t] }, t + HOUR, true],
      [{ before: [], since: [t] }, t - HOUR, false],
      [{ before: [], since: [t] }, t, false],
      [{ before: [t + DAY], since: [t - DAY] }, t, true],
      [{ before: [t + DAY], since: [t - DAY] }, t + 2 * DAY, false],
      [{ before: [t - DAY, t + DAY], since: [] }, t, true]
    ])('anchors %j, created %d → %s', (anchors, created, expected) => {
      expect(passes(image({ created }), NO_FILTERS, anchors)).toBe(expected)
    })
  })

  describe('reference: patterns ORed, matched against every tag and digest', () => {
    const refs = (...lines: string[]): Filters => parsed(...lines.map(line => `reference=${line}`))
    test.each<[string[], Partial<Image>, boolean]>([
      [['app:*'], { tags: ['app:1'] }, true],
      [['app:*'], { tags: ['db:1'] }, false],
      [['app:*', 'db:*'], { tags: ['db:1'] }, true],
      [['app:*'], { tags: ['db:1', 'app:2'] }, true],
      [['app'], { tags: ['app:1'] }, true],
      [['*/cache:pr-*'], { tags: ['org/cache:pr-12'] }, true],
      [['*/cache:pr-*'], { tags: ['a/b/cache:pr-1'] }, false],
      [['app:*'], { tags: [] }, false],
      [['app'], { tags: [], digests: [`app@sha256:${'d'.repeat(64)}`] }, true]
    ])('%j on %j → %s', (patterns, overrides, expected) => {
      expect(passes(image(overrides), refs(...patterns), NO_ANCHORS)).toBe(expected)
    })
  })

  test('different keys are ANDed', () => {
    const f = parsed('dangling=false', 'label=team=ci', 'reference=app:*', 'until=24h')
    const good = image({ tags: ['app:1'], labels: { team: 'ci' }, created: NOW - 2 * DAY })
    expect(passes(good, f, NO_ANCHORS)).toBe(true)
    expect(passes({ ...good, tags: ['db:1'] }, f, NO_ANCHORS)).toBe(false)
    expect(passes({ ...good, labels: {} }, f, NO_ANCHORS)).toBe(false)
    expect(passes({ ...good, created: NOW - HOUR }, f, NO_ANCHORS)).toBe(false)
    expect(passes({ ...good, tags: [] }, f, NO_ANCHORS)).toBe(false)
  })
})

describe('imageRefs', () => {
  test('parses tags and digests, skipping what the engine lists but is no reference', () => {
    const refs = imageRefs(
      image({ tags: ['app:1', '<none>:<none>'], digests: [`app@sha256:${'d'.repeat(64)}`, '<none>@<none>'] })
    )
    expect(refs.map(r => r.name)).toEqual(['docker.io/library/app', 'docker.io/library/app'])
    expect(refs[0].tag).toBe('1')
    expect(refs[1].digest).toBe(`sha256:${'d'.repeat(64)}`)
  })
})
