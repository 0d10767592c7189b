import fc from 'fast-check'
import { parseDuration, parseTimestamp } from '../../src/common/duration'
import { FilterError, parseFilters } from '../../src/plan/filters'
import { InputError } from '../../src/common/errors'
import { INPUT_NAMES, parseSettings, type RawInputs } from '../../src/settings/settings'
import { parseNamed, parseRefSpec } from '../../src/plan/reference'

const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)

/** Strings users and attackers type: printable text, path tricks, control and look-alike characters. */
const hostile = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.constantFrom(
    '../containers/x',
    'a/../b',
    '%2F',
    'x?y',
    'x#y',
    'x\u0000y',
    'ａｐｐ:1',
    'app:1\n',
    ' ',
    'a'.repeat(5000),
    'sha256:',
    '@',
    ':'
  ),
  fc
    .array(
      fc.constantFrom('a', 'Z', '0', '/', ':', '@', '.', '-', '_', '*', '?', '%', '#', '\\', '\n', ',', ' ', '='),
      { maxLength: 40 }
    )
    .map(cs => cs.join(''))
)

const rawInputs = fc.record(
  Object.fromEntries(INPUT_NAMES.map(name => [name, hostile])) as Record<keyof RawInputs, fc.Arbitrary<string>>
)

/** A reference that reaches the URL path must not leave /images/{name}: no traversal, query, fragment or escapes. */
const SAFE_IN_PATH = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._\-/:@[\]]+$/

describe('properties of the input parsers (fast-check)', () => {
  test('any inputs either parse into settings or fail with one InputError sentence; nothing else escapes', () => {
    fc.assert(
      fc.property(rawInputs, raw => {
        try {
          const settings = parseSettings(raw, NOW)
          expect(settings.timeout).toBeGreaterThan(0)
          expect(['none', 'dangling', 'all']).toContain(settings.prune)
        } catch (error) {
          expect(error).toBeInstanceOf(InputError)
          const message = (error as InputError).message
          expect(message).toMatch(/^Input "[a-z-]+" /)
          expect(message).not.toMatch(/[\u0000-\u001f\u007f]/)
          expect(message.length).toBeLessThan(400)
        }
      }),
      { numRuns: 2000 }
    )
  })

  test('every ref that parses names something only the engine-side grammar allows', () => {
    fc.assert(
      fc.property(hostile, text => {
        const spec = parseRefSpec(text)
        if (!spec || spec.kind === 'pattern') return
        if (spec.kind === 'id') expect(spec.prefix).toMatch(/^[0-9a-f]{1,64}$/)
        else expect(`${spec.ref.name}:${spec.ref.tag ?? ''}@${spec.ref.digest ?? ''}`).toMatch(SAFE_IN_PATH)
      }),
      { numRuns: 5000 }
    )
  })

  test('a named reference round-trips: parsing its qualified form gives it back', () => {
    fc.assert(
      fc.property(hostile, text => {
        const ref = parseNamed(text)
        if (!ref) return
        const again = parseNamed(ref.name + (ref.tag ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : ''))
        expect(again).toEqual(ref)
      }),
      { numRuns: 5000 }
    )
  })

  test('filters either parse or fail with a FilterError', () => {
    fc.assert(
      fc.property(fc.array(hostile, { maxLength: 4 }), lines => {
        try {
          parseFilters(lines, NOW)
        } catch (error) {
          expect(error).toBeInstanceOf(FilterError)
        }
      }),
      { numRuns: 3000 }
    )
  })

  test('durations and timestamps are numbers or undefined, never NaN or negative durations', () => {
    fc.assert(
      fc.property(hostile, text => {
        const duration = parseDuration(text)
        if (duration !== undefined) expect(duration).toBeGreaterThanOrEqual(0)
        const time = parseTimestamp(text, NOW)
        if (time !== undefined) expect(Number.isFinite(time)).toBe(true)
      }),
      { numRuns: 3000 }
    )
  })

  test('generated durations add up as Go adds them', () => {
    const units = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, d: 86_400_000, w: 604_800_000 } as const
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(1000), fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[]))), {
          minLength: 1,
          maxLength: 4
        }),
        terms => {
          const text = terms.map(([n, unit]) => `${n}${unit}`).join('')
          expect(parseDuration(text)).toBe(terms.reduce((sum, [n, unit]) => sum + n * units[unit], 0))
        }
      )
    )
  })
})
