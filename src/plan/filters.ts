import { parseTimestamp } from '../common/duration'
import { globToRegExp, parseRefSpec, patternMatches, parseNamed, type NamedRef } from './reference'
import type { Image } from './model'

export type FilterKey = 'dangling' | 'label' | 'label!' | 'before' | 'since' | 'reference' | 'until'

export const FILTER_KEYS: readonly FilterKey[] = [
  'dangling',
  'label',
  'label!',
  'before',
  'since',
  'reference',
  'until'
]

/** Filters as typed values; each list holds one key's values. */
export interface Filters {
  dangling?: boolean
  label: string[]
  notLabel: string[]
  before: string[]
  since: string[]
  reference: RegExp[]
  /** Cut-offs in milliseconds since the epoch. */
  until: number[]
}

export const NO_FILTERS: Filters = { label: [], notLabel: [], before: [], since: [], reference: [], until: [] }

const BOOLEANS: Record<string, boolean> = { true: true, '1': true, false: false, '0': false }

/** A filter line that cannot be read, and why. */
export class FilterError extends Error {
  constructor(
    readonly line: string,
    readonly why: string
  ) {
    super(`"${line}": ${why}`)
  }
}

/** Parses `key=value` lines; throws a FilterError about the first bad one. */
export function parseFilters(lines: string[], now: number): Filters {
  const filters: Filters = { ...NO_FILTERS, label: [], notLabel: [], before: [], since: [], reference: [], until: [] }
  for (const line of lines) addFilter(filters, line, now)
  return filters
}

function addFilter(filters: Filters, line: string, now: number): void {
  const eq = line.indexOf('=')
  const key = eq < 0 ? line : line.slice(0, eq)
  const value = eq < 0 ? '' : line.slice(eq + 1)
  const fail = (accepted: string): never => {
    throw new FilterError(line, accepted)
  }
  if (!(FILTER_KEYS as readonly string[]).includes(key)) {
    fail(`the key must be one of ${FILTER_KEYS.join(', ')}`)
  }
  if (value === '') fail(`${key} needs a value (${key}=...)`)
  switch (key as FilterKey) {
    case 'dangling': {
      const flag = BOOLEANS[value.toLowerCase()]
      if (flag === undefined) fail('dangling takes true or false')
      if (filters.dangling !== undefined && filters.dangling !== flag) fail('dangling cannot be both true and false')
      filters.dangling = flag
      return
    }
    case 'label':
    case 'label!':
      if (value.startsWith('=')) fail(`${key} takes a key or key=value`)
      ;(key === 'label' ? filters.label : filters.notLabel).push(value)
      return
    case 'before':
    case 'since':
      if (!parseRefSpec(value) || value.includes('*') || value.includes('?')) {
        fail(`${key} takes an image ID or name:tag`)
      }
      filters[key as 'before' | 'since'].push(value)
      return
    case 'reference':
      if (!/^[A-Za-z0-9._\-/:@*?]+$/.test(value)) fail('reference takes a name pattern such as app:* or */cache:pr-*')
      filters.reference.push(globToRegExp(value))
      return
    case 'until': {
      const cutoff = parseTimestamp(value, now)
      if (cutoff === undefined) fail('until takes a duration (24h, 7d) or a timestamp (RFC 3339 or Unix seconds)')
      filters.until.push(cutoff as number)
    }
  }
}

/** Docker's label matching: `k` asks for the key, `k=v` for the key and value. */
function hasLabel(labels: Record<string, string>, wanted: string): boolean {
  const eq = wanted.indexOf('=')
  if (eq < 0) return Object.prototype.hasOwnProperty.call(labels, wanted)
  const key = wanted.slice(0, eq)
  return Object.prototype.hasOwnProperty.call(labels, key) && labels[key] === wanted.slice(eq + 1)
}

export function imageRefs(image: Image): NamedRef[] {
  return [...image.tags, ...image.digests].flatMap(text => {
    const ref = parseNamed(text)
    return ref ? [ref] : []
  })
}

/** Creation times of the images that `before`/`since` name, resolved by the caller. */
export interface Anchors {
  before: number[]
  since: number[]
}

/**
 * Whether an image passes every filter. Docker's rules: values of one key are
 * ORed, except `label` (every one must match) and `label!` (the image is out
 * only when it matches every one of them, as the engine's prune does).
 */
export function passes(image: Image, filters: Filters, anchors: Anchors): boolean {
  if (filters.dangling !== undefined && filters.dangling !== (image.tags.length === 0)) return false
  if (!filters.label.every(label => hasLabel(image.labels, label))) return false
  if (filters.notLabel.length > 0 && filters.notLabel.every(label => hasLabel(image.labels, label))) return false
  if (anchors.before.length > 0 && !anchors.before.some(t => image.created < t)) return false
  if (anchors.since.length > 0 && !anchors.since.some(t => image.created > t)) return false
  if (filters.until.length > 0 && !filters.until.some(t => image.created <= t)) return false
  if (filters.reference.length > 0) {
    const refs = imageRefs(image)
    if (!filters.reference.some(pattern => refs.some(ref => patternMatches(pattern, ref)))) return false
  }
  return true
}
