import type { Engine } from '../engine/engine'
import { cacheRules, freedBytes, predictPrune, type CacheMode, type CacheRules } from '../plan/cache'
import type { CacheEviction } from '../plan/cache-budget'
import type { CacheRecord } from '../plan/model'
import type { Settings } from '../settings/settings'
import { formatBytes } from '../common/units'
import type { Log } from './log'
import { cacheShares, type CachePrior } from './cache-holds'

/**
 * build-cache with nothing that removes an image (no refs, prune, storage target or job scope):
 * such a run reads no image, and the cache's listing before the prune can be asked at once.
 */
export const cacheAlone = (settings: Settings): boolean =>
  settings.buildCache !== 'none' &&
  settings.scope === 'all' &&
  settings.refs.length === 0 &&
  settings.prune === 'none' &&
  !settings.targets

/** What the build cache step did (or, in a dry run, would do). */
export interface CacheResult {
  mode: CacheMode
  /** The engine keeps no build cache (Podman builds with Buildah): nothing was asked. */
  absent?: boolean
  /** IDs of the records removed. */
  removed: string[]
  /** Bytes freed on disk: the removed records no image shared (plan/cache.ts freedBytes). */
  bytes: number
  /** Removed records an image still held, counted 0. */
  held: number
  /** Job scope, with other jobs still running on the engine: the cache was left to the last of them. */
  leftForOthers?: boolean
  /** The records went for a storage target, least recently used first, not because of `build-cache` alone. */
  forTarget?: boolean
}

/** Everything a run freed on disk (or would): the images' bytes and the build cache's. */
export const totalBytes = (result: { bytes: number; cache?: CacheResult }): number =>
  result.bytes + (result.cache?.bytes ?? 0)

/** What the cache step reads of the settings; `preexistingCache` is job scope's list from the main step. */
export type CacheSettings = Pick<Settings, 'buildCache' | 'keepDuration' | 'filters' | 'dryRun'> & {
  /** Set in job scope's post step (the images the main step found). */
  preexisting?: unknown
  preexistingCache?: string[]
  otherJobs?: unknown[]
}

/**
 * Removes the build cache records the settings ask for, after the images: records whose data
 * only the removed images held are no longer shared by then, and their bytes count. The listing
 * right before the prune prices the records it removes, since the engine's own SpaceReclaimed
 * counts data an image still holds.
 */
export async function reclaimCache(
  engine: Engine,
  settings: CacheSettings,
  now: number,
  log: Log,
  prior?: CachePrior
): Promise<CacheResult | undefined> {
  const mode = settings.buildCache
  if (mode === 'none') return undefined
  const listed = await engine.buildCache()
  if (!listed) {
    log.info('This engine keeps no build cache (Podman builds with Buildah): build-cache has nothing to remove.')
    return { mode, absent: true, removed: [], bytes: 0, held: 0 }
  }
  const rules = cacheRules(mode, settings, now)
  const alone = leftAlone(mode, settings, log)
  if (alone) return alone
  const { listing, held } = await cacheShares(engine, listed, settings.dryRun, prior)
  const removed = settings.preexistingCache
    ? await pruneJobRecords(engine, listing, rules, new Set(settings.preexistingCache), settings.dryRun)
    : await pruneOnce(engine, listing, rules, settings.dryRun, now)
  const result = { mode, removed, ...freedBytes(listing, removed, held) }
  log.info(cacheLine(result, listing.length, settings.dryRun))
  return result
}

/** Job scope's post step, where the job's records cannot be told from the others: the cache stays. */
function leftAlone(mode: CacheMode, settings: CacheSettings, log: Log): CacheResult | undefined {
  if (settings.preexisting !== undefined && !settings.preexistingCache) {
    log.warning(
      'The main step recorded no build cache, so the post step cannot tell what the job added to it: it stays.'
    )
    return { mode, removed: [], bytes: 0, held: 0 }
  }
  if (settings.preexistingCache && settings.otherJobs?.length) {
    log.info('Other jobs still run on this engine: their build cache cannot be told from this one, so it stays.')
    return { mode, removed: [], bytes: 0, held: 0, leftForOthers: true }
  }
  return undefined
}

