import type { RefSpec } from './reference'
import { Ledger } from './ledger'
import { shortId } from '../common/ids'
import { Protection, type ProtectionSettings } from './protection'
import { Resolver } from './resolver'
import { Simulation, type Outcome } from './simulation'
import { compareIds, type EngineState, type Layer, type Refusal, type Skip } from './model'
import {
  cacheBudget,
  recordFirst,
  type CacheBudget,
  type CacheBudgetSettings,
  type CacheEviction
} from './cache-budget'

/** The part of the settings the planner reads: what to remove, and what must stay (protection.ts). */
export interface Selection extends ProtectionSettings, Omit<CacheBudgetSettings, keyof ProtectionSettings> {
  refs: RefSpec[]
  prune: 'none' | 'dangling' | 'all'
  force: boolean
  noPrune: boolean
  /** Job scope with neither refs nor prune: also untag what the job tagged on older images. */
  untagAdded?: boolean
  /** Least recently used images are removed until these hold. */
  targets?: Targets
}

/** Where image storage must end; needs the engine's layers, and `minFree` its free space. */
export interface Targets {
  /** Bytes of image storage on disk. */
  maxStorage?: number
  /** Bytes free on the filesystem under the engine's data root. */
  minFree?: number
  /**
   * Given as a percentage of the filesystem under the engine's data root instead: the run turns
   * them into bytes (maxStorage, minFree) once it has measured that filesystem.
   */
  maxStoragePercent?: number
  minFreePercent?: number
  /**
   * Bytes to spare once eviction starts: nothing is evicted while every target holds, and once one
   * is crossed the images go until each holds with this much more, so that the next image pulled
   * does not cross it again at once.
   */
  headroom?: number
  /** Headroom given as a percentage of the filesystem under the engine's data root. */
  headroomPercent?: number
}

/** The image storage and free space a plan starts from and leads to. */
export interface Storage {
  before: number
  after: number
  freeBefore?: number
  freeAfter?: number
  /** Whether every target holds after the plan; true when there is none. */
  met: boolean
  /** Whether a target was crossed before eviction, after the refs and the prune: eviction only starts then. */
  crossed: boolean
}

/** The targets eviction aims for once one is crossed: each moved by the headroom. */
function spared(targets: Targets): Targets {
  const headroom = targets.headroom ?? 0
  return {
    maxStorage: targets.maxStorage === undefined ? undefined : targets.maxStorage - headroom,
    minFree: targets.minFree === undefined ? undefined : targets.minFree + headroom
  }
}

/**
 * What asked for a step: a ref, or one of the planner's own reasons. A ref is kept apart from
 * the reasons so that an image really named `prune` or `parent` is never taken for one of them.
 */
export type Cause =
  /**
   * A ref the user gave, a reference a pattern matched, or a tag the job added; `named` when the
   * user wrote this very ref, so that a refusal is theirs to hear about.
   */
  | { kind: 'ref'; ref: string; named: boolean }
  /** The prune input. */
  | { kind: 'prune' }
  /** An untagged parent left childless by an earlier step, removed as the engine's prune would. */
  | { kind: 'parent' }
  /** A storage target (max-storage, min-free): least recently used first. */
  | { kind: 'storage-target' }

type RefCause = Extract<Cause, { kind: 'ref' }>

/** The ref the user wrote for a step, when they named it themselves. */
export function namedRef(cause: Cause): string | undefined {
  return cause.kind === 'ref' && cause.named ? cause.ref : undefined
}

/**
 * The skip for a step that will not happen, or did not. It is listed under the ref when a ref
 * asked for the step, else under `label`, a name for the image: prune, parent and storage target
 * are the planner's own reasons, not names.
 */
export function skipOf(cause: Cause, id: string, label: string, refusal: Refusal): Skip {
  const ref = cause.kind === 'ref' ? cause.ref : label
  return { ref, id, reason: refusal.reason, message: refusal.message, named: namedRef(cause) !== undefined }
}

/** One request to `DELETE /images/{target}?force=&noprune=1`, and what it will do. */
export interface Step {
  target: string
  force: boolean
  imageId: string
  cause: Cause
  untagged: string[]
  deleted: boolean
  /** Untagged parents the engine deletes along with it (Podman, which ignores noprune). */
  pruned: string[]
  /** Chain IDs of the layers the step frees. */
  freed: string[]
  bytes: number
}

