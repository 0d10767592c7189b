import { getSettings } from '../../src/action/inputs'
import { InputError } from '../../src/common/errors'
import { INPUT_NAMES, parseSettings, type RawInputs } from '../../src/settings/settings'
import { NO_FILTERS } from '../../src/plan/filters'

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)
const HOUR = 3_600_000
const DAY = 24 * HOUR

function raw(overrides: Partial<RawInputs> = {}): RawInputs {
  const base = Object.fromEntries(INPUT_NAMES.map(name => [name, ''])) as RawInputs
  return { ...base, ...overrides }
}

function settings(overrides: Partial<RawInputs> = {}) {
  return parseSettings(raw(overrides), NOW)
}

function errorOf(overrides: Partial<RawInputs>): InputError {
  try {
    settings(overrides)
  } catch (error) {
    if (error instanceof InputError) return error
    throw new Error(`expected an InputError, got ${String(error)}`, { cause: error })
  }
  throw new Error(`expected ${JSON.stringify(overrides)} to be rejected`)
}

/**
 * One sentence: no line break, opens by naming the input in quotes, ends with
 * a full stop, and (quoted values aside) no second sentence starts inside it.
 */
function expectOneSentence(message: string, input: string): void {
  expect(message).not.toMatch(/[\r\n]/)
  expect(message.startsWith(`Input "${input}" `)).toBe(true)
  expect(message.endsWith('.')).toBe(true)
  const unquoted = message.replace(/"[^"]*"/g, '""')
  expect(unquoted).not.toMatch(/[.!?:]\s+[A-Z]/)
  expect(unquoted).not.toMatch(/\.\.$/)
}

describe('parseSettings: defaults', () => {
  test('no inputs at all: prune dangling, nothing forced, summary on', () => {
    expect(settings()).toEqual({
      refs: [],
      filters: NO_FILTERS,
      prune: 'dangling',
      force: false,
      noPrune: false,
      keepDuration: undefined,
      keep: [],
      keepLast: 0,
      ageBasis: 'created',
      targets: undefined,
      dryRun: false,
      failOnError: false,
      dockerHost: '',
      summary: true,
      scope: 'all',
      jobTimeout: 6 * 3_600_000,
      untagAdded: false,
      timeout: 60_000,
      buildCache: 'none'
    })
  })

  test.each([
    ['30s', 30_000],
    ['2m', 120_000],
    ['1m30s', 90_000]
  ])('timeout %s is %d ms', (value, ms) => {
    expect(settings({ timeout: value }).timeout).toBe(ms)
  })

  test.each(['0', '-5s', 'soon', '10'])('timeout %s is refused, naming the input', value => {
    expect(() => settings({ timeout: value })).toThrow(
      `Input "timeout" must be a positive duration such as 30s, 2m or 1m30s, not "${value}".`
    )
  })

  test.each<[Partial<RawInputs>, 'none' | 'dangling' | 'all', boolean]>([
    [{ scope: 'job' }, 'all', true],
    [{ scope: 'job', prune: 'dangling' }, 'dangling', false],
    [{ scope: 'job', refs: 'app:*' }, 'none', false],
    [{ scope: 'all' }, 'dangling', false]
  ])('scope %j: prune %s, untag what the job added: %s', (inputs, prune, untagAdded) => {
    const parsed = settings(inputs)
    expect(parsed.prune).toBe(prune)
    expect(parsed.untagAdded).toBe(untagAdded)
  })

  test.each(['jobs', 'ALL', 'step'])('scope %s is refused, naming the input', value => {
    expect(() => settings({ scope: value })).toThrow(`Input "scope" must be all or job, not "${value}".`)
  })

  test.each([
    ['3d', 3 * 24 * 3_600_000],
    ['90m', 90 * 60_000],
    [' 12h ', 12 * 3_600_000]
  ])('job-timeout %s is %d ms', (value, ms) => {
    expect(settings({ 'job-timeout': value }).jobTimeout).toBe(ms)
  })

  test.each(['0s', 'soon', '-1h', '6'])('job-timeout %s is refused, naming the input', value => {
    expect(() => settings({ 'job-timeout': value })).toThrow(
      `Input "job-timeout" must be a positive duration such as 6h, 90m or 3d, not "${value}".`
    )
  })

  test.each<[Partial<RawInputs>, 'none' | 'dangling' | 'all']>([
    [{}, 'dangling'],
    [{ refs: 'app:1' }, 'none'],
    [{ refs: '  \n ' }, 'dangling'],
    [{ prune: 'all' }, 'all'],
    [{ prune: 'dangling' }, 'dangling'],
    [{ refs: 'app:1', prune: 'dangling' }, 'dangling'],
    [{ refs: 'app:1', prune: 'all' }, 'all'],
    [{ prune: ' all ' }, 'all']
  ])('%j → prune %s', (inputs, prune) => {
    expect(settings(inputs).prune).toBe(prune)
  })
})

