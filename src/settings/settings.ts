import { parseDuration } from '../common/duration'
import { InputError } from '../common/errors'
import { FilterError, parseFilters } from '../plan/filters'
import { parseRefSpec, type RefSpec } from '../plan/reference'
import { parseSize } from '../common/units'
import type { Selection, Targets } from '../plan/plan'
import type { AgeBasis } from '../plan/usage'
import type { CacheMode } from '../plan/cache'

/** Everything the step was asked to do, validated before the engine is touched. */
export interface Settings extends Selection {
  /** Change nothing; report the plan and its bytes. */
  dryRun: boolean
  /** Fail the step when a named ref was not found or could not be removed. */
  failOnError: boolean
  /** Engine endpoint; '' means DOCKER_HOST, then the docker context, then the default socket. */
  dockerHost: string
  summary: boolean
  /** `job`: the main step records the images present, the post step removes only what the job added. */
  scope: 'all' | 'job'
  /** Milliseconds after which a job's record on the engine no longer protects its images. */
  jobTimeout: number
  /** Milliseconds the engine may take to answer one request (retries included). */
  timeout: number
  /** Which build cache records to remove after the images (docs/build-cache.md); `none` leaves it. */
  buildCache: CacheMode | 'none'
  /** Where the host daemon's ledger is read; unset: where the daemon keeps it by default (host/ledger-file.ts). */
  stateDir?: string
}

/** Every input action.yml declares, in its order. */
export const INPUT_NAMES = [
  'refs',
  'filters',
  'prune',
  'build-cache',
  'force',
  'no-prune',
  'keep-duration',
  'keep',
  'keep-last',
  'age-basis',
  'max-storage',
  'min-free',
  'headroom',
  'dry-run',
  'fail-on-error',
  'docker-host',
  'summary',
  'scope',
  'job-timeout',
  'timeout'
] as const

/** The raw strings of every input, as the runner passes them. */
export type RawInputs = Record<(typeof INPUT_NAMES)[number], string>

const REF_FORMS =
  'a short or full image ID, sha256:<id>, name, name:tag, name@sha256:<digest>, or a pattern with * and ?'
const HOST_SCHEMES = ['unix://', 'tcp://', 'npipe://', 'ssh://', 'http://', 'https://']

/** Checks every input and turns them into settings; the first bad one throws an InputError. */
export function parseSettings(raw: RawInputs, now: number): Settings {
  const refs = refList(raw.refs, 'refs')
  const scope = scopeOf(raw.scope)
  const buildCache = cacheMode(raw['build-cache'])
  // With neither refs, prune nor build-cache: dangling images, or in job scope all that the job
  // added. build-cache alone asks for the cache only.
  const everything = refs.length === 0 && raw.prune.trim() === '' && buildCache === 'none'
  const prune = everything ? (scope === 'job' ? 'all' : 'dangling') : pruneMode(raw.prune)
  return {
    refs,
    filters: filterList(raw.filters, now),
    prune,
    force: flag(raw.force, 'force', false),
    noPrune: flag(raw['no-prune'], 'no-prune', false),
    keepDuration: keepDuration(raw['keep-duration']),
    keep: refList(raw.keep, 'keep'),
    keepLast: keepLast(raw['keep-last']),
    ageBasis: ageBasis(raw['age-basis']),
    targets: targets(raw['max-storage'], raw['min-free'], raw.headroom, raw['docker-host']),
    dryRun: flag(raw['dry-run'], 'dry-run', false),
    failOnError: flag(raw['fail-on-error'], 'fail-on-error', false),
    dockerHost: dockerHost(raw['docker-host']),
    summary: flag(raw.summary, 'summary', true),
    scope,
    jobTimeout: positiveDuration(raw['job-timeout'], 'job-timeout', DEFAULT_JOB_TIMEOUT_MS, '6h, 90m or 3d'),
    untagAdded: scope === 'job' && everything,
    timeout: positiveDuration(raw.timeout, 'timeout', DEFAULT_TIMEOUT_MS, '30s, 2m or 1m30s'),
    buildCache
  }
}

function fail(input: string, problem: string): never {
  throw new InputError(input, problem)
}

/** Accepts what YAML 1.2 and core.getBooleanInput accept; '' takes the default. */
function flag(value: string, input: string, fallback: boolean): boolean {
  const text = value.trim()
  if (text === '') return fallback
  if (['true', 'True', 'TRUE'].includes(text)) return true
  if (['false', 'False', 'FALSE'].includes(text)) return false
  return fail(input, `must be true or false, not "${printable(text)}".`)
}

function tokens(value: string): string[] {
  return value.split(/[\s,]+/).filter(Boolean)
}

function refList(value: string, input: string): RefSpec[] {
  return tokens(value).map(
    text => parseRefSpec(text) ?? fail(input, `has "${printable(text)}", which is not ${REF_FORMS}.`)
  )
}

function pruneMode(value: string): Settings['prune'] {
  const text = value.trim()
  if (text === '') return 'none'
  if (text === 'dangling' || text === 'all') return text
  return fail('prune', `must be dangling or all (or empty), not "${printable(text)}".`)
}

function cacheMode(value: string): Settings['buildCache'] {
  const text = value.trim()
  if (text === '') return 'none'
  if (text === 'dangling' || text === 'all') return text
  return fail('build-cache', `must be dangling or all (or empty), not "${printable(text)}".`)
}

function scopeOf(value: string): Settings['scope'] {
  const text = value.trim()
  if (text === '' || text === 'all' || text === 'job') return text === 'job' ? 'job' : 'all'
  return fail('scope', `must be all or job, not "${printable(text)}".`)
}

