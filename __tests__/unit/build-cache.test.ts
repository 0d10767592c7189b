import { describe, expect, test } from '@jest/globals'
import { main } from '../../src/action/main'
import { post } from '../../src/action/post'
import { run } from '../../src/cli/run'
import type { CacheRecord } from '../../src/plan/model'
import { FakeEngine } from '../fakes/engine'
import { stepsInProcess } from '../fakes/runner'

/**
 * `build-cache` through the entries, against the fake engine's build cache, which prunes by
 * BuildKit's rules and whose records are shared while the image that holds their data is there.
 */

const step = stepsInProcess()
const MB = 1_000_000
const HOUR = 3_600_000

function record(engine: FakeEngine, id: string, fields: Partial<CacheRecord> = {}): CacheRecord {
  const made: CacheRecord = {
    id,
    type: 'regular',
    description: `step ${id}`,
    inUse: false,
    shared: false,
    size: MB,
    createdAt: engine.now() - 10 * HOUR,
    lastUsedAt: engine.now() - 5 * HOUR,
    parents: [],
    ...fields
  }
  engine.cache.push(made)
  return made
}

const cacheIds = (engine: FakeEngine): string[] => engine.cache.map(r => r.id).sort()

describe('max-storage with build-cache: images and records in one least-recently-used order', () => {
  /** An image used 8 hours ago, a record last used 9 hours ago and one used 2 hours ago, 1 MB each. */
  function engineWithBoth(): { engine: FakeEngine; app: string } {
    const engine = new FakeEngine()
    const now = engine.now()
    // Built and tagged 8 hours ago: the engine's clock is set back for the build.
    engine.now = () => now - 8 * HOUR
    const app = engine.build('app:1', { bytes: MB })
    engine.now = () => now
    record(engine, 'old', { lastUsedAt: engine.now() - 9 * HOUR })
    record(engine, 'new', { lastUsedAt: engine.now() - 2 * HOUR })
    return { engine, app }
  }

  test('the older record goes before the newer image, by an anchored id, and no further than the target', async () => {
    const { engine, app } = engineWithBoth()
    const dry = await step({ 'max-storage': String(2 * MB), 'build-cache': 'all', 'dry-run': 'true' }, () =>
      main(engine.open)
    )
    expect(engine.cachePrunes).toEqual([])
    const run = await step({ 'max-storage': String(2 * MB), 'build-cache': 'all' }, () => main(engine.open))
    expect(run.failed).toBe(false)
    expect(engine.idsNow()).toEqual([app])
    expect(cacheIds(engine)).toEqual(['new'])
    expect(engine.cachePrunes).toEqual([{ all: true, id: '^old$' }])
    for (const outputs of [dry.outputs, run.outputs]) {
      expect(outputs).toMatchObject({
        'reclaimed-bytes': String(MB),
        'build-cache-reclaimed-bytes': String(MB),
        'storage-before': String(3 * MB),
        'storage-after': String(2 * MB),
        'target-met': 'true'
      })
    }
    expect(run.summary).toContain('Build cache (<code>all</code>) (storage target: least recently used first)')
    expect(run.summary).toContain('image storage and build cache at most')
  })

  test('a tighter target takes the image next, then stops: the newest record stays', async () => {
    const { engine } = engineWithBoth()
    const run = await step({ 'max-storage': String(MB), 'build-cache': 'all' }, () => main(engine.open))
    expect(engine.idsNow()).toEqual([])
    expect(cacheIds(engine)).toEqual(['new'])
    expect(run.outputs).toMatchObject({ 'reclaimed-bytes': String(2 * MB), 'build-cache-reclaimed-bytes': String(MB) })
    expect(run.summary).toContain('Deleted (storage target: least recently used first)')
  })

  test('without build-cache the target is about images: the cache is neither measured nor touched', async () => {
    const { engine } = engineWithBoth()
    const run = await step({ 'max-storage': '0' }, () => main(engine.open))
    expect(engine.idsNow()).toEqual([])
    expect(cacheIds(engine)).toEqual(['new', 'old'])
    expect(engine.cachePrunes).toEqual([])
    expect(run.outputs).toMatchObject({ 'storage-before': String(MB), 'build-cache-reclaimed-bytes': '0' })
  })
})

