import { cacheRules, eligible, type CacheMode, type CacheRules } from './cache'
import { cacheHolds } from './cache-holds'
import type { Filters } from './filters'
import type { CacheHold, CacheRecord, EngineState } from './model'

/** One build cache record a storage target evicts, as the plan priced it. */
export interface CacheEviction {
  id: string
  /**
   * What its removal frees by the plan: its size when no image shares it; else what of it no image
   * holds (on the containerd store its own snapshot) and the layer it alone still holds.
   */
  bytes: number
  /** An image shared its data when the cache was listed. */
  shared: boolean
  /** An image still holds some of its data when it goes, which stays on disk, as the real run's listing will show. */
  held: boolean
  /** Its last use (its creation when it has none), milliseconds since the epoch. */
  used: number
}

/**
 * The image layers the build cache holds beside the images (overlay2, cache-holds.ts), as the
 * simulation's ledger keeps them: a shared record's removal frees its layer once no image holds it.
 */
export interface LayerHolds {
  /** Bytes that dropping the cache's hold on this layer would free now. */
  heldAlone(chainId: string): number
  /** Drops the cache's hold on this layer; answers the bytes that freed. */
  releaseHold(chainId: string): number
}

/** What the planner reads of the settings for the build cache's part in a storage target. */
export interface CacheBudgetSettings {
  buildCache?: CacheMode | 'none'
  keepDuration?: number
  filters: Pick<Filters, 'until'>
  /** Job scope: set in the post step (the images the main step found). */
  preexisting?: unknown
  /** Job scope: the records the main step found, which stay. */
  preexistingCache?: string[]
  otherJobs?: unknown[]
}

/** When a record was last used, for the least-recently-used order: BuildKit's last use, else its creation. */
export const recordUse = (record: CacheRecord): number => record.lastUsedAt ?? record.createdAt

/** A candidate of either kind at the head of its queue: when it was used, and what it frees now. */
export interface Head {
  used: number
  bytes: number
}

/**
 * Whether the record at the head of the cache's queue goes before the image at the head of the
 * images' queue: one that frees something goes before one that frees nothing yet (as among images),
 * else the one used first, and at the same time the larger; a tie leaves the image first.
 */
export function recordFirst(record: Head, image: Head | undefined): boolean {
  if (!image) return true
  if (record.bytes > 0 !== image.bytes > 0) return record.bytes > 0
  return record.used < image.used || (record.used === image.used && record.bytes > image.bytes)
}

/**
 * The build cache's part in the storage targets, when `build-cache` is set with one: the bytes of
 * its records no image holds count in the measure, and the records `build-cache` lets go are
 * candidates beside the images, least recently used first. A record goes only once no record built
 * on it is left, as BuildKit removes children before their parents (cache.ts predictPrune).
 */
export class CacheBudget {
  private readonly left: Map<string, CacheRecord>
  /** How many records still left are built on each record. */
  private readonly children = new Map<string, number>()
  private readonly order: CacheRecord[]
  private readonly holds: Map<string, CacheHold>
  private readonly evicted: CacheEviction[] = []

  constructor(
    records: CacheRecord[],
    rules: CacheRules,
    /** Only these may go (job scope: the records the job made); all eligible ones when absent. */
    among: Set<string> | undefined,
    /** Records by the image layer they hold too (cache-holds.ts), where the ledger knows them. */
    holds: Map<string, CacheHold>,
    private readonly layers?: LayerHolds
  ) {
    this.left = new Map(records.map(record => [record.id, record]))
    for (const record of records) for (const parent of record.parents) this.adopt(parent, 1)
    this.holds = layers ? holds : new Map()
    this.order = records
      .filter(record => (!among || among.has(record.id)) && eligible(record, rules))
      .sort((a, b) => recordUse(a) - recordUse(b) || b.size - a.size || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  private adopt(parent: string, change: number): void {
    this.children.set(parent, (this.children.get(parent) ?? 0) + change)
  }

  /** Bytes of the records left that no image holds: the build cache's part of the targets' measure. */
  ownBytes(): number {
    let bytes = 0
    for (const record of this.left.values()) bytes += this.own(record)
    return bytes
  }

  /**
   * What of the record no image holds, which its removal frees whatever the images: all of an
   * unshared one; of one an image holds too (cache-holds.ts), on the containerd store its own
   * snapshot beside the blob, and on overlay2 nothing. A shared record matched to no layer counts nothing.
   */
  private own(record: CacheRecord): number {
    const hold = this.holds.get(record.id)
    if (!hold) return record.shared ? 0 : record.size
    return Math.max(0, record.size - hold.bytes)
  }

  /** What removing this record would free now. */
  private price(record: CacheRecord): number {
    const hold = this.holds.get(record.id)
    return this.own(record) + (hold && this.layers ? this.layers.heldAlone(hold.chainId) : 0)
  }

  /**
   * The next record to evict: the first in order that no record left is built on and that frees
   * something, else the first that no record left is built on.
   */
  next(): (Head & { id: string }) | undefined {
    let firstReady: (Head & { id: string }) | undefined
    for (const record of this.order) {
      if (!this.left.has(record.id) || (this.children.get(record.id) ?? 0) > 0) continue
      const head = { id: record.id, used: recordUse(record), bytes: this.price(record) }
      if (head.bytes > 0) return head
      firstReady ??= head
    }
    return firstReady
  }

  /** Takes the record out of the cache; answers the bytes that frees. */
  evict(id: string): number {
    const record = this.left.get(id)
    if (!record) return 0
    this.left.delete(id)
    for (const parent of record.parents) this.adopt(parent, -1)
    const hold = this.holds.get(id)
    const released = hold && this.layers ? this.layers.releaseHold(hold.chainId) : 0
    const bytes = this.own(record) + released
    this.evicted.push({
      id,
      bytes,
      shared: record.shared,
      held: (record.shared || hold !== undefined) && released === 0,
      used: recordUse(record)
    })
    return bytes
  }

  /** The records evicted so far, in order: children before their parents. */
  evictions(): CacheEviction[] {
    return this.evicted
  }
}

/**
 * The build cache's part in the targets, or none: only with a target, `build-cache` set and an
 * engine that keeps a build cache. In job scope only the records the job made may go, and none
 * while other jobs run on the engine, whose records cannot be told from the job's.
 */
export function cacheBudget(
  state: Pick<EngineState, 'buildCache' | 'cacheHeld' | 'cacheHolds' | 'images' | 'layers' | 'createdAt'>,
  settings: CacheBudgetSettings,
  layers: LayerHolds,
  now: number
): CacheBudget | undefined {
  const mode = settings.buildCache
  if (!mode || mode === 'none' || !state.buildCache) return undefined
  const records = state.buildCache
  let among: Set<string> | undefined
  if (settings.preexisting !== undefined) {
    // Without the main step's list, or with other jobs running, no record can be told to be the job's.
    const before = settings.otherJobs?.length ? undefined : settings.preexistingCache
    const known = new Set(before)
    among = new Set(before ? records.filter(record => !known.has(record.id)).map(record => record.id) : [])
  }
  // The ledger counts the cache's hold on a layer only where the run matched records to layers.
  const holds = state.cacheHeld ? cacheHolds(records, state) : new Map<string, CacheHold>()
  return new CacheBudget(records, cacheRules(mode, settings, now), among, holds, state.cacheHeld && layers)
}
