import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { EngineError, type Details, type DiskUsage, type Engine, type RemovedItem } from '../../src/engine/engine'
import { Ledger } from '../../src/plan/ledger'
import type {
  CacheRecord,
  Container,
  EngineState,
  HistoryEntry,
  Image,
  ImageStore,
  Layer,
  Share
} from '../../src/plan/model'
import { familiarString, parseNamed, referenceKey } from '../../src/plan/reference'
import { Simulation, type Outcome } from '../../src/plan/simulation'
import type { JobIdentity, JobRecord, Leftovers } from '../../src/plan/jobs'
import type { EngineEvent } from '../../src/plan/last-use-ledger'
import type { OpenEngine } from '../../src/run/open'

/** One image as a one-step `docker build` makes it: a layer of `bytes` on top of its base's layers. */
export interface BuildOptions {
  bytes?: number
  /** A tag or ID on the engine: the new image holds its layers and names it as parent (the legacy builder). */
  from?: string
  /** Milliseconds since the epoch; now by default. */
  created?: number
  labels?: Record<string, string>
}

const FULL_ID = /^sha256:[0-9a-f]{64}$/

/**
 * An engine in memory, for testing the layers above the engine without one. It keeps images,
 * containers and their layers, and answers `DELETE /images` by the store rules the planner plays
 * removals on (src/plan/simulation.ts), in the shape each store's answers take
 * (testbed/ENGINES.md, "what Deleted lists"). What it removes leaves its lists and its disk usage,
 * so a test sees what a run did, not what it said it did.
 */
export class FakeEngine implements Engine {
  readonly endpoint = 'unix:///fake/docker.sock'
  readonly apiVersion = '1.45'
  /** What dataRoot() answers: a directory of this machine unless a test makes it one that is not. */
  root = tmpdir()
  /** Every DELETE sent, in order. */
  readonly removals: { target: string; force: boolean }[] = []
  /** How many times an entry reached the engine through `open`. */
  opened = 0
  /** How many times the image list was asked for. */
  listed = 0
  private list: Image[] = []
  private readonly containerList: Container[] = []
  private readonly layers = new Map<string, Layer[]>()
  private readonly lastTagged = new Map<string, number>()
  /** The engine's clock: the machine's unless a test sets another. */
  now: () => number = Date.now
  /** The build cache: what `docker buildx du` would show. */
  cache: CacheRecord[] = []
  /** Records whose data is an image's layer, to that image's ID: shared while it is here. */
  readonly cacheHolders = new Map<string, string>()
  /** Every POST /build/prune sent, in order. */
  readonly cachePrunes: { all: boolean; until?: number; id?: string }[] = []
  /** Job records, by name: what `docker volume ls` would show of them. */
  readonly records = new Map<string, JobRecord>()
  /** What identity() answers: the engine's ID. */
  id = 'FAKE:ENGINE:ID'
  /** Every event the engine has sent or would send, oldest first: a test may add its own with `emit`. */
  readonly eventLog: EngineEvent[] = []
  /** How many times a client asked for events, and the `since` of each. */
  readonly eventRequests: (number | undefined)[] = []
  private waiters: (() => void)[] = []
  private away = false
  private removalsLeft = Infinity
  private serial = 0

  constructor(readonly store: ImageStore = 'graphdriver') {}

  /** What an entry takes as its way to the engine: this one, unless it has gone away. */
  readonly open: OpenEngine = async () => {
    if (this.away) throw new EngineError(`Cannot reach the Docker engine at ${this.endpoint}: ${this.refusal()}.`)
    this.opened++
    return this
  }

  /** From now on every request fails as when nothing listens at the socket. */
  goAway(): void {
    this.away = true
    this.wake()
  }

  /** Answers again, as an engine restarted: its event log is what it kept. */
  comeBack(): void {
    this.away = false
  }

  /** An event, as the engine would send it now (or at `time`). */
  emit(type: string, action: string, subject: string, time = this.now(), name?: string): void {
    this.eventLog.push({ type, action, subject, time, ...(name === undefined ? {} : { name }) })
    this.wake()
  }

  /** `docker rm`: the engine forgets the container, and that it ever used its image. */
  removeContainer(id: string): void {
    const index = this.containerList.findIndex(container => container.id === id)
    if (index < 0) throw new Error(`no container ${id}`)
    this.containerList.splice(index, 1)
    this.emit('container', 'destroy', id)
  }

