import { NO_FILTERS } from '../../src/plan/filters'
import { plan, type Selection } from '../../src/plan/plan'
import { parseRefSpec, type RefSpec } from '../../src/plan/reference'
import type { Container, EngineState, Image } from '../../src/plan/model'

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const id = (prefix: string): string => `sha256:${prefix.padEnd(64, '0')}`
const spec = (text: string): RefSpec => parseRefSpec(text) as RefSpec

function state(images: Partial<Image>[], containers: Container[] = []): EngineState {
  const full = images.map(i => ({
    parentId: '',
    tags: [],
    digests: [],
    created: NOW - 86_400_000,
    size: 10,
    labels: {},
    id: '',
    ...i
  }))
  return { images: full, containers, layers: new Map(full.map(i => [i.id, [{ chainId: `L-${i.id}`, size: 10 }]])) }
}

const selection = (refs: string[]): Selection => ({
  refs: refs.map(spec),
  keep: [],
  filters: NO_FILTERS,
  prune: 'none',
  force: true,
  noPrune: false
})

function forced(engine: EngineState, refs: string[]): boolean[] {
  return plan(engine, selection(refs), NOW).steps.map(step => step.force)
}

describe('force is sent only where the engine would refuse without it', () => {
  const stopped: Container = { id: 'c'.repeat(64), imageId: id('b'), running: false, created: 0 }

  test('an unused image with one tag is removed unforced, by tag or by ID', () => {
    expect(forced(state([{ id: id('a'), tags: ['one:1'] }]), ['one:1'])).toEqual([false])
    expect(forced(state([{ id: id('a'), tags: ['one:1'] }]), [id('a')])).toEqual([false])
  })

  test('an ID with several tags, or an image of a stopped container, is forced', () => {
    expect(forced(state([{ id: id('a'), tags: ['one:1', 'two:1'] }]), [id('a')])).toEqual([true])
    expect(forced(state([{ id: id('b'), tags: ['used:1'] }], [stopped]), ['used:1'])).toEqual([true])
  })

  test('a tag of a multi-tagged image of a stopped container is only untagged, unforced', () => {
    expect(forced(state([{ id: id('b'), tags: ['used:1', 'used:2'] }], [stopped]), ['used:1'])).toEqual([false])
  })
})

describe('on Podman, where forcing deletes the containers too', () => {
  const stopped: Container = { id: 'c'.repeat(64), imageId: id('b'), running: false, created: 0 }

  test('an image a stopped container uses is skipped, never forced', () => {
    const engine = { ...state([{ id: id('b'), tags: ['used:1'] }], [stopped]), store: 'podman' as const }
    const planned = plan(engine, selection(['used:1', id('b')]), NOW)
    expect(planned.steps).toEqual([])
    expect(planned.skipped.map(s => s.reason)).toEqual(['in-use-stopped', 'in-use-stopped'])
    expect(planned.skipped[0].message).toContain('Podman')
  })

  test('an image no container uses is still forced where it must be', () => {
    const engine = { ...state([{ id: id('a'), tags: ['one:1', 'two:1'] }]), store: 'podman' as const }
    expect(forced(engine, [id('a')])).toEqual([true])
  })
})
