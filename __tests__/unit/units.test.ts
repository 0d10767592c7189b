import fc from 'fast-check'
import { formatAge, formatBytes, groupThousands } from '../../src/common/units'

describe('formatBytes (go-units HumanSize: decimal, four significant digits)', () => {
  test.each([
    [0, '0B'],
    [1, '1B'],
    [999, '999B'],
    [1000, '1kB'],
    [1500, '1.5kB'],
    [100_000, '100kB'],
    [999_999, '1000kB'],
    [1_000_000, '1MB'],
    [1_982_000, '1.982MB'],
    [1_234_567, '1.235MB'],
    [1_230_000_000, '1.23GB'],
    [1_000_000_000_000, '1TB'],
    [2_500_000_000_000_000, '2.5PB']
  ])('%d bytes → %s', (bytes, expected) => {
    expect(formatBytes(bytes)).toBe(expected)
  })
})

describe("groupThousands (the summary's exact byte count)", () => {
  test.each([
    [0, '0'],
    [1, '1'],
    [999, '999'],
    [1000, '1,000'],
    [123_456, '123,456'],
    [1_234_567, '1,234,567'],
    [Number.MAX_SAFE_INTEGER, '9,007,199,254,740,991']
  ])('%d → %s', (whole, expected) => {
    expect(groupThousands(whole)).toBe(expected)
  })

  test("writes every whole byte count as toLocaleString('en-US') does", () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.maxSafeNat()), whole => {
        expect(groupThousands(whole)).toBe(whole.toLocaleString('en-US'))
      }),
      { numRuns: 2000 }
    )
  })
})

describe('formatAge (the docker CLI age without "ago")', () => {
  const now = Date.UTC(2026, 0, 31, 12, 0, 0)
  const SECOND = 1000
  const MINUTE = 60 * SECOND
  const HOUR = 60 * MINUTE
  const DAY = 24 * HOUR
  test.each([
    [0, 'just now'],
    [1 * SECOND, '1 second'],
    [59 * SECOND, '59 seconds'],
    [1 * MINUTE, '1 minute'],
    [90 * MINUTE, '1 hour'],
    [5 * HOUR, '5 hours'],
    [1 * DAY, '1 day'],
    [6 * DAY, '6 days'],
    [21 * DAY, '3 weeks'],
    [60 * DAY, '2 months'],
    [400 * DAY, '1 year'],
    [3 * 365 * DAY, '3 years']
  ])('created %d ms before now → %s', (age, expected) => {
    expect(formatAge(now - age, now)).toBe(expected)
  })

  test('a creation time in the future (clock skew) reads as just now', () => {
    expect(formatAge(now + 5 * MINUTE, now)).toBe('just now')
  })
})
