import { describe, expect, test } from '@jest/globals'
import { main } from '../../src/action/main'
import { post } from '../../src/action/post'
import { FakeEngine } from '../fakes/engine'
import { stepsInProcess, type StepRun } from '../fakes/runner'

/**
 * `scope: job` on one engine that several runners share: each job's steps run with that runner's
 * own variables, and the engine's clock is the test's, so that every job starts at a known time.
 */

const step = stepsInProcess()
const SECOND = 1000
const HOUR = 3_600_000

interface Skipped {
  ref: string
  reason: string
  message: string
}

/** A job on its own runner: its main step, then its post step with what the main step saved. */
class Job {
  private saved: Record<string, string> = {}
  readonly env: Record<string, string>

  constructor(
    private readonly engine: FakeEngine,
    readonly name: string,
    private readonly inputs: Record<string, string> = {}
  ) {
    this.env = {
      GITHUB_REPOSITORY: 'org/repo',
      GITHUB_WORKFLOW: 'CI',
      GITHUB_RUN_ID: `run-${name}`,
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: `job-${name}`,
      RUNNER_NAME: `runner-${name}`,
      RUNNER_TEMP: `/tmp/runner-${name}`
    }
  }

  async main(): Promise<StepRun> {
    const run = await step({ scope: 'job', ...this.inputs }, () => main(this.engine.open), {}, this.env)
    expect(run.failed).toBe(false)
    this.saved = run.state
    return run
  }

  async post(): Promise<{ run: StepRun; skipped: Skipped[]; deleted: string[]; untagged: string[] }> {
    const run = await step({ scope: 'job', ...this.inputs }, () => post(this.engine.open), this.saved, this.env)
    expect(run.failed).toBe(false)
    const list = (name: string): never[] => JSON.parse(run.outputs[name] ?? '[]') as never[]
    return { run, skipped: list('skipped'), deleted: list('deleted'), untagged: list('untagged') }
  }
}

/** An engine whose clock moves only when the test says so. */
function sharedEngine(): { engine: FakeEngine; tick: (ms?: number) => void } {
  const engine = new FakeEngine()
  let now = Date.UTC(2026, 11, 3, 8, 0, 0)
  engine.now = () => now
  return { engine, tick: (ms = 10 * SECOND) => void (now += ms) }
}

describe('jobs that overlap on one engine', () => {
  test('the job that ends first leaves what appeared while the other ran, naming it; the last removes it all', async () => {
    const { engine, tick } = sharedEngine()
    engine.build('base:1')
    const before = { ids: engine.idsNow(), tags: engine.tagsNow() }
    const a = new Job(engine, 'a')
    const b = new Job(engine, 'b')
    await a.main()
    tick()
    await b.main()
    tick()
    engine.build('b:1')
    tick()
    engine.build('a:1')
    tick()
    const first = await a.post()
    expect(engine.tagsNow()).toEqual(['a:1', 'b:1', 'base:1'])
    expect(first.deleted).toEqual([])
    expect(first.skipped.map(s => [s.ref, s.reason]).sort()).toEqual([
      ['a:1', 'other-job'],
      ['b:1', 'other-job']
    ])
    expect(first.skipped[0].message).toContain(
      'job "job-b" of workflow "CI", run run-b of org/repo, on runner "runner-b"'
    )
    expect(first.run.summary).toContain('Left for another job that is still running on this engine')
    tick()
    const last = await b.post()
    expect(last.skipped).toEqual([])
    expect(engine.idsNow()).toEqual(before.ids)
    expect(engine.tagsNow()).toEqual(before.tags)
    expect(engine.records.size).toBe(0)
  })

  test('what a job made before the other began is its own, and goes with its post step', async () => {
    const { engine, tick } = sharedEngine()
    const a = new Job(engine, 'a')
    const b = new Job(engine, 'b')
    await a.main()
    tick()
    const mine = engine.build('a:1')
    const myDangling = engine.dangling('a-tmp')
    tick()
    await b.main()
    tick()
    engine.build('b:1')
    tick()
    const first = await a.post()
    expect(first.deleted).toEqual(expect.arrayContaining([mine, myDangling]))
    expect(first.skipped.map(s => s.ref)).toEqual(['b:1'])
    expect(engine.tagsNow()).toEqual(['b:1'])
    await b.post()
    expect(engine.idsNow()).toEqual([])
  })

  test.each([
    ['a, b, c', ['a', 'b', 'c']],
    ['c, b, a', ['c', 'b', 'a']],
    ['b, a, c', ['b', 'a', 'c']]
  ])(
    'three jobs whose post steps run in the order %s: nothing of a running job goes, and the last leaves the engine as it was',
    async (_, order) => {
      const { engine, tick } = sharedEngine()
      engine.build('base:1')
      const before = { ids: engine.idsNow(), tags: engine.tagsNow() }
      const jobs = new Map(['a', 'b', 'c'].map(name => [name, new Job(engine, name)]))
      for (const job of jobs.values()) {
        await job.main()
        tick()
      }
      for (const name of jobs.keys()) {
        engine.build(`${name}:1`, { from: 'base:1' })
        engine.tag('base:1', `base:${name}`)
        tick()
      }
      const running = new Set(jobs.keys())
      for (const name of order) {
        const ended = await (jobs.get(name) as Job).post()
        running.delete(name)
        if (running.size > 0) {
          expect(ended.deleted).toEqual([])
          expect(ended.untagged).toEqual([])
          for (const other of running) expect(engine.tagsNow()).toContain(`${other}:1`)
        }
        tick()
      }
      expect(engine.idsNow()).toEqual(before.ids)
      expect(engine.tagsNow()).toEqual(before.tags)
      expect(engine.records.size).toBe(0)
    }
  )

  test('a tag one job adds to an image another made is the other job’s too while it runs', async () => {
    const { engine, tick } = sharedEngine()
    const a = new Job(engine, 'a')
    const b = new Job(engine, 'b')
    await a.main()
    tick()
    engine.build('a:1')
    tick()
    await b.main()
    tick()
    engine.tag('a:1', 'b:from-a')
    tick()
    const first = await a.post()
    // a made the image, but b has tagged it since: the image stays whole while b runs.
    expect(engine.tagsNow()).toEqual(['a:1', 'b:from-a'])
    expect(first.skipped).toEqual([expect.objectContaining({ ref: 'a:1', reason: 'other-job' })])
    await b.post()
    expect(engine.idsNow()).toEqual([])
  })
})

