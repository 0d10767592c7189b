import {
  familiarName,
  familiarString,
  globToRegExp,
  parseNamed,
  parseRefSpec,
  patternMatches,
  referenceKey,
  type NamedRef,
  type RefSpec
} from '../../src/plan/reference'

const HEX64 = '4f2a9c1b7d3e5a6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7'
const DIGEST = `sha256:${'d'.repeat(64)}`

function nameSpec(text: string): Extract<RefSpec, { kind: 'name' }> {
  const spec = parseRefSpec(text)
  if (spec?.kind !== 'name') throw new Error(`${text} did not parse as a name: ${JSON.stringify(spec)}`)
  return spec
}

function named(text: string): NamedRef {
  const ref = parseNamed(text)
  if (!ref) throw new Error(`${text} did not parse`)
  return ref
}

describe('parseRefSpec: image IDs', () => {
  test('64 hex digits are a full ID, not a name', () => {
    expect(parseRefSpec(HEX64)).toEqual({ kind: 'id', text: HEX64, prefix: HEX64, full: true })
  })

  test('sha256:<64 hex> is a full ID', () => {
    expect(parseRefSpec(`sha256:${HEX64}`)).toEqual({ kind: 'id', text: `sha256:${HEX64}`, prefix: HEX64, full: true })
  })

  test.each([['4f2a9c1b7d3e'], ['abc'], ['0'], ['deadbeef']])(
    'a short hex string %s is a name AND carries idPrefix',
    text => {
      const spec = nameSpec(text)
      expect(spec.idPrefix).toBe(text)
      expect(spec.ref).toEqual({ name: `docker.io/library/${text}`, tag: undefined, digest: undefined })
    }
  )

  test('sha256:<short hex> carries the hex alone as idPrefix', () => {
    const spec = parseRefSpec('sha256:4f2a9c1b7d3e')
    expect(spec).toBeDefined()
    expect(spec?.kind === 'id' ? spec.prefix : spec?.kind === 'name' ? spec.idPrefix : undefined).toBe('4f2a9c1b7d3e')
  })

  test('a name that is not hex has no idPrefix', () => {
    expect(nameSpec('alpine').idPrefix).toBeUndefined()
    expect(nameSpec('abcg').idPrefix).toBeUndefined()
  })

  test('uppercase hex is not an ID (image IDs are lowercase)', () => {
    expect(parseRefSpec(HEX64.toUpperCase())).toBeUndefined()
  })

  test('65 hex digits are neither a full ID nor an ID prefix', () => {
    const spec = parseRefSpec(`${HEX64}0`)
    expect(spec?.kind).not.toBe('id')
    if (spec?.kind === 'name') expect(spec.idPrefix).toBeUndefined()
  })
})