export interface Plan {
  steps: Step[]
  skipped: Skip[]
  /** Images a ref named that the filters left out. */
  filteredOut: { ref: string; id: string }[]
  bytes: number
  /** Meaningful only when the state held every image's layers. */
  storage: Storage
  /** The engine as the plan found it, to price what the engine reports deleted. */
  state: EngineState
  /** Job scope on a shared engine: what this job leaves to the others still running (jobs.ts heldKey). */
  leftForOthers: string[]
  /**
   * The build cache records a storage target evicts, children first; set only when `build-cache`
   * counts the cache in the targets (cache-budget.ts). Their bytes are not in `bytes`.
   */
  cache?: CacheEviction[]
}

/** A request before the simulation says what it does: by ID when `target` is the image's ID. */
type Request = Pick<Step, 'cause' | 'imageId' | 'target' | 'force'>

/**
 * Decides what to remove and why, and what that frees, from the engine's
 * state alone: refs first, in the order given, then the prune.
 */
export function plan(state: EngineState, selection: Selection, now: number): Plan {
  const sim = new Simulation(state)
  const resolver = new Resolver(sim)
  const protection = new Protection(state, sim, resolver, selection, now)
  const cache = selection.targets && cacheBudget(state, selection, sim.layerHolds(), now)
  return {
    ...new Planner(state, selection, sim, resolver, protection, cache).run(),
    leftForOthers: [...protection.held.keys()]
  }
}

/**
 * Whether the settings let the plan remove nothing but dangling images (untagged, without
 * children): then an engine with none has nothing to remove. Not with `before` or `since`, whose
 * images must be found on the engine, nor in job scope, which compares with its own record.
 */
export function prunesDanglingOnly(selection: Selection): boolean {
  const { refs, prune, targets, preexisting, untagAdded, filters } = selection
  return (
    refs.length === 0 &&
    prune === 'dangling' &&
    !targets &&
    !preexisting &&
    !untagAdded &&
    filters.before.length === 0 &&
    filters.since.length === 0
  )
}

/**
 * Prices, in place, the steps of a plan made before the layers were read, as the planner would
 * have: without a storage target no step depends on sizes, so the steps stand and each deletion
 * frees, in order, the layers its images were the last to hold. This avoids a second planning
 * pass, whose allocations on a large engine raise peak memory (bench/README.md).
 */
export function price(planned: Plan, layers: Map<string, Layer[]>): Plan {
  planned.state = { ...planned.state, layers }
  const ledger = new Ledger(planned.state)
  const before = ledger.held()
  for (const step of planned.steps.filter(s => s.deleted)) {
    step.freed = [step.imageId, ...step.pruned].flatMap(id => ledger.release(id))
    step.bytes = ledger.bytes(step.freed)
  }
  planned.bytes = planned.steps.reduce((sum, step) => sum + step.bytes, 0)
  planned.storage = { ...planned.storage, before, after: before - planned.bytes }
  return planned
}

/**
 * Drives one plan: the refs in the order given, the tags the job added, the prune, then the
 * storage targets, each request played on the simulation before the next is chosen; and keeps the
 * books: the steps, the skips, the refs the filters left out and the bytes freed. Finding images
 * is the resolver's part (resolver.ts), deciding which may go the protection's (protection.ts).
 */
class Planner {
  private readonly steps: Step[] = []
  private readonly skipped: Skip[] = []
  private readonly filteredOut: { ref: string; id: string }[] = []
  /** Image storage before the first step, and the build cache's bytes no image holds when they count. */
  private readonly storedBefore: number
  private freed = 0
  /** Bytes the build cache records evicted for a target free. */
  private cacheFreed = 0
  private crossed = false

  /** `sim` must hold the engine as `state` has it: no removal played yet. */
  constructor(
    private readonly state: EngineState,
    private readonly selection: Selection,
    private readonly sim: Simulation,
    private readonly resolver: Resolver,
    private readonly protection: Protection,
    private readonly cache?: CacheBudget
  ) {
    // Without build-cache a target measures images alone: what the cache holds too stays without them.
    const cacheHeld = cache || !selection.targets ? 0 : sim.cacheHeldBytes()
    this.storedBefore = sim.storedBytes() - cacheHeld + (cache?.ownBytes() ?? 0)
  }

  run(): Omit<Plan, 'leftForOthers'> {
    for (const spec of this.selection.refs) this.removeSpec(spec)
    if (this.selection.untagAdded) this.untagAdded()
    if (this.selection.prune !== 'none') this.prune(this.selection.prune)
    if (this.selection.targets) this.evict(this.selection.targets)
    return {
      steps: this.steps,
      skipped: this.skipped,
      filteredOut: this.filteredOut,
      bytes: this.freed,
      storage: this.storage(),
      state: this.state,
      ...(this.cache ? { cache: this.cache.evictions() } : {})
    }
  }

