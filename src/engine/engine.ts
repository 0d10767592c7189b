import type { JobIdentity, JobRecord, Leftovers } from '../plan/jobs'
import type { EngineEvent } from '../plan/last-use-ledger'
import type { CacheRecord, Container, HistoryEntry, Image, ImageStore, Layer, Share } from '../plan/model'

/** The only part of the Engine API the action uses. */
export interface Engine {
  /** As it may be shown: any password in it is ***. */
  readonly endpoint: string
  readonly apiVersion: string
  /** How it keeps images, which decides how it deletes them. */
  readonly store: ImageStore
  images(): Promise<Image[]>
  /**
   * Whether the engine's own dangling filter lists any image: on a large engine a far smaller
   * answer than the whole list. On overlay2 it lists every image that has no tag and no children.
   */
  hasDangling(): Promise<boolean>
  containers(): Promise<Container[]>
  /** One inspect per image: its layer chain, and when it was last tagged. */
  details(images: Image[]): Promise<Details>
  /**
   * Each layer's step in its image's history, by ChainID, one history per image: on the containerd
   * store its size is the layer's unpacked snapshot, which tells it from the layer's blob.
   */
  layerHistory(stacks: { id: string; chain: string[] }[]): Promise<Map<string, HistoryEntry>>
  /** `DELETE /images/{target}`, always with noprune: the plan sends parents itself. */
  remove(target: string, force: boolean): Promise<RemovedItem[]>
  /** Whether an image with this ID is still there. */
  exists(id: string): Promise<boolean>
  /**
   * `/system/df`, or undefined where its figures are not what removals free: on Podman (always 0)
   * and on the containerd store (it counts snapshots only, while a removal frees the layer's blob
   * as well). Before API 1.42 it also walks every container's filesystem, so such an engine is
   * asked only while it has no container. `signal` gives up on the answer.
   */
  usage(signal?: AbortSignal): Promise<DiskUsage | undefined>
  /** The engine's data directory (`/info` DockerRootDir), as the engine's host sees it. */
  dataRoot(): Promise<string>
  /**
   * The daemon's build cache, or undefined where the engine has none (Podman); with `cheapOnly`,
   * also undefined where only a costly request could tell (before API 1.42, with containers).
   */
  buildCache(cheapOnly?: boolean): Promise<CacheRecord[] | undefined>
  /**
   * `POST /build/prune`: with `all`, every record no build uses, else what `docker builder prune`
   * removes; `until` keeps records used within that many milliseconds; `id`, a regular expression
   * (the daemon matches IDs by regex), narrows it to the records whose ID matches. Answers the IDs removed.
   */
  pruneBuildCache(options: { all: boolean; until?: number; id?: string }): Promise<string[]>
  /** The engine's clock now, in milliseconds: job records are judged by it, never by a runner's. */
  clock(): Promise<number>
  /** The job records on the engine (`scope: job`), leaving out any that are damaged. */
  jobRecords(): Promise<JobRecord[]>
  /** Leaves a job's record, stamped with the engine's time unless it ended and says when it began. */
  addJobRecord(name: string, job: JobIdentity, ended?: { startedAt: number; left: Leftovers }): Promise<JobRecord>
  /** Removes a job's record; one already gone is no error. */
  removeJobRecord(name: string): Promise<void>
  /**
   * What tells this engine from another through any endpoint: `/info` ID where the engine keeps
   * one, else its data root. The host daemon's ledger is kept by it.
   */
  identity(): Promise<string>
  /**
   * `GET /events` for images and containers: from `since` (milliseconds; the engine replays what
   * it still holds), then as they happen, until `signal` aborts or the engine goes away. Ends with
   * an EngineError when the stream breaks, and without one when `signal` aborted it.
   */
  events(since: number | undefined, signal: AbortSignal): AsyncIterable<EngineEvent>
}

export interface Details {
  layers: Map<string, Layer[]>
  /** Milliseconds since the epoch, for the images the engine records a tag time for. */
  lastTagged: Map<string, number>
  /** Creation to the millisecond: the list gives whole seconds, which tie for images built in a row. */
  createdAt: Map<string, number>
}

export interface DiskUsage {
  /** LayersSize: bytes of every image layer in the store. */
  layersSize: number
  /** By image ID, as the engine counts them: its size, and how much of it other images share. */
  shares: Map<string, Share>
}

export interface RemovedItem {
  untagged?: string
  deleted?: string
}

/** A refusal or failure the engine answered with, or its silence. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
    /** Worth asking again: a server error, a dropped connection, no answer. */
    readonly transient = false,
    /** Nothing listens at the endpoint any more. */
    readonly unreachable = false
  ) {
    super(message)
  }
}

/**
 * What a run reads first: the whole image list, or the dangling images, each with the containers;
 * or, for a run that can remove no image, the build cache alone.
 */
export type FirstList = 'all' | 'dangling' | 'cache'
