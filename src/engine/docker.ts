import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type Docker from 'dockerode'
import {
  ConnectionError,
  connectionFailure,
  connectionOptions,
  openDocker,
  withTimeout,
  type ConnectionOptions
} from './connection'
import { shown, type Endpoint } from './endpoint'
import { chainIds, layerSteps, sizeLayers } from './layers'
import { familiarString, parseNamed } from '../plan/reference'
import { FOLLOWED_ACTIONS, type EngineEvent } from '../plan/last-use-ledger'
import { decodeEvents } from './events'
import type { JobIdentity, JobRecord, Leftovers } from '../plan/jobs'
import type { CacheRecord, Container, HistoryEntry, Image, ImageStore } from '../plan/model'
import { JOB_LABEL, recordLabels, recordOf, RECORD_PREFIX, type Volume } from './records'
import { EngineError, type Details, type DiskUsage, type Engine, type FirstList, type RemovedItem } from './engine'

/** The part of `GET /images/{id}/json` read here (the typings lack Metadata). */
interface Inspected {
  Created?: string
  RootFS?: { Layers?: string[] }
  Metadata?: { LastTagTime?: string }
}

/** The part of `GET /system/df` read here. */
interface DiskUsageAnswer {
  LayersSize?: number
  Images?: { Id: string; Size: number; SharedSize: number }[] | null
  BuildCache?: CacheAnswer[] | null
}

/** One build cache record as `/system/df` gives it. */
interface CacheAnswer {
  ID: string
  Type?: string
  Description?: string
  InUse?: boolean
  Shared?: boolean
  Size?: number
  CreatedAt?: string
  LastUsedAt?: string | null
  Parent?: string
  Parents?: string[] | null
  // moby's Go struct tags this field with a leading space, so some versions may answer it so.
  ' Parents'?: string[] | null
}

const UNREACHABLE = ['ECONNREFUSED', 'ENOENT']
const DROPPED = ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']

/** The newest API whose answers this code reads; older engines are asked in their own version. */
const NEWEST_API = '1.45'
/** An engine that does not answer its first request this fast is taken as unreachable. */
const FIRST_CONTACT_MS = 10_000
const PARALLEL_INSPECTS = 8
/**
 * A read that fails because another process is removing images (testbed/ENGINES.md) can go on
 * failing for a while, on Podman for seconds: hence several attempts with a growing wait.
 */
const READ_ATTEMPTS = 8
const READ_BACKOFF_MS = 200
const FULL_ID = /^sha256:[0-9a-f]{64}$/
const BARE_ID = /^[0-9a-f]{64}$/
const HUB_QUALIFIED = /^(?:index\.)?docker\.io\//

/**
 * Connects and agrees on an API version; `timeoutMs` bounds every request's wait for an answer.
 * `firstList` is asked at once.
 */
export async function connect(endpoint: Endpoint, timeoutMs: number, firstList: FirstList = 'all'): Promise<Engine> {
  const where = shown(endpoint.host)
  let options: ConnectionOptions
  try {
    options = connectionOptions(endpoint)
  } catch (error) {
    throw error instanceof ConnectionError
      ? new EngineError(error.message)
      : new EngineError(`Cannot use the endpoint ${where}: ${describe(error)}.`)
  }
  const firstContact = Math.min(timeoutMs, FIRST_CONTACT_MS)
  let pong: Pong
  try {
    pong = await withDeadline(
      ping(openDocker(withTimeout(options, firstContact))),
      firstContact,
      `no answer within ${firstContact / 1000} s`
    )
  } catch (error) {
    throw new EngineError(
      `Cannot reach the Docker engine at ${where}: ${connectionFailure(error, endpoint) ?? describe(error)}.`
    )
  }
  const apiVersion = olderVersion(pong.apiVersion, NEWEST_API)
  const docker = openDocker({ ...withTimeout(options, timeoutMs), version: `v${apiVersion}` })
  // What the run reads first is requested now, before waiting for /info (which tells the image
  // store): the engine takes longer to answer /info than a small list.
  const listed = firstRequests(docker, firstList, pong.podman, apiVersion)
  for (const list of Object.values(listed)) list.catch(() => undefined)
  const info = await (docker.info() as Promise<Info>).catch((): Info => ({}))
  return new DockerEngine(where, apiVersion, imageStore(pong.podman, info), docker, listed)
}

const listDangling = (docker: Docker): Promise<Docker.ImageInfo[]> =>
  docker.listImages({ filters: { dangling: ['true'] } })