describe('parseSettings: refs and keep', () => {
  test('refs split on newlines, commas and spaces, in order', () => {
    const { refs } = settings({ refs: 'app:1\nb:2, c:3 d:4\r\n\te,,  \n' })
    expect(refs.map(r => r.text)).toEqual(['app:1', 'b:2', 'c:3', 'd:4', 'e'])
  })

  test('each ref is classified', () => {
    const id = `sha256:${'a'.repeat(64)}`
    const { refs } = settings({ refs: `${id}\nalpine:3\napp:*` })
    expect(refs.map(r => r.kind)).toEqual(['id', 'name', 'pattern'])
  })

  test('keep is read the same way', () => {
    const { keep } = settings({ keep: 'base:1, ci/*:*\n4f2a9c1b' })
    expect(keep.map(r => [r.kind, r.text])).toEqual([
      ['name', 'base:1'],
      ['pattern', 'ci/*:*'],
      ['name', '4f2a9c1b']
    ])
  })

  test.each([['refs'], ['keep']] as const)(
    'a bad %s entry throws one sentence naming the input and the accepted forms',
    input => {
      const error = errorOf({ [input]: 'good:1\nApp:1' })
      expectOneSentence(error.message, input)
      expect(error.message).toContain('"App:1"')
      expect(error.message).toMatch(/ID/)
      expect(error.message).toMatch(/name:tag/)
      expect(error.message).toMatch(/pattern/)
    }
  )

  test.each([['../containers/x'], ['a/../b'], ['%2F'], ['x?y#']])('refs %j is rejected', text => {
    expectOneSentence(errorOf({ refs: text }).message, 'refs')
  })
})

describe('parseSettings: booleans', () => {
  const FLAGS = [
    ['force', 'force', false],
    ['no-prune', 'noPrune', false],
    ['dry-run', 'dryRun', false],
    ['fail-on-error', 'failOnError', false],
    ['summary', 'summary', true]
  ] as const

  describe.each(FLAGS)('%s', (input, key, fallback) => {
    test.each([
      ['true', true],
      ['True', true],
      ['TRUE', true],
      ['false', false],
      ['False', false],
      ['FALSE', false],
      ['', fallback],
      ['  ', fallback],
      [' true ', true]
    ])('%j → %s', (text, expected) => {
      expect(settings({ [input]: text })[key]).toBe(expected)
    })

    test.each([['yes'], ['no'], ['1'], ['0'], ['tRUE'], ['on'], ['t'], ['true false']])('%j is rejected', text => {
      const error = errorOf({ [input]: text })
      expectOneSentence(error.message, input)
      expect(error.message).toMatch(/true or false/)
      expect(error.message).toContain(`"${text}"`)
    })
  })
})