  /** Answers `count` more DELETEs, then goes away. */
  goAwayAfterRemovals(count: number): void {
    this.removalsLeft = count
  }

  build(tags: string | string[], options: BuildOptions = {}): string {
    const base = options.from === undefined ? undefined : this.find(options.from)
    if (options.from !== undefined && !base) throw new Error(`no image ${options.from} to build on`)
    const serial = ++this.serial
    const id = `sha256:${hash(`image ${serial}`)}`
    const chain = [
      ...(base ? (this.layers.get(base.id) ?? []) : []),
      { chainId: `sha256:${hash(`layer ${serial}`)}`, size: options.bytes ?? 100_000 }
    ]
    this.layers.set(id, chain)
    this.list.push({
      id,
      parentId: base?.id ?? '',
      tags: [],
      digests: [],
      created: options.created ?? this.now(),
      size: chain.reduce((sum, layer) => sum + layer.size, 0),
      labels: options.labels ?? {}
    })
    for (const tag of typeof tags === 'string' ? [tags] : tags) this.tag(id, tag)
    return id
  }

  /** Builds `<name>:tmp` twice, so that the first build loses its tag: returns that dangling image. */
  dangling(name: string): string {
    const first = this.build(`${name}:tmp`)
    this.build(`${name}:tmp`)
    return first
  }

  /** `docker tag`: the tag leaves whichever image had it. */
  tag(source: string, tag: string): void {
    const image = this.find(source)
    if (!image) throw new Error(`no image ${source} to tag`)
    const familiar = familiarTag(tag)
    for (const other of this.list) other.tags = other.tags.filter(t => t !== familiar)
    image.tags.push(familiar)
    this.lastTagged.set(image.id, this.now())
    this.emit('image', 'tag', image.id, this.now(), familiar)
  }

  /** A container of the image: running, or stopped. */
  run(image: string, options: { running: boolean }): string {
    const found = this.find(image)
    if (!found) throw new Error(`no image ${image} to run`)
    const id = hash(`container ${++this.serial}`)
    this.containerList.push({ id, imageId: found.id, running: options.running, created: this.now() })
    this.emit('container', 'create', image)
    if (options.running) this.emit('container', 'start', image)
    return id
  }

  /** The tags of every image, sorted: what a test compares before and after. */
  tagsNow(): string[] {
    return this.list.flatMap(image => image.tags).sort()
  }

  idsNow(): string[] {
    return this.list.map(image => image.id).sort()
  }

  /** Bytes of every layer an image or container holds: what is on disk. */
  storedBytes(): number {
    return new Ledger(this.state()).held()
  }

  async images(): Promise<Image[]> {
    this.answer()
    this.listed++
    return this.list.map(image => ({ ...image, tags: [...image.tags], digests: [...image.digests] }))
  }

  /** As overlay2's dangling filter lists them: no tag, and no image built on it. */
  async hasDangling(): Promise<boolean> {
    this.answer()
    const parents = new Set(this.list.map(image => image.parentId))
    return this.list.some(image => image.tags.length === 0 && !parents.has(image.id))
  }

  async containers(): Promise<Container[]> {
    this.answer()
    return this.containerList.map(container => ({ ...container }))
  }

  async details(images: Image[]): Promise<Details> {
    this.answer()
    const there = images.filter(image => this.list.some(i => i.id === image.id))
    const lastTagged = new Map(there.flatMap(image => this.tagTime(image.id)))
    return {
      layers: new Map(there.map(image => [image.id, [...(this.layers.get(image.id) ?? [])]])),
      lastTagged,
      createdAt: new Map(there.map(image => [image.id, image.created]))
    }
  }

  /** The layers' own sizes, as overlay2's history gives them: the fake keeps no blobs apart from snapshots. */
  async layerHistory(stacks: { id: string; chain: string[] }[]): Promise<Map<string, HistoryEntry>> {
    this.answer()
    const steps = new Map<string, HistoryEntry>()
    for (const stack of stacks) {
      for (const layer of this.layers.get(stack.id) ?? [])
        if (stack.chain.includes(layer.chainId)) steps.set(layer.chainId, { size: layer.size, createdBy: '' })
    }
    return steps
  }

