import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from '@jest/globals'
import { parse } from 'yaml'
import { main } from '../../src/action/main'
import type { ImageStore } from '../../src/plan/model'
import { REPO_ROOT } from '../../testbed/runner'
import { FakeEngine } from '../fakes/engine'
import { stepsInProcess } from '../fakes/runner'

/**
 * The main step in this process, against an engine in memory: inputs through INPUT_* variables,
 * outputs and summary read from the runner's files.
 */

const step = stepsInProcess()
const MB = 1_000_000

describe('the main step removes what the inputs name', () => {
  test('refs: the last tag of an image deletes it; the outputs say what left, and the engine agrees', async () => {
    const engine = new FakeEngine()
    const app = engine.build('app:1', { bytes: 2 * MB })
    engine.build('other:1', { bytes: MB })
    const run = await step({ refs: 'app:1' }, () => main(engine.open))
    expect(run.failed).toBe(false)
    expect(engine.tagsNow()).toEqual(['other:1'])
    expect(run.outputs).toMatchObject({
      'reclaimed-bytes': String(2 * MB),
      reclaimed: '2MB',
      deleted: JSON.stringify([app]),
      'deleted-count': '1',
      untagged: JSON.stringify(['app:1']),
      'storage-before': String(3 * MB),
      'storage-after': String(MB),
      skipped: '[]'
    })
  })

  test('a tag of a multi-tagged image is only untagged, and frees nothing', async () => {
    const engine = new FakeEngine()
    const id = engine.build(['app:1', 'app:2'], { bytes: MB })
    const run = await step({ refs: 'app:2' }, () => main(engine.open))
    expect(engine.idsNow()).toEqual([id])
    expect(engine.tagsNow()).toEqual(['app:1'])
    expect(run.outputs).toMatchObject({ 'reclaimed-bytes': '0', deleted: '[]', untagged: '["app:2"]' })
  })

  test.each<ImageStore>(['graphdriver', 'containerd', 'podman'])(
    'on the %s store, a base and its child named together both go, and reclaimed-bytes is what left the disk',
    async store => {
      const engine = new FakeEngine(store)
      engine.build('base:1', { bytes: MB })
      engine.build('child:1', { from: 'base:1', bytes: 300_000 })
      const before = engine.storedBytes()
      const run = await step({ refs: 'base:1 child:1' }, () => main(engine.open))
      expect(run.failed).toBe(false)
      expect(engine.idsNow()).toEqual([])
      expect(Number(run.outputs['reclaimed-bytes'])).toBe(before - engine.storedBytes())
      expect(JSON.parse(run.outputs.deleted)).toHaveLength(2)
    }
  )

  test('prune: dangling (the default) removes only untagged images nothing is built on', async () => {
    const engine = new FakeEngine()
    const dangling = engine.dangling('old')
    const run = await step({}, () => main(engine.open))
    expect(run.outputs.deleted).toBe(JSON.stringify([dangling]))
    expect(engine.tagsNow()).toEqual(['old:tmp'])
  })

  test('prune: all removes unused tagged images too, never the image of a running container', async () => {
    const engine = new FakeEngine()
    const unused = engine.build('unused:1')
    const live = engine.build('live:1')
    engine.run('live:1', { running: true })
    const run = await step({ prune: 'all' }, () => main(engine.open))
    expect(run.failed).toBe(false)
    expect(engine.idsNow()).toEqual([live])
    expect(JSON.parse(run.outputs.deleted)).toEqual([unused])
    expect(JSON.parse(run.outputs.skipped)).toEqual([expect.objectContaining({ ref: 'live:1', reason: 'in-use' })])
  })

  test('dry run: nothing changes, and the outputs predict what the real run then does', async () => {
    const engine = new FakeEngine()
    engine.build('app:1', { bytes: MB })
    engine.build('app:2', { from: 'app:1', bytes: 200_000 })
    engine.dangling('scratch')
    const ids = engine.idsNow()
    const dry = await step({ refs: 'app:2', prune: 'dangling', 'dry-run': 'true' }, () => main(engine.open))
    expect(engine.idsNow()).toEqual(ids)
    expect(engine.removals).toEqual([])
    expect(dry.summary).toContain('(dry run)')
    const real = await step({ refs: 'app:2', prune: 'dangling' }, () => main(engine.open))
    for (const output of ['reclaimed-bytes', 'deleted', 'untagged', 'storage-before', 'storage-after'])
      expect([output, dry.outputs[output]]).toEqual([output, real.outputs[output]])
    expect(Number(real.outputs['reclaimed-bytes'])).toBeGreaterThan(0)
  })

  test('every output action.yml declares is set, even when nothing is removed', async () => {
    const action = parse(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as { outputs: Record<string, unknown> }
    const run = await step({}, () => main(new FakeEngine().open))
    expect(Object.keys(run.outputs).sort()).toEqual(Object.keys(action.outputs).sort())
    expect(run.outputs['reclaimed-bytes']).toBe('0')
  })

  test('the job summary is written unless summary is false', async () => {
    const engine = new FakeEngine()
    engine.build('app:1', { bytes: MB })
    engine.build('app:2', { bytes: MB })
    const written = await step({ refs: 'app:1' }, () => main(engine.open))
    expect(written.summary).toContain('<h2>Docker images: reclaimed 1MB</h2>')
    const quiet = await step({ refs: 'app:2', summary: 'false' }, () => main(engine.open))
    expect(quiet.outputs['deleted-count']).toBe('1')
    expect(quiet.summary).toBe('')
  })
})

describe('how the main step fails', () => {
  test('a named ref that is not there is a warning, and fails the step only with fail-on-error', async () => {
    const engine = new FakeEngine()
    engine.build('app:1')
    engine.build('app:2')
    const lenient = await step({ refs: 'app:1 ghost:1' }, () => main(engine.open))
    expect(lenient.failed).toBe(false)
    expect(lenient.warnings).toContain('ghost:1: not-found: No such image: ghost:1')
    const strict = await step({ refs: 'app:2 ghost:1', 'fail-on-error': 'true' }, () => main(engine.open))
    expect(strict.failed).toBe(true)
    expect(strict.errors).toEqual(['1 of the named refs could not be removed (ghost:1); see the warnings above.'])
    // What could be done was done, and reported, before the step failed.
    expect(engine.tagsNow()).toEqual([])
    expect(strict.outputs.untagged).toBe('["app:2"]')
  })

  test('a bad input fails the step with one sentence naming it, before the engine is reached', async () => {
    const engine = new FakeEngine()
    engine.dangling('old')
    const run = await step({ 'keep-duration': 'banana' }, () => main(engine.open))
    expect(run.failed).toBe(true)
    expect(run.errors).toEqual([
      'Input "keep-duration" must be a duration such as 90m, 24h, 1h30m, 7d or 2w, not "banana".'
    ])
    expect(engine.opened).toBe(0)
    expect(run.outputs).toEqual({})
  })

  test('an engine that is not there fails the step with its sentence', async () => {
    const engine = new FakeEngine()
    engine.goAway()
    const run = await step({}, () => main(engine.open))
    expect(run.failed).toBe(true)
    expect(run.errors).toEqual([
      'Cannot reach the Docker engine at unix:///fake/docker.sock: connect ENOENT /fake/docker.sock.'
    ])
  })

  test('an engine that goes away part-way: what was done is reported, then the step fails', async () => {
    const engine = new FakeEngine()
    const first = engine.build('a:1', { bytes: MB })
    engine.build('b:1', { bytes: MB })
    engine.build('c:1', { bytes: MB })
    engine.goAwayAfterRemovals(1)
    // A request to an engine that is not there is asked again until the timeout: kept short here.
    const run = await step({ refs: 'a:1 b:1 c:1', timeout: '1s' }, () => main(engine.open))
    expect(run.failed).toBe(true)
    expect(run.errors).toEqual([expect.stringMatching(/stopped answering after 1 of 3 requests/)])
    expect(run.outputs).toMatchObject({ deleted: JSON.stringify([first]), 'reclaimed-bytes': String(MB) })
    expect(engine.tagsNow()).toEqual(['b:1', 'c:1'])
  })
})