  private storage(): Storage {
    const { freeBytes } = this.state
    const freed = this.freed + this.cacheFreed
    const free = freeBytes === undefined ? {} : { freeBefore: freeBytes, freeAfter: freeBytes + freed }
    const met = this.selection.targets === undefined || this.shortfall(this.selection.targets) <= 0
    return { before: this.storedBefore, after: this.storedBefore - freed, ...free, met, crossed: this.crossed }
  }

  /** Bytes still to free for every target to hold. */
  private shortfall(targets: Targets): number {
    const freed = this.freed + this.cacheFreed
    const over = targets.maxStorage === undefined ? 0 : this.storedBefore - freed - targets.maxStorage
    const under = targets.minFree === undefined ? 0 : targets.minFree - ((this.state.freeBytes ?? 0) + freed)
    return Math.max(over, under)
  }

  /**
   * Removes the least recently used images until the targets hold; among
   * images last used at the same time, the one that frees more goes first.
   * Only images without children are removed (a parent's layers stay while
   * a child holds them), and one that would free nothing yet, because
   * another image shares its layers, waits while any other would free
   * something: no image goes for nothing when another would do. The build cache's records, when
   * they count, take their turn in the same order (cache-budget.ts).
   */
  private evict(targets: Targets): void {
    if (this.shortfall(targets) <= 0) return
    this.crossed = true
    const goal = spared(targets)
    const candidates = this.sim
      .images()
      .filter(image => this.evictable(image.id))
      .map(image => ({
        id: image.id,
        used: this.protection.lastUsed(image.id),
        bytes: this.sim.uniqueBytes(image.id)
      }))
      .sort((a, b) => a.used - b.used || b.bytes - a.bytes || compareIds(a.id, b.id))
    const used = new Map(candidates.map(candidate => [candidate.id, candidate.used]))
    const pending = new Set(candidates.map(candidate => candidate.id))
    while (this.shortfall(goal) > 0) {
      const next = this.nextToEvict(pending)
      const record = this.cache?.next()
      const image = next === undefined ? undefined : { used: used.get(next) ?? 0, bytes: this.sim.uniqueBytes(next) }
      if (record && recordFirst(record, image)) {
        this.cacheFreed += this.cache?.evict(record.id) ?? 0
        continue
      }
      if (!next) return
      pending.delete(next)
      this.pruneOne(next, { kind: 'storage-target' })
    }
  }

  /** The first candidate in order that has no children and frees something, else the first without children. */
  private nextToEvict(pending: Set<string>): string | undefined {
    let firstReady: string | undefined
    for (const id of pending) {
      if (!this.sim.alive(id)) pending.delete(id)
      else if (!this.sim.hasChildren(id)) {
        if (this.sim.uniqueBytes(id) > 0) return id
        firstReady ??= id
      }
    }
    return firstReady
  }

  /** Whatever the order, an eviction never breaks a rule the user set or the engine keeps. */
  private evictable(id: string): boolean {
    const intermediate = this.sim.unnamed(id) && this.sim.hasChildren(id)
    return (
      !intermediate &&
      !this.protection.preexisting(id) &&
      this.sim.usedBy(id).length === 0 &&
      !this.protection.protects(id) &&
      this.protection.selects(id)
    )
  }

  private removeSpec(spec: RefSpec): void {
    if (spec.kind === 'pattern') {
      for (const { id, ref } of this.resolver.matches(spec.pattern)) {
        if (this.protection.preexisting(id, ref)) continue
        if (this.sim.refs(id).includes(ref)) this.selectAndRemove({ kind: 'ref', ref, named: false }, id, ref)
      }
      return
    }
    const cause: RefCause = { kind: 'ref', ref: spec.text, named: true }
    const found = this.resolver.find(spec)
    if ('id' in found) this.selectAndRemove(cause, found.id, found.byName)
    else this.skip(cause, '', found)
  }

  private selectAndRemove(cause: RefCause, id: string, byName: string | undefined): void {
    if (!this.protection.selects(id)) {
      this.filteredOut.push({ ref: cause.ref, id })
      return
    }
    const refusal = this.protection.olderThanJob(id, byName) ?? this.protection.protects(id)
    if (refusal) return this.skip(cause, id, refusal)
    const force = this.selection.force && this.sim.needsForce(id, byName)
    const stopped = this.sim.usedBy(id)[0]
    if (force && stopped && this.sim.rules.forceDeletesContainers) {
      const message = `image is being used by stopped container ${shortId(stopped.id)}, which this engine (Podman) would delete along with it if forced`
      return this.skip(cause, id, { reason: 'in-use-stopped', message })
    }
    this.send({ cause, imageId: id, target: byName ?? id, force })
  }