describe('build-cache in the main step', () => {
  test('all, alone: one prune of every unused record, no image touched, and only unshared records count', async () => {
    const engine = new FakeEngine()
    const app = engine.build('app:1', { bytes: 2 * MB })
    engine.dangling('old')
    const ids = engine.idsNow()
    record(engine, 'layer', { size: 2 * MB })
    engine.cacheHolders.set('layer', app)
    record(engine, 'context', { type: 'source.local', size: 300_000 })
    record(engine, 'busy', { inUse: true })
    const run = await step({ 'build-cache': 'all' }, () => main(engine.open))
    expect(run.failed).toBe(false)
    expect(engine.idsNow()).toEqual(ids)
    expect(engine.removals).toEqual([])
    expect(engine.cachePrunes).toEqual([{ all: true, until: undefined }])
    expect(cacheIds(engine)).toEqual(['busy'])
    expect(run.outputs).toMatchObject({ 'reclaimed-bytes': '300000', 'build-cache-reclaimed-bytes': '300000' })
    expect(run.summary).toContain('<h2>Docker images and build cache: reclaimed 300kB</h2>')
    expect(run.summary).toContain('<b>2</b> records removed, <b>300,000 bytes</b> freed.')
    expect(run.summary).toContain('1 of them held data an image still uses')
    expect(run.log).toMatch(/Build cache \(all\): 3 records, removed 2, 300kB \(300000 bytes\); 1 of them hold/)
    expect(run.log).toContain('build-cache alone: no image is read or removed.')
  })

  test('after the images: a record whose data only a removed image held counts, and reclaimed-bytes adds both', async () => {
    const engine = new FakeEngine()
    const app = engine.build('app:1', { bytes: MB })
    record(engine, 'layer', { size: MB })
    engine.cacheHolders.set('layer', app)
    const run = await step({ refs: 'app:1', 'build-cache': 'dangling' }, () => main(engine.open))
    expect(engine.idsNow()).toEqual([])
    expect(engine.cache).toEqual([])
    expect(engine.cachePrunes).toEqual([{ all: false, until: undefined }])
    expect(run.outputs).toMatchObject({ 'reclaimed-bytes': String(2 * MB), 'build-cache-reclaimed-bytes': String(MB) })
  })

  test('dangling leaves shared, internal, frontend and in-use records, as docker builder prune does', async () => {
    const engine = new FakeEngine()
    const app = engine.build('app:1')
    record(engine, 'shared')
    engine.cacheHolders.set('shared', app)
    record(engine, 'internal', { type: 'internal' })
    record(engine, 'frontend', { type: 'frontend' })
    record(engine, 'busy', { inUse: true })
    record(engine, 'mount', { type: 'exec.cachemount', size: 5 })
    const run = await step({ 'build-cache': 'dangling' }, () => main(engine.open))
    expect(cacheIds(engine)).toEqual(['busy', 'frontend', 'internal', 'shared'])
    expect(engine.tagsNow()).toEqual(['app:1'])
    expect(run.outputs['build-cache-reclaimed-bytes']).toBe('5')
  })

  test('keep-duration and until judge records by last use and reach the engine as until; never-used records go', async () => {
    const engine = new FakeEngine()
    record(engine, 'recent', { lastUsedAt: engine.now() - HOUR })
    record(engine, 'old', { lastUsedAt: engine.now() - 5 * HOUR, size: 7 })
    record(engine, 'unused', { lastUsedAt: undefined, size: 11 })
    const dry = await step({ 'build-cache': 'all', 'keep-duration': '2h', 'dry-run': 'true' }, () => main(engine.open))
    const run = await step({ 'build-cache': 'all', 'keep-duration': '2h' }, () => main(engine.open))
    expect(cacheIds(engine)).toEqual(['recent'])
    expect(engine.cachePrunes).toHaveLength(1)
    expect(engine.cachePrunes[0].until).toBeGreaterThanOrEqual(2 * HOUR)
    expect(engine.cachePrunes[0].until).toBeLessThan(2 * HOUR + 60_000)
    expect(run.outputs['build-cache-reclaimed-bytes']).toBe('18')
    expect(dry.outputs['build-cache-reclaimed-bytes']).toBe('18')
    const filtered = new FakeEngine()
    record(filtered, 'recent', { lastUsedAt: filtered.now() - HOUR })
    record(filtered, 'old', { lastUsedAt: filtered.now() - 5 * HOUR })
    await step({ 'build-cache': 'all', filters: 'until=3h' }, () => main(filtered.open))
    expect(cacheIds(filtered)).toEqual(['recent'])
  })

  test('dry run: nothing is pruned, the summary says would, and the real run then frees what it predicted', async () => {
    const engine = new FakeEngine()
    const app = engine.build('app:1')
    record(engine, 'a', { size: 123 })
    record(engine, 'b', { parents: ['a'], size: 456 })
    record(engine, 'held', { size: 999 })
    engine.cacheHolders.set('held', app)
    const dry = await step({ 'build-cache': 'all', 'dry-run': 'true' }, () => main(engine.open))
    expect(engine.cachePrunes).toEqual([])
    expect(cacheIds(engine)).toEqual(['a', 'b', 'held'])
    expect(dry.summary).toContain('<b>3</b> records would be removed, <b>579 bytes</b> would be freed.')
    expect(dry.summary).toContain('(dry run)')
    const real = await step({ 'build-cache': 'all' }, () => main(engine.open))
    expect(cacheIds(engine)).toEqual([])
    for (const output of ['reclaimed-bytes', 'build-cache-reclaimed-bytes'])
      expect([output, dry.outputs[output]]).toEqual([output, real.outputs[output]])
    expect(real.outputs['build-cache-reclaimed-bytes']).toBe('579')
  })

  test('Podman keeps no build cache: a notice in the log and the summary, not an error', async () => {
    const engine = new FakeEngine('podman')
    engine.dangling('old')
    const run = await step({ 'build-cache': 'all' }, () => main(engine.open))
    expect(run.failed).toBe(false)
    expect(run.warnings).toEqual([])
    expect(run.errors).toEqual([])
    expect(engine.cachePrunes).toEqual([])
    expect(engine.tagsNow()).toEqual(['old:tmp'])
    expect(engine.idsNow()).toHaveLength(2)
    expect(run.log).toContain('This engine keeps no build cache (Podman builds with Buildah)')
    expect(run.summary).toContain('Build cache: this engine keeps none (Podman')
    expect(run.summary).toContain('<h2>Docker images: reclaimed 0B</h2>')
    expect(run.outputs['build-cache-reclaimed-bytes']).toBe('0')
  })

  test('a bad value ends the step in one sentence naming the input, and nothing is removed', async () => {
    const engine = new FakeEngine()
    engine.dangling('old')
    record(engine, 'a')
    const run = await step({ 'build-cache': 'everything' }, () => main(engine.open))
    expect(run.failed).toBe(true)
    expect(run.errors).toEqual(['Input "build-cache" must be dangling or all (or empty), not "everything".'])
    expect(engine.opened).toBe(0)
    expect(cacheIds(engine)).toEqual(['a'])
  })

  test('without build-cache the cache is left alone, and the output is 0', async () => {
    const engine = new FakeEngine()
    record(engine, 'a')
    const run = await step({ prune: 'all' }, () => main(engine.open))
    expect(cacheIds(engine)).toEqual(['a'])
    expect(run.outputs['build-cache-reclaimed-bytes']).toBe('0')
    expect(run.summary).not.toContain('Build cache')
  })
})

