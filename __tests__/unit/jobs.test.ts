import { describe, expect, test } from '@jest/globals'
import {
  describeJob,
  heldBy,
  heldItems,
  heldKey,
  leftoversOf,
  overlap,
  withoutLeftovers,
  type JobRecord
} from '../../src/plan/jobs'
import type { EngineState, Image, Snapshot } from '../../src/plan/model'

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 11, 3, 8, 0, 0)

function record(name: string, startedAt: number, left?: JobRecord['left']): JobRecord {
  const job = {
    repository: 'org/repo',
    workflow: 'CI',
    runId: name,
    runAttempt: '1',
    job: 'test',
    runner: `runner-${name}`
  }
  return { name, job, startedAt, left }
}

function image(id: string, tags: string[], created: number): Image {
  return { id, parentId: '', tags, digests: [], created, size: 1, labels: {} }
}

const snapshot = (entries: Record<string, string[]>): Snapshot =>
  new Map(Object.entries(entries).map(([id, refs]) => [id, new Set(refs)]))

describe('overlap sorts the other records on the engine', () => {
  test('running ones earliest first; ended ones apart, however old; past the expiry, running ones have expired', () => {
    const own = record('own', T0)
    const late = record('late', T0 + 60_000)
    const early = record('early', T0 - 60_000)
    const ended = record('ended', T0 - 30_000, { images: ['sha256:a'], tags: {} })
    const dead = record('dead', T0 - 7 * HOUR)
    const deadEnded = record('dead-ended', T0 - 7 * HOUR, { images: [], tags: {} })
    const result = overlap('own', [late, own, dead, ended, early, deadEnded], T0 + HOUR, 6 * HOUR)
    expect(result.running.map(r => r.name)).toEqual(['early', 'late'])
    expect(result.ended.map(r => r.name).sort()).toEqual(['dead-ended', 'ended'])
    expect(result.expired.map(r => r.name)).toEqual(['dead'])
  })

  test('a job alone on the engine sees nobody', () => {
    expect(overlap('own', [record('own', T0)], T0, HOUR)).toEqual({ running: [], ended: [], expired: [] })
  })
})

describe('heldBy: the running job that may have made what appeared at a time', () => {
  const a = record('a', T0)
  const b = record('b', T0 + 10_000)
  test.each([
    ['before every other job began: nobody else', T0 - 1, undefined],
    ['in the same second as a record (records round down): that job', T0, 'a'],
    ['while only a ran', T0 + 5_000, 'a'],
    ['while both ran: the earliest', T0 + 20_000, 'a'],
    ['at an unknown time: the earliest running job', undefined, 'a']
  ])('%s', (_, at, expected) => {
    expect(heldBy(at, [a, b])?.name).toBe(expected)
  })

  test('with nobody else running nothing is held, whatever the time', () => {
    expect(heldBy(undefined, [])).toBeUndefined()
  })
})

describe('heldItems: what appeared since the job began while another job was running', () => {
  const other = record('other', T0 + 60_000)
  const before = snapshot({ 'sha256:old': ['old:1'] })
  const details = (lastTagged: Record<string, number>, createdAt: Record<string, number>): Partial<EngineState> => ({
    lastTagged: new Map(Object.entries(lastTagged)),
    createdAt: new Map(Object.entries(createdAt))
  })

  function state(images: Image[], extra: Partial<EngineState>): EngineState {
    return { images, containers: [], layers: new Map(), ...extra }
  }

  test('an image tagged before the other job began is this job’s own; one tagged after is held', () => {
    const images = [
      image('sha256:old', ['old:1'], T0 - HOUR),
      image('sha256:mine', ['mine:1'], T0 + 1_000),
      image('sha256:theirs', ['theirs:1'], T0 + 61_000)
    ]
    const extra = details(
      { 'sha256:mine': T0 + 2_000, 'sha256:theirs': T0 + 62_000 },
      { 'sha256:mine': T0 + 1_000, 'sha256:theirs': T0 + 61_000 }
    )
    const held = heldItems(state(images, extra), before, [other])
    expect([...held.keys()]).toEqual([heldKey('sha256:theirs')])
    expect(held.get('sha256:theirs')?.name).toBe('other')
  })

  test('a pulled image keeps an old creation time: without a tag time it is held, not judged by it', () => {
    const images = [image('sha256:pulled', ['alpine:3'], T0 - 365 * 24 * HOUR)]
    const held = heldItems(state(images, details({}, {})), new Map(), [other])
    expect([...held.keys()]).toEqual(['sha256:pulled'])
  })

  test('an untagged image appeared when it was made', () => {
    const images = [image('sha256:d1', [], T0), image('sha256:d2', [], T0 + 120_000)]
    const extra = details({}, { 'sha256:d1': T0 + 500, 'sha256:d2': T0 + 120_500 })
    expect([...heldItems(state(images, extra), new Map(), [other]).keys()]).toEqual(['sha256:d2'])
  })

  test('a tag added to an image that was there before is held by its tag time', () => {
    const images = [image('sha256:old', ['old:1', 'old:new'], T0 - HOUR)]
    expect([...heldItems(state(images, details({ 'sha256:old': T0 + 90_000 }, {})), before, [other]).keys()]).toEqual([
      heldKey('sha256:old', 'old:new')
    ])
    expect(heldItems(state(images, details({ 'sha256:old': T0 + 30_000 }, {})), before, [other]).size).toBe(0)
  })

  test('without details every addition is held; without other jobs nothing is', () => {
    const images = [image('sha256:old', ['old:1', 'old:new'], T0 - HOUR), image('sha256:x', [], T0)]
    expect([...heldItems(state(images, {}), before, [other]).keys()].sort()).toEqual(
      [heldKey('sha256:old', 'old:new'), 'sha256:x'].sort()
    )
    expect(heldItems(state(images, {}), before, []).size).toBe(0)
  })
})

describe('leftovers go from the jobs that ended to the last one', () => {
  test('leftoversOf splits whole images from tags', () => {
    expect(leftoversOf(['sha256:a', heldKey('sha256:b', 'b:new'), heldKey('sha256:b', 'b:other')])).toEqual({
      images: ['sha256:a'],
      tags: { 'sha256:b': ['b:new', 'b:other'] }
    })
  })

  test('withoutLeftovers makes what ended jobs left count as added, and leaves the snapshot itself alone', () => {
    const own = snapshot({ 'sha256:a': ['a:1'], 'sha256:b': ['b:1', 'b:new'], 'sha256:c': ['c:1'] })
    const ended = [record('e1', T0, leftoversOf(['sha256:a', heldKey('sha256:b', 'b:new')])), record('e2', T0)]
    const view = withoutLeftovers(own, ended)
    expect([...view.keys()].sort()).toEqual(['sha256:b', 'sha256:c'])
    expect([...(view.get('sha256:b') ?? [])]).toEqual(['b:1'])
    expect([...(own.get('sha256:b') ?? [])]).toEqual(['b:1', 'b:new'])
  })
})

test('describeJob names the job, its run and its runner', () => {
  const job = { repository: 'org/repo', workflow: 'CI', runId: '42', runAttempt: '2', job: 'build', runner: 'r1' }
  expect(describeJob(job)).toBe('job "build" of workflow "CI", run 42 (attempt 2) of org/repo, on runner "r1"')
})
