import { createHash } from 'node:crypto'
import { compareIds, type HistoryEntry, type Image, type Layer, type Share } from '../plan/model'

/** The layer store's ChainID: each layer named by its whole stack below. */
export function chainIds(diffIds: string[]): string[] {
  const chain: string[] = []
  for (const diffId of diffIds) {
    const below = chain[chain.length - 1]
    chain.push(below ? `sha256:${createHash('sha256').update(`${below} ${diffId}`).digest('hex')}` : diffId)
  }
  return chain
}

export interface Stack {
  id: string
  /** The image's virtual size: the sum of every layer's size. */
  size: number
  chain: string[]
}

/**
 * Gives every layer its size. An image adds most often one layer over the
 * ones already sized, whose size is then its own size minus theirs; only
 * images that add several unknown layers need their history read.
 */
export async function sizeLayers(
  stacks: Stack[],
  history: (id: string) => Promise<HistoryEntry[]>
): Promise<Map<string, Layer[]>> {
  const known = new Map<string, number>()
  const needHistory: Stack[] = []
  // On some stores, images with the same layer chain differ in size by their own metadata (the
  // config of a LABEL step). The smallest of them sizes the layers, in whatever order they are listed.
  const order = (a: Stack, b: Stack): number =>
    a.chain.length - b.chain.length || a.size - b.size || compareIds(a.id, b.id)
  for (const stack of [...stacks].sort(order)) {
    if (!deduce(stack, known)) needHistory.push(stack)
  }
  for (const stack of needHistory.sort((a, b) => a.chain.length - b.chain.length || compareIds(a.id, b.id))) {
    if (!deduce(stack, known)) alignHistory(stack, await history(stack.id), known)
  }
  return new Map(stacks.map(s => [s.id, s.chain.map(chainId => ({ chainId, size: known.get(chainId) ?? 0 }))]))
}

function deduce(stack: Stack, known: Map<string, number>): boolean {
  const unknown = [...new Set(stack.chain.filter(c => !known.has(c)))]
  if (unknown.length === 0) return true
  const rest = stack.size - stack.chain.reduce((sum, c) => sum + (known.get(c) ?? 0), 0)
  if (unknown.length !== 1 || rest < 0) return false
  known.set(unknown[0], rest)
  return true
}

/**
 * Matches history entries to the image's layers. History lists every build step, whether it made a
 * layer or not, and does not say which did: a step with a size did, and the legacy builder's
 * `#(nop)` steps without a size did not. When the sizeless steps still cannot be told apart, the
 * empty layers are taken to be the lowest: the image's total stays right, and at worst a shared
 * layer gets the size of its neighbour.
 */
function alignHistory(stack: Stack, entries: HistoryEntry[], known: Map<string, number>): void {
  const history = historySizes(stack.chain.length, entries)
  const unknown = stack.chain.map((chainId, i) => ({ chainId, i })).filter(({ chainId }) => !known.has(chainId))
  const rest = stack.size - stack.chain.reduce((sum, c) => sum + (known.get(c) ?? 0), 0)
  const sizes = fit(
    unknown.map(({ i }) => history[i]),
    rest
  )
  unknown.forEach(({ chainId }, n) => known.set(chainId, sizes[n]))
}

/** Each layer's size as the history gives it, bottom first, by the matching alignHistory describes. */
export function historySizes(layerCount: number, entries: HistoryEntry[]): number[] {
  return layerSteps(layerCount, entries).map(entry => entry?.size ?? 0)
}

/** Each layer's history entry, bottom first, by the matching alignHistory describes; none where it finds none. */
export function layerSteps(layerCount: number, entries: HistoryEntry[]): (HistoryEntry | undefined)[] {
  let layers = entries
  if (layers.length !== layerCount) layers = entries.filter(e => e.size > 0 || !e.createdBy.includes('#(nop)'))
  if (layers.length !== layerCount) layers = entries.filter(e => e.size > 0)
  const offset = layerCount - layers.length
  return Array.from({ length: layerCount }, (_, i) => (i >= offset ? layers[i - offset] : undefined))
}

/**
 * History sizes a layer as one store keeps it and `Size` as another may:
 * the containerd store's history counts the unpacked snapshot, its `Size`
 * the compressed blob as well, and removing the image frees both. So the
 * history only says how the image's own bytes split between its layers;
 * the image's size says how many there are (on overlay2 the two agree).
 */
function fit(sizes: number[], total: number): number[] {
  const sum = sizes.reduce((a, b) => a + b, 0)
  if (sum <= 0 || total <= 0 || total === sum) return sizes
  let left = total
  return sizes.map((size, n) => {
    const share = n === sizes.length - 1 ? left : Math.round((size * total) / sum)
    left -= share
    return share
  })
}

/**
 * The layers of the images whose layers no other image holds, by the engine's own count
 * (`/system/df` SharedSize 0), without an inspect each: removing one frees its whole size, so
 * its layers count as one. Parents and children are left to the inspect, because Docker 20 leaves
 * images with children out of that count: a child says 0 while its parent shares most of it.
 */
export function unsharedLayers(images: Image[], shares: Map<string, Share>): Map<string, Layer[]> {
  const parents = new Set(images.map(image => image.parentId))
  const unshared = images.filter(image => {
    const share = shares.get(image.id)
    return share?.shared === 0 && share.size === image.size && image.parentId === '' && !parents.has(image.id)
  })
  return new Map(unshared.map(image => [image.id, [{ chainId: `${image.id} layers`, size: image.size }]]))
}