function firstRequests(docker: Docker, firstList: FirstList, podman: boolean, apiVersion: string): Listed {
  // Before API 1.42 the build cache comes only with the whole disk usage, which buildCache() asks for itself.
  if (firstList === 'cache')
    return podman || !atLeast(apiVersion, '1.42') ? {} : { cache: diskUsage(docker, true, 'build-cache') }
  const images =
    firstList === 'dangling' && !podman
      ? { dangling: listDangling(docker) }
      : { images: docker.listImages({ all: true }) }
  return { ...images, containers: docker.listContainers({ all: true }) }
}

interface Pong {
  apiVersion: string
  podman: boolean
}

/**
 * `GET /_ping`: the engine's API version, in a header, and whether it is Podman, which adds a
 * header of its own. Used rather than /version, which the engine answers only after asking
 * containerd and runc for their versions.
 */
async function ping(docker: Docker): Promise<Pong> {
  const headers = await new Promise<IncomingHttpHeaders>((resolve, reject) =>
    docker.modem.dial(
      { path: '/_ping', method: 'GET', isStream: true, statusCodes: { 200: true, 500: 'server error' } },
      (err: unknown, res: unknown) => {
        if (err) return reject(err)
        const answer = res as IncomingMessage
        answer.resume()
        resolve(answer.headers)
      }
    )
  )
  const apiVersion = headers['api-version']
  if (typeof apiVersion !== 'string') throw new Error('its answer to /_ping gives no API version')
  return { apiVersion, podman: headers['libpod-api-version'] !== undefined }
}

/** The part of `GET /info` read here. */
interface Info {
  DriverStatus?: [string, string][] | null
}

/**
 * Podman says so in a header of its own; Docker's containerd image store in /info's DriverStatus
 * (`docker info` shows it as driver-type), whatever snapshotter it uses.
 */
function imageStore(podman: boolean, info: Info): ImageStore {
  if (podman) return 'podman'
  const snapshotter = (info.DriverStatus ?? []).some(
    ([key, value]) => key === 'driver-type' && value.startsWith('io.containerd.snapshotter')
  )
  return snapshotter ? 'containerd' : 'graphdriver'
}

function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}

function olderVersion(a: string, b: string): string {
  const [a1, a2] = a.split('.').map(Number)
  const [b1, b2] = b.split('.').map(Number)
  return a1 < b1 || (a1 === b1 && a2 < b2) ? a : b
}

function atLeast(version: string, wanted: string): boolean {
  return olderVersion(version, wanted) === wanted
}

function describe(error: unknown): string {
  const err = error as { json?: { message?: string }; message?: string; code?: string }
  return (err.json?.message ?? err.message ?? String(error)).replace(/\s+$/, '').replace(/\.$/, '')
}

/**
 * A read that failed because other work on the engine got in its way, and is worth sending again.
 * The engine fails a list, inspect or /system/df when an image it is sizing loses its layers to a
 * removal meanwhile (by another copy of the action, say): "layer does not exist", "layer sha256:...
 * was not found (corruption?)"; the containerd store says "content digest sha256:...: not found",
 * Podman "retrieving label for image", "retrieving parent of image" (its image list) or "failed to
 * convert ImageData to ImageInspect"; Docker 28's containerd store, sizing a view BuildKit made for
 * a build that has just ended, "snapshot <id>-view does not exist". Engines before 23.0 also refuse
 * a /system/df while another one runs, instead of sharing its answer (moby
 * docs/api/version-history.md, v1.42).
 */
const RACED =
  /layer does not exist|layer \S+ was not found|content digest \S+ not found|retrieving label for image|retrieving parent of image|failed to convert ImageData to ImageInspect|snapshot \S+ does not exist|disk usage operation is already running/

function raced(error: unknown): boolean {
  return error instanceof EngineError && RACED.test(error.message)
}

/**
 * References in Docker's familiar form (Podman answers docker.io/library/app:1 for app:1),
 * without the `<none>:<none>` that older APIs list for none.
 */
function realRefs(values: string[] | null | undefined): string[] {
  return (values ?? []).filter(ref => !ref.startsWith('<none>')).map(familiarRef)
}

function familiarRef(ref: string): string {
  // Only Docker Hub's own domain changes in the familiar form; every other reference is parsed
  // for nothing, thousands of times on a large engine.
  if (!HUB_QUALIFIED.test(ref)) return ref
  const parsed = parseNamed(ref)
  return parsed ? familiarString(parsed) : ref
}

