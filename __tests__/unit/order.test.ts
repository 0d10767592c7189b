import { prerequisites, runAfter } from '../../src/run/order'
import type { Image } from '../../src/plan/model'
import type { Step } from '../../src/plan/plan'

const image = (id: string, parentId = ''): Image => ({
  id,
  parentId,
  tags: [],
  digests: [],
  created: 0,
  size: 0,
  labels: {}
})
const step = (imageId: string, target = imageId): Step => ({
  target,
  force: false,
  imageId,
  cause: { kind: 'ref', ref: target, named: false },
  untagged: [],
  pruned: [],
  deleted: target === imageId,
  freed: [],
  bytes: 0
})

describe('prerequisites', () => {
  // base <- mid <- leaf, and two unrelated images.
  const images = [image('base'), image('mid', 'base'), image('leaf', 'mid'), image('a'), image('b')]

  test.each<[string, Step[], number[][]]>([
    ['unrelated images wait for nothing', [step('a'), step('b')], [[], []]],
    ['the steps of one image keep their order', [step('a', 'a:1'), step('a', 'a:2'), step('a')], [[], [0], [1]]],
    ['a parent waits for its child', [step('leaf'), step('mid'), step('base')], [[], [0], [1]]],
    ['an untag of a parent waits for its child too', [step('leaf'), step('mid', 'mid:1')], [[], [0]]],
    ['a child waits for an earlier step on its parent', [step('mid', 'mid:1'), step('leaf')], [[], [0]]],
    ['a grandparent waits only through its child', [step('leaf'), step('base')], [[], []]],
    ['only the latest step on a related image', [step('leaf', 'leaf:1'), step('leaf'), step('mid')], [[], [0], [1]]],
    [
      'independent work in between changes nothing',
      [step('leaf'), step('a'), step('b'), step('mid'), step('a', 'a:2')],
      [[], [], [], [0], [1]]
    ]
  ])('%s', (_, steps, expected) => {
    expect(prerequisites(steps, images)).toEqual(expected)
  })
})

/** Work whose end the test decides, so the order of events is what the test makes it. */
function controlled(): {
  started: number[]
  finish: (n: number) => Promise<void>
  work: (n: number) => Promise<number>
} {
  const started: number[] = []
  const enders = new Map<number, () => void>()
  return {
    started,
    work: n =>
      new Promise<number>(resolve => {
        started.push(n)
        enders.set(n, () => resolve(n))
      }),
    finish: async n => {
      enders.get(n)?.()
      // Lets the scheduler's promise chains run to the next start.
      for (let i = 0; i < 10; i++) await Promise.resolve()
    }
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

describe('runAfter', () => {
  test('never more than width at once, started in order', async () => {
    const c = controlled()
    const all = runAfter([0, 1, 2, 3, 4], [[], [], [], [], []], 2, c.work)
    await settle()
    expect(c.started).toEqual([0, 1])
    await c.finish(1)
    expect(c.started).toEqual([0, 1, 2])
    await c.finish(0)
    expect(c.started).toEqual([0, 1, 2, 3])
    for (const n of [2, 3, 4]) await c.finish(n)
    await expect(all).resolves.toEqual([0, 1, 2, 3, 4])
  })

  test('an item starts only once what it waits for has finished', async () => {
    const c = controlled()
    const all = runAfter([0, 1, 2, 3], [[], [0], [], [1, 2]], 4, c.work)
    await settle()
    expect(c.started).toEqual([0, 2])
    await c.finish(2)
    expect(c.started).toEqual([0, 2])
    await c.finish(0)
    expect(c.started).toEqual([0, 2, 1])
    await c.finish(1)
    expect(c.started).toEqual([0, 2, 1, 3])
    await c.finish(3)
    await expect(all).resolves.toEqual([0, 1, 2, 3])
  })

  test('a waiting item does not hold a slot', async () => {
    const c = controlled()
    const all = runAfter([0, 1, 2], [[], [0], []], 2, c.work)
    await settle()
    expect(c.started).toEqual([0, 2])
    for (const n of [0, 2, 1]) await c.finish(n)
    await expect(all).resolves.toEqual([0, 1, 2])
  })
})