  /** Every tag the job added to an image that was there before it. */
  private untagAdded(): void {
    for (const id of this.selection.preexisting?.keys() ?? []) {
      for (const ref of this.sim.refs(id).filter(r => !this.protection.preexisting(id, r) && !r.includes('@'))) {
        this.selectAndRemove({ kind: 'ref', ref, named: false }, id, ref)
      }
    }
  }

  /**
   * Plays one request on the simulation and books the step, or, where the engine would refuse
   * it, the skip; then the parents the deletion leaves to prune.
   */
  private send(request: Request): Outcome {
    const { cause, imageId, target, force } = request
    const parentId = this.sim.parent(imageId)
    const outcome =
      target === imageId ? this.sim.removeById(imageId, force) : this.sim.removeByName(imageId, target, force)
    if (!outcome.ok) {
      this.skip(cause, imageId, outcome)
      return outcome
    }
    const bytes = outcome.freed.reduce((sum, chainId) => sum + this.sim.layerSize(chainId), 0)
    this.freed += bytes
    const { untagged, deleted, pruned, freed } = outcome
    this.steps.push({ ...request, untagged, deleted, pruned, freed, bytes })
    if (deleted && this.pruneParentsToo()) this.pruneParents(parentId)
    return outcome
  }

  /** Whether to send parent removals after a deletion: Podman prunes them itself, ignoring noprune. */
  private pruneParentsToo(): boolean {
    return !this.selection.noPrune && !this.sim.rules.prunesParents
  }

  /**
   * The engine's parent pruning, sent as requests of our own (the engine is
   * always asked with noprune=1) so that keep rules hold for parents too.
   */
  private pruneParents(id: string): void {
    if (!id || !this.sim.alive(id) || !this.sim.unnamed(id) || this.sim.hasChildren(id)) return
    if (this.protection.preexisting(id) || this.sim.usedBy(id).length > 0 || this.protection.protects(id)) return
    this.send({ cause: { kind: 'parent' }, imageId: id, target: id, force: false })
  }

  private prune(mode: 'dangling' | 'all'): void {
    const candidates = this.sim
      .images()
      .filter(image => !this.protection.preexisting(image.id))
      .filter(image => (mode === 'dangling' ? this.isDanglingHead(image.id) : this.isPrunable(image.id)))
      .filter(image => this.protection.selects(image.id))
      .map(image => ({ id: image.id, depth: this.sim.depth(image.id) }))
      .sort((a, b) => b.depth - a.depth || compareIds(a.id, b.id))
    for (const { id } of candidates) if (this.sim.alive(id)) this.pruneOne(id, { kind: 'prune' })
  }

  private isDanglingHead(id: string): boolean {
    return this.sim.tags(id).length === 0 && !this.sim.hasChildren(id)
  }

  /** What `docker image prune -a` considers: everything but untagged intermediates. */
  private isPrunable(id: string): boolean {
    return !this.sim.unnamed(id) || !this.sim.hasChildren(id)
  }

  /**
   * Prune never forces, like the engine's: images of containers stay. A
   * stopped container's image is left whole here, where the engine's own
   * prune would untag every tag but the last before refusing.
   */
  private pruneOne(id: string, cause: Cause): void {
    const protectedBy = this.protection.protects(id)
    if (protectedBy) return this.skip(cause, id, protectedBy)
    const stopped = this.sim.usedBy(id)[0]
    if (stopped) {
      const message = `image is being used by stopped container ${shortId(stopped.id)}`
      return this.skip(cause, id, { reason: 'in-use-stopped', message })
    }
    if (this.sim.hasChildren(id) && !this.sim.rules.childrenBlock) {
      // Unlike a graph driver, this store does not refuse it, but removing it would only take a name
      // away and free nothing: the images built on it hold its layers.
      return this.skip(cause, id, { reason: 'has-children', message: 'other images that stay are built on it' })
    }
    if (this.sim.unnamed(id) || this.sim.singleReference(id)) {
      this.send({ cause, imageId: id, target: id, force: false })
      return
    }
    for (const ref of this.sim.names(id)) {
      const outcome = this.send({ cause, imageId: id, target: ref, force: false })
      if (!outcome.ok || outcome.deleted) return
    }
  }

  private skip(cause: Cause, id: string, refusal: Refusal): void {
    this.skipped.push(skipOf(cause, id, this.sim.tags(id)[0] ?? shortId(id), refusal))
  }
}