  async remove(target: string, force: boolean): Promise<RemovedItem[]> {
    this.removals.push({ target, force })
    if (this.removalsLeft-- <= 0) this.goAway()
    this.answer()
    const found = this.resolve(target)
    if (!found) throw new EngineError(`No such image: ${target}`, 404)
    const simulation = new Simulation(this.state())
    const hadChildren = simulation.hasChildren(found.id)
    const outcome = found.ref
      ? simulation.removeByName(found.id, found.ref, force)
      : simulation.removeById(found.id, force)
    if (!outcome.ok) throw new EngineError(outcome.message, outcome.reason === 'error' ? 500 : 409)
    this.list = simulation.images().map(image => {
      const refs = simulation.refs(image.id)
      return { ...image, tags: refs.filter(ref => !ref.includes('@')), digests: refs.filter(ref => ref.includes('@')) }
    })
    for (const _ of outcome.untagged) this.emit('image', 'untag', found.id)
    if (outcome.deleted) for (const gone of [found.id, ...outcome.pruned]) this.emit('image', 'delete', gone)
    return this.answerOf(found.id, outcome, { byName: found.ref !== undefined, hadChildren, simulation })
  }

  async exists(id: string): Promise<boolean> {
    this.answer()
    return this.list.some(image => image.id === id)
  }

  /** `/system/df` on overlay2, whose LayersSize counts the images' layers only; the other stores have no figure. */
  async usage(): Promise<DiskUsage | undefined> {
    this.answer()
    if (this.store !== 'graphdriver') return undefined
    const holders = new Map<string, number>()
    for (const image of this.list)
      for (const layer of this.layers.get(image.id) ?? [])
        holders.set(layer.chainId, (holders.get(layer.chainId) ?? 0) + 1)
    const shares = new Map<string, Share>(
      this.list.map(image => {
        const chain = this.layers.get(image.id) ?? []
        const shared = chain.filter(layer => (holders.get(layer.chainId) ?? 0) > 1)
        return [image.id, { size: image.size, shared: shared.reduce((sum, layer) => sum + layer.size, 0) }]
      })
    )
    return { layersSize: new Ledger({ images: this.list, containers: [], layers: this.layers }).held(), shares }
  }

  async identity(): Promise<string> {
    this.answer()
    return this.id
  }

  /**
   * The event log from `since` (whole seconds, as the engines take it), then each new event, until
   * the signal aborts or the engine goes away.
   */
  async *events(since: number | undefined, signal: AbortSignal): AsyncIterable<EngineEvent> {
    this.answer()
    this.eventRequests.push(since)
    const from = since === undefined ? Infinity : Math.floor(since / 1000) * 1000
    let next = this.eventLog.findIndex(event => event.time >= from)
    if (next < 0) next = this.eventLog.length
    for (;;) {
      if (signal.aborted) return
      this.answer()
      if (next < this.eventLog.length) {
        yield this.eventLog[next++]
        continue
      }
      await new Promise<void>(resolve => {
        this.waiters.push(resolve)
        signal.addEventListener('abort', () => resolve(), { once: true })
      })
    }
  }

  async dataRoot(): Promise<string> {
    this.answer()
    return this.root
  }

  async buildCache(): Promise<CacheRecord[] | undefined> {
    this.answer()
    return this.store === 'podman'
      ? undefined
      : this.cache.map(record => ({ ...record, shared: this.isShared(record) }))
  }

  /** BuildKit's prune rules as the daemon applies them; records' sizes are what each frees. */
  async pruneBuildCache(options: { all: boolean; until?: number; id?: string }): Promise<string[]> {
    this.answer()
    this.cachePrunes.push({ ...options })
    if (this.store === 'podman') throw new EngineError('page not found', 404)
    const now = this.now()
    const ids = options.id === undefined ? undefined : new RegExp(options.id)
    const removed: string[] = []
    // Leaf-first until nothing more goes: a record's children hold references on it.
    for (;;) {
      const parents = new Set(this.cache.flatMap(record => record.parents))
      const goes = (record: CacheRecord): boolean =>
        !record.inUse &&
        !parents.has(record.id) &&
        (ids === undefined || ids.test(record.id)) &&
        (options.all || (!this.isShared(record) && !['internal', 'frontend'].includes(record.type))) &&
        (options.until === undefined || (record.lastUsedAt ?? 0) <= now - options.until)
      const round = this.cache.filter(goes).map(record => record.id)
      if (round.length === 0) return removed
      removed.push(...round)
      this.cache = this.cache.filter(record => !round.includes(record.id))
    }
  }