/** Podman answers some IDs and every ParentId as bare hex; every other engine as sha256:<hex>. */
function imageId(id: string | undefined): string {
  return id && BARE_ID.test(id) ? `sha256:${id}` : (id ?? '')
}

/** The lists asked while the engine was being agreed on, each to be read once. */
interface Listed {
  images?: Promise<Docker.ImageInfo[]>
  dangling?: Promise<Docker.ImageInfo[]>
  containers?: Promise<Docker.ContainerInfo[]>
  /** The build cache, for a run that removes no image; a removal or a prune drops it. */
  cache?: Promise<DiskUsageAnswer>
}

class DockerEngine implements Engine {
  constructor(
    readonly endpoint: string,
    readonly apiVersion: string,
    readonly store: ImageStore,
    private readonly docker: Docker,
    private readonly listed: Listed = {}
  ) {}

  /** The list requested at connect time on the first call; a later call (a retry) asks the engine again. */
  private takeOr<K extends keyof Listed>(kind: K, ask: () => NonNullable<Listed[K]>): NonNullable<Listed[K]> {
    const early = this.listed[kind]
    delete this.listed[kind]
    return (early ?? ask()) as NonNullable<Listed[K]>
  }

  async images(): Promise<Image[]> {
    const list = await this.read(() => this.takeOr('images', () => this.docker.listImages({ all: true })))
    return list.map(info => ({
      id: imageId(info.Id),
      parentId: imageId(info.ParentId),
      tags: realRefs(info.RepoTags),
      digests: this.digestsOf(info),
      created: info.Created * 1000,
      size: info.Size,
      labels: info.Labels ?? {}
    }))
  }

  async hasDangling(): Promise<boolean> {
    const list = await this.read(() => this.takeOr('dangling', () => listDangling(this.docker)))
    return list.length > 0
  }

  /**
   * The containerd store and Podman list `repo@<digest>` as a view of the image's own digest
   * (containerd: its ID) for some or all of its tagged repositories: given for all here, so
   * that a digest reference names the same image whichever the engine chose to list.
   */
  private digestsOf(info: Docker.ImageInfo): string[] {
    const listed = realRefs(info.RepoDigests)
    if (this.store === 'graphdriver') return listed
    const digests = new Set(listed.map(ref => ref.slice(ref.indexOf('@') + 1)))
    if (this.store === 'containerd') digests.add(imageId(info.Id))
    const repos = new Set(realRefs(info.RepoTags).map(tag => familiarString({ name: parseNamed(tag)?.name ?? tag })))
    return [...repos].flatMap(repo => [...digests].map(digest => `${repo}@${digest}`))
  }

  async containers(): Promise<Container[]> {
    const list = await this.call(() => this.takeOr('containers', () => this.docker.listContainers({ all: true })))
    return list.map(info => ({
      id: info.Id,
      imageId: imageId(info.ImageID),
      running: ['running', 'paused', 'restarting'].includes(info.State),
      created: info.Created * 1000
    }))
  }

  async details(images: Image[]): Promise<Details> {
    const lastTagged = new Map<string, number>()
    const createdAt = new Map<string, number>()
    const stacks = await inBatches(images, PARALLEL_INSPECTS, async image => {
      const info: Inspected | undefined = await this.unlessGone(() => this.docker.getImage(image.id).inspect())
      // An image never tagged has Go's zero time (year 1), which Date.parse makes negative.
      const tagged = Date.parse(info?.Metadata?.LastTagTime ?? '')
      if (tagged > 0) lastTagged.set(image.id, tagged)
      const created = Date.parse(info?.Created ?? '')
      if (created > 0) createdAt.set(image.id, created)
      return { id: image.id, size: image.size, chain: chainIds(info?.RootFS?.Layers ?? []) }
    })
    const layers = await sizeLayers(stacks, async id => (await this.unlessGone(() => this.history(id))) ?? [])
    return { layers, lastTagged, createdAt }
  }

  async layerHistory(stacks: { id: string; chain: string[] }[]): Promise<Map<string, HistoryEntry>> {
    const steps = new Map<string, HistoryEntry>()
    await inBatches(stacks, PARALLEL_INSPECTS, async stack => {
      const entries = await this.unlessGone(() => this.history(stack.id))
      if (!entries) return
      layerSteps(stack.chain.length, entries).forEach((step, i) => {
        if (step) steps.set(stack.chain[i], step)
      })
    })
    return steps
  }

  async dataRoot(): Promise<string> {
    const info = await this.call(() => this.docker.info() as Promise<{ DockerRootDir?: string }>)
    if (!info.DockerRootDir)
      throw new EngineError('the engine does not say where it keeps its data (no DockerRootDir in /info)')
    return info.DockerRootDir
  }