describe('parseSettings: keep-duration', () => {
  test.each([
    ['', undefined],
    ['90m', 90 * 60_000],
    ['24h', DAY],
    ['1h30m', 1.5 * HOUR],
    ['1.5h', 1.5 * HOUR],
    ['7d', 7 * DAY],
    ['2w', 14 * DAY],
    ['0', 0],
    [' 24h ', DAY]
  ])('%j → %s ms', (text, ms) => {
    expect(settings({ 'keep-duration': text }).keepDuration).toBe(ms)
  })

  test.each([['banana'], ['7'], ['-1h'], ['1x'], ['h'], ['1 h']])('%j is rejected', text => {
    const error = errorOf({ 'keep-duration': text })
    expectOneSentence(error.message, 'keep-duration')
    expect(error.message).toMatch(/24h/)
    expect(error.message).toMatch(/7d/)
  })
})

describe('parseSettings: filters', () => {
  test('one filter per line, blank lines and surrounding spaces ignored', () => {
    const { filters } = settings({ filters: '  dangling=true\n\nlabel=team=ci  \nuntil=24h\n' })
    expect(filters.dangling).toBe(true)
    expect(filters.label).toEqual(['team=ci'])
    expect(filters.until).toEqual([NOW - DAY])
  })

  test.each([['colour=red'], ['dangling=maybe'], ['dangling=true\ndangling=false'], ['label'], ['until=banana']])(
    '%j throws one sentence naming "filters"',
    text => {
      const error = errorOf({ filters: text })
      expectOneSentence(error.message, 'filters')
    }
  )
})

describe('parseSettings: prune', () => {
  test.each([['some'], ['All'], ['true'], ['none']])('%j is rejected', text => {
    const error = errorOf({ prune: text })
    expectOneSentence(error.message, 'prune')
    expect(error.message).toMatch(/dangling/)
    expect(error.message).toMatch(/all/)
  })
})

describe('parseSettings: build-cache', () => {
  test.each([
    ['', 'none'],
    ['dangling', 'dangling'],
    [' all ', 'all']
  ])('%j is %s', (text, mode) => {
    expect(settings({ 'build-cache': text }).buildCache).toBe(mode)
  })

  test.each([['true'], ['All'], ['none'], ['images']])('%j is rejected in one sentence naming the input', text => {
    const error = errorOf({ 'build-cache': text })
    expectOneSentence(error.message, 'build-cache')
    expect(error.message).toMatch(/dangling or all/)
  })

  test.each([
    [{ 'build-cache': 'all' }, 'none', false],
    [{ 'build-cache': 'all', scope: 'job' }, 'none', false],
    [{ 'build-cache': 'all', prune: 'dangling' }, 'dangling', false],
    [{ 'build-cache': 'dangling', refs: 'app:1' }, 'none', false],
    [{}, 'dangling', false],
    [{ scope: 'job' }, 'all', true]
  ])('%j: images pruned %s (untag what the job added: %s)', (inputs, prune, untagAdded) => {
    const parsed = settings(inputs as Partial<RawInputs>)
    expect([parsed.prune, parsed.untagAdded]).toEqual([prune, untagAdded])
  })
})

