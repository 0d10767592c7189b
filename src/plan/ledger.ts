import type { EngineState } from './model'

/**
 * Who holds which layer: every image, and every container through its
 * image. A layer leaves the engine's storage when its last holder goes, so
 * the bytes a removal frees follow from which images left, on every store
 * (the containerd store and Podman name only images in a DELETE's answer,
 * never layers).
 */
export class Ledger {
  private readonly holders = new Map<string, number>()
  private readonly sizes = new Map<string, number>()
  private readonly gone = new Set<string>()
  /** Layers the build cache no longer holds. */
  private readonly unheld = new Set<string>()
  private readonly images: Set<string>

  constructor(private readonly state: Pick<EngineState, 'images' | 'containers' | 'layers' | 'cacheHeld'>) {
    this.images = new Set(state.images.map(image => image.id))
    for (const container of state.containers) this.hold(container.imageId)
    for (const image of state.images) this.hold(image.id)
    // The build cache is one more holder of the layers it shares with images.
    for (const chainId of state.cacheHeld ?? []) this.holders.set(chainId, (this.holders.get(chainId) ?? 0) + 1)
  }

  private hold(imageId: string): void {
    for (const layer of this.state.layers.get(imageId) ?? []) {
      this.sizes.set(layer.chainId, layer.size)
      this.holders.set(layer.chainId, (this.holders.get(layer.chainId) ?? 0) + 1)
    }
  }

  /**
   * Whether the engine listed this ID as an image. A graph driver's DELETE answer reports the layers
   * it removed as Deleted too, alongside the images, so only IDs from the image list count as images.
   */
  isImage(id: string): boolean {
    return this.images.has(id)
  }

  size(chainId: string): number {
    return this.sizes.get(chainId) ?? 0
  }

  bytes(chainIds: string[]): number {
    return chainIds.reduce((sum, chainId) => sum + this.size(chainId), 0)
  }

  /** Bytes that releasing this image alone would free now: its layers nobody else holds. */
  unique(imageId: string): number {
    const own = new Set((this.state.layers.get(imageId) ?? []).map(layer => layer.chainId))
    return this.bytes([...own].filter(chainId => this.holders.get(chainId) === 1))
  }

  /** Bytes of every layer someone still holds. */
  held(): number {
    return this.bytes([...this.holders].filter(([, holders]) => holders > 0).map(([chainId]) => chainId))
  }

  /** Bytes of the layers the build cache still holds: they stay when every image goes. */
  heldByCache(): number {
    const cacheHeld = [...(this.state.cacheHeld ?? [])].filter(chainId => !this.unheld.has(chainId))
    return this.bytes(cacheHeld.filter(chainId => (this.holders.get(chainId) ?? 0) > 0))
  }

  /** Bytes that dropping the build cache's hold on this layer would free now: all of it when no image holds it. */
  heldAlone(chainId: string): number {
    return this.state.cacheHeld?.has(chainId) && !this.unheld.has(chainId) && this.holders.get(chainId) === 1
      ? this.size(chainId)
      : 0
  }

  /** The build cache let this layer go: the bytes that frees. Only the cache's one hold is dropped, once. */
  releaseHold(chainId: string): number {
    if (!this.state.cacheHeld?.has(chainId) || this.unheld.has(chainId)) return 0
    this.unheld.add(chainId)
    const left = (this.holders.get(chainId) ?? 1) - 1
    this.holders.set(chainId, left)
    return left === 0 ? this.size(chainId) : 0
  }

  /** The image left the engine: the layers nobody holds any more, top first. Releasing twice frees nothing. */
  release(imageId: string): string[] {
    if (this.gone.has(imageId)) return []
    this.gone.add(imageId)
    const freed: string[] = []
    for (const layer of [...(this.state.layers.get(imageId) ?? [])].reverse()) {
      const left = (this.holders.get(layer.chainId) ?? 1) - 1
      this.holders.set(layer.chainId, left)
      if (left === 0) freed.push(layer.chainId)
    }
    return freed
  }
}
