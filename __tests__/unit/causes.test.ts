import { NO_FILTERS } from '../../src/plan/filters'
import { plan, type Plan } from '../../src/plan/plan'
import { parseRefSpec, type RefSpec } from '../../src/plan/reference'
import { EngineError, type Engine } from '../../src/engine/engine'
import { execute } from '../../src/run/remove'
import type { Log } from '../../src/run/log'
import type { EngineState, Image, Layer } from '../../src/plan/model'

// Images whose names are the words the planner uses for its own causes: named in refs, each is
// the user's own, and must be reported under its name, never taken for a prune or a parent.
const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const id = (prefix: string): string => `sha256:${prefix.padEnd(64, '0')}`
const spec = (text: string): RefSpec => parseRefSpec(text) as RefSpec

const PRUNE = id('a1')
const PARENT = id('a2')
const BASE = id('b0')
const DANGLING = id('d1')

/** `prune:latest` and `parent:latest`, each alone; an untagged image on an untagged base. */
function state(): EngineState {
  const image = (imageId: string, tags: string[], parentId = ''): Image => ({
    id: imageId,
    parentId,
    tags,
    digests: [],
    created: NOW - 86_400_000,
    size: 10,
    labels: {}
  })
  const images = [
    image(PRUNE, ['prune:latest']),
    image(PARENT, ['parent:latest']),
    image(BASE, []),
    image(DANGLING, [], BASE)
  ]
  const chains: [string, string[]][] = [
    [PRUNE, ['P']],
    [PARENT, ['Q']],
    [BASE, ['B']],
    [DANGLING, ['B', 'D']]
  ]
  const layers = new Map<string, Layer[]>(
    chains.map(([imageId, chain]) => [imageId, chain.map(chainId => ({ chainId, size: 10 }))])
  )
  return { images, containers: [], layers }
}

function planned(): Plan {
  const refs = ['prune', 'parent'].map(spec)
  return plan(state(), { refs, keep: [], filters: NO_FILTERS, prune: 'dangling', force: false, noPrune: false }, NOW)
}

function recorder(): Log & { infos: string[]; warnings: string[] } {
  const infos: string[] = []
  const warnings: string[] = []
  return {
    infos,
    warnings,
    info: message => void infos.push(message),
    warning: message => void warnings.push(message),
    group: (_, work) => work()
  }
}

/** An engine that refuses every removal as a conflict. */
const refusing = {
  endpoint: 'unix:///refusing.sock',
  remove: async (target: string) => {
    throw new EngineError(`conflict: unable to remove ${target}`, 409)
  },
  exists: async () => true
} as unknown as Engine

describe('an image named like one of the planner causes', () => {
  test('is logged as the ref it was removed for, and the prune and the parent as theirs', async () => {
    const log = recorder()
    await execute(refusing, planned(), { dryRun: true, timeoutMs: 1000 }, state().images, log)
    expect(log.infos.filter(line => line.startsWith('Would delete'))).toEqual([
      `Would delete: ${PRUNE} (for prune; 10B freed)`,
      `Would delete: ${PARENT} (for parent; 10B freed)`,
      `Would delete: ${DANGLING} (by prune; 10B freed)`,
      `Would delete: ${BASE} (by parent; 10B freed)`
    ])
  })

  test('is refused under its own name, and the prune and the parent under their images', async () => {
    const execution = await execute(refusing, planned(), { dryRun: false, timeoutMs: 1000 }, state().images, recorder())
    expect(execution.skipped.map(skip => [skip.ref, skip.id, skip.named])).toEqual([
      ['prune', PRUNE, true],
      ['parent', PARENT, true],
      ['d10000000000', DANGLING, false],
      ['b00000000000', BASE, false]
    ])
  })

  test('is warned about under its own name when refused', async () => {
    const log = recorder()
    await execute(refusing, planned(), { dryRun: false, timeoutMs: 1000 }, state().images, log)
    expect(log.warnings).toEqual([
      'prune: conflict: unable to remove prune:latest',
      'parent: conflict: unable to remove parent:latest',
      `d10000000000: conflict: unable to remove ${DANGLING}`,
      `b00000000000: conflict: unable to remove ${BASE}`
    ])
  })
})