describe('parseSettings: docker-host', () => {
  test.each([
    ['', ''],
    ['unix:///var/run/docker.sock', 'unix:///var/run/docker.sock'],
    ['tcp://127.0.0.1:2375', 'tcp://127.0.0.1:2375'],
    ['tcp://docker:2376', 'tcp://docker:2376'],
    ['npipe:////./pipe/docker_engine', 'npipe:////./pipe/docker_engine'],
    ['ssh://user@host', 'ssh://user@host'],
    [' unix:///run/user/1000/docker.sock ', 'unix:///run/user/1000/docker.sock']
  ])('%j is accepted', (text, expected) => {
    expect(settings({ 'docker-host': text }).dockerHost).toBe(expected)
  })

  test.each([
    ['ftp://host'],
    ['/var/run/docker.sock'],
    ['host:2375'],
    ['unix://'],
    ['tcp:/host'],
    ['file:///tmp/sock'],
    ['UNIX:///x']
  ])('%j is rejected', text => {
    const error = errorOf({ 'docker-host': text })
    expectOneSentence(error.message, 'docker-host')
    expect(error.message).toMatch(/unix:\/\//)
    expect(error.message).toMatch(/tcp:\/\//)
  })
})

describe('error messages never carry raw control characters', () => {
  const CONTROL = /[\u0000-\u001f\u007f]/
  test.each<[keyof RawInputs, string]>([
    ['refs', 'bad\u0007name'],
    ['refs', 'x\u001b[31mred'],
    ['keep', 'k\u0000'],
    ['keep-duration', '1\u0007h'],
    ['prune', 'all\u001b[2J'],
    ['docker-host', 'ftp://\u0008host'],
    ['force', 'tr\u0007ue'],
    ['filters', 'colour\u001b[31m=red'],
    ['filters', 'dangling=ma\u0007ybe'],
    ['filters', 'label\u0000=x']
  ])('%s %j', (input, text) => {
    const error = errorOf({ [input]: text })
    expect(error.message.startsWith(`Input "${input}" `)).toBe(true)
    expect(error.message).not.toMatch(CONTROL)
  })
})

describe("getSettings reads the runner's INPUT_* variables", () => {
  function setInput(name: string, value: string | undefined): void {
    const key = `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  }

  const saved = new Map(INPUT_NAMES.map(name => [name, process.env[`INPUT_${name.toUpperCase()}`]]))
  beforeEach(() => INPUT_NAMES.forEach(name => setInput(name, undefined)))
  afterAll(() => saved.forEach((value, name) => setInput(name, value)))

  test('nothing set gives the defaults', () => {
    const result = getSettings(NOW)
    expect(result.prune).toBe('dangling')
    expect(result.refs).toEqual([])
    expect(result.summary).toBe(true)
    expect(result.keepDuration).toBeUndefined()
  })

  test('every input is read under its own name, hyphens kept', () => {
    setInput('refs', 'app:1\nbase:2')
    setInput('filters', 'label=team=ci')
    setInput('prune', 'all')
    setInput('force', 'true')
    setInput('no-prune', 'TRUE')
    setInput('keep-duration', '24h')
    setInput('keep', 'base:2')
    setInput('dry-run', 'True')
    setInput('fail-on-error', 'true')
    setInput('docker-host', 'tcp://docker:2375')
    setInput('summary', 'false')
    expect(process.env['INPUT_KEEP-DURATION']).toBe('24h')
    const result = getSettings(NOW)
    expect(result.refs.map(r => r.text)).toEqual(['app:1', 'base:2'])
    expect(result.filters.label).toEqual(['team=ci'])
    expect(result.prune).toBe('all')
    expect(result.force).toBe(true)
    expect(result.noPrune).toBe(true)
    expect(result.keepDuration).toBe(DAY)
    expect(result.keep.map(r => r.text)).toEqual(['base:2'])
    expect(result.dryRun).toBe(true)
    expect(result.failOnError).toBe(true)
    expect(result.dockerHost).toBe('tcp://docker:2375')
    expect(result.summary).toBe(false)
  })

  test('refs given without prune turn the default prune off', () => {
    setInput('refs', 'app:1')
    expect(getSettings(NOW).prune).toBe('none')
  })

  test('until is measured from the now it is given', () => {
    setInput('filters', 'until=1h')
    expect(getSettings(NOW).filters.until).toEqual([NOW - HOUR])
  })

  test('a bad value throws an InputError naming the input', () => {
    setInput('keep-duration', 'banana')
    expect(() => getSettings(NOW)).toThrow(InputError)
    expect(() => getSettings(NOW)).toThrow(/^Input "keep-duration" /)
  })

  test('a bad boolean throws an InputError naming the input', () => {
    setInput('dry-run', 'yes')
    expect(() => getSettings(NOW)).toThrow(/^Input "dry-run" must be true or false/)
  })
})