function filterList(value: string, now: number): Settings['filters'] {
  const lines = value
    .split('\n')
    .map(line => line.trim())
    .filter(Boolean)
  try {
    return parseFilters(lines, now)
  } catch (error) {
    if (!(error instanceof FilterError)) throw error
    return fail('filters', `has an invalid filter "${printable(error.line)}": ${error.why}.`)
  }
}

function keepDuration(value: string): number | undefined {
  const text = value.trim()
  if (text === '') return undefined
  const ms = parseDuration(text)
  if (ms === undefined)
    return fail('keep-duration', `must be a duration such as 90m, 24h, 1h30m, 7d or 2w, not "${printable(text)}".`)
  return ms
}

function keepLast(value: string): number {
  const text = value.trim()
  if (text === '') return 0
  if (!/^\d{1,6}$/.test(text))
    return fail('keep-last', `must be a whole number of images such as 3 (0 keeps none), not "${printable(text)}".`)
  return Number(text)
}

function ageBasis(value: string): AgeBasis {
  const text = value.trim()
  if (text === '' || text === 'created' || text === 'last-used') return text === 'last-used' ? 'last-used' : 'created'
  return fail('age-basis', `must be created or last-used, not "${printable(text)}".`)
}

const SIZE_FORMS = 'a size such as 20GB, 18.5GiB, 500MB or a number of bytes, or a share of the disk such as 20%'
const PERCENT = /^(\d+(?:\.\d+)?)\s*%$/

/** Bytes, or a percentage of the filesystem under the engine's data root (more than 0, at most 100). */
function amount(value: string, input: string): { bytes?: number; percent?: number } {
  const text = value.trim()
  if (text === '') return {}
  const percent = PERCENT.exec(text)
  if (percent && Number(percent[1]) > 0 && Number(percent[1]) <= 100) return { percent: Number(percent[1]) }
  const bytes = percent ? undefined : parseSize(text)
  return bytes === undefined ? fail(input, `must be ${SIZE_FORMS}, not "${printable(text)}".`) : { bytes }
}

function targets(maxStorage: string, minFree: string, headroom: string, host: string): Targets | undefined {
  const max = amount(maxStorage, 'max-storage')
  const free = amount(minFree, 'min-free')
  const spare = amount(headroom, 'headroom')
  const wanted: Targets = {
    maxStorage: max.bytes,
    minFree: free.bytes,
    ...(max.percent === undefined ? {} : { maxStoragePercent: max.percent }),
    ...(free.percent === undefined ? {} : { minFreePercent: free.percent })
  }
  const none = Object.values(wanted).every(value => value === undefined)
  if (none && (spare.bytes !== undefined || spare.percent !== undefined))
    return fail('headroom', 'needs max-storage or min-free: it is what eviction frees beyond a target once crossed.')
  if (spare.bytes !== undefined) wanted.headroom = spare.bytes
  if (spare.percent !== undefined) wanted.headroomPercent = spare.percent
  if (measuresDisk(wanted) && host.trim() !== '') requireLocal(host.trim(), wanted)
  return none ? undefined : wanted
}

/** Whether the targets need the filesystem under the engine's data root measured. */
export function measuresDisk(targets: Targets | undefined): boolean {
  return (
    targets !== undefined &&
    (targets.minFree !== undefined ||
      targets.minFreePercent !== undefined ||
      targets.maxStoragePercent !== undefined ||
      targets.headroomPercent !== undefined)
  )
}

/**
 * Free space and disk size are read from the runner's own filesystem, so they mean something only
 * for an engine on this machine.
 */
export function requireLocal(endpoint: string, targets: Targets): void {
  if (endpoint.startsWith('unix://') || endpoint.startsWith('npipe://')) return
  const scheme = endpoint.split('://')[0]
  const freeSpace = targets.minFree !== undefined || targets.minFreePercent !== undefined
  const input = freeSpace ? 'min-free' : targets.maxStoragePercent !== undefined ? 'max-storage' : 'headroom'
  const remedy =
    input === 'min-free' ? 'use max-storage for a remote engine' : 'give a size such as 20GB for a remote engine'
  const what = input === 'min-free' ? '' : ' as a percentage'
  fail(input, `needs an engine on this machine${what} (a unix:// or npipe:// endpoint), not ${scheme}://: ${remedy}.`)
}

const DEFAULT_TIMEOUT_MS = 60_000
/** GitHub's default `timeout-minutes` for a job: no job runs longer unless its workflow says so. */
const DEFAULT_JOB_TIMEOUT_MS = 6 * 3_600_000

/**
 * A duration above zero and at least `least` when given, or `fallback` when the input is empty;
 * `examples` are shown when it is neither.
 */
export function positiveDuration(
  value: string,
  input: string,
  fallback: number,
  examples: string,
  least?: { ms: number; words: string }
): number {
  const text = value.trim()
  if (text === '') return fallback
  const ms = parseDuration(text)
  if (ms === undefined || ms <= 0 || ms < (least?.ms ?? 0)) {
    const kind = least ? `duration of ${least.words} or more` : 'positive duration'
    return fail(input, `must be a ${kind} such as ${examples}, not "${printable(text)}".`)
  }
  return ms
}

function dockerHost(value: string): string {
  const text = value.trim()
  if (text === '' || HOST_SCHEMES.some(scheme => text.startsWith(scheme) && text.length > scheme.length)) return text
  return fail(
    'docker-host',
    `must be an endpoint such as unix:///var/run/docker.sock or tcp://host:2376, not "${printable(text)}".`
  )
}

/** Keeps control characters and huge values out of the one-line error. */
function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, '?')
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean
}
