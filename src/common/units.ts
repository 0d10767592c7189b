const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB']

/** Decimal sizes to four significant digits, as the docker CLI prints them (go-units HumanSize). */
export function formatBytes(bytes: number): string {
  let size = bytes
  let unit = 0
  while (size >= 1000 && unit < UNITS.length - 1) {
    size /= 1000
    unit++
  }
  return `${Number(size.toPrecision(4))}${UNITS[unit]}`
}

/**
 * A whole number with a comma between thousands, as toLocaleString('en-US') writes it. Written by
 * hand because that call loads ICU's number formats on first use, a real cost for a short run.
 */
export function groupThousands(whole: number): string {
  return String(whole).replace(/\B(?=(\d{3})+$)/g, ',')
}

/** A rough age such as the docker CLI's "3 weeks ago", without the "ago". */
export function formatAge(created: number, now: number): string {
  const seconds = Math.max(0, Math.round((now - created) / 1000))
  const steps: [number, string][] = [
    [365 * 86400, 'year'],
    [30 * 86400, 'month'],
    [7 * 86400, 'week'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second']
  ]
  for (const [span, name] of steps) {
    const count = Math.floor(seconds / span)
    if (count >= 1) return `${count} ${name}${count > 1 ? 's' : ''}`
  }
  return 'just now'
}

const SIZE = /^(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(i?)b?$/i
const POWERS = ['', 'k', 'm', 'g', 't', 'p']

/**
 * Reads a size as `docker` users write one: decimal units as go-units'
 * FromHumanSize reads them (`20GB`, `20g`, `500MB`), binary ones with an `i`
 * (`18.5GiB`, Kubernetes' `18Gi`), or plain bytes. Returns whole bytes, or undefined.
 */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim())
  if (!match) return undefined
  const [, value, prefix, binary] = match
  if (binary && !prefix) return undefined
  const base = binary ? 1024 : 1000
  return Math.floor(Number(value) * base ** POWERS.indexOf(prefix.toLowerCase()))
}
