import { parseDuration, parseTimestamp } from '../../src/common/duration'

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const WEEK = 7 * DAY

describe('parseDuration: Go durations plus d and w, in milliseconds', () => {
  test.each([
    ['0', 0],
    ['0s', 0],
    ['300ms', 300],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['2000000ns', 2],
    ['45s', 45 * SECOND],
    ['90m', 90 * MINUTE],
    ['24h', DAY],
    ['1h30m', HOUR + 30 * MINUTE],
    ['1.5h', HOUR + 30 * MINUTE],
    ['.5h', 30 * MINUTE],
    ['2h45m30s', 2 * HOUR + 45 * MINUTE + 30 * SECOND],
    ['7d', WEEK],
    ['2w', 2 * WEEK],
    ['1w2d3h', WEEK + 2 * DAY + 3 * HOUR]
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  test.each([
    ['banana'],
    [''],
    ['7'],
    ['00'],
    ['-1h'],
    ['1x'],
    ['h'],
    ['1h 30m'],
    [' 1h'],
    ['1h '],
    ['1H'],
    ['1.2.3h'],
    ['1h-30m'],
    ['ms']
  ])('%j is not a duration', text => {
    expect(parseDuration(text)).toBeUndefined()
  })

  test('parsing is stateless: a failure does not spoil the next call', () => {
    expect(parseDuration('1hx')).toBeUndefined()
    expect(parseDuration('2h')).toBe(2 * HOUR)
    expect(parseDuration('3m')).toBe(3 * MINUTE)
  })
})

describe("parseTimestamp: the points in time Docker's until filter reads", () => {
  const now = Date.UTC(2026, 5, 15, 12, 0, 0)

  test.each([
    ['24h', now - DAY],
    ['90m', now - 90 * MINUTE],
    ['7d', now - WEEK],
    ['0', now]
  ])('duration %s is that long before now', (text, expected) => {
    expect(parseTimestamp(text, now)).toBe(expected)
  })

  test.each([
    ['1700000000', 1_700_000_000_000],
    ['1700000000.5', 1_700_000_000_500],
    ['0000000001', 1000]
  ])('Unix seconds %s', (text, expected) => {
    expect(parseTimestamp(text, now)).toBe(expected)
  })

  test.each([
    ['2024-01-15T10:00:00Z', Date.UTC(2024, 0, 15, 10, 0, 0)],
    ['2024-01-15T10:00:00.250Z', Date.UTC(2024, 0, 15, 10, 0, 0, 250)],
    ['2024-01-15T10:00:00+02:00', Date.UTC(2024, 0, 15, 8, 0, 0)],
    ['2024-01-15T10:00:00-05:30', Date.UTC(2024, 0, 15, 15, 30, 0)],
    ['2024-01-15 10:00:00Z', Date.UTC(2024, 0, 15, 10, 0, 0)],
    ['2024-01-15T10:00Z', Date.UTC(2024, 0, 15, 10, 0, 0)]
  ])('RFC 3339 date-time %s', (text, expected) => {
    expect(parseTimestamp(text, now)).toBe(expected)
  })

  test('a date-time without a zone is read in local time, as Docker does', () => {
    expect(parseTimestamp('2024-01-15T10:00:00', now)).toBe(new Date(2024, 0, 15, 10, 0, 0).getTime())
  })

  test('a date alone is midnight of that day', () => {
    // The runners this action targets run in UTC, where local and UTC midnight agree.
    const parsed = parseTimestamp('2024-01-15', now)
    expect([Date.UTC(2024, 0, 15), new Date(2024, 0, 15).getTime()]).toContain(parsed)
  })

  test.each([
    ['junk'],
    [''],
    ['-1h'],
    ['yesterday'],
    ['2024-13-01'],
    ['2024-01-32'],
    ['2024-02-30'],
    ['2024-01-15T25:00:00Z'],
    ['2024-01-15T10:00:00 Z'],
    ['2024/01/15'],
    ['15-01-2024'],
    ['1e9'],
    ['0x10'],
    ['2024-01-15T10:00:00Zjunk']
  ])('%j is rejected', text => {
    expect(parseTimestamp(text, now)).toBeUndefined()
  })
})
