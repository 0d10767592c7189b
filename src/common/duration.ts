const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000
}

const TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)/y

/**
 * Parses a Go duration (`90m`, `1h30m`, `1.5h`) extended with days and weeks
 * (`7d`, `2w`), as milliseconds. Returns undefined for anything else, so the
 * caller can name the input in its error. A bare `0` is Go's zero duration.
 */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0
  if (text === '') return undefined
  TERM.lastIndex = 0
  let total = 0
  while (TERM.lastIndex < text.length) {
    const start = TERM.lastIndex
    const match = TERM.exec(text)
    if (!match || match.index !== start) return undefined
    total += Number(match[1]) * UNIT_MS[match[2]]
  }
  return total
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/
const UNIX_TIME = /^\d+(?:\.\d+)?$/

/**
 * Reads a point in time the way Docker's `until` filter does: a duration
 * before `now`, Unix seconds, or an RFC 3339 date or date-time. Returns
 * milliseconds since the epoch, or undefined.
 */
export function parseTimestamp(text: string, now: number): number | undefined {
  const duration = parseDuration(text)
  if (duration !== undefined) return now - duration
  if (UNIX_TIME.test(text)) return Number(text) * 1000
  if (!ISO_DATE.test(text) || !isCalendarDate(text)) return undefined
  const time = Date.parse(text.includes('T') || text.length === 10 ? text : text.replace(' ', 'T'))
  return Number.isNaN(time) ? undefined : time
}

/** Date.parse rolls 2024-02-30 over into March; Go's parser, which Docker uses, refuses it. */
function isCalendarDate(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number)
  const [hour = 0, minute = 0, second = 0] = (text.slice(11, 19).match(/\d{2}/g) ?? []).map(Number)
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour < 24 && minute < 60 && second < 60
}
