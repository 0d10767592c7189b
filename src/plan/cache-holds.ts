import type { CacheRecord, EngineState } from './model'

/**
 * Which image layers the build cache holds too, on overlay2: there BuildKit registers the
 * directory of each layer it built as the image's layer, and keeps its own hold on it, so the
 * layer stays on disk until both the images and the record are gone. The engine marks such a
 * record `shared` but names no layer, so each shared record is matched to a layer of its size;
 * among several, to the layer of the image made closest in time to the record. Where this guesses
 * wrong, the dry run is off, but a real run still counts what the engine says it removed.
 */
export function cacheHeldLayers(
  records: CacheRecord[],
  state: Pick<EngineState, 'images' | 'layers' | 'createdAt'>
): Set<string> {
  return new Set(cacheHolds(records, state).values())
}

/** The layer each shared record holds, by record ID, matched as cacheHeldLayers says. */
export function cacheHolds(
  records: CacheRecord[],
  state: Pick<EngineState, 'images' | 'layers' | 'createdAt'>
): Map<string, string> {
  const bySize = new Map<number, { chainId: string; made: number }[]>()
  for (const image of state.images) {
    const made = state.createdAt?.get(image.id) ?? image.created
    for (const layer of state.layers.get(image.id) ?? []) {
      const list = bySize.get(layer.size) ?? []
      list.push({ chainId: layer.chainId, made })
      bySize.set(layer.size, list)
    }
  }
  const held = new Map<string, string>()
  for (const record of records) {
    if (!record.shared || record.size <= 0) continue
    const candidates = bySize.get(record.size) ?? []
    let best: { chainId: string; made: number } | undefined
    for (const candidate of candidates) {
      const gap = Math.abs(candidate.made - record.createdAt)
      if (!best || gap < Math.abs(best.made - record.createdAt)) best = candidate
    }
    if (best) held.set(record.id, best.chainId)
  }
  return held
}
