import type { Filters } from './filters'
import type { CacheRecord } from './model'

/**
 * `dangling`: what `docker builder prune` removes; `all`: what `docker builder prune -a` removes,
 * every record no running build uses.
 */
export type CacheMode = 'dangling' | 'all'

/** Which records a prune of the build cache may take. */
export interface CacheRules {
  mode: CacheMode
  /** Records last used after this (milliseconds since the epoch) stay; none: no record stays for its age. */
  cutoff?: number
}

/** Record types `docker builder prune` leaves without `-a` (moby/buildkit cache/manager.go pruneOnce). */
const KEPT_WITHOUT_ALL = ['internal', 'frontend']

/**
 * The rules from the inputs that judge age: keep-duration keeps what was used within it, and an
 * `until` filter keeps what was used after it (values of one key are ORed, as for images: the
 * latest cut-off wins). Both together keep what either keeps.
 */
export function cacheRules(
  mode: CacheMode,
  settings: { keepDuration?: number; filters: Pick<Filters, 'until'> },
  now: number
): CacheRules {
  const cutoffs = [
    ...(settings.keepDuration === undefined ? [] : [now - settings.keepDuration]),
    ...(settings.filters.until.length > 0 ? [Math.max(...settings.filters.until)] : [])
  ]
  return { mode, cutoff: cutoffs.length > 0 ? Math.min(...cutoffs) : undefined }
}

/**
 * Whether the prune takes the record by itself, children aside. BuildKit never removes a record a
 * build holds; without `all` it also leaves internal and frontend records and those whose data an
 * image uses; a record never released since it was made (no last use) is old enough for any cut-off.
 */
export function eligible(record: CacheRecord, rules: CacheRules): boolean {
  if (record.inUse) return false
  if (rules.mode === 'dangling' && (record.shared || KEPT_WITHOUT_ALL.includes(record.type))) return false
  return rules.cutoff === undefined || record.lastUsedAt === undefined || record.lastUsedAt <= rules.cutoff
}

/**
 * What one `POST /build/prune` removes, in the order it can: a record goes only once no record
 * built on it is left, since children hold references on their parents and BuildKit prunes
 * leaf-first until nothing more goes. `among` narrows the candidates (job scope: the job's own).
 */
export function predictPrune(records: CacheRecord[], rules: CacheRules, among?: Set<string>): CacheRecord[] {
  const left = new Map(records.map(record => [record.id, record]))
  const removed: CacheRecord[] = []
  for (;;) {
    const parents = new Set([...left.values()].flatMap(record => record.parents))
    const round = [...left.values()].filter(
      record => !parents.has(record.id) && (!among || among.has(record.id)) && eligible(record, rules)
    )
    if (round.length === 0) return removed
    for (const record of round) {
      left.delete(record.id)
      removed.push(record)
    }
  }
}

/** What a set of removed records gave back, and how many of them an image still held. */
export interface CacheBytes {
  bytes: number
  /** Removed records an image still held: what the image holds of them stays on disk and is not counted. */
  held: number
}

/**
 * The bytes the removal of these records frees, by the listing taken right before it: the sizes
 * of the records no image shares, and of each shared record the part no image holds (`imageHeld`,
 * by record ID: on overlay2 nothing, since the record's data is the image's very layer; on the
 * containerd store its own snapshot, since the image holds only the blob), also where the engine
 * lists that record unshared (cache-holds.ts mayHoldLayer). A shared record not in `imageHeld`
 * counts 0. The engine's SpaceReclaimed adds up every record's size instead. A removed
 * record the listing does not know counts 0.
 */
export function freedBytes(
  listing: CacheRecord[],
  removed: Iterable<string>,
  imageHeld: Map<string, number> = new Map()
): CacheBytes {
  const byId = new Map(listing.map(record => [record.id, record]))
  let bytes = 0
  let held = 0
  for (const id of removed) {
    const record = byId.get(id)
    if (!record) continue
    if (record.shared || imageHeld.has(id)) {
      held++
      bytes += Math.max(0, record.size - (imageHeld.get(id) ?? record.size))
    } else bytes += record.size
  }
  return { bytes, held }
}
