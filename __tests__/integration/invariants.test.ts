import { beforeAll, describe, expect, test } from '@jest/globals'
import { BUSYBOX } from '../../testbed/scene'
import { expectReclaimed, parsed, storage, type Storage } from './checks'
import { bed, runAction } from './harness'

const { scene } = bed()
const SCENES = Number(process.env.RECLAIM_INVARIANT_SCENES ?? 6)
const SEED = Number(process.env.RECLAIM_INVARIANT_SEED ?? Date.now() % 1_000_000)
const YEARS_AGO = '2020-06-01T00:00:00Z'

/** A small seeded generator, so that a failing scene can be built again from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Picture {
  ids: Set<string>
  tags: Map<string, string>
  storage: Storage
}

async function picture(): Promise<Picture> {
  const images = await scene.images()
  return {
    ids: new Set(images.map(i => i.id)),
    tags: new Map(images.flatMap(i => i.tags.map(tag => [tag, i.id] as [string, string]))),
    storage: await storage(scene)
  }
}

/** Random images over shared bases, extra tags, an old image, and running and stopped containers. */
async function buildScene(rand: () => number, n: number): Promise<{ running: Set<string>; old: Set<string> }> {
  const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)]
  // Containers can only run on images that descend from busybox.
  const bases = [
    { tag: 'scratch', runnable: false },
    { tag: BUSYBOX, runnable: true }
  ]
  const running = new Set<string>()
  const old = new Set<string>([await scene.old(`s${n}-old:1`, YEARS_AGO, 5000)])
  for (let i = 0; i < 5 + Math.floor(rand() * 4); i++) {
    const repo = pick(['app', 'cache', 'tool'])
    const tags = [`s${n}-${repo}:${i}`, ...(rand() < 0.3 ? [`s${n}-${repo}:extra${i}`] : [])]
    const base = pick(bases)
    const id = await scene.build(tags, {
      from: base.tag,
      bytes: 2000 + Math.floor(rand() * 20_000),
      labels: rand() < 0.5 ? { team: pick(['a', 'b']) } : undefined
    })
    if (rand() < 0.5) bases.push({ tag: tags[0], runnable: base.runnable })
    const roll = base.runnable ? rand() : 1
    if (roll < 0.15) {
      await scene.runContainer(tags[0], { running: true })
      running.add(id)
    } else if (roll < 0.3) {
      await scene.runContainer(tags[0], { running: false })
    }
  }
  if (rand() < 0.5) await scene.dangling(`s${n}-loose`)
  return { running, old }
}

function randomInputs(rand: () => number, n: number): Record<string, string> {
  const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)]
  const inputs: Record<string, string> = {}
  if (rand() < 0.6)
    inputs.refs = [`s${n}-${pick(['app', 'cache', 'tool'])}:*`, `s${n}-old:1`]
      .slice(0, 1 + Math.floor(rand() * 2))
      .join('\n')
  if (rand() < 0.6) inputs.prune = pick(['dangling', 'all'])
  if (rand() < 0.4) inputs.keep = `s${n}-${pick(['app', 'cache', 'tool'])}:*`
  if (rand() < 0.3) inputs['keep-duration'] = '1h'
  if (rand() < 0.3) inputs.filters = pick(['label=team=a', 'label!=team', 'dangling=false', 'until=24h'])
  if (rand() < 0.4) inputs.force = 'true'
  if (rand() < 0.2) inputs['no-prune'] = 'true'
  if (rand() < 0.3) inputs['dry-run'] = 'true'
  return inputs
}

const keepPattern = (glob: string): RegExp => new RegExp(`^${glob.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*')}$`)

describe('invariants over random scenes on the real engine', () => {
  beforeAll(() => {
    // Printed first, so that a failing run can be replayed with RECLAIM_INVARIANT_SEED.
    process.stdout.write(`invariants: seed ${SEED}, ${SCENES} scenes\n`)
  })

  test.each(Array.from({ length: SCENES }, (_, n) => n))(`scene %i (seed ${SEED})`, async n => {
    await scene.wipe({ keepBusybox: true })
    const rand = random(SEED * 100 + n)
    const { running, old } = await buildScene(rand, n)
    const inputs = randomInputs(rand, n)
    const before = await picture()
    const run = await runAction(inputs)
    const after = await picture()
    const context = `seed ${SEED}, scene ${n}, inputs ${JSON.stringify(inputs)}`
    expect({ context, code: run.code }).toEqual({ context, code: 0 })
    const out = parsed(run)

    const gone = [...before.ids].filter(id => !after.ids.has(id)).sort()
    const untagged = [...before.tags.keys()].filter(tag => after.tags.get(tag) !== before.tags.get(tag)).sort()
    if (inputs['dry-run']) {
      expect({ context, gone, untagged }).toEqual({ context, gone: [], untagged: [] })
      return
    }
    expect({ context, deleted: [...out.deleted].sort() }).toEqual({ context, deleted: gone })
    expect({ context, untagged: out.untagged.filter(ref => !ref.includes('@')).sort() }).toEqual({ context, untagged })
    for (const id of running) expect({ context, id, gone: gone.includes(id) }).toEqual({ context, id, gone: false })
    for (const tag of untagged)
      expect({ context, tag, running: running.has(before.tags.get(tag) ?? '') }).toEqual({
        context,
        tag,
        running: false
      })
    if (inputs.keep) {
      const kept = keepPattern(inputs.keep)
      const keptIds = new Set([...before.tags].filter(([tag]) => kept.test(tag)).map(([, id]) => id))
      for (const id of keptIds) expect({ context, id, gone: gone.includes(id) }).toEqual({ context, id, gone: false })
      for (const tag of untagged)
        expect({ context, tag, kept: keptIds.has(before.tags.get(tag) ?? '') }).toEqual({ context, tag, kept: false })
    }
    if (inputs['keep-duration']) {
      for (const id of gone) expect({ context, id, old: old.has(id) }).toEqual({ context, id, old: true })
    }
    // A forced removal may leave a stopped container holding layers that LayersSize no longer counts.
    expectReclaimed(out.bytes, before.storage, after.storage, gone.length, {
      containerKeepsLayers: Boolean(inputs.force)
    })
  })
})
