import type { CacheHold, CacheRecord, EngineState, HistoryEntry, Layer } from './model'

/**
 * How far a layer's size may stand from its record's size on the containerd store: the image's
 * manifest and config, which its size counts and the record's does not (a few hundred bytes each).
 */
export const CONTAINERD_METADATA = 64 * 1024

/** How BuildKit ends the history entry of a layer it made. */
const BUILDKIT_STEP = '# buildkit'

type Candidate = { chainId: string; size: number; made: number }

/**
 * Whether a record may hold an image's layer. The engine marks such a record `shared`, but on the
 * containerd store BuildKit lists a layer's record unshared for the daemon's life when its disk
 * usage was read during the build (its garbage collector does so), while the image holds the
 * record's blob all the same: there an unshared record of a layer counts too.
 */
export function mayHoldLayer(record: CacheRecord, containerd: boolean): boolean {
  return record.size > 0 && (record.shared || (containerd && record.type === 'regular'))
}

/**
 * Matches each shared record to the layer whose data it holds. The engine marks such a record
 * `shared` but names no layer. On overlay2 the record's size is the layer's own; among several of
 * that size, the layer made closest in time to the record is taken. On the containerd
 * store (`steps`: each layer's history entry, whose size is its unpacked snapshot) the record holds
 * its blob and a snapshot the size of the image's, so it matches a layer of its size give or take
 * the image's metadata, and holds that size less the snapshot; an unshared layer record
 * (mayHoldLayer) then matches a layer BuildKit made that no shared record holds. Where this
 * guesses wrong, the dry run is off, but a real run on overlay2 still counts what the engine says
 * it removed.
 */
export function matchCacheRecords(
  records: CacheRecord[],
  state: Pick<EngineState, 'images' | 'layers' | 'createdAt'>,
  steps?: Map<string, HistoryEntry>
): CacheHold[] {
  // A layer in several images (a base and the apps built FROM it) was made with the oldest of them.
  const byChain = new Map<string, Candidate>()
  for (const image of state.images) {
    const made = state.createdAt?.get(image.id) ?? image.created
    for (const layer of state.layers.get(image.id) ?? []) {
      const known = byChain.get(layer.chainId)
      if (!known) byChain.set(layer.chainId, { ...layer, made })
      else known.made = Math.min(known.made, made)
    }
  }
  const candidates = [...byChain.values()]
  const taken = new Set<string>()
  const holds: CacheHold[] = []
  const unshared = steps ? records.filter(r => !r.shared && mayHoldLayer(r, true)) : []
  // A legacy build's layer of the same size is no BuildKit record's.
  const byBuildKit = (c: Candidate): boolean => steps?.get(c.chainId)?.createdBy.endsWith(BUILDKIT_STEP) === true
  for (const record of [...records.filter(r => r.shared && r.size > 0), ...unshared]) {
    // A layer is one record's: two records of one size hold two layers.
    const fits = candidates.filter(
      c => !taken.has(c.chainId) && (record.shared || byBuildKit(c)) && heldBytes(record, c, steps) !== undefined
    )
    const apart = (c: Candidate): number => Math.abs(c.made - record.createdAt)
    const closer = (c: Candidate, a: Candidate): boolean =>
      apart(c) < apart(a) || (apart(c) === apart(a) && Math.abs(c.size - record.size) < Math.abs(a.size - record.size))
    const best = fits.reduce<Candidate | undefined>((a, c) => (!a || closer(c, a) ? c : a), undefined)
    if (!best) continue
    taken.add(best.chainId)
    holds.push({ recordId: record.id, chainId: best.chainId, bytes: heldBytes(record, best, steps) ?? 0 })
  }
  return holds
}

/** The layers the shared records hold on overlay2, where a record holds a whole layer. */
export function cacheHeldLayers(
  records: CacheRecord[],
  state: Pick<EngineState, 'images' | 'layers' | 'createdAt'>
): Set<string> {
  return new Set(matchCacheRecords(records, state).map(hold => hold.chainId))
}