describe('build-cache with scope: job', () => {
  test('the post step removes only the records the job made, one anchored id filter each, children first', async () => {
    const engine = new FakeEngine()
    record(engine, 'before', { size: 1 })
    const inputs = { scope: 'job', 'build-cache': 'all' }
    const recorded = await step(inputs, () => main(engine.open))
    expect(JSON.parse(recorded.state.buildCache)).toEqual(['before'])
    record(engine, 'parent', { size: 20, parents: ['before'] })
    record(engine, 'child', { size: 300, parents: ['parent'] })
    record(engine, 'context', { size: 4000, type: 'source.local' })
    const removed = await step(inputs, () => post(engine.open), recorded.state)
    expect(removed.failed).toBe(false)
    expect(cacheIds(engine)).toEqual(['before'])
    expect(engine.cachePrunes).toEqual([
      { all: true, id: '^child$' },
      { all: true, id: '^context$' },
      { all: true, id: '^parent$' }
    ])
    expect(removed.outputs['build-cache-reclaimed-bytes']).toBe('4320')
  })

  test('an ID is matched whole: a record whose ID contains another one stays', async () => {
    const engine = new FakeEngine()
    record(engine, 'abc123')
    const inputs = { scope: 'job', 'build-cache': 'all' }
    const recorded = await step(inputs, () => main(engine.open))
    record(engine, 'abc')
    await step(inputs, () => post(engine.open), recorded.state)
    expect(cacheIds(engine)).toEqual(['abc123'])
  })

  test('in a dry run the post step predicts the same and prunes nothing', async () => {
    const engine = new FakeEngine()
    const inputs = { scope: 'job', 'build-cache': 'all', 'dry-run': 'true' }
    const recorded = await step(inputs, () => main(engine.open))
    record(engine, 'mine', { size: 42 })
    const dry = await step(inputs, () => post(engine.open), recorded.state)
    expect(engine.cachePrunes).toEqual([])
    expect(dry.outputs['build-cache-reclaimed-bytes']).toBe('42')
  })

  test('with no record of the cache from the main step the post step leaves it, and says why', async () => {
    const engine = new FakeEngine()
    const recorded = await step({ scope: 'job' }, () => main(engine.open))
    expect(recorded.state.buildCache).toBeUndefined()
    record(engine, 'unknown')
    const run = await step({ scope: 'job', 'build-cache': 'all' }, () => post(engine.open), recorded.state)
    expect(cacheIds(engine)).toEqual(['unknown'])
    expect(run.warnings).toEqual([expect.stringContaining('The main step recorded no build cache')])
  })
})

