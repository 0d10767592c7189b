import type { Engine } from '../engine/engine'
import {
  applyCacheHolds,
  CONTAINERD_METADATA,
  keptLayers,
  matchCacheRecords,
  mayHoldLayer,
  unsharedBy
} from '../plan/cache-holds'
import type { CacheHold, CacheRecord, EngineState, HistoryEntry } from '../plan/model'

/**
 * Matches the shared build cache records to the image layers they hold (plan/cache-holds.ts).
 * On the containerd store a record holds the layer's blob but not the image's snapshot, which
 * only the history tells apart: it is read for the images that have a layer near a record's size.
 */
export async function readCacheHolds(
  engine: Engine,
  records: CacheRecord[],
  state: Pick<EngineState, 'images' | 'layers' | 'createdAt'>
): Promise<CacheHold[]> {
  const containerd = engine.store === 'containerd'
  const holding = records.filter(record => mayHoldLayer(record, containerd))
  if (holding.length === 0) return []
  if (!containerd) return matchCacheRecords(holding, state)
  const near = (size: number): boolean => holding.some(record => Math.abs(size - record.size) <= CONTAINERD_METADATA)
  const asked = new Set<string>()
  const stacks: { id: string; chain: string[] }[] = []
  for (const image of state.images) {
    const chain = state.layers.get(image.id) ?? []
    const wanted = chain.filter(layer => near(layer.size) && !asked.has(layer.chainId))
    if (wanted.length === 0) continue
    for (const layer of wanted) asked.add(layer.chainId)
    stacks.push({ id: image.id, chain: chain.map(layer => layer.chainId) })
  }
  const steps = stacks.length > 0 ? await engine.layerHistory(stacks) : new Map<string, HistoryEntry>()
  return matchCacheRecords(holding, state, steps)
}

/** Records the holds in the state: the ledger then counts the cache as one more holder of what it holds. */
export function holdInState(state: EngineState, holds: CacheHold[]): void {
  const { layers, cacheHeld } = applyCacheHolds(state.layers, holds)
  Object.assign(state, { layers, cacheHeld, cacheHolds: holds })
}

/** What the planning read, for the cache step: the state it planned on and the images the run deleted (or would). */
export interface CachePrior {
  state: EngineState
  deleted: string[]
}

/**
 * The listing the cache step prices its prune by, and what images hold of each shared record.
 * A dry run that would delete images sees the records those deletions unshare as unshared,
 * as the real run's listing will show them. On the containerd store a shared record's removal
 * frees its own snapshot, so what an image holds of it (its blob) is read where the planning did
 * not; on overlay2 an image holds the whole record, the default.
 */
export async function cacheShares(
  engine: Engine,
  listing: CacheRecord[],
  dryRun: boolean,
  prior?: CachePrior
): Promise<{ listing: CacheRecord[]; held: Map<string, number> }> {
  const planned = prior?.state.cacheHolds
  if (!planned) {
    const fresh =
      engine.store === 'containerd' && listing.some(record => mayHoldLayer(record, true))
        ? await readCacheHolds(engine, listing, await freshState(engine))
        : []
    return { listing, held: new Map(fresh.map(hold => [hold.recordId, hold.bytes])) }
  }
  const deleted = new Set(prior.deleted)
  const priced = dryRun ? unsharedBy(listing, planned, prior.state, deleted) : listing
  // A record whose image the run deleted holds its data alone again, whatever the listing says.
  const kept = keptLayers(prior.state, deleted)
  const held = new Map(planned.filter(hold => kept.has(hold.chainId)).map(hold => [hold.recordId, hold.bytes]))
  return { listing: priced, held }
}

async function freshState(engine: Engine): Promise<Pick<EngineState, 'images' | 'layers' | 'createdAt'>> {
  const images = await engine.images()
  const { layers, createdAt } = await engine.details(images)
  return { images, layers, createdAt }
}