  async buildCache(cheapOnly = false): Promise<CacheRecord[] | undefined> {
    if (this.store === 'podman') return undefined
    // Before API 1.42 the build cache comes only with the whole disk usage, which walks every
    // container's filesystem: there the answer usage() had serves once, and where the answer is
    // only useful, not needed, it is not asked while there is a container.
    const earlier = this.imagesOnlyUsage ? undefined : this.wholeUsage
    this.wholeUsage = undefined
    if (!earlier && cheapOnly && !this.imagesOnlyUsage && (await this.hasContainers())) return undefined
    const df =
      earlier ??
      (await this.read(() => this.takeOr('cache', () => diskUsage(this.docker, this.imagesOnlyUsage, 'build-cache'))))
    return (df.BuildCache ?? []).map(record => ({
      id: record.ID,
      type: record.Type ?? '',
      description: record.Description ?? '',
      inUse: record.InUse ?? false,
      shared: record.Shared ?? false,
      size: record.Size ?? 0,
      createdAt: Date.parse(record.CreatedAt ?? '') || 0,
      lastUsedAt: Date.parse(record.LastUsedAt ?? '') || undefined,
      parents: record.Parents ?? record[' Parents'] ?? (record.Parent ? [record.Parent] : [])
    }))
  }

  async pruneBuildCache(options: { all: boolean; until?: number; id?: string }): Promise<string[]> {
    delete this.listed.cache
    const wanted = {
      ...(options.until === undefined ? {} : { until: [`${options.until / 1000}s`] }),
      ...(options.id === undefined ? {} : { id: [options.id] })
    }
    const filters = Object.keys(wanted).length === 0 ? undefined : JSON.stringify(wanted)
    const answer = await this.call(
      () =>
        new Promise<{ CachesDeleted?: string[] | null }>((resolve, reject) =>
          this.docker.modem.dial(
            {
              path: '/build/prune?',
              method: 'POST',
              options: { all: options.all, ...(filters ? { filters } : {}) },
              statusCodes: { 200: true, 500: 'server error' }
            },
            (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as { CachesDeleted?: string[] | null }))
          )
        )
    )
    return answer.CachesDeleted ?? []
  }

  async clock(): Promise<number> {
    const info = await this.call(() => this.docker.info() as Promise<{ SystemTime?: string }>)
    const now = Date.parse(info.SystemTime ?? '')
    if (!(now > 0)) throw new EngineError('the engine does not say what time it is (no SystemTime in /info)')
    return now
  }

  async jobRecords(): Promise<JobRecord[]> {
    const answer = await this.read(() => this.docker.listVolumes({ filters: { label: [JOB_LABEL] } }))
    return ((answer.Volumes ?? []) as Volume[]).flatMap(volume => recordOf(volume) ?? [])
  }

  async addJobRecord(
    name: string,
    job: JobIdentity,
    ended?: { startedAt: number; left: Leftovers }
  ): Promise<JobRecord> {
    if (!name.startsWith(RECORD_PREFIX)) throw new EngineError(`refusing to name a job record "${name}"`)
    await this.call(() => this.docker.createVolume({ Name: name, Labels: recordLabels(job, ended) }))
    const volume = (await this.call(() => this.docker.getVolume(name).inspect())) as Volume
    const record = recordOf(volume)
    if (!record) throw new EngineError(`the engine did not keep the job record ${name} as it was made`)
    return record
  }

  async removeJobRecord(name: string): Promise<void> {
    if (!name.startsWith(RECORD_PREFIX)) throw new EngineError(`refusing to remove "${name}", which is no job record`)
    await this.unlessGone(() => this.docker.getVolume(name).remove())
  }

  async identity(): Promise<string> {
    const info = await this.call(() => this.docker.info() as Promise<{ ID?: string; DockerRootDir?: string }>)
    // Podman's compat /info has no lasting ID: its data root tells its storage from another's.
    if (info.ID && this.store !== 'podman') return info.ID
    if (info.DockerRootDir) return `${this.store}:${info.DockerRootDir}`
    throw new EngineError('the engine gives neither an ID nor a data root in /info')
  }

  async *events(since: number | undefined, signal: AbortSignal): AsyncIterable<EngineEvent> {
    const options = {
      // Whole seconds: Podman drops a fraction. Events of that second come again, which changes nothing.
      ...(since === undefined ? {} : { since: Math.floor(since / 1000) }),
      filters: { type: ['image' as const, 'container' as const], event: FOLLOWED_ACTIONS },
      abortSignal: signal
    }
    const stream = (await this.call(() => this.docker.getEvents(options))) as IncomingMessage
    // The request timeout is for answers; a quiet engine sends nothing for hours, and that is no failure.
    stream.socket?.setTimeout(0)
    yield* decodeEvents(stream, signal)
  }

  /**
   * Another process may remove an image between the listing and this
   * request: it then holds nothing, and its removal will find it gone.
   */
  private async unlessGone<T>(request: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.read(request)
    } catch (error) {
      if (error instanceof EngineError && error.statusCode === 404) return undefined
      throw error
    }
  }

  private async history(id: string): Promise<HistoryEntry[]> {
    const entries = await this.docker.getImage(id).history()
    return (entries as { Size: number; CreatedBy: string }[])
      .map(e => ({ size: e.Size, createdBy: e.CreatedBy ?? '' }))
      .reverse()
  }

  async remove(target: string, force: boolean): Promise<RemovedItem[]> {
    // Only engine-listed IDs and well-formed references go into the URL path:
    // a crafted name such as ../containers/x would reach another endpoint.
    if (!FULL_ID.test(target) && !parseNamed(target))
      throw new EngineError(`refusing to send "${target}" to the engine`)
    // A removal may unshare cache records, which a listing from before it would count as shared.
    delete this.listed.cache
    const items = (await this.call(() => this.docker.getImage(target).remove({ force, noprune: true }))) as {
      Untagged?: string
      Deleted?: string
    }[]
    return (items ?? []).map(item => ({
      untagged: item.Untagged === undefined ? undefined : familiarRef(item.Untagged),
      deleted: item.Deleted === undefined ? undefined : imageId(item.Deleted)
    }))
  }

  async exists(id: string): Promise<boolean> {
    if (!FULL_ID.test(id)) throw new EngineError(`refusing to send "${id}" to the engine`)
    return (await this.unlessGone(() => this.docker.getImage(id).inspect())) !== undefined
  }

  /** Before API 1.42, the last whole disk usage the engine gave: it holds the build cache too. */
  private wholeUsage: DiskUsageAnswer | undefined

  async usage(signal?: AbortSignal): Promise<DiskUsage | undefined> {
    if (this.store !== 'graphdriver') return undefined
    if (!this.imagesOnlyUsage && (await this.hasContainers(signal))) return undefined
    const df = await this.read(() => diskUsage(this.docker, this.imagesOnlyUsage, 'image', signal))
    if (!this.imagesOnlyUsage) this.wholeUsage = df
    const shares = new Map(
      (df.Images ?? []).map(image => [imageId(image.Id), { size: image.Size, shared: image.SharedSize }])
    )
    return { layersSize: df.LayersSize ?? 0, shares }
  }

  /** `type=image` came with API 1.42 (moby docs/api/version-history.md); older engines size containers too. */
  private get imagesOnlyUsage(): boolean {
    return atLeast(this.apiVersion, '1.42')
  }

  private async hasContainers(signal?: AbortSignal): Promise<boolean> {
    const some = await this.call(() => this.docker.listContainers({ all: true, limit: 1, abortSignal: signal }))
    return some.length > 0
  }

  private async read<T>(request: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call(request)
      } catch (error) {
        if (!raced(error) || attempt === READ_ATTEMPTS) throw error
        await new Promise(resolve => setTimeout(resolve, READ_BACKOFF_MS * attempt))
      }
    }
  }

  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request()
    } catch (error) {
      const { statusCode, code } = error as { statusCode?: number; code?: string }
      const unreachable = UNREACHABLE.includes(code ?? '')
      const transient = unreachable || DROPPED.includes(code ?? '') || (statusCode ?? 0) >= 500
      throw new EngineError(describe(error), statusCode, transient, unreachable)
    }
  }
}

/** `GET /system/df`, of one kind where the API has `type` (1.42), else of everything. */
function diskUsage(docker: Docker, byType: boolean, type = 'image', signal?: AbortSignal): Promise<DiskUsageAnswer> {
  return new Promise<DiskUsageAnswer>((resolve, reject) =>
    docker.modem.dial(
      {
        path: '/system/df?',
        method: 'GET',
        options: byType ? { type: [type] } : {},
        abortSignal: signal,
        statusCodes: { 200: true, 500: 'server error' }
      },
      (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as DiskUsageAnswer))
    )
  )
}

async function inBatches<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index])
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker))
  return results
}
