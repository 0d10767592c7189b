import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { expectReclaimed, idsOf, storage, store, succeeded, tagsOf, type Skipped } from './checks'
import { bed, runAction, type ActionRun } from './harness'

/**
 * `scope: job` on one engine that several runners share: every job runs with its own runner's
 * variables (run ID, job, runner name, RUNNER_TEMP, workspace), as separate runners have, and only
 * the engine is common to them.
 */

const { scene } = bed()
const MB = 1_000_000
let runners = ''

beforeAll(async () => {
  runners = await mkdtemp(join(tmpdir(), 'dirb-runners-'))
})

afterAll(async () => {
  await rm(runners, { recursive: true, force: true })
})

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** One job on a runner of its own: its main step, then later its post step with what the main step saved. */
class Job {
  private mainRun: ActionRun | undefined
  private readonly env: Record<string, string>

  constructor(
    readonly name: string,
    private readonly inputs: Record<string, string> = {}
  ) {
    this.env = {
      GITHUB_REPOSITORY: 'org/repo',
      GITHUB_WORKFLOW: 'CI',
      GITHUB_RUN_ID: `9000${name.charCodeAt(0)}`,
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: `test-${name}`,
      RUNNER_NAME: `runner-${name}`,
      RUNNER_TEMP: join(runners, name, 'temp'),
      GITHUB_WORKSPACE: join(runners, name, 'work')
    }
  }

  async main(): Promise<void> {
    this.mainRun = await runAction({ scope: 'job', ...this.inputs }, { env: this.env })
    expect(this.mainRun.code).toBe(0)
  }

  async post(): Promise<ReturnType<typeof succeeded> & { run: ActionRun }> {
    if (!this.mainRun) throw new Error(`job ${this.name} has no main step`)
    const state = Object.fromEntries(Object.entries(this.mainRun.state).map(([k, v]) => [`STATE_${k}`, v]))
    const run = await runAction({ scope: 'job', ...this.inputs }, { env: { ...this.env, ...state } })
    return { ...succeeded(run), run }
  }
}

const reasons = (skipped: Skipped[]): string[][] => skipped.map(s => [s.ref, s.reason]).sort()

describe('jobs that overlap on one engine', () => {
  test('A ends first: it leaves what appeared while B ran, naming B; B, last, leaves the engine as it was', async () => {
    await scene.build('base:1', { bytes: MB })
    const before = { ids: await idsOf(scene), tags: await tagsOf(scene) }
    const a = new Job('a')
    const b = new Job('b')
    await a.main()
    await b.main()
    expect((await scene.jobRecords()).size).toBe(2)
    await scene.build('b:1', { bytes: MB })
    await scene.build('a:1', { bytes: MB })

    const first = await a.post()
    expect(first.deleted).toEqual([])
    expect(reasons(first.skipped)).toEqual([
      ['a:1', 'other-job'],
      ['b:1', 'other-job']
    ])
    expect(first.skipped[0].message).toContain(
      'job "test-b" of workflow "CI", run 900098 of org/repo, on runner "runner-b"'
    )
    expect(await tagsOf(scene)).toEqual(expect.arrayContaining(['a:1', 'b:1']))

    const mid = await storage(scene)
    const last = await b.post()
    expect(last.skipped).toEqual([])
    expect(await idsOf(scene)).toEqual(before.ids)
    expect(await tagsOf(scene)).toEqual(before.tags)
    expectReclaimed(last.bytes, mid, await storage(scene), last.deleted.length)
    expect((await scene.jobRecords()).size).toBe(0)
  })

  test('what A made before B began goes with A; what appeared after stays for B', async () => {
    const a = new Job('a')
    const b = new Job('b')
    await a.main()
    const mine = await scene.build('a:1', { bytes: MB })
    // Records keep whole seconds: B's must fall in a later second than a:1's tag.
    await sleep(1100)
    await b.main()
    await scene.build('b:1', { bytes: MB })
    const first = await a.post()
    if (store === 'podman') {
      // Podman records no tag time: A cannot tell when a:1 came, so it leaves it to B too.
      expect(reasons(first.skipped)).toEqual([
        ['a:1', 'other-job'],
        ['b:1', 'other-job']
      ])
    } else {
      expect(first.deleted).toContain(mine)
      expect(reasons(first.skipped)).toEqual([['b:1', 'other-job']])
    }
    await b.post()
    expect(await idsOf(scene)).not.toContain(mine)
    expect(await tagsOf(scene)).not.toContain('b:1')
  })

  test('three jobs, ending in the order c, a, b: nothing of a running job goes, and b leaves the engine as it was', async () => {
    await scene.build('base:1', { bytes: MB })
    const before = { ids: await idsOf(scene), tags: await tagsOf(scene) }
    const jobs = { a: new Job('a'), b: new Job('b'), c: new Job('c') }
    for (const job of Object.values(jobs)) await job.main()
    for (const name of Object.keys(jobs)) await scene.build(`${name}:1`, { from: 'base:1', bytes: MB })
    await scene.tag('base:1', 'base:from-a')

    for (const [name, running] of [
      ['c', ['a:1', 'b:1']],
      ['a', ['b:1']]
    ] as const) {
      const ended = await jobs[name].post()
      expect(ended.deleted).toEqual([])
      expect(ended.untagged).toEqual([])
      expect(await tagsOf(scene)).toEqual(expect.arrayContaining([...running]))
    }
    const last = await jobs.b.post()
    expect(last.skipped).toEqual([])
    expect(await idsOf(scene)).toEqual(before.ids)
    expect(await tagsOf(scene)).toEqual(before.tags)
    expect((await scene.jobRecords()).size).toBe(0)
  })

  test('a tag B adds to an image A made keeps the image whole while B runs', async () => {
    const a = new Job('a')
    const b = new Job('b')
    await a.main()
    await scene.build('a:1', { bytes: MB })
    await sleep(1100)
    await b.main()
    await scene.tag('a:1', 'b:from-a')
    const first = await a.post()
    expect(reasons(first.skipped)).toEqual([['a:1', 'other-job']])
    expect(await tagsOf(scene)).toEqual(expect.arrayContaining(['a:1', 'b:from-a']))
    await b.post()
    const tags = await tagsOf(scene)
    expect(tags).not.toContain('a:1')
    expect(tags).not.toContain('b:from-a')
  })
})

const JOB_TIMEOUT_S = 12

describe('a job that dies before its post step', () => {
  test('protects its window until job-timeout; then the next job removes its record and what was left', async () => {
    await scene.build('base:1', { bytes: MB })
    const before = await idsOf(scene)
    // Long enough that a loaded machine still reaches b's post step within it, short enough to wait out.
    const timeout = { 'job-timeout': `${JOB_TIMEOUT_S}s` }
    const dead = new Job('dead', timeout)
    const b = new Job('b', timeout)
    const deadStarted = Date.now()
    await dead.main()
    await b.main()
    await scene.build('dead:1', { bytes: MB })
    await scene.build('b:1', { bytes: MB })
    const ended = await b.post()
    expect(reasons(ended.skipped)).toEqual([
      ['b:1', 'other-job'],
      ['dead:1', 'other-job']
    ])
    await sleep(Math.max(0, deadStarted + (JOB_TIMEOUT_S + 1) * 1000 - Date.now()))
    const c = new Job('c', timeout)
    await c.main()
    const cleaned = await c.post()
    expect(cleaned.run.stdout).toContain('Removed the record of job "test-dead"')
    expect(await idsOf(scene)).toEqual(before)
    expect((await scene.jobRecords()).size).toBe(0)
  })
})