describe('a job that dies without its post step', () => {
  test('protects what appeared while it ran until job-timeout, by the engine’s clock; then the next job removes it all', async () => {
    const { engine, tick } = sharedEngine()
    engine.build('base:1')
    const before = engine.idsNow()
    const dead = new Job(engine, 'dead')
    const b = new Job(engine, 'b')
    await dead.main()
    tick()
    await b.main()
    tick()
    engine.build('dead:1')
    engine.build('b:1')
    tick()
    const ended = await b.post()
    expect(ended.skipped.map(s => s.reason)).toEqual(['other-job', 'other-job'])
    expect(engine.tagsNow()).toEqual(['b:1', 'base:1', 'dead:1'])

    tick(5 * HOUR)
    const c = new Job(engine, 'c')
    await c.main()
    const stillProtected = await c.post()
    expect(stillProtected.deleted).toEqual([])
    expect(engine.tagsNow()).toEqual(['b:1', 'base:1', 'dead:1'])

    tick(2 * HOUR)
    const d = new Job(engine, 'd')
    await d.main()
    const cleaned = await d.post()
    expect(cleaned.run.log).toContain('Removed the record of job "job-dead"')
    expect(engine.idsNow()).toEqual(before)
    expect(engine.records.size).toBe(0)
  })

  test('job-timeout sets how long; an engine clock a year from the runner’s changes nothing', async () => {
    const { engine, tick } = sharedEngine()
    tick(365 * 24 * HOUR)
    const dead = new Job(engine, 'dead')
    await dead.main()
    tick()
    engine.build('dead:1')
    tick(2 * HOUR)
    const short = new Job(engine, 'short', { 'job-timeout': '1h' })
    await short.main()
    const run = await short.post()
    expect(run.run.log).toContain('Removed the record of job "job-dead"')
    expect(engine.tagsNow()).toEqual(['dead:1'])
    expect(engine.records.size).toBe(0)
  })
})

describe('records', () => {
  test('a dry run removes nothing, and still retires the job’s record', async () => {
    const { engine, tick } = sharedEngine()
    const a = new Job(engine, 'a', { 'dry-run': 'true' })
    await a.main()
    tick()
    engine.build('a:1')
    expect(engine.records.size).toBe(1)
    await a.post()
    expect(engine.tagsNow()).toEqual(['a:1'])
    expect(engine.records.size).toBe(0)
  })

  test('a record removed while the job ran is a warning, and the job goes on alone', async () => {
    const { engine, tick } = sharedEngine()
    const a = new Job(engine, 'a')
    await a.main()
    engine.records.clear()
    tick()
    engine.build('a:1')
    const ended = await a.post()
    expect(ended.run.warnings).toEqual([expect.stringContaining("This job's record is no longer on the engine")])
    expect(engine.tagsNow()).toEqual([])
  })
})