/** What the record holds of this layer, if it can be the layer's record at all. */
function heldBytes(record: CacheRecord, layer: Candidate, steps?: Map<string, HistoryEntry>): number | undefined {
  if (!steps) return layer.size === record.size ? record.size : undefined
  const snapshot = steps.get(layer.chainId)?.size
  if (snapshot === undefined || snapshot >= record.size) return undefined
  if (Math.abs(layer.size - record.size) > CONTAINERD_METADATA) return undefined
  return Math.min(record.size - snapshot, layer.size)
}

/**
 * The layers, and the parts of layers, the build cache holds as one more holder, for the ledger.
 * On overlay2 a hold is the whole layer. On the containerd store it is the layer's blob, which
 * becomes a layer of its own (`<ChainID> blob`) in every image that has the layer, so that removing
 * the images frees the rest of it (the image's snapshot, manifest and config) and leaves the blob.
 */
export function applyCacheHolds(
  layers: Map<string, Layer[]>,
  holds: CacheHold[]
): { layers: Map<string, Layer[]>; cacheHeld: Set<string> } {
  const cacheHeld = new Set<string>()
  const blobs = new Map<string, number>()
  for (const hold of holds) {
    const whole = [...layers.values()].flat().find(layer => layer.chainId === hold.chainId)
    if (!whole) continue
    if (hold.bytes >= whole.size) cacheHeld.add(hold.chainId)
    else {
      blobs.set(hold.chainId, hold.bytes)
      cacheHeld.add(blobOf(hold.chainId))
    }
  }
  if (blobs.size === 0) return { layers, cacheHeld }
  const split = new Map<string, Layer[]>()
  for (const [imageId, chain] of layers) {
    split.set(
      imageId,
      chain.flatMap(layer => {
        const blob = blobs.get(layer.chainId)
        if (blob === undefined) return [layer]
        return [
          { chainId: layer.chainId, size: layer.size - blob },
          { chainId: blobOf(layer.chainId), size: blob }
        ]
      })
    )
  }
  return { layers: split, cacheHeld }
}

const blobOf = (chainId: string): string => `${chainId} blob`

/**
 * The listing as it will stand once these images are gone, for a dry run: a shared record whose
 * layer no other image and no container holds is no longer shared. Records the match left alone
 * stay as they are.
 */
export function unsharedBy(
  records: CacheRecord[],
  holds: CacheHold[],
  state: Pick<EngineState, 'images' | 'containers' | 'layers'>,
  deleted: Set<string>
): CacheRecord[] {
  if (deleted.size === 0) return records
  const kept = keptLayers(state, deleted)
  const layerOf = new Map(holds.map(hold => [hold.recordId, hold.chainId]))
  return records.map(record => {
    const chainId = layerOf.get(record.id)
    return record.shared && chainId !== undefined && !kept.has(chainId) ? { ...record, shared: false } : record
  })
}

/** The layers the images left once these are deleted, and the containers, still hold. */
export function keptLayers(
  state: Pick<EngineState, 'images' | 'containers' | 'layers'>,
  deleted: Set<string>
): Set<string> {
  const holders = [
    ...state.images.filter(image => !deleted.has(image.id)).map(image => image.id),
    ...state.containers.map(container => container.imageId)
  ]
  return new Set(holders.flatMap(id => (state.layers.get(id) ?? []).map(layer => layer.chainId)))
}

/**
 * The layer each shared record holds, by record ID, as the ledger knows it (cache-budget.ts): the
 * holds the run matched, or matched here; on the containerd store the blob the cache holds, and
 * `bytes` what an image holds of the record (the rest is the record's own snapshot).
 */
export function cacheHolds(
  records: CacheRecord[],
  state: Pick<EngineState, 'images' | 'layers' | 'createdAt' | 'cacheHolds' | 'cacheHeld'>
): Map<string, CacheHold> {
  const holds = state.cacheHolds ?? matchCacheRecords(records, state)
  return new Map(
    holds.map(hold => {
      const blob = blobOf(hold.chainId)
      return [hold.recordId, { ...hold, chainId: state.cacheHeld?.has(blob) ? blob : hold.chainId }]
    })
  )
}