describe('parseRefSpec: names (distribution/reference)', () => {
  test.each<[string, NamedRef]>([
    ['alpine', { name: 'docker.io/library/alpine', tag: undefined, digest: undefined }],
    ['alpine:3.20', { name: 'docker.io/library/alpine', tag: '3.20', digest: undefined }],
    ['app:1', { name: 'docker.io/library/app', tag: '1', digest: undefined }],
    ['org/app:pr-12', { name: 'docker.io/org/app', tag: 'pr-12', digest: undefined }],
    ['library/alpine:3', { name: 'docker.io/library/alpine', tag: '3', digest: undefined }],
    ['docker.io/library/alpine:3', { name: 'docker.io/library/alpine', tag: '3', digest: undefined }],
    ['docker.io/org/app', { name: 'docker.io/org/app', tag: undefined, digest: undefined }],
    ['index.docker.io/library/alpine', { name: 'docker.io/library/alpine', tag: undefined, digest: undefined }],
    ['ghcr.io/org/app:1', { name: 'ghcr.io/org/app', tag: '1', digest: undefined }],
    ['ghcr.io/org/team/app:v1.2.3', { name: 'ghcr.io/org/team/app', tag: 'v1.2.3', digest: undefined }],
    ['127.0.0.1:5000/x:1', { name: '127.0.0.1:5000/x', tag: '1', digest: undefined }],
    ['localhost/x', { name: 'localhost/x', tag: undefined, digest: undefined }],
    ['localhost:5000/x:latest', { name: 'localhost:5000/x', tag: 'latest', digest: undefined }],
    ['[::1]:5000/x:1', { name: '[::1]:5000/x', tag: '1', digest: undefined }],
    ['Registry.Example.com/app:1', { name: 'Registry.Example.com/app', tag: '1', digest: undefined }],
    ['my_app__v2.x-y:TAG_1', { name: 'docker.io/library/my_app__v2.x-y', tag: 'TAG_1', digest: undefined }],
    [`app@${DIGEST}`, { name: 'docker.io/library/app', tag: undefined, digest: DIGEST }],
    [`ghcr.io/org/app:1@${DIGEST}`, { name: 'ghcr.io/org/app', tag: '1', digest: DIGEST }]
  ])('%s', (text, ref) => {
    const spec = nameSpec(text)
    expect(spec.text).toBe(text)
    expect(spec.ref).toEqual(ref)
  })

  test.each<[string, string]>([
    ['docker.io/alpine', 'docker.io/library/alpine'],
    ['docker.io/alpine:3', 'docker.io/library/alpine'],
    ['index.docker.io/alpine', 'docker.io/library/alpine']
  ])('a one-component name on Docker Hub is an official image: %s → %s', (text, name) => {
    expect(nameSpec(text).ref.name).toBe(name)
  })

  test('a tag of 128 characters is accepted, 129 is not', () => {
    expect(nameSpec(`app:${'t'.repeat(128)}`).ref.tag).toHaveLength(128)
    expect(parseRefSpec(`app:${'t'.repeat(129)}`)).toBeUndefined()
  })

  test('a name of 255 characters is accepted, 256 is not', () => {
    const name255 = `localhost/${'a'.repeat(245)}`
    expect(name255).toHaveLength(255)
    expect(nameSpec(`${name255}:1`).ref.name).toBe(name255)
    expect(parseRefSpec(`localhost/${'a'.repeat(246)}:1`)).toBeUndefined()
    expect(parseRefSpec('a'.repeat(256))).toBeUndefined()
  })

  test('the 255-character limit applies to the qualified name (docker.io/library/ + name), as ParseNormalizedNamed checks it', () => {
    // 'docker.io/library/' (18) + 240 = 258 > 255
    expect(parseRefSpec('a'.repeat(240))).toBeUndefined()
  })

  test.each([
    ['App:1'],
    ['APP'],
    ['org/App'],
    ['ghcr.io/Org/app'],
    ['../containers/x'],
    ['a/../b'],
    ['./a'],
    ['a//b'],
    ['/a'],
    ['a/'],
    ['%2F'],
    ['a%2Fb'],
    ['x?y#'],
    ['x#y'],
    ['a\u0000b'],
    ['a\u001bb'],
    ['a\u007fb'],
    ['app:1\n'],
    ['a b'],
    [' alpine'],
    ['alpine '],
    ['\talpine'],
    [''],
    [':1'],
    ['app:'],
    ['app:-1'],
    ['app@'],
    ['app@sha256:abc'],
    ['-app'],
    ['app-'],
    ['a..b'],
    ['a___b']
  ])('%j is rejected', text => {
    expect(parseRefSpec(text)).toBeUndefined()
  })
})