describe('build-cache on the command line', () => {
  test('--build-cache all: the JSON and the text carry the cache', async () => {
    const engine = new FakeEngine()
    record(engine, 'a', { size: 77 })
    const chunks = { out: '', err: '' }
    const io = {
      stdout: { write: (c: string) => ((chunks.out += c), true) },
      stderr: { write: (c: string) => ((chunks.err += c), true) }
    } as unknown as Parameters<typeof run>[1]
    expect(await run(['--build-cache', 'all', '--json'], io, engine.open)).toBe(0)
    expect(JSON.parse(chunks.out)).toMatchObject({ reclaimedBytes: 77, buildCacheReclaimedBytes: 77 })
    record(engine, 'b', { size: 5 })
    chunks.out = ''
    expect(await run(['--build-cache', 'all', '--dry-run'], io, engine.open)).toBe(0)
    expect(chunks.out).toContain('Build cache (all): 1 records would be removed, 5B (5 bytes).')
    chunks.err = ''
    expect(await run(['--build-cache', 'some'], io, engine.open)).toBe(2)
    expect(chunks.err).toBe(
      'docker-image-reclaim: --build-cache must be dangling or all (or empty), not "some". See --help.\n'
    )
  })
})

describe("BuildKit's holds on the images its builds used (containerd store)", () => {
  const endsHolds = { all: true, id: '^$' }

  test('a run that removed images sends a prune that matches no record, and the cache stays', async () => {
    const engine = new FakeEngine('containerd')
    engine.build('app:1', { bytes: MB })
    record(engine, 'kept')
    const run = await step({ refs: 'app:1' }, () => main(engine.open))
    expect(run.failed).toBe(false)
    expect(engine.idsNow()).toEqual([])
    expect(engine.cachePrunes).toEqual([endsHolds])
    expect(cacheIds(engine)).toEqual(['kept'])
  })

  test('a dry run, a run that removed nothing and overlay2 send none', async () => {
    const containerd = new FakeEngine('containerd')
    containerd.build('app:1', { bytes: MB })
    await step({ refs: 'app:1', 'dry-run': 'true' }, () => main(containerd.open))
    await step({ refs: 'other:1' }, () => main(containerd.open))
    expect(containerd.cachePrunes).toEqual([])
    const overlay2 = new FakeEngine()
    overlay2.build('app:1', { bytes: MB })
    await step({ refs: 'app:1' }, () => main(overlay2.open))
    expect(overlay2.idsNow()).toEqual([])
    expect(overlay2.cachePrunes).toEqual([])
  })

  test('an engine that refuses that prune still ends the step with what it removed', async () => {
    const engine = new FakeEngine('containerd')
    engine.build('app:1', { bytes: MB })
    const prune = engine.pruneBuildCache.bind(engine)
    engine.pruneBuildCache = async options => {
      await prune(options)
      throw new Error('build cache is not supported')
    }
    const run = await step({ refs: 'app:1' }, () => main(engine.open))
    expect(run.failed).toBe(false)
    expect(engine.idsNow()).toEqual([])
    expect(run.log).toContain("BuildKit's holds on the images its builds used stay until they run out")
  })
})
