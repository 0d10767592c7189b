import { describe, expect, test } from '@jest/globals'
import { main } from '../../src/action/main'
import { post } from '../../src/action/post'
import { FakeEngine } from '../fakes/engine'
import { stepsInProcess, type StepRun } from '../fakes/runner'

/**
 * `scope: job` as the runner plays it: the main step records, the job's own steps change the
 * engine, and the post step gets the main step's saved state back as STATE_* variables.
 */

const step = stepsInProcess()
const MB = 1_000_000

/** The main step, then the job's own steps, then the post step with what the main step saved. */
async function job(
  engine: FakeEngine,
  inputs: Record<string, string>,
  jobSteps: () => void
): Promise<{ main: StepRun; post: StepRun }> {
  const mainRun = await step(inputs, () => main(engine.open))
  jobSteps()
  const postRun = await step(inputs, () => post(engine.open), mainRun.state)
  return { main: mainRun, post: postRun }
}

describe('scope: job', () => {
  test('the main step only records; the post step removes what the job added and nothing older', async () => {
    const engine = new FakeEngine()
    engine.build('base:1', { bytes: MB })
    engine.build('old:1', { bytes: MB })
    engine.dangling('olddangling')
    const ids = engine.idsNow()
    const tags = engine.tagsNow()
    let before = 0
    const { main: recorded, post: removed } = await job(engine, { scope: 'job' }, () => {
      expect(engine.idsNow()).toEqual(ids)
      engine.tag('old:1', 'old:from-job')
      engine.build('fresh:1', { bytes: 2 * MB })
      engine.build('onbase:1', { from: 'base:1', bytes: MB })
      engine.dangling('jobdangling')
      before = engine.storedBytes()
    })
    expect(recorded.failed).toBe(false)
    expect(recorded.outputs).toEqual({})
    expect(Object.keys(JSON.parse(recorded.state.snapshot) as object).sort()).toEqual(ids)
    expect(removed.failed).toBe(false)
    expect(engine.idsNow()).toEqual(ids)
    expect(engine.tagsNow()).toEqual(tags)
    expect(JSON.parse(removed.outputs.untagged)).toContain('old:from-job')
    expect(Number(removed.outputs['reclaimed-bytes'])).toBe(before - engine.storedBytes())
    expect(Number(removed.outputs['reclaimed-bytes'])).toBe(2 * MB + MB + 2 * 100_000)
    expect(removed.summary).toContain('from what this job added')
  })

  test('refs and prune apply only to what the job added', async () => {
    const engine = new FakeEngine()
    const older = engine.dangling('older')
    engine.build('app:old')
    let fresh = ''
    const { post: removed } = await job(engine, { scope: 'job', refs: 'app:old app:*', prune: 'dangling' }, () => {
      engine.build('app:new')
      fresh = engine.dangling('newer')
    })
    expect(JSON.parse(removed.outputs.skipped)).toEqual([expect.objectContaining({ ref: 'app:old', reason: 'kept' })])
    expect(JSON.parse(removed.outputs.untagged)).toEqual(['app:new'])
    expect(JSON.parse(removed.outputs.deleted)).toContain(fresh)
    expect(engine.idsNow()).toContain(older)
    expect(engine.tagsNow()).toEqual(['app:old', 'newer:tmp', 'older:tmp'])
  })

  test('with no record from the main step the post step warns and removes nothing', async () => {
    const engine = new FakeEngine()
    engine.dangling('unrecorded')
    const ids = engine.idsNow()
    const run = await step({ scope: 'job' }, () => post(engine.open))
    expect(run.failed).toBe(false)
    expect(run.warnings).toEqual([
      'The main step recorded no images (it failed or did not run), so the post step removes nothing.'
    ])
    expect(engine.opened).toBe(0)
    expect(engine.idsNow()).toEqual(ids)
  })

  test('an engine that went away is a warning, never a failed job', async () => {
    const engine = new FakeEngine()
    const { post: run } = await job(engine, { scope: 'job' }, () => engine.goAway())
    expect(run.failed).toBe(false)
    expect(run.warnings).toEqual([
      'Cannot reach the Docker engine at unix:///fake/docker.sock: connect ENOENT /fake/docker.sock. The post step removed nothing more.'
    ])
  })

  test('with scope: all the post step does nothing at all', async () => {
    const engine = new FakeEngine()
    const { post: run } = await job(engine, { prune: 'dangling', 'dry-run': 'true' }, () => engine.dangling('later'))
    expect(run.failed).toBe(false)
    expect(run.log).toBe('')
    expect(engine.opened).toBe(1)
  })

  test('an input the main step failed on is not reported a second time by the post step', async () => {
    const engine = new FakeEngine()
    const { main: first, post: second } = await job(engine, { scope: 'job', 'keep-last': 'some' }, () => undefined)
    expect(first.failed).toBe(true)
    expect(first.errors).toEqual([expect.stringMatching(/^Input "keep-last" must be a whole number/)])
    expect(second.failed).toBe(false)
    expect(second.errors).toEqual([])
    expect(engine.opened).toBe(0)
  })

  test('min-free under a data root that cannot be read here fails the post step with the input sentence', async () => {
    const engine = new FakeEngine()
    engine.root = '/nonexistent/data-root'
    engine.build('old:1')
    const { main: recorded, post: removed } = await job(engine, { scope: 'job', 'min-free': '1TB' }, () =>
      engine.build('fresh:1')
    )
    // Job scope's main step only records, so it never asked for free space.
    expect(recorded.failed).toBe(false)
    expect(removed.failed).toBe(true)
    expect(removed.errors).toEqual([
      'Input "min-free" needs the engine\'s data root on this machine, but /nonexistent/data-root cannot be read here (ENOENT).'
    ])
    expect(engine.tagsNow()).toEqual(['fresh:1', 'old:1'])
  })

  test('a before filter naming no image fails the post step with the input sentence', async () => {
    const engine = new FakeEngine()
    const { main: recorded, post: removed } = await job(engine, { scope: 'job', filters: 'before=ghost:1' }, () =>
      engine.build('fresh:1')
    )
    expect(recorded.failed).toBe(false)
    expect(removed.failed).toBe(true)
    expect(removed.errors).toEqual([
      expect.stringMatching(/^Input "filters" .*before=ghost:1.* names no image on the engine/)
    ])
    expect(engine.tagsNow()).toEqual(['fresh:1'])
  })
})