  /** The record's data is also the layer of an image that is still here (`cacheHolders`), or it says shared itself. */
  private isShared(record: CacheRecord): boolean {
    const holder = this.cacheHolders.get(record.id)
    return holder === undefined ? record.shared : this.list.some(image => image.id === holder)
  }

  async clock(): Promise<number> {
    this.answer()
    return this.now()
  }

  async jobRecords(): Promise<JobRecord[]> {
    this.answer()
    return [...this.records.values()].map(record => ({ ...record }))
  }

  async addJobRecord(
    name: string,
    job: JobIdentity,
    ended?: { startedAt: number; left: Leftovers }
  ): Promise<JobRecord> {
    this.answer()
    // Docker stamps a volume with whole seconds.
    const startedAt = ended?.startedAt ?? Math.floor(this.now() / 1000) * 1000
    const record = { name, job, startedAt, left: ended?.left }
    this.records.set(name, record)
    return { ...record }
  }

  async removeJobRecord(name: string): Promise<void> {
    this.answer()
    this.records.delete(name)
  }

  private state(): EngineState {
    return { images: this.list, containers: this.containerList, layers: this.layers, store: this.store }
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter()
  }

  private answer(): void {
    if (this.away) throw new EngineError(this.refusal(), undefined, true, true)
  }

  private refusal(): string {
    return `connect ENOENT ${this.endpoint.replace('unix://', '')}`
  }

  private tagTime(id: string): [string, number][] {
    const time = this.lastTagged.get(id)
    return time === undefined ? [] : [[id, time]]
  }

  /** An ID, or a reference in any spelling the engine accepts: `app` is `app:latest`. */
  private find(text: string): Image | undefined {
    const found = this.resolve(text)
    return found && this.list.find(image => image.id === found.id)
  }

  private resolve(target: string): { id: string; ref?: string } | undefined {
    if (FULL_ID.test(target)) return this.list.some(image => image.id === target) ? { id: target } : undefined
    const wanted = parseNamed(target)
    if (!wanted) return undefined
    const key = referenceKey(wanted.digest ? wanted : { ...wanted, tag: wanted.tag ?? 'latest' })
    for (const image of this.list) {
      const ref = [...image.tags, ...image.digests].find(r => {
        const parsed = parseNamed(r)
        return parsed !== undefined && referenceKey(parsed) === key
      })
      if (ref) return { id: image.id, ref }
    }
    return undefined
  }

  /**
   * The items each store answers: overlay2 names the image and each layer that left; the
   * containerd store the image alone, and Deleted for a parent it keeps untagged for its
   * children; Podman the images before the tags, and only the tag when a parent's last tag took it.
   */
  private answerOf(
    id: string,
    outcome: Extract<Outcome, { ok: true }>,
    { byName, hadChildren, simulation }: { byName: boolean; hadChildren: boolean; simulation: Simulation }
  ): RemovedItem[] {
    const untagged = outcome.untagged.map(ref => ({ untagged: ref }))
    const deleted = outcome.deleted ? [id, ...outcome.pruned] : []
    if (this.store === 'graphdriver')
      return [...untagged, ...[...deleted, ...outcome.freed].map(value => ({ deleted: value }))]
    if (this.store === 'containerd') {
      const keptUntagged = !outcome.deleted && hadChildren && simulation.unnamed(id)
      return [...untagged, ...(keptUntagged ? [id] : deleted).map(value => ({ deleted: value }))]
    }
    if (byName && outcome.deleted && hadChildren) return untagged
    return [...deleted.map(value => ({ deleted: value })), ...untagged]
  }
}

const hash = (text: string): string => createHash('sha256').update(text).digest('hex')

/** Tags as the engine lists them: familiar, with `latest` spelled out. */
function familiarTag(text: string): string {
  const named = parseNamed(text)
  if (!named || named.digest) throw new Error(`${text} is not a tag`)
  return familiarString({ ...named, tag: named.tag ?? 'latest' })
}
