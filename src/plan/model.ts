/** One image as the engine lists it (`GET /images/json?all=1`). */
export interface Image {
  /** `sha256:<64 hex>`. */
  id: string
  /** The parent's ID, or '' (images built by the legacy builder have parents). */
  parentId: string
  /** `name:tag` as the engine reports them. */
  tags: string[]
  /** `name@sha256:...` as the engine reports them. */
  digests: string[]
  /** Creation time, milliseconds since the epoch. */
  created: number
  /** Sum of the sizes of all its layers, shared or not. */
  size: number
  labels: Record<string, string>
}

export interface Container {
  id: string
  imageId: string
  running: boolean
  /** Milliseconds since the epoch: the newest container is an image's latest use. */
  created: number
}

/** What the engine's disk usage says of one image. */
export interface Share {
  size: number
  /** Bytes of its layers that other images hold too. */
  shared: number
}

/** One layer of an image's chain, bottom first. */
export interface Layer {
  chainId: string
  size: number
}

export interface EngineState {
  images: Image[]
  containers: Container[]
  /** Layer chains by image ID: needed only once something may be deleted. */
  layers: Map<string, Layer[]>
  /** How the engine keeps images, which decides its delete rules; overlay2's `graphdriver` when absent. */
  store?: ImageStore
  /** When each image was last tagged, where the engine records it: read only when "use" matters. */
  lastTagged?: Map<string, number>
  /** Creation to the millisecond, read with lastTagged: finer than Image.created, which ties within a second. */
  createdAt?: Map<string, number>
  /**
   * Last uses the host daemon recorded (plan/last-use-ledger.ts), by image ID: read only when
   * "use" matters, and only where a ledger is there.
   */
  recordedUse?: Record<string, number>
  /** Bytes free on the filesystem under the engine's data root: read only for `min-free`. */
  freeBytes?: number
  /**
   * Layers the build cache holds as well as an image (overlay2, where BuildKit's records and the
   * images share one directory per layer; on the containerd store a layer's blob, as a layer of
   * its own): removing their images leaves them on disk.
   */
  cacheHeld?: Set<string>
  /** The daemon's build cache: read only when `build-cache` is set with a storage target (cache-budget.ts). */
  buildCache?: CacheRecord[]
  /** The shared build cache records matched to the layers they hold (plan/cache-holds.ts). */
  cacheHolds?: CacheHold[]
}

/** A shared build cache record, the image layer whose data it holds too, and how many of its bytes that is. */
export interface CacheHold {
  recordId: string
  chainId: string
  /** On overlay2 the whole record (one directory); on the containerd store the layer's compressed blob. */
  bytes: number
}

/**
 * Docker's graph drivers (overlay2 and the like), Docker's containerd image
 * store (the default from Docker 29), or Podman's containers/storage. Each
 * deletes by rules of its own: testbed/ENGINES.md lists what differs.
 */
export type ImageStore = 'graphdriver' | 'containerd' | 'podman'

export type SkipReason =
  | 'not-found'
  | 'ambiguous'
  | 'in-use'
  | 'in-use-stopped'
  | 'multiple-references'
  | 'has-children'
  | 'kept'
  | 'too-recent'
  | 'other-job'
  | 'error'

/** Why an image stays: the engine's refusal, or a rule of ours. */
export interface Refusal {
  reason: SkipReason
  message: string
}

export interface Skip extends Refusal {
  ref: string
  id: string
  /** The user named this ref itself (not a pattern match, a prune candidate or a parent). */
  named: boolean
}

/**
 * One record of the daemon's build cache (BuildKit's, `GET /system/df` BuildCache). Its data may be
 * an image's layer too: then `shared`, and removing either alone frees nothing of it on overlay2.
 */
/** One step of an image's history (`GET /images/{id}/history`), bottom first. */
export interface HistoryEntry {
  /** On the containerd store the layer's unpacked snapshot, without its blob. */
  size: number
  createdBy: string
}

export interface CacheRecord {
  id: string
  /** regular, source.local, exec.cachemount, internal, frontend, source.git.checkout, ... */
  type: string
  description: string
  /** A running build uses it. */
  inUse: boolean
  /** An image holds the same data. */
  shared: boolean
  size: number
  /** Milliseconds since the epoch. */
  createdAt: number
  /** When a build last released it; records never used since they were made have none. */
  lastUsedAt?: number
  parents: string[]
}

/** The images on the engine at one moment: ID to its tags and digests. */
export type Snapshot = Map<string, Set<string>>

/**
 * Image IDs in a fixed order, so that a plan does not depend on the order the engine listed them
 * in. IDs are sha256:<hex>, for which plain code-point order is the order localeCompare gives, and
 * far cheaper: localeCompare would make sorting a large part of planning.
 */
export const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