describe('parseRefSpec: patterns', () => {
  test.each([['app:*'], ['*/cache:pr-*'], ['ap?:1'], ['*'], ['ghcr.io/org/*:*'], ['app*@sha256:*']])(
    '%s is a pattern',
    text => {
      const spec = parseRefSpec(text)
      expect(spec?.kind).toBe('pattern')
      expect(spec?.text).toBe(text)
    }
  )

  test.each([['x?y#'], ['a *'], ['app:*\u0000'], ['[ab]*'], ['app:\\*'], ['*%2F*']])(
    '%j is not an accepted pattern',
    text => {
      expect(parseRefSpec(text)).toBeUndefined()
    }
  )
})

describe('familiarName / familiarString', () => {
  test.each([
    ['docker.io/library/alpine', 'alpine'],
    ['docker.io/org/app', 'org/app'],
    ['docker.io/library/a/b', 'library/a/b'],
    ['ghcr.io/org/app', 'ghcr.io/org/app'],
    ['localhost/x', 'localhost/x'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000/x']
  ])('familiarName(%s) = %s', (name, familiar) => {
    expect(familiarName(name)).toBe(familiar)
  })

  test.each([
    ['alpine'],
    ['alpine:3.20'],
    ['org/app:1'],
    ['ghcr.io/org/app:1'],
    ['localhost:5000/x:1'],
    ['127.0.0.1:5000/x:1'],
    [`app@${DIGEST}`],
    [`org/app:1@${DIGEST}`]
  ])('%s round-trips through parseNamed and familiarString', text => {
    expect(familiarString(named(text))).toBe(text)
  })

  test.each([
    ['docker.io/library/alpine:3', 'alpine:3'],
    ['index.docker.io/library/alpine:3', 'alpine:3'],
    ['library/alpine:3', 'alpine:3'],
    ['docker.io/org/app:1', 'org/app:1']
  ])('%s is shortened to %s', (text, familiar) => {
    expect(familiarString(named(text))).toBe(familiar)
  })

  test('two spellings of one reference share a key; different tags do not', () => {
    expect(referenceKey(named('alpine:3'))).toBe(referenceKey(named('docker.io/library/alpine:3')))
    expect(referenceKey(named('alpine:3'))).not.toBe(referenceKey(named('alpine:3.1')))
    expect(referenceKey(named('org/alpine:3'))).not.toBe(referenceKey(named('alpine:3')))
  })
})

describe('patternMatches: Go path.Match over the familiar string or the familiar name', () => {
  test.each<[string, string, boolean]>([
    ['app:*', 'app:1', true],
    ['app:*', 'app:latest', true],
    ['app:*', 'application:1', false],
    ['app:*', 'org/app:1', false],
    ['*/cache:pr-*', 'org/cache:pr-12', true],
    ['*/cache:pr-*', 'a/b/cache:pr-1', false],
    ['*/cache:pr-*', 'cache:pr-1', false],
    ['*/*/cache:pr-*', 'a/b/cache:pr-1', true],
    ['app', 'app:1', true],
    ['app', 'docker.io/library/app:1', true],
    ['app', 'org/app:1', false],
    ['app*', 'app-server:2', true],
    ['*', 'alpine:3', true],
    ['*', 'org/app:1', false],
    ['*/*', 'org/app:1', true],
    ['app:?', 'app:1', true],
    ['app:?', 'app:12', false],
    ['?pp:1', 'app:1', true],
    ['a?p:1', 'a/p:1', false],
    ['my.app:*', 'my.app:1', true],
    ['my.app:*', 'myxapp:1', false],
    ['ghcr.io/org/*:*', 'ghcr.io/org/app:1', true],
    ['ghcr.io/org/*:*', 'ghcr.io/org/team/app:1', false],
    ['org/app:*', 'docker.io/org/app:1', true],
    ['app@sha256:*', `app@${DIGEST}`, true],
    ['app:1', 'app:10', false]
  ])('%s against %s → %s', (pattern, text, expected) => {
    const spec = parseRefSpec(pattern)
    const regexp = spec?.kind === 'pattern' ? spec.pattern : globToRegExp(pattern)
    expect(patternMatches(regexp, named(text))).toBe(expected)
  })
})