/**
 * The records a storage target evicts (plan/cache-budget.ts), after the images: each by an
 * anchored `id` filter of its own, children before their parents, as job scope removes its own.
 * The listing right before prices them, since the image removals may have unshared some; a dry
 * run takes the plan's prices, which know which layers the images it removes leave to the cache.
 */
export async function evictCache(
  engine: Engine,
  evictions: CacheEviction[],
  /** The listing the plan was made from. */
  planned: CacheRecord[],
  settings: CacheSettings,
  log: Log
): Promise<CacheResult | undefined> {
  const mode = settings.buildCache
  if (mode === 'none') return undefined
  const alone = leftAlone(mode, settings, log)
  if (alone) return { ...alone, forTarget: true }
  let result: CacheResult
  let listed: number
  // Nothing to remove needs no second listing: before API 1.42 it would size every container.
  if (settings.dryRun || evictions.length === 0) {
    const bytes = evictions.reduce((sum, eviction) => sum + eviction.bytes, 0)
    const held = evictions.filter(eviction => eviction.held).length
    result = { mode, removed: evictions.map(eviction => eviction.id), bytes, held, forTarget: true }
    listed = planned.length
  } else {
    const listing = (await engine.buildCache()) ?? []
    listed = listing.length
    const present = new Set(listing.map(record => record.id))
    const removed: string[] = []
    for (const { id } of evictions.filter(eviction => present.has(eviction.id))) {
      removed.push(...(await engine.pruneBuildCache({ all: mode === 'all', id: `^${id}$` })))
    }
    const unique = [...new Set(removed)]
    const { held } = await cacheShares(engine, listing, false)
    result = { mode, removed: unique, ...freedBytes(listing, unique, held), forTarget: true }
  }
  log.info(`${cacheLine(result, listed, settings.dryRun)}, for the storage target, least recently used first`)
  return result
}

/** One `POST /build/prune`, as `docker builder prune` sends it; a dry run predicts its answer. */
async function pruneOnce(
  engine: Engine,
  listing: CacheRecord[],
  rules: CacheRules,
  dryRun: boolean,
  now: number
): Promise<string[]> {
  if (dryRun) return predictPrune(listing, rules).map(record => record.id)
  // The daemon takes `until` as a duration before its own clock.
  const until = rules.cutoff === undefined ? undefined : Math.max(0, now - rules.cutoff)
  return engine.pruneBuildCache({ all: rules.mode === 'all', until })
}

/**
 * Job scope: only the records the main step did not find. The prune takes no list, so each goes
 * by an `id` filter of its own, anchored since the daemon matches it as a regular expression, and
 * children before their parents, which they hold. A job makes few records.
 */
async function pruneJobRecords(
  engine: Engine,
  listing: CacheRecord[],
  rules: CacheRules,
  preexisting: Set<string>,
  dryRun: boolean
): Promise<string[]> {
  const own = new Set(listing.filter(record => !preexisting.has(record.id)).map(record => record.id))
  const chosen = predictPrune(listing, rules, own)
  if (dryRun) return chosen.map(record => record.id)
  const removed: string[] = []
  for (const record of chosen) {
    removed.push(...(await engine.pruneBuildCache({ all: rules.mode === 'all', id: `^${record.id}$` })))
  }
  return [...new Set(removed)]
}

/** The IDs of the build cache records on the engine, for job scope's post step; none where there is no cache. */
export async function recordCache(engine: Engine, log: Log): Promise<string[]> {
  const listing = (await engine.buildCache()) ?? []
  log.info(`Recorded the ${listing.length} build cache records: the post step removes only those the job adds.`)
  return listing.map(record => record.id)
}

function cacheLine(result: CacheResult, listed: number, dryRun: boolean): string {
  const verb = dryRun ? 'would remove' : 'removed'
  const held =
    result.held > 0
      ? `; ${result.held} of them hold data an image still uses, which stays on disk and is not counted`
      : ''
  return (
    `Build cache (${result.mode}): ${listed} records, ${verb} ${result.removed.length}, ` +
    `${formatBytes(result.bytes)} (${result.bytes} bytes)${held}`
  )
}
