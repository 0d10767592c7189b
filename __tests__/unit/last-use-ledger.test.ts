import { describe, expect, test } from '@jest/globals'
import { eventOf } from '../../src/engine/events'
import {
  emptyLedger,
  forget,
  fullId,
  meaningOf,
  mergeLastUse,
  nameKey,
  parseLedger,
  recordEventTime,
  recordUse,
  type EventMeaning
} from '../../src/plan/last-use-ledger'
import { lastUse } from '../../src/plan/usage'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`

describe('which events the daemon reads', () => {
  test.each<[string, string, EventMeaning]>([
    ['container', 'create', 'use'],
    ['container', 'start', 'use'],
    ['container', 'exec_start: sh', 'ignore'],
    ['container', 'health_status: healthy', 'ignore'],
    ['container', 'attach', 'ignore'],
    ['container', 'die', 'ignore'],
    ['container', 'destroy', 'ignore'],
    ['image', 'pull', 'use'],
    ['image', 'load', 'use'],
    ['image', 'import', 'use'],
    ['image', 'tag', 'use'],
    ['image', 'build', 'use'],
    ['image', 'untag', 'rename'],
    ['image', 'delete', 'gone'],
    ['image', 'remove', 'gone'],
    ['image', 'push', 'ignore'],
    ['image', 'save', 'ignore'],
    ['network', 'connect', 'ignore'],
    ['volume', 'create', 'ignore']
  ])('%s %s: %s', (type, action, meaning) => {
    expect(meaningOf({ type, action })).toBe(meaning)
  })
})

describe('an engine message as an event', () => {
  test.each([
    [
      'Docker: a container, by the image name the user typed',
      {
        Type: 'container',
        Action: 'create',
        from: 'app:1',
        Actor: { ID: 'c0ffee', Attributes: { image: 'app:1', name: 'x' } },
        time: 1700000000,
        timeNano: 1700000000123456768
      },
      { type: 'container', action: 'create', subject: 'app:1', time: 1700000000123 }
    ],
    [
      'Docker: a tag, by image ID, with the name given',
      { Type: 'image', Action: 'tag', Actor: { ID: A, Attributes: { name: 'app:2' } }, time: 1700000001 },
      { type: 'image', action: 'tag', subject: A, time: 1700000001000, name: 'app:2' }
    ],
    [
      'the older spelling: status and id',
      { Type: 'image', status: 'pull', id: 'busybox:latest', time: 1700000002 },
      { type: 'image', action: 'pull', subject: 'busybox:latest', time: 1700000002000 }
    ],
    [
      'a container with no image attribute: from',
      { Type: 'container', Action: 'start', from: 'localhost/app:1', Actor: { ID: 'c', Attributes: null }, time: 5 },
      { type: 'container', action: 'start', subject: 'localhost/app:1', time: 5000 }
    ]
  ])('%s', (_name, message, event) => {
    expect(eventOf(message)).toEqual(event)
  })

  test.each([
    ['no type', { Action: 'create', from: 'a', time: 1 }],
    ['no time', { Type: 'image', Action: 'tag', Actor: { ID: A } }],
    ['no subject', { Type: 'image', Action: 'tag', time: 1 }]
  ])('%s: dropped', (_name, message) => {
    expect(eventOf(message)).toBeUndefined()
  })
})

describe('names and IDs', () => {
  test.each([
    ['app:1', 'docker.io/library/app:1'],
    ['app', 'docker.io/library/app:latest'],
    ['docker.io/library/app:latest', 'docker.io/library/app:latest'],
    ['localhost/app:1', 'localhost/app:1'],
    ['Not A Name', undefined]
  ])('nameKey(%j) is %j', (text, key) => {
    expect(nameKey(text)).toBe(key)
  })

  test.each([
    [A, A],
    ['a'.repeat(64), A],
    ['a'.repeat(12), undefined],
    ['app:1', undefined]
  ])('fullId(%j) is %j', (text, id) => {
    expect(fullId(text)).toBe(id)
  })
})

describe('recording', () => {
  test('a use moves forward only, so an event read twice changes nothing', () => {
    const ledger = emptyLedger()
    recordUse(ledger, 'E', A, 2000)
    recordUse(ledger, 'E', A, 1000)
    recordUse(ledger, 'E', A, 2000)
    recordEventTime(ledger, 'E', 3000)
    recordEventTime(ledger, 'E', 2500)
    expect(ledger).toEqual({ version: 1, engines: { E: { lastEvent: 3000, images: { [A]: 2000 } } } })
  })

  test('engines are kept apart, and a deleted image leaves its engine only', () => {
    const ledger = emptyLedger()
    recordUse(ledger, 'E1', A, 1)
    recordUse(ledger, 'E2', A, 2)
    forget(ledger, 'E1', A)
    expect(ledger.engines).toEqual({ E1: { lastEvent: 0, images: {} }, E2: { lastEvent: 0, images: { [A]: 2 } } })
  })
})

describe('merging with the engine', () => {
  test.each([
    ['the ledger is later', 100, 200, 200],
    ['the engine is later', 300, 200, 300],
    ['only the engine knows it', 100, undefined, 100]
  ])('%s', (_name, engine, recorded, merged) => {
    const recordedUse = recorded === undefined ? {} : { [A]: recorded }
    expect(mergeLastUse(new Map([[A, engine]]), recordedUse).get(A)).toBe(merged)
  })

  test('an image gone from the engine stays gone', () => {
    expect(mergeLastUse(new Map([[A, 1]]), { [B]: 5 }).has(B)).toBe(false)
  })

  test("lastUse takes the ledger's use of an image whose container the engine forgot", () => {
    const image = { parentId: '', tags: [], digests: [], size: 1, labels: {} }
    const state = {
      images: [
        { ...image, id: A, created: 100 },
        { ...image, id: B, created: 200 }
      ],
      containers: [],
      layers: new Map()
    }
    expect(lastUse(state)).toEqual(
      new Map([
        [A, 100],
        [B, 200]
      ])
    )
    expect(lastUse({ ...state, recordedUse: { [A]: 500 } })).toEqual(
      new Map([
        [A, 500],
        [B, 200]
      ])
    )
  })
})

describe('reading a ledger file', () => {
  const good = { version: 1, engines: { E: { lastEvent: 5, images: { [A]: 4 } } } }

  test('a ledger it wrote reads back whole', () => {
    expect(parseLedger(JSON.stringify(good))).toEqual({ ok: true, ledger: good })
  })

  test.each([
    ['not JSON', '{"version": 1,', /not JSON/],
    ['another version', JSON.stringify({ ...good, version: 2 }), /"version": 1/],
    ['an array', '[]', /"version": 1/],
    ['no engines', JSON.stringify({ version: 1 }), /"engines"/],
    ['a bad time', JSON.stringify({ version: 1, engines: { E: { lastEvent: 'x', images: {} } } }), /lastEvent/],
    ['a bad image ID', JSON.stringify({ version: 1, engines: { E: { lastEvent: 1, images: { app: 1 } } } }), /"app"/],
    [
      'a negative use',
      JSON.stringify({ version: 1, engines: { E: { lastEvent: 1, images: { [A]: -1 } } } }),
      /time of sha256/
    ]
  ])('%s is refused', (_name, text, problem) => {
    const parsed = parseLedger(text)
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.problem).toMatch(problem)
  })
})
