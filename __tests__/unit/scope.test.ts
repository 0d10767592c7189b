import { NO_FILTERS } from '../../src/plan/filters'
import { plan, type Plan, type Selection } from '../../src/plan/plan'
import { parseRefSpec, type RefSpec } from '../../src/plan/reference'
import type { EngineState, Image, Layer, Snapshot } from '../../src/plan/model'

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const id = (prefix: string): string => `sha256:${prefix.padEnd(64, '0')}`

function image(prefix: string, tags: string[], layers: [string, number][], parent = ''): Image & { chain: Layer[] } {
  return {
    id: id(prefix),
    parentId: parent,
    tags,
    digests: [],
    created: NOW - 60_000,
    size: layers.reduce((sum, [, size]) => sum + size, 0),
    labels: {},
    chain: layers.map(([chainId, size]) => ({ chainId, size }))
  }
}

function state(images: ReturnType<typeof image>[]): EngineState {
  return { images, containers: [], layers: new Map(images.map(i => [i.id, i.chain])) }
}

/** What the main step recorded: the given images with the tags they had then. */
function snapshot(entries: [string, string[]][]): Snapshot {
  return new Map(entries.map(([prefix, refs]) => [id(prefix), new Set(refs)]))
}

function selection(preexisting: Snapshot, extra: Partial<Selection> = {}): Selection {
  return {
    refs: [],
    keep: [],
    filters: NO_FILTERS,
    prune: 'all',
    force: false,
    noPrune: false,
    preexisting,
    untagAdded: true,
    ...extra
  }
}

const spec = (text: string): RefSpec => parseRefSpec(text) as RefSpec

describe('job scope in the planner', () => {
  const base = image('b', ['base:1'], [['L1', 100]])
  const child = image(
    'c',
    ['child:1'],
    [
      ['L1', 100],
      ['L2', 30]
    ],
    base.id
  )
  const older = image('d', ['old:1', 'old:job'], [['L3', 50]])
  /** The plan for base, child and older, where the main step saw base:1 and old:1 only. */
  const planAfterMain = (extra: Partial<Selection> = {}): Plan =>
    plan(
      state([base, child, older]),
      selection(
        snapshot([
          ['b', ['base:1']],
          ['d', ['old:1']]
        ]),
        extra
      ),
      NOW
    )

  test('everything the job added goes, the older images stay, and only new layers are counted', () => {
    const planned = planAfterMain()
    expect(planned.steps.map(s => s.target)).toEqual(['old:job', child.id])
    expect(planned.steps.filter(s => s.deleted).map(s => s.imageId)).toEqual([child.id])
    expect(planned.bytes).toBe(30)
  })

  test('an older image whose only tag came from the job keeps it: untagging would delete the image', () => {
    const dangling = image('e', ['retagged:job'], [['L4', 70]])
    const planned = plan(state([dangling]), selection(snapshot([['e', []]])), NOW)
    expect(planned.steps).toEqual([])
    expect(planned.skipped).toEqual([
      expect.objectContaining({
        ref: 'retagged:job',
        reason: 'kept',
        message: expect.stringContaining('would delete it')
      })
    ])
  })

  test('a named ref to an older image is kept, even with force; a new tag on it may go', () => {
    const planned = planAfterMain({
      refs: [spec('old:1'), spec(older.id), spec('old:job')],
      prune: 'none',
      untagAdded: false,
      force: true
    })
    expect(planned.skipped.map(s => [s.ref, s.reason])).toEqual([
      ['old:1', 'kept'],
      [older.id, 'kept']
    ])
    expect(planned.steps.map(s => s.untagged)).toEqual([['old:job']])
  })

  test('patterns skip the references that were there before the job', () => {
    const planned = plan(
      state([older]),
      selection(snapshot([['d', ['old:1']]]), { refs: [spec('old:*')], prune: 'none', untagAdded: false }),
      NOW
    )
    expect(planned.steps.map(s => s.target)).toEqual(['old:job'])
    expect(planned.skipped).toEqual([])
  })

  test('parent pruning stops at an image older than the job', () => {
    const parent = image('f', [], [['L5', 10]])
    const kid = image(
      'g',
      ['kid:1'],
      [
        ['L5', 10],
        ['L6', 20]
      ],
      parent.id
    )
    const planned = plan(state([parent, kid]), selection(snapshot([['f', []]])), NOW)
    expect(planned.steps.map(s => s.imageId)).toEqual([kid.id])
    expect(planned.bytes).toBe(20)
  })
})
